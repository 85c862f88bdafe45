//! Private key files (`store::read_pem_key` → `SoftwareKey::from_pem`), PKCS #8 DER
//! (`SoftwareKey::from_pkcs8_der`) and /serverkeygen's key part (`from_server_key_der`: PKCS #8,
//! SEC1, PKCS #1 recognised): never panic; a key that loads re-exports (`to_pkcs8_pem`) to PEM
//! that loads to the same public key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onem2m_est::keys::{PrivateKey, SoftwareKey};

fn check_roundtrip(key: &SoftwareKey) {
    let pem = key.to_pkcs8_pem();
    let again = SoftwareKey::from_pem(&pem).expect("our own PKCS #8 PEM loads");
    assert_eq!(again.algorithm(), key.algorithm());
    assert_eq!(again.public_key_info(), key.public_key_info());
    // Debug must not show key material; it must not panic either.
    let _ = format!("{key:?}");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = SoftwareKey::from_pkcs8_der(data) {
        check_roundtrip(&key);
    }
    if let Ok(key) = SoftwareKey::from_server_key_der(data) {
        check_roundtrip(&key);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = SoftwareKey::from_pem(text) {
            check_roundtrip(&key);
        }
    }
});
