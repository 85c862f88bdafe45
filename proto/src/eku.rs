//! extendedKeyUsage (RFC 5280 4.2.1.12) values: `ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX)
//! OF KeyPurposeId`, as a MEF requests them in /csrattrs (CR 8.3.Z.2.2 step 2) and checks them
//! in a CSR (CR 8.3.Z.2.3 step 3d).

use crate::ProtoError;
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};

fn asn1_err(reason: impl ToString) -> ProtoError {
    ProtoError::Asn1 {
        what: "ExtKeyUsageSyntax",
        reason: reason.to_string(),
    }
}

/// Encodes the extnValue of an extendedKeyUsage extension from dotted OIDs (at least one).
pub fn encode(purposes: &[&str]) -> Result<Vec<u8>, ProtoError> {
    if purposes.is_empty() {
        return Err(asn1_err("no key purpose (SIZE (1..MAX))"));
    }
    let oids = purposes
        .iter()
        .map(|p| ObjectIdentifier::new(p).map_err(|e| asn1_err(format!("{p:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    oids.to_der().map_err(asn1_err)
}

/// Decodes the extnValue of an extendedKeyUsage extension into dotted OIDs, in order. Strict
/// DER, no trailing bytes, at least one purpose.
pub fn decode(der: &[u8]) -> Result<Vec<String>, ProtoError> {
    let oids = Vec::<ObjectIdentifier>::from_der(der).map_err(asn1_err)?;
    if oids.is_empty() {
        return Err(asn1_err("no key purpose (SIZE (1..MAX))"));
    }
    Ok(oids.iter().map(|o| o.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oids;

    #[test]
    fn round_trip_and_known_encoding() {
        let der = encode(&[oids::KP_CLIENT_AUTH]).unwrap();
        assert_eq!(
            der,
            [0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]
        );
        let both = encode(&[oids::KP_SERVER_AUTH, oids::KP_CLIENT_AUTH]).unwrap();
        assert_eq!(
            decode(&both).unwrap(),
            vec![oids::KP_SERVER_AUTH, oids::KP_CLIENT_AUTH]
        );
    }

    #[test]
    fn empty_trailing_and_malformed_are_refused() {
        assert!(encode(&[]).is_err());
        assert!(decode(&[0x30, 0x00]).is_err());
        let mut der = encode(&[oids::KP_CLIENT_AUTH]).unwrap();
        der.push(0);
        assert!(decode(&der).is_err());
        assert!(decode(&[0x04, 0x00]).is_err());
    }
}
