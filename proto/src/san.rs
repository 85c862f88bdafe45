//! subjectAltName (RFC 5280 4.2.1.6) values for oneM2M identities (TS-0003 10.1.1.5/7/8):
//! only the two GeneralName forms those profiles use are modelled.

use crate::ProtoError;

/// A GeneralName as oneM2M certificate profiles use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GeneralName {
    /// dNSName [2] IA5String.
    Dns(String),
    /// uniformResourceIdentifier [6] IA5String.
    Uri(String),
    /// Any other GeneralName form, kept as its full DER (tag included) so it can be compared.
    Other(Vec<u8>),
}

/// Encodes GeneralNames (the extnValue of subjectAltName) as DER.
/// Names must be non-empty IA5 (ASCII) strings.
pub fn encode(names: &[GeneralName]) -> Result<Vec<u8>, ProtoError> {
    let _ = names;
    todo!("proto helper")
}

/// Decodes GeneralNames DER.
pub fn decode(der: &[u8]) -> Result<Vec<GeneralName>, ProtoError> {
    let _ = der;
    todo!("proto helper")
}
