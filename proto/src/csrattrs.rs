//! CSR Attributes (RFC 7030 4.5.2; RFC 8951 section 4 corrects the ASN.1) and their meaning for
//! a oneM2M MEF Client (TS-0003 10.1.4, CR 8.3.Z.2.2 step 2).
//!
//! ```text
//! CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//! AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
//! Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE(1..MAX) OF ANY }
//! ```

use crate::ProtoError;
use zeroize::Zeroizing;

/// One element of CsrAttrs, kept close to the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrOrOid {
    /// A bare OBJECT IDENTIFIER, in dotted form ("1.2.840.113549.1.9.7").
    Oid(String),
    /// An Attribute: its type in dotted form and each value as the DER of one ANY.
    Attribute { oid: String, values: Vec<Vec<u8>> },
}

/// Decodes a CsrAttrs body (after base64). An empty SEQUENCE is valid and yields no items.
pub fn decode(der: &[u8]) -> Result<Vec<AttrOrOid>, ProtoError> {
    let _ = der;
    todo!("proto helper")
}

/// Encodes CsrAttrs as DER.
pub fn encode(items: &[AttrOrOid]) -> Result<Vec<u8>, ProtoError> {
    let _ = items;
    todo!("proto helper")
}

/// What the server asks for the challengePassword (PKCS #9, 1.2.840.113549.1.9.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengePassword {
    /// Not mentioned.
    NotRequested,
    /// Mentioned as a bare OID: RFC 7030 3.5 asks the client to put the tls-unique (or, over
    /// TLS 1.3, tls-exporter) channel binding value there.
    ChannelBinding,
    /// An Attribute with a value: the MEF supplied the password to echo (oneM2M CSR profile).
    /// Zeroized on drop.
    Value(Zeroizing<String>),
}

/// Elliptic curves a key-type requirement may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

/// A key type the server requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRequirement {
    /// id-ecPublicKey with the named curve (an Attribute whose value is the curve OID).
    Ec(Curve),
    /// rsaEncryption, with the modulus size when the server gave one (an INTEGER value).
    Rsa { bits: Option<u32> },
    /// id-Ed25519.
    Ed25519,
}

/// A signature hash the server requires (from ecdsa-with-SHAxxx / shaxxxWithRSAEncryption OIDs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

/// One extension the server asks the CSR to carry, from an extensionRequest attribute
/// (PKCS #9 1.2.840.113549.1.9.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedExtension {
    /// Dotted OID of the extension ("2.5.29.17" for subjectAltName).
    pub oid: String,
    pub critical: bool,
    /// The DER inside the extnValue OCTET STRING.
    pub value: Vec<u8>,
}

/// What a CsrAttrs response asks of the CSR, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrRequirements {
    pub challenge_password: ChallengePassword,
    /// Extensions from extensionRequest attributes, in order (the subjectAltName carrying the
    /// identity the MEF associates with the client is one of them).
    pub extensions: Vec<RequestedExtension>,
    /// The key type, if any was named.
    pub key: Option<KeyRequirement>,
    /// The signature hash, if any was named.
    pub hash: Option<HashAlg>,
    /// OIDs and attribute types not understood, in dotted form; ignored by the client
    /// (RFC 7030 4.5.2: "the client SHOULD ignore" what it does not recognise) but kept for logs.
    pub unrecognized: Vec<String>,
}

impl CsrRequirements {
    /// Interprets decoded items. Recognised items with malformed values (a challengePassword
    /// that is not a DirectoryString, an extensionRequest that is not Extensions, two different
    /// key types) are errors; unrecognised ones go to `unrecognized`.
    pub fn from_items(items: &[AttrOrOid]) -> Result<CsrRequirements, ProtoError> {
        let _ = items;
        todo!("proto helper")
    }

    /// The requested subjectAltName extension value (DER of GeneralNames), if any.
    pub fn subject_alt_name(&self) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|e| e.oid == crate::oids::SUBJECT_ALT_NAME)
            .map(|e| e.value.as_slice())
    }

    /// Builds the items a server sends for these requirements (the MEF side): challengePassword
    /// as an Attribute with a UTF8String value (or a bare OID for `ChannelBinding`), one
    /// extensionRequest attribute holding all `extensions`, the key type as an Attribute
    /// (id-ecPublicKey with the curve OID; rsaEncryption with an INTEGER when bits is known;
    /// id-Ed25519 as a bare OID) and the hash as a bare signature-algorithm OID
    /// (ecdsa-with-SHAxxx for EC keys, shaxxxWithRSAEncryption for RSA).
    pub fn to_items(&self) -> Result<Vec<AttrOrOid>, ProtoError> {
        todo!("proto helper")
    }
}
