//! subjectAltName GeneralNames (RFC 5280 4.2.1.6): `san::decode` never panics, and a non-empty
//! list it accepts re-encodes (`san::encode`) to DER that decodes to the same names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onem2m_est_proto::san;

fuzz_target!(|data: &[u8]| {
    let Ok(names) = san::decode(data) else {
        return;
    };
    if let Ok(der) = san::encode(&names) {
        assert_eq!(
            san::decode(&der).expect("our own GeneralNames decode"),
            names,
            "GeneralNames roundtrip changed the names"
        );
    }
});
