//! The EST connection: the five operations on one kept-alive connection, status handling,
//! 202 polling and the mapping of ureq's errors.

use super::connect::{Carried, Stats, TcpStep, TlsStep};
use super::stack::{RustlsStack, TlsStack};
use super::{TransportConfig, IO_BUFFER_SIZE, MAX_ERROR_TEXT, MAX_REDIRECTS, MAX_RESPONSE_HEAD};
use crate::error::{decode_error, Error, Operation, Result};
use crate::tls::map_rustls_error;
use crate::uri::EstUri;
use onem2m_est_proto::media::{self, MediaType};
use onem2m_est_proto::multipart::ServerKeygenResponse;
use onem2m_est_proto::retry_after::RetryAfter;
use onem2m_est_proto::{base64body, certs_only, csrattrs};
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use std::fmt;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use ureq::http::{Response, StatusCode};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::Connector;
use ureq::Body;

// ---------------------------------------------------------------------------------------------
// The connection
// ---------------------------------------------------------------------------------------------

/// An EST client connection to one server: one ureq agent, so one kept-alive TLS connection is
/// reused for all operations while the server keeps it open.
pub struct EstConnection {
    base: EstUri,
    agent: ureq::Agent,
    cfg: TransportConfig,
    stats: Arc<Stats>,
}

impl fmt::Debug for EstConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EstConnection")
            .field("base", &self.base.to_string())
            .field("handshakes", &self.handshakes())
            .finish_non_exhaustive()
    }
}

/// A request to send (the same one again when polling or following a redirect).
enum Req<'a> {
    Get,
    /// A PKCS #10 CSR (DER), sent base64 per RFC 8951 3.1.
    PostCsr(&'a [u8]),
}

impl EstConnection {
    /// A connection to the EST server of `base` over rustls with `tls`
    /// (from [`crate::tls::client_config`]). Nothing is sent until the first operation.
    pub fn new(base: &EstUri, tls: Arc<ClientConfig>, cfg: &TransportConfig) -> Result<Self> {
        Self::with_stack(base, Arc::new(RustlsStack::new(tls)), cfg)
    }

