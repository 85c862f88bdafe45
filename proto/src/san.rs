//! subjectAltName (RFC 5280 4.2.1.6) values for oneM2M identities (TS-0003 10.1.1.5/7/8):
//! only the two GeneralName forms those profiles use are modelled.

use crate::raw::RawSeq;
use crate::ProtoError;
use der::asn1::Ia5StringRef;
use der::{AnyRef, Decode, Encode, Tag, TagNumber, Tagged};

/// A GeneralName as oneM2M certificate profiles use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GeneralName {
    /// dNSName `[2] IA5String`.
    Dns(String),
    /// uniformResourceIdentifier `[6] IA5String`.
    Uri(String),
    /// Any other GeneralName form, kept as its full DER (tag included) so it can be compared.
    Other(Vec<u8>),
}

const DNS_TAG: Tag = Tag::ContextSpecific {
    constructed: false,
    number: TagNumber(2),
};
const URI_TAG: Tag = Tag::ContextSpecific {
    constructed: false,
    number: TagNumber(6),
};

fn asn1_err(reason: impl ToString) -> ProtoError {
    ProtoError::Asn1 {
        what: "GeneralNames",
        reason: reason.to_string(),
    }
}

/// Encodes GeneralNames (the extnValue of subjectAltName) as DER.
/// Names must be non-empty IA5 (ASCII) strings.
///
/// The list must not be empty (RFC 5280 4.2.1.6: GeneralNames is SIZE (1..MAX)); an `Other`
/// must be one DER TLV with a GeneralName tag (`[0]`..`[8]`, RFC 5280 4.2.1.6).
pub fn encode(names: &[GeneralName]) -> Result<Vec<u8>, ProtoError> {
    if names.is_empty() {
        return Err(asn1_err("no names (GeneralNames is SIZE (1..MAX))"));
    }
    let mut encoded = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let (tag, s) = match name {
            GeneralName::Dns(s) => (DNS_TAG, s),
            GeneralName::Uri(s) => (URI_TAG, s),
            GeneralName::Other(der) => {
                let any = AnyRef::from_der(der)
                    .map_err(|e| asn1_err(format!("name {i} is not one DER TLV: {e}")))?;
                if !matches!(any.tag(), Tag::ContextSpecific { number, .. } if number.value() <= 8)
                {
                    return Err(asn1_err(format!(
                        "name {i} has tag {}, not a GeneralName tag [0]..[8]",
                        any.tag()
                    )));
                }
                encoded.push(der.clone());
                continue;
            }
        };
        if s.is_empty() {
            return Err(asn1_err(format!("name {i} is empty")));
        }
        // IA5String is 7-bit (X.680 41.2); der's Ia5StringRef enforces it.
        let ia5 = Ia5StringRef::new(s.as_str())
            .map_err(|_| asn1_err(format!("name {i} is not an IA5 (ASCII) string")))?;
        let der = AnyRef::new(tag, ia5.as_bytes())
            .and_then(|a| a.to_der())
            .map_err(asn1_err)?;
        encoded.push(der);
    }
    RawSeq(encoded.iter().map(Vec::as_slice).collect())
        .to_der()
        .map_err(asn1_err)
}

/// Decodes GeneralNames DER.
///
/// An empty SEQUENCE yields no names. A `[2]` or `[6]` whose content is not IA5 is an error.
pub fn decode(der: &[u8]) -> Result<Vec<GeneralName>, ProtoError> {
    let seq = RawSeq::from_der(der).map_err(asn1_err)?;
    let mut names = Vec::with_capacity(seq.0.len());
    for (i, tlv) in seq.0.iter().enumerate() {
        let any = AnyRef::from_der(tlv).map_err(|e| asn1_err(format!("name {i}: {e}")))?;
        let ia5 = || {
            Ia5StringRef::new(any.value())
                .map(|s| s.as_str().to_string())
                .map_err(|_| asn1_err(format!("name {i} is not an IA5 (ASCII) string")))
        };
        names.push(match any.tag() {
            t if t == DNS_TAG => GeneralName::Dns(ia5()?),
            t if t == URI_TAG => GeneralName::Uri(ia5()?),
            _ => GeneralName::Other(tlv.to_vec()),
        });
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let names = vec![
            GeneralName::Uri("CAE-dev1".into()),
            GeneralName::Dns("device.example".into()),
            // iPAddress [7] 127.0.0.1
            GeneralName::Other(vec![0x87, 4, 127, 0, 0, 1]),
        ];
        let der = encode(&names).unwrap();
        assert_eq!(decode(&der).unwrap(), names);
    }

    #[test]
    fn known_encoding() {
        let der = encode(&[GeneralName::Dns("a.b".into()), GeneralName::Uri("u".into())]).unwrap();
        assert_eq!(
            der,
            [0x30, 0x08, 0x82, 0x03, b'a', b'.', b'b', 0x86, 0x01, b'u']
        );
    }

    #[test]
    fn openssl_made_certificate_san() {
        // The fixture's subjectAltName: URI:CAE-test-device, DNS:device.example.
        let cert = include_bytes!("../tests/data/ee.der");
        let uri = b"\x86\x0fCAE-test-device";
        let start = cert.windows(uri.len()).position(|w| w == uri).unwrap() - 2;
        let len = cert[start + 1] as usize;
        let names = decode(&cert[start..start + 2 + len]).unwrap();
        assert_eq!(
            names,
            vec![
                GeneralName::Uri("CAE-test-device".into()),
                GeneralName::Dns("device.example".into())
            ]
        );
    }

    #[test]
    fn encode_rejects() {
        assert!(encode(&[]).is_err());
        assert!(encode(&[GeneralName::Dns(String::new())]).is_err());
        assert!(encode(&[GeneralName::Uri("caf\u{e9}".into())]).is_err());
        assert!(encode(&[GeneralName::Other(vec![0x04, 0x00])]).is_err());
        assert!(encode(&[GeneralName::Other(vec![0x89, 0x00])]).is_err());
        assert!(encode(&[GeneralName::Other(vec![0x87, 0x04, 1])]).is_err());
    }

    #[test]
    fn decode_rejects_and_tolerates() {
        assert_eq!(decode(&[0x30, 0x00]).unwrap(), vec![]);
        assert!(decode(&[0x30, 0x03, 0x82, 0x01, 0xe9]).is_err());
        assert!(decode(&[0x30, 0x03, 0x82, 0x01]).is_err());
        assert!(decode(&[0x31, 0x00]).is_err());
        assert!(decode(&[]).is_err());
        // A constructed [2] is not a dNSName: kept as Other.
        assert_eq!(
            decode(&[0x30, 0x02, 0xa2, 0x00]).unwrap(),
            vec![GeneralName::Other(vec![0xa2, 0x00])]
        );
    }
}
