//! Retry-After (RFC 9110 10.2.3) as a 202 response to an enrollment carries it (RFC 7030 4.2.3).

use crate::ProtoError;
use std::time::{Duration, SystemTime};

/// A parsed Retry-After value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// delta-seconds.
    Seconds(u64),
    /// An HTTP-date (IMF-fixdate; the obsolete RFC 850 and asctime forms are accepted too).
    Date(SystemTime),
}

impl RetryAfter {
    /// Parses a header value. Negative numbers, fractions, empty values and garbage are errors.
    pub fn parse(value: &str) -> Result<RetryAfter, ProtoError> {
        let _ = value;
        todo!("proto helper")
    }

    /// How long to wait from `now`: the seconds, or the time until the date (zero when the date
    /// is in the past).
    pub fn delay_from(&self, now: SystemTime) -> Duration {
        match *self {
            RetryAfter::Seconds(s) => Duration::from_secs(s),
            RetryAfter::Date(t) => t.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}