    /// A connection over any [`TlsStack`] (e.g. a TLS-PSK stack).
    pub fn with_stack(
        base: &EstUri,
        stack: Arc<dyn TlsStack>,
        cfg: &TransportConfig,
    ) -> Result<Self> {
        if cfg.max_body_bytes == 0 {
            return Err(Error::invalid("max_body_bytes", "must be at least 1"));
        }
        if cfg.poll.max_attempts == 0 {
            return Err(Error::invalid("poll.max_attempts", "must be at least 1"));
        }
        let stats = Arc::new(Stats::default());
        let connector = ().chain(TcpStep::default()).chain(TlsStep {
            stack,
            name: base.server_name(),
            tls_timeout: cfg.tls_timeout,
            stats: stats.clone(),
        });
        let config = ureq::Agent::config_builder()
            // Bodies of 4xx/5xx carry the server's reason: read them (see module docs).
            .http_status_as_error(false)
            // Redirects are checked against the base URI here (RFC 7030 3.6.1 authorises the
            // configured URI's host).
            .max_redirects(0)
            // Deliberately no proxy, not even from the environment (see module docs).
            .proxy(None)
            .https_only(true)
            .user_agent(concat!("onem2m-est/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_send_request(Some(cfg.response_timeout))
            .timeout_send_body(Some(cfg.response_timeout))
            .timeout_recv_response(Some(cfg.response_timeout))
            .timeout_recv_body(Some(cfg.response_timeout))
            .max_idle_connections_per_host(1)
            // ureq's default buffers are 128 KiB each, and this connector stack holds four (TCP
            // and TLS layers, in and out), allocated and zeroed per connection: 512 KiB of page
            // faults and memset per procedure (BENCHMARKS.md). EST messages are a few KiB; the
            // input buffer also bounds a response head, for which 16 KiB is ample.
            .input_buffer_size(IO_BUFFER_SIZE)
            .output_buffer_size(IO_BUFFER_SIZE)
            .max_response_header_size(MAX_RESPONSE_HEAD)
            .build();
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        Ok(EstConnection {
            base: base.clone(),
            agent,
            cfg: cfg.clone(),
            stats,
        })
    }

    /// The base URI.
    pub fn base(&self) -> &EstUri {
        &self.base
    }

    /// TLS handshakes started so far (one per new connection).
    pub fn handshakes(&self) -> u32 {
        self.stats.handshakes.load(Ordering::Relaxed)
    }

    /// The cipher suite of the latest TLS handshake, if the stack reported one (named as by
    /// [`super::TlsSession::cipher_suite`]).
    pub fn cipher_suite(&self) -> Option<&'static str> {
        *self
            .stats
            .cipher_suite
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// TLS record bytes written to the network so far.
    pub fn bytes_written(&self) -> u64 {
        self.stats.bytes_written.load(Ordering::Relaxed)
    }

    /// TLS record bytes read from the network so far.
    pub fn bytes_read(&self) -> u64 {
        self.stats.bytes_read.load(Ordering::Relaxed)
    }

    /// Every distinct certificate chain the server presented so far (end entity first), one
    /// per handshake that presented a new one; empty over TLS-PSK.
    pub fn server_certificates(&self) -> Vec<Vec<CertificateDer<'static>>> {
        self.stats
            .server_chains
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `/cacerts` (RFC 7030 4.1): the current CA certificates, DER, in the order received
    /// (which carries no meaning: certs-only is a SET OF).
    pub fn cacerts(&self) -> Result<Vec<CertificateDer<'static>>> {
        let op = Operation::CaCerts;
        let mut resp = self.exchange(op, &Req::Get)?;
        expect_status(op, &resp, StatusCode::OK)?;
        self.read_certs_only(
            op,
            &mut resp,
            "the response carries no CA certificate (RFC 7030 4.1.3)",
        )
    }

    /// `/csrattrs` (RFC 7030 4.5): `Some(items)` on 200, `None` when the server has none
    /// (204 No Content or 404 Not Found, RFC 7030 4.5.2).
    pub fn csrattrs(&self) -> Result<Option<Vec<csrattrs::AttrOrOid>>> {
        let op = Operation::CsrAttrs;
        let mut resp = self.exchange_allowing(op, &Req::Get, &[StatusCode::NOT_FOUND])?;
        match resp.status() {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => return Ok(None),
            StatusCode::OK => {}
            other => return Err(unexpected_status(op, other)),
        }
        check_content_type(op, &resp, media::CSRATTRS)?;
        let body = self.read_body(op, &mut resp)?;
        let der = base64body::decode(&body).map_err(decode_error(op))?;
        if der.is_empty() {
            // An empty 200 says the same as 204.
            return Ok(None);
        }
        let items = csrattrs::decode(&der).map_err(decode_error(op))?;
        Ok(Some(items))
    }

    /// `/simpleenroll` (RFC 7030 4.2.1) with a DER PKCS #10 CSR: the issued certificate (and
    /// any others the server includes), polling 202 Accepted within the [`super::PollPolicy`].
    pub fn simple_enroll(&self, csr_der: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
        self.enroll(Operation::SimpleEnroll, csr_der)
    }

    /// `/simplereenroll` (RFC 7030 4.2.2); the TLS client identity is the current certificate.
    pub fn simple_reenroll(&self, csr_der: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
        self.enroll(Operation::SimpleReenroll, csr_der)
    }

    /// `/serverkeygen` (RFC 7030 4.4): the server-generated key (PKCS #8) and its certificate.
    pub fn server_keygen(&self, csr_der: &[u8]) -> Result<ServerKeygenResponse> {
        let op = Operation::ServerKeygen;
        let mut resp = self.poll(op, csr_der)?;
        let ct = content_type(op, &resp)?;
        let parsed = MediaType::parse(&ct).map_err(decode_error(op))?;
        if !parsed.is(media::MULTIPART_MIXED) {
            return Err(bad(
                op,
                format!(
                    "Content-Type is {ct:?}, expected {} (RFC 7030 4.4.2)",
                    media::MULTIPART_MIXED
                ),
            ));
        }
        let body = self.read_body(op, &mut resp)?;
        let decoded = onem2m_est_proto::multipart::decode_serverkeygen(&ct, &body)
            .map_err(decode_error(op))?;
        if decoded.certificates.is_empty() {
            return Err(bad(op, "the response carries no certificate"));
        }
        Ok(decoded)
    }

    fn enroll(&self, op: Operation, csr_der: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
        let mut resp = self.poll(op, csr_der)?;
        self.read_certs_only(
            op,
            &mut resp,
            "the response carries no certificate (RFC 7030 4.2.3)",
        )
    }

    /// Sends the enrollment request until it is not 202 Accepted (RFC 7030 4.2.3), within the
    /// polling bounds; returns the 200 response.
    fn poll(&self, op: Operation, csr_der: &[u8]) -> Result<Response<Body>> {
        let policy = &self.cfg.poll;
        let mut attempts = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            attempts += 1;
            let mut resp = self.exchange(op, &Req::PostCsr(csr_der))?;
            if resp.status() != StatusCode::ACCEPTED {
                expect_status(op, &resp, StatusCode::OK)?;
                return Ok(resp);
            }
            // Drain the (normally empty) body so the connection can be reused.
            let _ = self.read_body(op, &mut resp);
            // Retry-After is delay-seconds or an HTTP-date (RFC 7231 7.1.3, RFC 7030 4.2.3).
            // A value that is neither (a negative number, garbage) is a malformed response:
            // guessing a delay would let a broken or hostile server steer the polling.
            let clock = &policy.clock.0;
            let asked = match resp.headers().get("retry-after") {
                None => None,
                Some(value) => match value.to_str().map(|v| RetryAfter::parse(v.trim())) {
                    Ok(Ok(ra)) => Some(ra.delay_from(clock.now())),
                    _ => {
                        return Err(bad(
                            op,
                            format!(
                                "202 Accepted with a malformed Retry-After {:?} (RFC 7231 7.1.3)",
                                sanitize(&String::from_utf8_lossy(value.as_bytes()))
                            ),
                        ))
                    }
                },
            };
            // RFC 7030 4.2.3: "the client MUST wait at least the specified retry-after time".
            // A wait longer than this client's bounds is not shortened: the request is not
            // resent, and the caller learns how long the server asked for.
            if let Some(asked) = asked {
                let left = policy.max_total.saturating_sub(waited);
                let bound = if asked > left {
                    Some(("the polling time left", left))
                } else if asked > policy.max_delay {
                    Some((
                        "the longest single wait (PollPolicy::max_delay)",
                        policy.max_delay,
                    ))
                } else {
                    None
                };
                if let Some((bound, limit)) = bound {
                    return Err(Error::RetryAfterTooLong {
                        operation: op,
                        retry_after: asked,
                        bound,
                        limit,
                        attempts,
                    });
                }
            }
            let delay = asked.unwrap_or(policy.default_delay);
            if attempts >= policy.max_attempts || waited + delay > policy.max_total {
                return Err(Error::StillPending {
                    operation: op,
                    attempts,
                    waited_secs: waited.as_secs(),
                });
            }
            log::debug!("{op}: 202 Accepted, retrying in {delay:?}");
            clock.sleep(delay);
            waited += delay;
        }
    }

