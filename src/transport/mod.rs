//! EST over HTTP/1.1 and TLS (RFC 7030 3.2, 3.3): one kept-alive connection per procedure,
//! the five operations, status handling, polling on 202 and error mapping.
//!
//! Along its seams: this module holds the bounds ([`TransportConfig`], [`PollPolicy`]);
//! `stack` the TLS-stack seam ([`TlsStack`], [`TlsSession`], [`WireSocket`], the rustls
//! stack); `connect` the ureq connector chain (TCP, then TLS, with the counters); `est` the EST
//! connection ([`EstConnection`]: the operations, status handling, polling, error mapping).
//!
//! HTTP is ureq 3 with our own connector chain (`ureq::unversioned::transport`, pinned ureq
//! version): TCP, then a TLS layer from a [`TlsStack`], so the rustls stack of [`crate::tls`] and
//! a later stack (OpenSSL TLS-PSK) share everything above the handshake.
//!
//! Deliberate HTTP settings:
//! - No proxy: ureq's default configuration reads `HTTPS_PROXY`/`ALL_PROXY` from the environment;
//!   an EST client authenticates its server end to end and must not be rerouted silently, so the
//!   proxy is switched off.
//! - Redirects are handled here, not by ureq: followed (at most [`MAX_REDIRECTS`]) only to the same
//!   scheme, host and port as the base URI; anything else is [`Error::Redirect`].
//! - 4xx/5xx responses are read, not turned into bare errors, so the server's text reaches the
//!   user; 401 becomes [`Error::HttpAuthenticationRequested`]; no Authorization header is ever
//!   sent (TS-0003 8.3.6.2.1).
//! - Response bodies are limited to [`TransportConfig::max_body_bytes`].

mod connect;
mod est;
mod stack;

pub use est::EstConnection;
#[cfg(feature = "psk")]
pub(crate) use stack::handshake_io_error;
pub use stack::{TlsSession, TlsStack, WireSocket};

use crate::error::{Error, Result};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// At most this many same-authority redirects are followed per request.
pub const MAX_REDIRECTS: u32 = 3;

/// Size of each ureq I/O buffer (input and output, per layer); also the largest response head.
const IO_BUFFER_SIZE: usize = 16 * 1024;

/// Largest response head accepted. It must stay below [`IO_BUFFER_SIZE`]: ureq checks this
/// limit only while the head still fits the input buffer, and a head that fills the buffer
/// would otherwise surface as "no progress", i.e. a bogus "server closed the connection"
/// [`Error::Transport`], instead of [`Error::BadResponse`] ("the response header is too large").
const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// How much of an error body is kept in [`Error::ServerStatus`].
const MAX_ERROR_TEXT: usize = 1024;

/// How long to wait for 202 Accepted answers (RFC 7030 4.2.3) before giving up.
///
/// RFC 7030 4.2.3: "the client MUST wait at least the specified retry-after time before
/// repeating the same request". So a Retry-After is never shortened: when it asks for more than
/// [`PollPolicy::max_delay`] (or more than what is left of [`PollPolicy::max_total`]) the
/// request is not resent, and the procedure ends with [`Error::RetryAfterTooLong`], which says
/// what the server asked for, so the caller can run it again after that time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollPolicy {
    /// Requests sent in all, the first included; more 202s than this → [`Error::StillPending`].
    pub max_attempts: u32,
    /// Total time spent waiting between attempts; a wait that would exceed it is not started.
    pub max_total: Duration,
    /// The wait when a 202 carries no Retry-After (a malformed one is
    /// [`Error::BadResponse`]).
    pub default_delay: Duration,
    /// The longest single wait this client accepts. A Retry-After asking for longer is not
    /// waited for, nor shortened: it is [`Error::RetryAfterTooLong`].
    pub max_delay: Duration,
    /// Where the time comes from and how a wait is made (the seam for tests).
    pub clock: PollClock,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            max_attempts: 10,
            max_total: Duration::from_secs(600),
            default_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(120),
            clock: PollClock::default(),
        }
    }
}

/// The time source of [`PollPolicy`]: the current time (an HTTP-date Retry-After is relative to
/// it) and the wait between two attempts.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
    /// Blocks the caller for `delay`.
    fn sleep(&self, delay: Duration);
}

