//! What the two OpenSSL listeners ([`crate::psk`], [`crate::ts0003`]) share: the acceptor
//! settings both start from, the stream the HTTP layer runs over, and the negotiated
//! parameters they log.

use crate::conn::ServerStream;
use crate::MefError;
use openssl::ssl::{
    SslAcceptor, SslAcceptorBuilder, SslMethod, SslOptions, SslRef, SslSessionCacheMode, SslStream,
    SslVersion,
};
use std::net::TcpStream;

/// A listener's TLS setup error; `what` names the listener.
pub(crate) fn tls_err(what: &str, e: impl std::fmt::Display) -> MefError {
    MefError::Tls(format!("{what} listener: {e}"))
}

/// An acceptor for TLS 1.2 up to `max` with the TLS 1.2 suites `tls12_ciphers`; no session
/// tickets, no session cache and no renegotiation, so every connection authenticates again.
/// `what` names the listener in errors.
pub(crate) fn acceptor_builder(
    what: &str,
    max: SslVersion,
    tls12_ciphers: &str,
) -> Result<SslAcceptorBuilder, MefError> {
    let err = |e| tls_err(what, e);
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(err)?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(err)?;
    b.set_max_proto_version(Some(max)).map_err(err)?;
    b.set_cipher_list(tls12_ciphers).map_err(err)?;
    b.set_options(SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    Ok(b)
}

/// The protocol version and cipher suite a handshake negotiated, for the debug log.
pub(crate) fn negotiated(ssl: &SslRef) -> String {
    format!(
        "{} {}",
        ssl.version_str(),
        ssl.current_cipher().map(|c| c.name()).unwrap_or("?")
    )
}

impl ServerStream for SslStream<TcpStream> {
    fn send_close(&mut self) {
        let _ = self.shutdown();
    }

    fn tcp(&mut self) -> &mut TcpStream {
        self.get_mut()
    }
}