    /// One request with redirect, 401 and 4xx/5xx handling; returns a 2xx response.
    fn exchange(&self, op: Operation, req: &Req<'_>) -> Result<Response<Body>> {
        self.exchange_allowing(op, req, &[])
    }

    /// Like [`Self::exchange`], but the statuses in `pass` are returned as they are.
    fn exchange_allowing(
        &self,
        op: Operation,
        req: &Req<'_>,
        pass: &[StatusCode],
    ) -> Result<Response<Body>> {
        let mut url = self.base.operation_url(op);
        let mut redirects = 0;
        loop {
            let mut resp = self.send(op, &url, req)?;
            let status = resp.status();
            if pass.contains(&status) || status.is_success() {
                return Ok(resp);
            }
            if status.is_redirection() {
                let location = header_text(&resp, "location")
                    .ok_or_else(|| bad(op, format!("{status} without a Location header")))?;
                let target = if location.starts_with('/') && !location.starts_with("//") {
                    format!("https://{}{}", self.base.authority(), location)
                } else {
                    location.clone()
                };
                if !self.base.same_origin(&target) {
                    return Err(Error::Redirect {
                        operation: op,
                        location,
                    });
                }
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(bad(
                        op,
                        format!("more than {MAX_REDIRECTS} redirects (last to {location})"),
                    ));
                }
                let _ = self.read_body(op, &mut resp);
                log::debug!("{op}: {status}, following to {target}");
                url = target;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                let challenge = resp
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .map(|v| sanitize(&String::from_utf8_lossy(v.as_bytes())))
                    .collect::<Vec<_>>()
                    .join(", ");
                let challenge = if challenge.is_empty() {
                    "no WWW-Authenticate header".to_string()
                } else {
                    challenge
                };
                // Drain the body so the connection stays usable; its content is not needed.
                let _ = self.read_body(op, &mut resp);
                return Err(Error::HttpAuthenticationRequested {
                    operation: op,
                    challenge,
                });
            }
            if status.is_client_error() || status.is_server_error() {
                let message = match self.read_body(op, &mut resp) {
                    Ok(body) if body.is_empty() => status
                        .canonical_reason()
                        .unwrap_or("(no reason given)")
                        .to_string(),
                    Ok(body) => error_text(&body),
                    Err(e) => format!("(the error body could not be read: {e})"),
                };
                return Err(Error::ServerStatus {
                    operation: op,
                    status: status.as_u16(),
                    message,
                });
            }
            return Err(unexpected_status(op, status));
        }
    }

    /// Sends one HTTP request and returns the response head.
    fn send(&self, op: Operation, url: &str, req: &Req<'_>) -> Result<Response<Body>> {
        let result = match req {
            Req::Get => self.agent.get(url).header("Accept", accept_for(op)).call(),
            Req::PostCsr(csr) => self
                .agent
                .post(url)
                .header("Accept", accept_for(op))
                .header("Content-Type", media::PKCS10)
                // RFC 7030 4.2.1 names the header; RFC 8951 lets receivers ignore it. Kept for
                // servers that still look for it.
                .header("Content-Transfer-Encoding", "base64")
                .send(base64body::encode(csr)),
        };
        result.map_err(|e| map_ureq_error(op, e, "sending the request"))
    }

    /// Reads a whole body within the size limit.
    fn read_body(&self, op: Operation, resp: &mut Response<Body>) -> Result<Vec<u8>> {
        resp.body_mut()
            .with_config()
            .limit(self.cfg.max_body_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => bad(
                    op,
                    format!("the response body exceeds the limit of {limit} bytes"),
                ),
                other => map_ureq_error(op, other, "receiving the response body"),
            })
    }

    /// Checks and decodes an application/pkcs7-mime certs-only body; one without a certificate
    /// is refused with the reason `empty` (every operation that answers certs-only owes one).
    fn read_certs_only(
        &self,
        op: Operation,
        resp: &mut Response<Body>,
        empty: &str,
    ) -> Result<Vec<CertificateDer<'static>>> {
        let parsed = check_content_type(op, resp, media::PKCS7_MIME)?;
        if let Some(t) = parsed.param("smime-type") {
            if !t.eq_ignore_ascii_case("certs-only") {
                return Err(bad(
                    op,
                    format!("smime-type={t} where certs-only is expected (RFC 7030 4.1.3)"),
                ));
            }
        }
        let body = self.read_body(op, resp)?;
        let der = base64body::decode(&body).map_err(decode_error(op))?;
        let certs = certs_only::decode(&der).map_err(decode_error(op))?;
        if certs.is_empty() {
            return Err(bad(op, empty));
        }
        Ok(certs.into_iter().map(CertificateDer::from).collect())
    }
}

