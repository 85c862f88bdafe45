//! X.509 certificate parsing for the client library, on the RustCrypto `x509-cert`/`der` stack
//! the proto crate already uses (one ASN.1 stack in the shared library instead of two).
//!
//! Certificates are decoded strictly as DER (RFC 5280 4.1: "the certificate MUST be
//! DER-encoded"), with no trailing data.

use const_oid::ObjectIdentifier;
use der::{asn1::Any, Decode, Encode, Tag, Tagged};
use x509_cert::name::Name;
use x509_cert::Certificate;

/// Decodes one DER certificate; trailing data is an error.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<Certificate, der::Error> {
    Certificate::from_der(der)
}

/// The DER encoding of the certificate's SubjectPublicKeyInfo (the input was DER, so this is
/// the bytes as they appear in the certificate).
pub(crate) fn spki_der(cert: &Certificate) -> Vec<u8> {
    // Encoding a structure that was just decoded from DER cannot fail; an empty vector never
    // equals a key's SubjectPublicKeyInfo, so a failure reads as "different key".
    cert.tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap_or_default()
}

/// Whether the certificate's SubjectPublicKeyInfo is `spki` (DER).
///
/// The one key/certificate match of the library (client identities, the store's checks, the
/// issued certificate, the C API): the same bytes, or a different but equivalent encoding of
/// the same SubjectPublicKeyInfo (same algorithm identifier and key bits).
pub(crate) fn has_spki(cert: &Certificate, spki: &[u8]) -> bool {
    if spki_der(cert) == spki {
        return true;
    }
    match x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(spki) {
        Ok(ours) => {
            let pki = cert.tbs_certificate().subject_public_key_info();
            ours.algorithm == pki.algorithm && ours.subject_public_key == pki.subject_public_key
        }
        Err(_) => false,
    }
}

/// A distinguished name for messages, written as x509-parser (the parser this replaced) wrote
/// it: the RDNs in encoded order, `", "` between them and `" + "` inside a multi-valued RDN,
/// each attribute as `CN=value`.
///
/// Attribute names come from a short table rather than x509-cert's `Display`, which would link
/// const-oid's whole OID name database (about 50 KB) into the shared library for messages.
pub(crate) fn describe_name(name: &Name) -> String {
    name.iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    format!(
                        "{}={}",
                        attribute_name(&atv.oid),
                        attribute_value(&atv.value)
                    )
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The usual short name of a DN attribute type (RFC 4519, RFC 5280 appendix A); others as a
/// dotted OID.
fn attribute_name(oid: &ObjectIdentifier) -> String {
    use const_oid::db::{rfc2985, rfc4519};
    let known = [
        (rfc4519::CN, "CN"),
        (rfc4519::C, "C"),
        (rfc4519::L, "L"),
        (rfc4519::ST, "ST"),
        (rfc4519::O, "O"),
        (rfc4519::OU, "OU"),
        (rfc4519::DC, "DC"),
        (rfc4519::SERIAL_NUMBER, "serialNumber"),
        (rfc4519::SN, "surname"),
        (rfc4519::GIVEN_NAME, "givenName"),
        (rfc4519::TITLE, "title"),
        (rfc2985::PKCS_9_AT_EMAIL_ADDRESS, "Email"),
    ];
    known
        .iter()
        .find(|(o, _)| o == oid)
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| oid.to_string())
}

/// A DN attribute value as text: string types as they are, other types as upper-case hex of
/// their content.
fn attribute_value(value: &Any) -> String {
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::TeletexString
        | Tag::VideotexString
        | Tag::VisibleString
        | Tag::NumericString
        | Tag::GeneralString => String::from_utf8_lossy(value.value()).into_owned(),
        Tag::BmpString => {
            let units: Vec<u16> = value
                .value()
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => value.value().iter().map(|b| format!("{b:02X}")).collect(),
    }
}

