//! Content-Type values (RFC 9110 8.3, 5.6.6): `MediaType::parse` never panics; what it accepts
//! has a lower-case `type/subtype` essence made of tokens, and `is` / `param` lookups work on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onem2m_est_proto::media::MediaType;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mt) = MediaType::parse(text) else {
        return;
    };
    assert_eq!(mt.essence, mt.essence.to_ascii_lowercase());
    assert_eq!(
        mt.essence.matches('/').count(),
        1,
        "essence {:?}",
        mt.essence
    );
    assert!(mt.is(&mt.essence.to_ascii_uppercase()));
    for (name, _) in &mt.params {
        assert_eq!(name, &name.to_ascii_lowercase());
        assert!(mt.param(name).is_some());
    }
    let _ = mt.param("boundary");
});