/// The system clock and `std::thread::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, delay: Duration) {
        std::thread::sleep(delay);
    }
}

/// A shared [`Clock`]; [`SystemClock`] by default. Two values are equal when they share the
/// same clock.
#[derive(Debug, Clone)]
pub struct PollClock(pub Arc<dyn Clock>);

impl Default for PollClock {
    fn default() -> Self {
        PollClock(Arc::new(SystemClock))
    }
}

impl PartialEq for PollClock {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PollClock {}

/// Timeouts, limits and polling of EST connections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportConfig {
    /// TCP connect (for all resolved addresses together).
    pub connect_timeout: Duration,
    /// The TLS handshake.
    pub tls_timeout: Duration,
    /// Sending a request and receiving the response (head and body), per request.
    pub response_timeout: Duration,
    /// Largest response body accepted (default 256 KiB; EST bodies are a few KiB).
    pub max_body_bytes: u64,
    /// Polling of 202 Accepted.
    pub poll: PollPolicy,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            tls_timeout: Duration::from_secs(15),
            response_timeout: Duration::from_secs(60),
            max_body_bytes: 256 * 1024,
            poll: PollPolicy::default(),
        }
    }
}

impl TransportConfig {
    /// Sets the TCP connect, TLS handshake and response timeouts. Zero is refused (a zero
    /// timeout would fail every connection): the one check for every caller (the C
    /// `mef_config_set_timeouts`, the CLI's `--timeout`, Python's `*_timeout`).
    pub fn with_timeouts(
        mut self,
        connect: Duration,
        tls: Duration,
        response: Duration,
    ) -> Result<TransportConfig> {
        for (name, value) in [("connect", connect), ("TLS", tls), ("response", response)] {
            if value.is_zero() {
                return Err(Error::invalid(
                    "timeout",
                    format!("the {name} timeout is 0 (it must be positive)"),
                ));
            }
        }
        self.connect_timeout = connect;
        self.tls_timeout = tls;
        self.response_timeout = response;
        Ok(self)
    }

    /// Bounds the polling of 202 Accepted (RFC 7030 4.2.3): at most `max_attempts` requests in
    /// all (at least 1) and `max_total` of waiting between them. The caller's bound is the
    /// total, so a single wait may use all of it ([`PollPolicy::max_delay`] = `max_total`).
    /// The one check for every caller, as for [`TransportConfig::with_timeouts`].
    pub fn with_polling(
        mut self,
        max_attempts: u32,
        max_total: Duration,
    ) -> Result<TransportConfig> {
        if max_attempts == 0 {
            return Err(Error::invalid(
                "max_attempts",
                "0 requests (at least 1: the first request counts)",
            ));
        }
        self.poll.max_attempts = max_attempts;
        self.poll.max_total = max_total;
        self.poll.max_delay = max_total;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeouts_and_no_attempts_are_bad_arguments() {
        let s = Duration::from_secs(1);
        let z = Duration::ZERO;
        for (c, t, r) in [(z, s, s), (s, z, s), (s, s, z)] {
            let err = TransportConfig::default()
                .with_timeouts(c, t, r)
                .unwrap_err();
            assert_eq!(err.class(), crate::ErrorClass::BadArguments, "{err}");
        }
        let ok = TransportConfig::default()
            .with_timeouts(s, 2 * s, 3 * s)
            .unwrap();
        assert_eq!(
            (ok.connect_timeout, ok.tls_timeout, ok.response_timeout),
            (s, 2 * s, 3 * s)
        );
        let err = TransportConfig::default().with_polling(0, s).unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::BadArguments, "{err}");
        let poll = TransportConfig::default()
            .with_polling(3, 7 * s)
            .unwrap()
            .poll;
        assert_eq!(
            (poll.max_attempts, poll.max_total, poll.max_delay),
            (3, 7 * s, 7 * s)
        );
    }

    #[test]
    fn defaults_are_sane() {
        let c = TransportConfig::default();
        assert_eq!(c.max_body_bytes, 256 * 1024);
        assert!(c.poll.max_attempts >= 1);
        assert!(c.poll.default_delay <= c.poll.max_delay);
    }
}
