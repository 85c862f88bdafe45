//! certs-only fixtures: an OpenSSL-made blob and BER indefinite-length re-encodings.

use onem2m_est_proto::certs_only;

#[path = "support/openssl_cli.rs"]
mod openssl_cli;
use openssl_cli::openssl_output;

const OPENSSL_P7B: &[u8] = include_bytes!("data/certs-only-openssl.p7b");
const EE: &[u8] = include_bytes!("data/ee.der");
const CA: &[u8] = include_bytes!("data/ca.der");

/// Reads one TLV header (definite length, single-byte tag: enough for CMS outer layers).
fn header(b: &[u8]) -> (u8, usize, usize) {
    let tag = b[0];
    assert_ne!(tag & 0x1f, 0x1f, "multi-byte tags not needed here");
    let (len, hl) = if b[1] < 0x80 {
        (b[1] as usize, 2)
    } else {
        let n = (b[1] & 0x7f) as usize;
        assert!(n > 0, "input must be DER");
        let mut l = 0usize;
        for &x in &b[2..2 + n] {
            l = (l << 8) | x as usize;
        }
        (l, 2 + n)
    };
    (tag, hl, len)
}

/// Re-encodes DER as BER: every constructed TLV down to `depth` levels gets an indefinite
/// length and an end-of-contents marker; deeper content (the certificates) is copied as is.
fn to_ber_indefinite(der: &[u8], depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = der;
    while !rest.is_empty() {
        let (tag, hl, len) = header(rest);
        let (tlv, next) = rest.split_at(hl + len);
        if tag & 0x20 != 0 && depth > 0 {
            out.push(tag);
            out.push(0x80);
            out.extend(to_ber_indefinite(&tlv[hl..], depth - 1));
            out.extend([0, 0]);
        } else {
            out.extend_from_slice(tlv);
        }
        rest = next;
    }
    out
}

#[test]
fn openssl_crl2pkcs7_fixture() {
    let certs = certs_only::decode(OPENSSL_P7B).unwrap();
    // crl2pkcs7 keeps the order of certs.pem (end entity, then CA).
    assert_eq!(certs, vec![EE.to_vec(), CA.to_vec()]);
}

#[test]
fn ber_indefinite_outer_layers() {
    // ContentInfo, [0], SignedData, its SETs, encapContentInfo and [0] certificates.
    let ber = to_ber_indefinite(OPENSSL_P7B, 4);
    assert_ne!(ber, OPENSSL_P7B);
    assert_eq!(&ber[..2], &[0x30, 0x80]);
    assert_eq!(
        certs_only::decode(&ber).unwrap(),
        vec![EE.to_vec(), CA.to_vec()]
    );
}

#[test]
fn ber_indefinite_everywhere_including_certificates() {
    // Certificates themselves in BER come back as their DER form.
    let ber = to_ber_indefinite(OPENSSL_P7B, 64);
    assert_eq!(
        certs_only::decode(&ber).unwrap(),
        vec![EE.to_vec(), CA.to_vec()]
    );
}

#[test]
fn ber_of_our_own_encoding() {
    let der = certs_only::encode(&[EE, CA]).unwrap();
    let ber = to_ber_indefinite(&der, 4);
    let mut got = certs_only::decode(&ber).unwrap();
    got.sort();
    let mut want = vec![EE.to_vec(), CA.to_vec()];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn truncated_ber_is_an_error() {
    let ber = to_ber_indefinite(OPENSSL_P7B, 4);
    assert!(certs_only::decode(&ber[..ber.len() - 2]).is_err());
    assert!(certs_only::decode(&ber[..ber.len() - 1]).is_err());
}

#[test]
fn openssl_reads_our_encoding() {
    let der = certs_only::encode(&[EE, CA]).unwrap();
    let text = openssl_output(
        "certs-only",
        "out.p7b",
        &["pkcs7", "-inform", "DER", "-print_certs", "-noout", "-in"],
        &der,
    );
    assert!(text.contains("CAE-test-device"), "{text}");
    assert!(text.contains("Test MEF CA"), "{text}");
}
