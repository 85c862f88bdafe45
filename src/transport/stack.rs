//! The TLS-stack seam: the byte stream under TLS, a TLS session, a TLS stack, and the rustls
//! stack (the OpenSSL stacks of `psk` and `ts0003` implement the same trait).

use super::connect::Stats;
use crate::error::{Error, Result};
use crate::tls::map_rustls_error;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ClientConfig;
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use ureq::unversioned::transport::{NextTimeout, TransportAdapter};

// ---------------------------------------------------------------------------------------------
// The TLS layer, pluggable
// ---------------------------------------------------------------------------------------------

/// The byte stream under TLS: the TCP transport of ureq, with timeouts, counting the bytes that
/// cross the wire.
pub struct WireSocket {
    pub(super) inner: TransportAdapter,
    pub(super) stats: Arc<Stats>,
}

impl WireSocket {
    pub(super) fn set_timeout(&mut self, timeout: NextTimeout) {
        self.inner.set_timeout(timeout);
    }
}

impl fmt::Debug for WireSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireSocket").finish_non_exhaustive()
    }
}

impl Read for WireSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for WireSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.stats
            .bytes_written
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An established TLS session over a [`WireSocket`]: plaintext in and out.
pub trait TlsSession: Read + Write + Send + Sync + fmt::Debug {
    /// The socket under the session (for timeouts and liveness).
    fn wire(&mut self) -> &mut WireSocket;

    /// The certificate chain the server presented (end entity first), if it presented one
    /// (none over TLS-PSK). Kept so a procedure can check that the trust anchors it is about
    /// to install authorise the server it talked to (RFC 7030 4.1.3).
    fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        None
    }

    /// The negotiated cipher suite's name, when the stack reports it: the IANA name (e.g.
    /// `TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256`), except that rustls spells TLS 1.3 suites with
    /// a `TLS13_` prefix (`TLS13_AES_256_GCM_SHA384`).
    fn cipher_suite(&self) -> Option<&'static str> {
        None
    }
}

/// A TLS implementation: performs the client handshake over `wire` with the server `name`.
///
/// Errors are this crate's: [`Error::ServerNotAuthorized`], [`Error::Tls`], [`Error::Key`],
/// [`Error::Timeout`] (this crate's stacks map I/O failures of the handshake with
/// `handshake_io_error`).
pub trait TlsStack: Send + Sync + fmt::Debug + 'static {
    /// Runs the handshake to completion.
    fn handshake(
        &self,
        name: &ServerName<'static>,
        wire: WireSocket,
    ) -> Result<Box<dyn TlsSession>>;
}

/// The rustls stack with an [`Arc<ClientConfig>`] from [`crate::tls::client_config`].
#[derive(Debug, Clone)]
pub(crate) struct RustlsStack {
    config: Arc<ClientConfig>,
}

impl RustlsStack {
    /// A stack using `config`.
    pub fn new(config: Arc<ClientConfig>) -> Self {
        RustlsStack { config }
    }
}

// The rustls stream already reads and writes plaintext over the socket: it is the session
// itself, with no wrapper to delegate through.
impl TlsSession for rustls::StreamOwned<rustls::ClientConnection, WireSocket> {
    fn wire(&mut self) -> &mut WireSocket {
        &mut self.sock
    }

    fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
        self.conn
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect())
    }

    fn cipher_suite(&self) -> Option<&'static str> {
        self.conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
    }
}

impl TlsStack for RustlsStack {
    fn handshake(
        &self,
        name: &ServerName<'static>,
        mut wire: WireSocket,
    ) -> Result<Box<dyn TlsSession>> {
        let mut conn =
            rustls::ClientConnection::new(self.config.clone(), name.clone()).map_err(|e| {
                Error::Tls {
                    reason: format!("cannot start the TLS handshake: {e}"),
                    source: Some(Box::new(e)),
                }
            })?;
        while conn.is_handshaking() {
            conn.complete_io(&mut wire).map_err(handshake_io_error)?;
        }
        Ok(Box::new(rustls::StreamOwned::new(conn, wire)))
    }
}

/// Maps an I/O error of a TLS handshake: a timeout of the [`WireSocket`], a TLS failure carried
/// inside, or the connection breaking.
pub(crate) fn handshake_io_error(e: io::Error) -> Error {
    if let Some(inner) = e.get_ref() {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return map_rustls_error(tls);
        }
        if let Some(ureq::Error::Timeout(_)) = inner.downcast_ref::<ureq::Error>() {
            return Error::Timeout {
                phase: "the TLS handshake".into(),
            };
        }
    }
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout {
            phase: "the TLS handshake".into(),
        },
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Error::Tls {
            reason: format!("the server closed the connection during the handshake ({e})"),
            source: Some(Box::new(e)),
        },
        _ => Error::Tls {
            reason: format!("I/O failure during the handshake: {e}"),
            source: Some(Box::new(e)),
        },
    }
}