/// A time for messages, e.g. `Jan  1 00:00:00 2040 +00:00`.
pub(crate) fn format_unix_time(secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    match der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs)) {
        Ok(t) => format!(
            "{} {:>2} {:02}:{:02}:{:02} {} +00:00",
            MONTHS[usize::from(t.month().clamp(1, 12)) - 1],
            t.day(),
            t.hour(),
            t.minutes(),
            t.seconds(),
            t.year()
        ),
        Err(_) => format!("{secs} s since 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
    use crate::validate::test_pki::{LeafSpec, TestPki};

    #[test]
    fn times_read_like_before() {
        assert_eq!(
            format_unix_time(2_208_988_800),
            "Jan  1 00:00:00 2040 +00:00"
        );
        assert_eq!(
            format_unix_time(1_893_499_199),
            "Jan  1 11:59:59 2030 +00:00"
        );
        assert_eq!(
            format_unix_time(1_700_000_000),
            "Nov 14 22:13:20 2023 +00:00"
        );
    }

    #[test]
    fn names_and_keys_of_an_rcgen_certificate() {
        let pki = TestPki::new("x509");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let leaf = pki.leaf(&key, &LeafSpec::uri("https://sp.example.com/cse01/CAE01"));
        let cert = parse_certificate(&leaf).unwrap();
        assert_eq!(
            describe_name(cert.tbs_certificate().subject()),
            "CN=test leaf"
        );
        assert_eq!(
            describe_name(cert.tbs_certificate().issuer()),
            "CN=x509 Issuing CA"
        );
        assert!(has_spki(&cert, key.public_key_info()));
        let other = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        assert!(!has_spki(&cert, other.public_key_info()));
        // Trailing data after the certificate is refused (strict DER).
        let mut longer = leaf.to_vec();
        longer.push(0);
        assert!(parse_certificate(&longer).is_err());
    }

    #[test]
    fn multi_valued_rdns_and_other_types() {
        use std::str::FromStr;
        let name = Name::from_str("CN=a\\,b+O=Org,C=FR").unwrap();
        // FromStr takes RFC 4514 order (most significant last); the encoding is reversed.
        let text = describe_name(&name);
        assert!(text.starts_with("C=FR, "), "{text}");
        assert!(text.contains("CN=a,b") && text.contains(" + "), "{text}");
        // Unknown attribute types by OID, non-string values in hex.
        let name = Name::from_str("2.5.4.99=#0403616263").unwrap();
        assert_eq!(describe_name(&name), "2.5.4.99=616263");
    }

    /// Made with the OpenSSL CLI (`openssl req -x509`, P-256, basicConstraints critical cA,
    /// keyUsage keyCertSign cRLSign).
    const OPENSSL_CA: &str = "-----BEGIN CERTIFICATE-----\n\
MIIB3zCCAYWgAwIBAgIUI7uzr9kaBxJWApo7WfB8ycHHhwkwCgYIKoZIzj0EAwIw\n\
PTELMAkGA1UEBhMCRlIxFDASBgNVBAoMC0V4YW1wbGUgT3JnMRgwFgYDVQQDDA9P\n\
cGVuU1NMIFJvb3QgQ0EwHhcNMjYxMTI3MDYzNjQyWhcNNDYxMTIyMDYzNjQyWjA9\n\
MQswCQYDVQQGEwJGUjEUMBIGA1UECgwLRXhhbXBsZSBPcmcxGDAWBgNVBAMMD09w\n\
ZW5TU0wgUm9vdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIoswaCkS6vW\n\
bYbmJtCaeHB3uy+UZ+vftM1voOFPec+MnJEDAfVpQ7PN5Fg5GNUab2Wo57MdJdnd\n\
CIh17aJXqVOjYzBhMB0GA1UdDgQWBBS7/L/qNU9pVbjIQrJbnEKpk0/0RzAfBgNV\n\
HSMEGDAWgBS7/L/qNU9pVbjIQrJbnEKpk0/0RzAPBgNVHRMBAf8EBTADAQH/MA4G\n\
A1UdDwEB/wQEAwIBBjAKBggqhkjOPQQDAgNIADBFAiAOiPeCDu2jMVG9r0343pvy\n\
FcHiIGcVvNURhRJysibjNQIhAOBfNdlbLFyi4Gaoxnd6nzdxDVvAI3QD2u5oqrbE\n\
wgN2\n\
-----END CERTIFICATE-----";
    /// Issued by [`OPENSSL_CA`] with `openssl x509 -req`: a multi-valued RDN in the subject,
    /// basicConstraints cA FALSE, keyUsage digitalSignature keyAgreement, EKU clientAuth
    /// serverAuth, subjectAltName URI + DNS + IP.
    const OPENSSL_LEAF: &str = "-----BEGIN CERTIFICATE-----\n\
MIICNTCCAdqgAwIBAgIUduq3z7OZXRpd1qZjNCFyt4XfSUEwCgYIKoZIzj0EAwIw\n\
PTELMAkGA1UEBhMCRlIxFDASBgNVBAoMC0V4YW1wbGUgT3JnMRgwFgYDVQQDDA9P\n\
cGVuU1NMIFJvb3QgQ0EwHhcNMjYxMTI3MDYzNjQyWhcNMzYxMTI0MDYzNjQyWjAx\n\
MRQwEgYDVQQKDAtFeGFtcGxlIE9yZzEZMAkGA1UEBRMCNDIwDAYDVQQDDAVDQUUw\n\
MTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIe4MMoUpqxaOLRI0KyNG2h3ttVY\n\
dDkD87kdLaK4oRXaja6JsKqbmznOphzdHMoujgsOuOEnf4c6jc+8EKilDHOjgcMw\n\
gcAwCQYDVR0TBAIwADAOBgNVHQ8BAf8EBAMCA4gwHQYDVR0lBBYwFAYIKwYBBQUH\n\
AwIGCCsGAQUFBwMBMEQGA1UdEQQ9MDuGImh0dHBzOi8vc3AuZXhhbXBsZS5jb20v\n\
Y3NlMDEvQ0FFMDGCD2Rldi5leGFtcGxlLmNvbYcEwAACATAdBgNVHQ4EFgQULCDh\n\
UlmrZEOHiTFR0puFHqu5D8YwHwYDVR0jBBgwFoAUu/y/6jVPaVW4yEKyW5xCqZNP\n\
9EcwCgYIKoZIzj0EAwIDSQAwRgIhAJHsV3BkHhralmDsFnM0M7ZAY0uRxM+fPg43\n\
eLlrc1QLAiEAiRZDRJBryi4Kdc2rXsi4HHxiu6sL5aHoskOX0O6IY0c=\n\
-----END CERTIFICATE-----";

    /// What the client reads from a certificate, through x509-parser (the parser this module
    /// replaced, a dev-dependency now) and through this module: they must agree.
    #[test]
    fn same_view_as_x509_parser() {
        use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
        use x509_parser::prelude::FromDer;
        let pki = TestPki::new("view");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let rcgen_leaf = pki.leaf(&key, &LeafSpec::uri("https://sp.example.com/cse01/CAE01"));
        let mut ders = vec![
            rcgen_leaf.to_vec(),
            pki.root_der().to_vec(),
            pki.intermediate_der().to_vec(),
        ];
        for text in [OPENSSL_CA, OPENSSL_LEAF] {
            ders.push(pem::parse(text).unwrap().into_contents());
        }
        for der in &ders {
            let (rest, theirs) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
            assert!(rest.is_empty());
            let ours = parse_certificate(der).unwrap();
            let tbs = ours.tbs_certificate();
            assert_eq!(spki_der(&ours), theirs.public_key().raw);
            assert_eq!(
                tbs.validity().not_before.to_unix_duration().as_secs() as i64,
                theirs.validity().not_before.timestamp()
            );
            assert_eq!(
                tbs.validity().not_after.to_unix_duration().as_secs() as i64,
                theirs.validity().not_after.timestamp()
            );
            assert_eq!(
                format_unix_time(tbs.validity().not_after.to_unix_duration().as_secs()),
                theirs.validity().not_after.to_string()
            );
            assert_eq!(
                tbs.subject() == tbs.issuer(),
                theirs.subject().as_raw() == theirs.issuer().as_raw()
            );
            let bc = tbs.get_extension::<BasicConstraints>().unwrap();
            let their_bc = theirs.basic_constraints().unwrap();
            assert_eq!(bc.map(|(_, b)| b.ca), their_bc.map(|b| b.value.ca));
            let ku = tbs.get_extension::<KeyUsage>().unwrap();
            let their_ku = theirs.key_usage().unwrap();
            assert_eq!(
                ku.map(|(_, k)| (k.digital_signature(), k.key_cert_sign(), k.key_agreement())),
                their_ku.map(|k| (
                    k.value.digital_signature(),
                    k.value.key_cert_sign(),
                    k.value.key_agreement()
                ))
            );
            let eku = tbs.get_extension::<ExtendedKeyUsage>().unwrap();
            let their_eku = theirs.extended_key_usage().unwrap();
            assert_eq!(
                eku.map(|(_, e)| (
                    e.0.contains(&const_oid::db::rfc5280::ID_KP_CLIENT_AUTH),
                    e.0.contains(&const_oid::db::rfc5280::ID_KP_SERVER_AUTH)
                )),
                their_eku.map(|e| (e.value.client_auth, e.value.server_auth))
            );
            assert_eq!(
                crate::validate::certificate_san(&ours).unwrap(),
                theirs
                    .extensions()
                    .iter()
                    .find(|e| e.oid == x509_parser::oid_registry::OID_X509_EXT_SUBJECT_ALT_NAME)
                    .map(|e| crate::proto::san::decode(e.value).unwrap())
                    .unwrap_or_default()
            );
            assert_eq!(describe_name(tbs.subject()), theirs.subject().to_string());
        }
    }
}
