//! multipart/mixed (RFC 2046 5.1) as /serverkeygen returns it (RFC 7030 4.4.2). Input: a first
//! line, then the body. The line is used twice: as the boundary for `multipart::parse`, and as
//! the Content-Type header for `multipart::decode_serverkeygen` (media type parsing, boundary
//! lookup, part selection, base64 and certs-only decoding). Neither may panic; parts returned
//! by `parse` lie inside the body; an accepted key part is a DER SEQUENCE.
#![no_main]

use est_fuzz::header_and_body;
use libfuzzer_sys::fuzz_target;
use onem2m_est_proto::multipart;

fuzz_target!(|data: &[u8]| {
    let Some((line, body)) = header_and_body(data) else {
        return;
    };
    if let Ok(parts) = multipart::parse(line, body) {
        assert!(!parts.is_empty(), "parse returned no parts");
        for p in &parts {
            assert!(p.body.len() <= body.len());
            let _ = p.content_type();
        }
    }
    if let Ok(resp) = multipart::decode_serverkeygen(line, body) {
        // The key part was checked to be a DER SEQUENCE: at least a tag and a length.
        assert!(
            resp.private_key_pkcs8.len() >= 2,
            "empty private key accepted"
        );
    }
});
