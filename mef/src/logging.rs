//! What the MEF tells its operator about refusals (issue #14): every refused request and every
//! refused TLS handshake is logged at warn, with the check that failed and the peer (its
//! address and how it authenticated: certificate fingerprint or KpmID), never a secret (no key,
//! Kpm or challengePassword; refusal texts never hold them).

use std::cell::Cell;
use std::net::SocketAddr;

use crate::conn::{ConnInfo, Principal};
use crate::http::{Request, Response};

thread_local! {
    /// The address of the connection this worker thread serves (one at a time).
    static PEER: Cell<Option<SocketAddr>> = const { Cell::new(None) };
}

/// Records the peer of the connection the current thread starts serving.
pub(crate) fn serving(peer: Option<SocketAddr>) {
    PEER.with(|p| p.set(peer));
}

fn peer_text() -> String {
    PEER.with(|p| p.get())
        .map_or_else(|| "unknown address".into(), |a| a.to_string())
}

fn principal_text(conn: &ConnInfo) -> String {
    match &conn.principal {
        Principal::Psk(kpm_id) => format!("KpmID {kpm_id:?}"),
        Principal::Certificates(certs) => match certs.first() {
            None => "no client certificate".into(),
            Some(leaf) => format!("client certificate sha256 {}", crate::fingerprint(leaf)),
        },
    }
}

/// A request answered with an error status: which request, the answer (the failed check, as
/// the client reads it too) and the peer.
pub(crate) fn refused(conn: &ConnInfo, req: &Request, resp: &Response) {
    if resp.status < 400 {
        return;
    }
    let reason = String::from_utf8_lossy(&resp.body);
    let reason = reason.trim();
    log::warn!(
        "refused {} {} from {} ({}): {} {}",
        req.method,
        req.path,
        peer_text(),
        principal_text(conn),
        resp.status,
        if reason.is_empty() {
            "(no body)"
        } else {
            reason
        }
    );
}

/// A handshake an OpenSSL listener (TLS-PSK, ts0003) failed at the TLS level (a wrong Kpm, an
/// unknown KpmID, no common suite, an untrusted certificate), as opposed to a connection that
/// closed: logged at warn like a rustls refusal.
#[derive(Debug)]
pub(crate) struct OpenSslRefusal(pub String);

impl std::fmt::Display for OpenSslRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenSslRefusal {}

/// The `io::Error` of a failed OpenSSL handshake: an [`OpenSslRefusal`] when OpenSSL reported a
/// TLS error, a plain error when the peer only went away.
pub(crate) fn openssl_handshake_error<S: std::fmt::Debug>(
    what: &str,
    e: openssl::ssl::HandshakeError<S>,
) -> std::io::Error {
    let tls_error = match &e {
        openssl::ssl::HandshakeError::Failure(mid) => mid.error().ssl_error().is_some(),
        _ => false,
    };
    let text = format!("{what} handshake failed: {e}");
    if tls_error {
        std::io::Error::other(OpenSslRefusal(text))
    } else {
        std::io::Error::other(text)
    }
}

/// A TLS handshake that failed: what TLS refused, and the peer. Connections closed or timed
/// out without a TLS error (port scans, health checks) stay at debug.
pub(crate) fn handshake(e: &std::io::Error) {
    let inner = e.get_ref();
    if let Some(tls) = inner.and_then(|i| i.downcast_ref::<rustls::Error>()) {
        log::warn!("TLS handshake with {} refused: {tls}", peer_text());
    } else if let Some(refusal) = inner.and_then(|i| i.downcast_ref::<OpenSslRefusal>()) {
        log::warn!("TLS handshake with {} refused: {refusal}", peer_text());
    } else {
        log::debug!("TLS handshake with {} failed: {e}", peer_text());
    }
}
