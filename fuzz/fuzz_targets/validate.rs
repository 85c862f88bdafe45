//! Certificate validation on hostile certificates: `validate::validate_ca_certs` (a /cacerts
//! response, RFC 7030 4.1.3) and `validate::validate_issued` (an enrollment response, RFC 7030
//! 4.2.3; RFC 5280 path building through rustls-webpki) never panic, and what they accept
//! holds what they promise (CA certificates only; a leaf carrying our key).
//!
//! Input: a control byte (bits 0-1: how many of the certificates are the trust anchors, bits
//! 2-3: the expected subjectAltName), 8 bytes of big-endian Unix time (`now`), then
//! certificates as 2-byte-length records (`est_fuzz::records`). The key whose certificate is
//! sought is the fixed test key `fixtures/device-key.p8`, so seeds from a real enrollment
//! with that key reach the deep checks.
#![no_main]

use est_fuzz::records;
use libfuzzer_sys::fuzz_target;
use onem2m_est::keys::{PrivateKey, SoftwareKey};
use onem2m_est::validate::{validate_ca_certs, validate_issued};
use onem2m_est_proto::san::GeneralName;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::sync::OnceLock;
use std::time::Duration;

fn device_key() -> &'static SoftwareKey {
    static KEY: OnceLock<SoftwareKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SoftwareKey::from_pkcs8_der(include_bytes!("../fixtures/device-key.p8"))
            .expect("fixture key loads")
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let control = data[0];
    let now = UnixTime::since_unix_epoch(Duration::from_secs(u64::from_be_bytes(
        data[1..9].try_into().unwrap(),
    )));
    let certs: Vec<CertificateDer<'_>> = records(&data[9..])
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let anchors = usize::from(control & 3).min(certs.len());
    let (trust_anchors, chain) = certs.split_at(anchors);
    let expected_san = match control >> 2 & 3 {
        0 => vec![GeneralName::Dns("cse01.sp.example.com".into())],
        1 => vec![GeneralName::Uri(
            "https://sp.example.com/cse01/CAE01".into(),
        )],
        2 => vec![],
        _ => vec![
            GeneralName::Dns("cse01.sp.example.com".into()),
            GeneralName::Other(vec![0x87, 4, 127, 0, 0, 1]),
        ],
    };

    if let Ok(anchors) = validate_ca_certs(&certs) {
        assert!(!anchors.is_empty());
        assert!(anchors.len() <= certs.len());
        for a in &anchors {
            assert!(
                certs.contains(a),
                "validate_ca_certs invented a certificate"
            );
        }
    }
    if let Ok(issued) = validate_issued(chain, device_key(), &expected_san, trust_anchors, now) {
        let _ = format!("{issued:?}");
        let key_in_chain = chain.iter().any(|c| {
            x509_parser::parse_x509_certificate(c)
                .map(|(_, c)| c.public_key().raw == device_key().public_key_info())
                .unwrap_or(false)
        });
        assert!(key_in_chain, "accepted a chain without our key");
    }
});
