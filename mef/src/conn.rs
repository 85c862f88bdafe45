//! The connection seam both listener families share: who a connection authenticated as
//! ([`Principal`], [`ConnInfo`]), who the MEF takes the client for ([`Peer`]), and the TLS
//! acceptor and stream traits the accept loop and HTTP layer run over (rustls in
//! [`crate::server`], OpenSSL in [`crate::psk`] and [`crate::ts0003`]).

use crate::identity::Identity;
use crate::store::IssuedCert;
use rustls_pki_types::CertificateDer;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Who is on the other end of a connection, as far as the MEF can tell.
#[derive(Debug, Clone)]
pub(crate) enum Peer {
    /// No client certificate.
    Anonymous,
    /// A certificate this MEF issued (present in its database).
    Issued {
        fingerprint: String,
        record: IssuedCert,
    },
    /// A certificate chaining to `--client-trust`; `identity` when it is registered;
    /// `within_validity` whether every presented certificate is within its validity period now
    /// (checked per request: a keep-alive connection outlives the handshake's check).
    ThirdParty {
        fingerprint: String,
        identity: Option<Identity>,
        within_validity: bool,
    },
    /// Passed the TLS check (it chains to the MEF CA) but the MEF has no record of it.
    Unknown,
    /// Authenticated by a PSK (PPSK-based RSPF); `identity` while the KpmID is registered.
    Psk {
        kpm_id: String,
        identity: Option<Identity>,
    },
}

/// Who a connection authenticated as at the TLS layer.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// The rustls listener: the client certificate chain (empty without one).
    Certificates(Vec<CertificateDer<'static>>),
    /// The PSK listener: the KpmID whose Kpm the handshake proved (TS-0003 8.3.2.1).
    Psk(String),
}

/// Connection facts the handlers need.
pub(crate) struct ConnInfo {
    pub principal: Principal,
    /// Whether the client chain verifies against `--client-trust`, decided at the first request
    /// that asks: a chain is verified once per connection, as the TLS handshake itself is
    /// (an ECDSA verification per request was a third of the MEF's CPU per enrolment). When it
    /// does, the validity window common to the presented certificates (latest notBefore,
    /// earliest notAfter, seconds since the epoch), which every request checks against the
    /// clock. Registry and revocation lookups stay per request.
    pub(crate) third_party_chain: std::sync::OnceLock<Option<(i64, i64)>>,
}

impl ConnInfo {
    /// The facts of a connection authenticated as `principal`.
    pub(crate) fn new(principal: Principal) -> ConnInfo {
        ConnInfo {
            principal,
            third_party_chain: std::sync::OnceLock::new(),
        }
    }

    /// The client certificate chain (empty for PSK connections and anonymous clients).
    pub(crate) fn certs(&self) -> &[CertificateDer<'static>] {
        match &self.principal {
            Principal::Certificates(c) => c,
            Principal::Psk(_) => &[],
        }
    }
}

/// A TLS server stream the HTTP layer runs over (rustls or OpenSSL).
pub(crate) trait ServerStream: Read + Write + Send + 'static {
    /// Sends close_notify (best effort).
    fn send_close(&mut self);
    /// The TCP socket under the TLS layer.
    fn tcp(&mut self) -> &mut TcpStream;
}

/// A TLS server handshake: an accepted TCP connection in, an authenticated stream out.
pub(crate) trait TlsAcceptor: Send + Sync + 'static {
    type Stream: ServerStream;
    /// Runs the handshake (within the socket timeouts already set).
    fn accept(&self, sock: TcpStream) -> std::io::Result<(Self::Stream, ConnInfo)>;
}
