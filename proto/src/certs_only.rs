//! certs-only CMS: a SignedData with no signers whose `certificates` field carries the payload
//! (RFC 7030 4.1.3 and 4.2.3, RFC 5652 5.1, the "degenerate" PKCS #7 of RFC 2315).

use crate::raw::{RawSet, RawTlv};
use crate::ProtoError;
use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use der::asn1::{ObjectIdentifier, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use x509_cert::Certificate;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap(crate::oids::ID_SIGNED_DATA);
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap(crate::oids::ID_DATA);

fn asn1_err(reason: impl ToString) -> ProtoError {
    ProtoError::Asn1 {
        what: "certs-only CMS",
        reason: reason.to_string(),
    }
}

/// SignedData (RFC 5652 5.1) with the fields certs-only does not use kept raw.
#[derive(Sequence)]
struct RawSignedData<'a> {
    version: CmsVersion,
    digest_algorithms: RawSet<'a>,
    encap_content_info: RawTlv<'a>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<RawSet<'a>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<RawSet<'a>>,
    signer_infos: RawSet<'a>,
}

/// ContentInfo (RFC 5652 3) whose content is decoded as [`RawSignedData`].
#[derive(Sequence)]
struct RawContentInfo<'a> {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    content: RawSignedData<'a>,
}

/// Decodes a ContentInfo holding certs-only SignedData, given in DER or in BER with
/// indefinite lengths (what Java-based CAs send), and returns each certificate as DER.
/// Order follows the encoding, but callers must not rely on it (a SET OF has no order).
/// Non-certificate CertificateChoices (attribute certificates, ...) are an error.
/// Zero certificates decode to an empty vector: the caller decides whether that is acceptable.
pub fn decode(der_or_ber: &[u8]) -> Result<Vec<Vec<u8>>, ProtoError> {
    // Peek at the content type first so that another CMS type gets a clear error rather than
    // "unexpected tag" from the SignedData structure.
    let ci = ContentTypePeek::from_ber(der_or_ber).map_err(asn1_err)?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(asn1_err(format!(
            "content type {} is not id-signedData",
            ci.content_type
        )));
    }
    // BER is a superset of DER: one decoder serves both.
    let ci = RawContentInfo::from_ber(der_or_ber).map_err(asn1_err)?;
    // Signers, CRLs and digest algorithms are ignored: RFC 7030 4.1.3 / 4.2.3 responses carry
    // none, and the certificates are validated by path building, not by this container.
    let Some(set) = ci.content.certificates else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(set.0.len());
    for (i, raw) in set.0.iter().enumerate() {
        // RFC 5652 10.2.2: CertificateChoices is a CHOICE; only `certificate` is untagged.
        if raw.first() != Some(&0x30) {
            return Err(asn1_err(format!(
                "certificate {i} is not an X.509 certificate (CertificateChoices tag {:#04x})",
                raw.first().copied().unwrap_or(0)
            )));
        }
        if Certificate::from_der(raw).is_ok() {
            out.push(raw.to_vec());
        } else {
            // A certificate that is itself BER-encoded (rare, but BER senders exist): return
            // its DER form, the only encoding X.509 signatures are computed over (RFC 5280 4.1.1.3).
            let cert = Certificate::from_ber(raw)
                .map_err(|e| asn1_err(format!("certificate {i}: {e}")))?;
            out.push(
                cert.to_der()
                    .map_err(|e| asn1_err(format!("certificate {i}: {e}")))?,
            );
        }
    }
    Ok(out)
}

/// Just the content type of a ContentInfo, the content skipped.
#[derive(Sequence)]
struct ContentTypePeek<'a> {
    content_type: ObjectIdentifier,
    content: RawTlv<'a>,
}

