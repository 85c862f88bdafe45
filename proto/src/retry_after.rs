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
    ///
    /// Surrounding SP/HT is ignored. delta-seconds (RFC 9110 10.2.3: `1*DIGIT`) too large for a
    /// `u64` saturate to `u64::MAX`; dates are parsed by the `httpdate` crate (RFC 9110 5.6.7).
    pub fn parse(value: &str) -> Result<RetryAfter, ProtoError> {
        let v = value.trim_matches(|c| c == ' ' || c == '\t');
        if v.is_empty() {
            return Err(ProtoError::RetryAfter(value.to_string()));
        }
        if v.bytes().all(|b| b.is_ascii_digit()) {
            let secs = v.bytes().fold(0u64, |acc, b| {
                acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
            });
            return Ok(RetryAfter::Seconds(secs));
        }
        httpdate::parse_http_date(v)
            .map(RetryAfter::Date)
            .map_err(|_| ProtoError::RetryAfter(value.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// Sun, 06 Nov 1994 08:49:37 GMT (the RFC 9110 5.6.7 example).
    const EXAMPLE: u64 = 784_111_777;

    #[test]
    fn delta_seconds() {
        assert_eq!(RetryAfter::parse("120").unwrap(), RetryAfter::Seconds(120));
        assert_eq!(RetryAfter::parse("0").unwrap(), RetryAfter::Seconds(0));
        assert_eq!(RetryAfter::parse(" 007\t").unwrap(), RetryAfter::Seconds(7));
        assert_eq!(
            RetryAfter::parse("18446744073709551615").unwrap(),
            RetryAfter::Seconds(u64::MAX)
        );
        assert_eq!(
            RetryAfter::parse("99999999999999999999999999").unwrap(),
            RetryAfter::Seconds(u64::MAX)
        );
    }

    #[test]
    fn http_dates_all_three_forms() {
        let want = RetryAfter::Date(UNIX_EPOCH + Duration::from_secs(EXAMPLE));
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(RetryAfter::parse(v).unwrap(), want, "{v}");
        }
    }

    #[test]
    fn garbage_is_rejected() {
        for v in [
            "",
            " ",
            "-1",
            "+5",
            "1.5",
            "1e3",
            "12 34",
            "soon",
            "\u{0661}", // Arabic-Indic one
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "06 Nov 1994 08:49:37 GMT",
        ] {
            assert!(RetryAfter::parse(v).is_err(), "{v:?} accepted");
        }
        let e = RetryAfter::parse("soon").unwrap_err();
        assert!(matches!(e, ProtoError::RetryAfter(ref s) if s == "soon"));
    }

    #[test]
    fn delay_from() {
        let now = UNIX_EPOCH + Duration::from_secs(EXAMPLE - 30);
        let d = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(d.delay_from(now), Duration::from_secs(30));
        let later = UNIX_EPOCH + Duration::from_secs(EXAMPLE + 30);
        assert_eq!(d.delay_from(later), Duration::ZERO);
        assert_eq!(
            RetryAfter::Seconds(5).delay_from(later),
            Duration::from_secs(5)
        );
    }
}
