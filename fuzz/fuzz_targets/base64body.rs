//! EST base64 bodies (RFC 8951 3.1): `base64body::decode` never panics, and for any body it
//! accepts, `decode(encode(decode(body)))` gives the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onem2m_est_proto::base64body;

fuzz_target!(|data: &[u8]| {
    let Ok(bytes) = base64body::decode(data) else {
        return;
    };
    let text = base64body::encode(&bytes);
    assert_eq!(
        base64body::decode(text.as_bytes()).expect("our own encoding decodes"),
        bytes,
        "base64 roundtrip changed the bytes"
    );
});