fn accept_for(op: Operation) -> &'static str {
    match op {
        Operation::CsrAttrs => media::CSRATTRS,
        Operation::ServerKeygen => media::MULTIPART_MIXED,
        _ => media::PKCS7_MIME,
    }
}

fn bad(op: Operation, reason: impl Into<String>) -> Error {
    Error::BadResponse {
        operation: op,
        reason: reason.into(),
    }
}

fn unexpected_status(op: Operation, status: StatusCode) -> Error {
    bad(op, format!("unexpected HTTP status {status}"))
}

fn expect_status(op: Operation, resp: &Response<Body>, want: StatusCode) -> Result<()> {
    if resp.status() == want {
        Ok(())
    } else {
        Err(unexpected_status(op, resp.status()))
    }
}

fn header_text(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
}

fn content_type(op: Operation, resp: &Response<Body>) -> Result<String> {
    header_text(resp, "content-type").ok_or_else(|| bad(op, "the response has no Content-Type"))
}

/// Checks the Content-Type essence (parameters tolerated) and returns the parsed value.
fn check_content_type(op: Operation, resp: &Response<Body>, want: &str) -> Result<MediaType> {
    let ct = content_type(op, resp)?;
    let parsed = MediaType::parse(&ct).map_err(decode_error(op))?;
    if !parsed.is(want) {
        return Err(bad(
            op,
            format!("Content-Type is {:?}, expected {want}", sanitize(&ct)),
        ));
    }
    Ok(parsed)
}

