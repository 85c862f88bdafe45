//! Certificate PEM files (`store::read_pem_certs`, the CLI's trust anchor and certificate
//! inputs): the PEM splitting and X.509 parsing behind them (`store::parse_certs_pem`) never
//! panic; what loads converts back (`certs_to_pem`) to PEM that loads to the same certificates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onem2m_est::store::{certs_to_pem, parse_certs_pem};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(certs) = parse_certs_pem(text) else {
        return;
    };
    assert!(!certs.is_empty());
    let again = parse_certs_pem(&certs_to_pem(&certs)).expect("our own PEM loads");
    assert_eq!(again, certs, "PEM roundtrip changed the certificates");
});
