//! certs-only CMS (RFC 7030 4.1.3, 4.2.3), DER and BER: `certs_only::decode` never panics, and
//! what it accepts re-encodes (`certs_only::encode`) to a message that decodes to the same
//! certificates (as a set: DER sorts the `certificates` SET OF, X.690 11.6, so the order may
//! change).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onem2m_est_proto::certs_only;

fuzz_target!(|data: &[u8]| {
    let Ok(certs) = certs_only::decode(data) else {
        return;
    };
    let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    if let Ok(again) = certs_only::encode(&refs) {
        let mut back = certs_only::decode(&again).expect("our own encoding decodes");
        let mut certs = certs;
        back.sort();
        certs.sort();
        assert_eq!(back, certs, "certs-only roundtrip changed the certificates");
    }
});