/// A server's text for an error message: lossy UTF-8, control characters replaced, at most
/// [`MAX_ERROR_TEXT`] bytes.
fn error_text(body: &[u8]) -> String {
    let text = sanitize(String::from_utf8_lossy(body).trim());
    if text.len() <= MAX_ERROR_TEXT {
        return text;
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Replaces control characters (a server's text must not steer a terminal or a log).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Maps a ureq error of `op` (during `phase`) to this crate's error.
fn map_ureq_error(op: Operation, e: ureq::Error, phase: &str) -> Error {
    match e {
        ureq::Error::Other(inner) => match inner.downcast::<Carried>() {
            Ok(carried) => carried.0,
            Err(other) => Error::Transport {
                operation: op,
                reason: other.to_string(),
            },
        },
        ureq::Error::Timeout(t) => Error::Timeout {
            phase: format!("{op}: {}", timeout_phase(t, phase)),
        },
        ureq::Error::HostNotFound => Error::Connect {
            address: "the EST server".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "host not found"),
        },
        ureq::Error::Io(io) => map_io_error(op, io),
        ureq::Error::TlsRequired | ureq::Error::RequireHttpsOnly(_) => Error::Tls {
            reason: "EST requires https (RFC 7030 3.3)".into(),
            source: None,
        },
        ureq::Error::LargeResponseHeader(..) => bad(op, "the response header is too large"),
        ureq::Error::BodyExceedsLimit(limit) => bad(
            op,
            format!("the response body exceeds the limit of {limit} bytes"),
        ),
        ureq::Error::Protocol(p) => bad(op, format!("HTTP protocol violation: {p}")),
        other => Error::Transport {
            operation: op,
            reason: format!("{phase}: {other}"),
        },
    }
}

/// An I/O error after the handshake: a TLS failure inside (e.g. the server refusing our client
/// certificate, which TLS 1.3 reports after the client's handshake is done), a timeout, or the
/// connection breaking.
fn map_io_error(op: Operation, e: io::Error) -> Error {
    if let Some(inner) = e.get_ref() {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return map_rustls_error(tls);
        }
        if let Some(Carried(err)) = inner.downcast_ref::<Carried>() {
            return Error::Transport {
                operation: op,
                reason: err.to_string(),
            };
        }
    }
    let reason = match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            "the server closed the connection before the response was complete".to_string()
        }
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            format!("the connection was reset ({e})")
        }
        _ => e.to_string(),
    };
    Error::Transport {
        operation: op,
        reason,
    }
}

fn timeout_phase(t: ureq::Timeout, phase: &str) -> String {
    use ureq::Timeout as T;
    match t {
        T::Resolve => "resolving the server's host name".into(),
        T::Connect => "TCP connect".into(),
        T::SendRequest | T::SendBody | T::Await100 => "sending the request".into(),
        T::RecvResponse => "waiting for the response".into(),
        T::RecvBody => "receiving the response body".into(),
        _ => phase.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::connect::carry;
    use super::*;

    #[test]
    fn error_text_is_bounded_and_clean() {
        assert_eq!(error_text(b"  bad CSR\r\n\x1b[31m "), "bad CSR   [31m");
        let long = "é".repeat(2000);
        let t = error_text(long.as_bytes());
        assert!(t.len() <= MAX_ERROR_TEXT + "…".len());
        assert!(t.ends_with('…'));
    }

    #[test]
    fn io_errors_map_to_transport() {
        let e = map_io_error(
            Operation::CaCerts,
            io::Error::new(io::ErrorKind::UnexpectedEof, "eof"),
        );
        assert!(matches!(
            e,
            Error::Transport {
                operation: Operation::CaCerts,
                ..
            }
        ));
        let e = map_ureq_error(
            Operation::SimpleEnroll,
            ureq::Error::Timeout(ureq::Timeout::RecvResponse),
            "x",
        );
        assert!(
            matches!(e, Error::Timeout { phase } if phase.contains("waiting for the response"))
        );
        let e = map_ureq_error(
            Operation::SimpleEnroll,
            carry(Error::Key {
                reason: "k".into(),
                source: None,
            }),
            "x",
        );
        assert!(matches!(e, Error::Key { .. }));
    }
}