/// Encodes certificates (each DER) as a certs-only ContentInfo in DER: version 1, no digest
/// algorithms, encapContentInfo of type id-data with no content, no signers.
pub fn encode(certs: &[&[u8]]) -> Result<Vec<u8>, ProtoError> {
    // A SET OF certificates holds each once; a repeated one is written once.
    let mut unique: Vec<&[u8]> = Vec::with_capacity(certs.len());
    for c in certs {
        if !unique.contains(c) {
            unique.push(c);
        }
    }
    let mut choices = Vec::with_capacity(unique.len());
    for (i, c) in unique.iter().enumerate() {
        let cert =
            Certificate::from_der(c).map_err(|e| asn1_err(format!("certificate {i}: {e}")))?;
        choices.push(CertificateChoices::Certificate(cert));
    }
    // The certificates field is present even when empty, as OpenSSL writes it.
    let certificates = CertificateSet(SetOfVec::try_from(choices).map_err(asn1_err)?);
    let der = certs_only_der(Some(certificates))?;

    // The certificates went through x509-cert's model; make sure each came out byte for byte
    // (it would not for a certificate whose DER is not canonical, whose signature would break).
    let mut back = decode(&der)?;
    let mut given: Vec<Vec<u8>> = unique.iter().map(|c| c.to_vec()).collect();
    back.sort();
    given.sort();
    if back != given {
        return Err(asn1_err(
            "a certificate does not re-encode to its own bytes (not canonical DER)",
        ));
    }
    Ok(der)
}

/// The certs-only ContentInfo around `certificates` (RFC 7030 4.1.3), in DER.
fn certs_only_der(certificates: Option<CertificateSet>) -> Result<Vec<u8>, ProtoError> {
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates,
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    let ci = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(asn1_err)?,
    };
    ci.to_der().map_err(asn1_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_cert(cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn roundtrip_two_certs() {
        let a = make_cert("a");
        let b = make_cert("b");
        let der = encode(&[&a, &b]).unwrap();
        let mut got = decode(&der).unwrap();
        got.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn encoded_structure_is_certs_only() {
        let a = make_cert("a");
        let der = encode(&[&a]).unwrap();
        let ci = ContentInfo::from_der(&der).unwrap();
        assert_eq!(ci.content_type, ID_SIGNED_DATA);
        let sd: SignedData = ci.content.decode_as().unwrap();
        assert_eq!(sd.version, CmsVersion::V1);
        assert!(sd.digest_algorithms.is_empty());
        assert_eq!(sd.encap_content_info.econtent_type, ID_DATA);
        assert!(sd.encap_content_info.econtent.is_none());
        assert!(sd.signer_infos.0.is_empty());
        assert!(sd.crls.is_none());
        assert_eq!(sd.certificates.unwrap().0.len(), 1);
    }

    #[test]
    fn zero_certificates() {
        let der = encode(&[]).unwrap();
        assert_eq!(decode(&der).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn absent_certificates_field_decodes_empty() {
        assert!(decode(&certs_only_der(None).unwrap()).unwrap().is_empty());
    }

    #[test]
    fn duplicate_certificate_is_encoded_once() {
        let a = make_cert("a");
        let der = encode(&[&a, &a]).unwrap();
        assert_eq!(decode(&der).unwrap(), vec![a]);
    }

    #[test]
    fn rejects_non_certificate() {
        assert!(encode(&[b"\x30\x03\x02\x01\x01"]).is_err());
        // Another content type (id-data).
        let ci = ContentInfo {
            content_type: ID_DATA,
            content: Any::encode_from(&der::asn1::OctetString::new(vec![1u8]).unwrap()).unwrap(),
        };
        let err = decode(&ci.to_der().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not id-signedData"), "{err}");
        // Garbage and trailing data.
        assert!(decode(b"").is_err());
        assert!(decode(b"\x30\x00").is_err());
        let a = make_cert("a");
        let mut der = encode(&[&a]).unwrap();
        der.push(0);
        assert!(decode(&der).is_err());
    }

    #[test]
    fn rejects_attribute_certificate_choice() {
        // Replace the certificate's SEQUENCE tag by [2] IMPLICIT (v2AttrCert) in the encoding.
        let a = make_cert("a");
        let mut der = encode(&[&a]).unwrap();
        let pos = der
            .windows(a.len())
            .position(|w| w == a.as_slice())
            .unwrap();
        der[pos] = 0xa2;
        let err = decode(&der).unwrap_err();
        assert!(
            err.to_string().contains("not an X.509 certificate"),
            "{err}"
        );
    }
}
