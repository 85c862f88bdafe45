//! Retry-After (RFC 9110 10.2.3, RFC 7030 4.2.3): `RetryAfter::parse` and `delay_from` never
//! panic, for any `now` (the epoch, today, far future).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onem2m_est_proto::retry_after::RetryAfter;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ra) = RetryAfter::parse(text) else {
        return;
    };
    for now in [
        UNIX_EPOCH,
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        UNIX_EPOCH + Duration::from_secs(253_402_300_799),
        SystemTime::now(),
    ] {
        let d = ra.delay_from(now);
        if let RetryAfter::Seconds(s) = ra {
            assert_eq!(d, Duration::from_secs(s));
        }
    }
});
