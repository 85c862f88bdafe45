//! A second certificate listener restricted to the TS-0003 10.2.3 minimum, on OpenSSL (rustls
//! has no CBC suites): TLS 1.2 only (TS-0003 10.2.1) and the one mandatory suite
//! TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (RFC 5289). It is the peer for clients in the
//! TS-0003 TLS profile (a MEF that offers nothing else), and serves the same EST operations as
//! the main listener.
//!
//! Same server certificate chain as the main listener. Client certificates are verified at the
//! TLS layer against (client trust) ∪ (MEF CA), and a missing one is allowed at this layer and
//! refused per operation, exactly as on the rustls listener; the connection's principal is the
//! chain the client presented (end entity first).

use crate::conn::{ConnInfo, Principal, TlsAcceptor};
use crate::openssl_tls::{acceptor_builder, negotiated};
use crate::MefError;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use rustls_pki_types::CertificateDer;
use std::io;
use std::net::TcpStream;

/// TS-0003 10.2.3: the mandatory suite, and nothing else.
pub const CIPHERS: &str = "ECDHE-ECDSA-AES128-SHA256";

fn tls_err(e: impl std::fmt::Display) -> MefError {
    crate::openssl_tls::tls_err("ts0003", e)
}

/// The OpenSSL acceptor of the ts0003 listener.
pub(crate) struct Ts0003Acceptor(SslAcceptor);

impl Ts0003Acceptor {
    /// `chain`: the server certificate, then its issuers; `key`: its PKCS #8; `client_roots`:
    /// the trust anchors of client certificates.
    pub(crate) fn new(
        chain: &[CertificateDer<'static>],
        key: &[u8],
        client_roots: &[CertificateDer<'static>],
    ) -> Result<Ts0003Acceptor, MefError> {
        let mut b = acceptor_builder("ts0003", SslVersion::TLS1_2, CIPHERS)?;
        let (leaf, issuers) = chain
            .split_first()
            .ok_or_else(|| tls_err("no server certificate"))?;
        let leaf = X509::from_der(leaf).map_err(tls_err)?;
        b.set_certificate(&leaf).map_err(tls_err)?;
        for c in issuers {
            b.add_extra_chain_cert(X509::from_der(c).map_err(tls_err)?)
                .map_err(tls_err)?;
        }
        let key = PKey::private_key_from_pkcs8(key).map_err(tls_err)?;
        b.set_private_key(&key).map_err(tls_err)?;
        b.check_private_key().map_err(tls_err)?;
        let mut store = X509StoreBuilder::new().map_err(tls_err)?;
        for c in client_roots {
            store
                .add_cert(X509::from_der(c).map_err(tls_err)?)
                .map_err(tls_err)?;
        }
        b.set_verify_cert_store(store.build()).map_err(tls_err)?;
        // Ask for a certificate, verify it if one comes, accept none (as the rustls listener).
        b.set_verify(SslVerifyMode::PEER);
        Ok(Ts0003Acceptor(b.build()))
    }
}

impl TlsAcceptor for Ts0003Acceptor {
    type Stream = SslStream<TcpStream>;

    fn accept(&self, sock: TcpStream) -> io::Result<(Self::Stream, ConnInfo)> {
        let stream = self
            .0
            .accept(sock)
            .map_err(|e| crate::logging::openssl_handshake_error("ts0003", e))?;
        let ssl = stream.ssl();
        let mut certs = Vec::new();
        if let Some(leaf) = ssl.peer_certificate() {
            certs.push(CertificateDer::from(
                leaf.to_der().map_err(io::Error::other)?,
            ));
            // On the server side the peer chain does not include the leaf.
            if let Some(chain) = ssl.peer_cert_chain() {
                for c in chain {
                    certs.push(CertificateDer::from(c.to_der().map_err(io::Error::other)?));
                }
            }
        }
        log::debug!("ts0003 client: {}", negotiated(ssl));
        Ok((stream, ConnInfo::new(Principal::Certificates(certs))))
    }
}
