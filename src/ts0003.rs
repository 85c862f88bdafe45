//! The TS-0003 TLS profile ([`crate::tls::TlsProfile::Ts0003`]) for certificate-based
//! connections: TLS 1.2 only (TS-0003 10.2.1) with the ECDHE_ECDSA key exchange and the
//! mandatory TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (TS-0003 10.2.3, RFC 5289). rustls has no
//! CBC suites, so this profile runs on OpenSSL, the stack the project already links for TLS-PSK
//! (cargo feature `psk`). Without the feature a connection in this profile is refused before
//! any I/O ([`OPENSSL_MISSING`]).
//!
//! Server authentication is exactly the rustls path's: the one [`crate::tls::EstServerVerifier`]
//! (explicit trust anchors only, chain on rustls-webpki, then host name OR id-kp-cmcRA, RFC 7030
//! 3.6 / 3.6.1) decides, inside the handshake, on the chain OpenSSL received. OpenSSL's own
//! chain verdict is ignored (its store is empty: no system trust store is ever loaded), and
//! OpenSSL checks the ServerKeyExchange signature with the verified end-entity key. Because the
//! decision is taken when the server's Certificate message is processed, a refused server never
//! receives the client certificate (in TLS 1.2 the client sends it later).
//!
//! Client authentication: the certificate chain and a key that OpenSSL can hold, i.e. a
//! [`crate::keys::PrivateKey`] with a PKCS #8 encoding (software keys, the file store's keys).
//! A key that only signs through a callback (a C key callback, an HSM) would need an OpenSSL
//! key method written with `unsafe` code outside `ffi/src/`, so that combination is refused
//! before any I/O ([`crate::Error::InvalidArgument`]). The key is handed to OpenSSL in memory;
//! it is never written anywhere.

/// Why the ts0003 profile cannot run in this build.
pub const OPENSSL_MISSING: &str = "the ts0003 TLS profile (TS-0003 10.2.1/10.2.3: TLS 1.2, \
    TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256) needs OpenSSL, and this build of onem2m-est has \
    none: rebuild with the cargo feature `psk` (or `psk-vendored`)";

/// Whether this build can use the ts0003 profile (the cargo feature `psk`).
pub const SUPPORTED: bool = cfg!(feature = "psk");

#[cfg(feature = "psk")]
pub use stack::{OpenSslCertStack, TLS12_CIPHERS};

#[cfg(feature = "psk")]
mod stack {
    use crate::error::{Error, Result};
    use crate::tls::{check_client_identity, ClientIdentity, EstServerVerifier};
    use crate::transport::{TlsSession, TlsStack, WireSocket};
    use crate::uri::EstUri;
    use openssl::error::ErrorStack;
    use openssl::pkey::{PKey, Private};
    use openssl::ssl::{SslContext, SslStream, SslVerifyMode, SslVersion};
    use openssl::x509::{X509StoreContext, X509};
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    use std::fmt;
    use std::io::{self, Read, Write};
    use std::sync::{Arc, Mutex};

    /// TLS 1.2 suites offered, all with the ECDHE_ECDSA key exchange (TS-0003 10.2.3, RFC
    /// 8422), AEAD first; TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 (named by 10.2.3 for DTLS, RFC
    /// 7251) and the mandatory TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (RFC 5289) last.
    pub const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:\
        ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
        ECDHE-ECDSA-AES128-CCM8:ECDHE-ECDSA-AES128-SHA256";

    fn config_error(e: ErrorStack) -> Error {
        Error::Tls {
            reason: format!("cannot configure OpenSSL for the ts0003 TLS profile: {e}"),
            source: Some(Box::new(e)),
        }
    }

    /// The client certificate and its key, as OpenSSL objects.
    struct OpenSslIdentity {
        chain: Vec<X509>,
        key: PKey<Private>,
    }

    /// The [`TlsStack`] of the ts0003 profile. See the [module documentation](super).
    pub struct OpenSslCertStack {
        context: SslContext,
        verifier: Arc<EstServerVerifier>,
        identity: Option<OpenSslIdentity>,
    }

    impl fmt::Debug for OpenSslCertStack {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("OpenSslCertStack")
                .field("verifier", &self.verifier)
                .field("client_certificate", &self.identity.is_some())
                .finish_non_exhaustive()
        }
    }

    impl OpenSslCertStack {
        /// A stack trusting exactly `trust_anchors` for the server of `base`, authenticating
        /// with `identity` when the server asks. Everything that can be refused without I/O
        /// is refused here: empty or unusable anchors, a chain that does not hold the key, and
        /// a key without a PKCS #8 encoding ([`Error::InvalidArgument`]).
        pub fn new(
            trust_anchors: &[CertificateDer<'static>],
            identity: Option<&ClientIdentity>,
            base: &EstUri,
        ) -> Result<Self> {
            let verifier = Arc::new(EstServerVerifier::new(trust_anchors, base)?);
            let identity = identity.map(openssl_identity).transpose()?;
            // A context with an empty certificate store: no system trust is loaded (RFC 7030
            // 3.6.1, explicit TA database only); the verifier decides, see `handshake`.
            // TS-0003 10.2.1: TLS v1.2 shall be used.
            let b = crate::psk::client_context(
                SslVersion::TLS1_2,
                SslVersion::TLS1_2,
                TLS12_CIPHERS,
                config_error,
            )?;
            Ok(OpenSslCertStack {
                context: b.build(),
                verifier,
                identity,
            })
        }
    }

    /// The OpenSSL form of a client identity, checked as the rustls path checks it. The
    /// PKCS #8 copy lives in `Zeroizing` until OpenSSL has parsed it.
    fn openssl_identity(identity: &ClientIdentity) -> Result<OpenSslIdentity> {
        check_client_identity(identity)?;
        let pkcs8 = identity.key.pkcs8_der().ok_or_else(|| {
            Error::invalid(
                "client identity",
                "the ts0003 TLS profile runs on OpenSSL, which can only use a client key it \
                 holds (a software key with a PKCS #8 encoding); this key only signs through a \
                 callback (e.g. a C key callback or an HSM). Use the modern TLS profile with \
                 this key, or a software key",
            )
        })?;
        let key = PKey::private_key_from_pkcs8(&pkcs8).map_err(|e| {
            Error::invalid(
                "client identity",
                format!("OpenSSL cannot load the client key: {e}"),
            )
        })?;
        // The PKCS #8 must be the key whose public key check_client_identity matched.
        if key.public_key_to_der().ok().as_deref() != Some(identity.key.public_key_info()) {
            return Err(Error::invalid(
                "client identity",
                "the key's PKCS #8 encoding does not hold its public key",
            ));
        }
        let chain = identity
            .chain
            .iter()
            .map(|c| X509::from_der(c.as_ref()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::invalid(
                    "client identity",
                    format!("OpenSSL cannot load the client certificate chain: {e}"),
                )
            })?;
        Ok(OpenSslIdentity { chain, key })
    }

    /// What the verify callback decided for a connection.
    #[derive(Default)]
    struct Verdict {
        /// `Some(Ok)` once the verifier accepted the server's chain; `Some(Err)` with the
        /// reason when it refused.
        outcome: Option<std::result::Result<(), Error>>,
    }

    /// An established OpenSSL session over the wire socket, with the server chain it verified.
    struct CertSession {
        stream: SslStream<WireSocket>,
        server_chain: Vec<CertificateDer<'static>>,
    }

    impl fmt::Debug for CertSession {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("CertSession")
                .field("version", &self.stream.ssl().version_str())
                .field("cipher", &self.cipher_suite())
                .finish()
        }
    }

    impl CertSession {
        fn cipher_suite(&self) -> Option<&'static str> {
            self.stream
                .ssl()
                .current_cipher()
                .and_then(|c| c.standard_name())
        }
    }

    impl Read for CertSession {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.stream.read(buf)
        }
    }

    impl Write for CertSession {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.stream.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.stream.flush()
        }
    }

    impl TlsSession for CertSession {
        fn wire(&mut self) -> &mut WireSocket {
            self.stream.get_mut()
        }

        fn peer_certificates(&self) -> Option<Vec<CertificateDer<'static>>> {
            Some(self.server_chain.clone())
        }

        fn cipher_suite(&self) -> Option<&'static str> {
            CertSession::cipher_suite(self)
        }
    }

    /// The server's chain as sent (end entity first), from the handshake in progress.
    fn received_chain(ssl: &openssl::ssl::SslRef) -> Result<Vec<CertificateDer<'static>>> {
        let missing = || Error::ServerNotAuthorized {
            reason: "the server presented no certificate".into(),
        };
        let stack = ssl.peer_cert_chain().ok_or_else(missing)?;
        let chain = stack
            .iter()
            .map(|c| c.to_der().map(CertificateDer::from))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::ServerNotAuthorized {
                reason: format!("the server certificate cannot be encoded: {e}"),
            })?;
        if chain.is_empty() {
            return Err(missing());
        }
        Ok(chain)
    }

    impl TlsStack for OpenSslCertStack {
        fn handshake(
            &self,
            name: &ServerName<'static>,
            wire: WireSocket,
        ) -> Result<Box<dyn TlsSession>> {
            let mut ssl = crate::psk::ssl_for(&self.context, name, config_error)?;
            if let Some(id) = &self.identity {
                ssl.set_certificate(&id.chain[0]).map_err(config_error)?;
                for extra in &id.chain[1..] {
                    ssl.add_chain_cert(extra.clone()).map_err(config_error)?;
                }
                ssl.set_private_key(&id.key).map_err(config_error)?;
            }
            // RFC 7030 3.6 / 3.6.1 in the handshake: OpenSSL calls back for each certificate
            // of the chain, its own verdict (`preverify_ok`) reflecting an empty trust store
            // and its SSL-server purpose rule; both are ignored. At depth 0 (the end entity,
            // always reached: the last call, or the first when OpenSSL finds no issuer for a
            // lone certificate) the EstServerVerifier decides on the chain the server sent.
            // Returning false aborts the handshake before the client certificate is sent.
            let verdict = Arc::new(Mutex::new(Verdict::default()));
            let slot = verdict.clone();
            let verifier = self.verifier.clone();
            let expected = name.clone();
            ssl.set_verify_callback(SslVerifyMode::PEER, move |_preverify_ok, ctx| {
                if ctx.error_depth() != 0 {
                    return true;
                }
                let mut v = slot.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(done) = &v.outcome {
                    return done.is_ok();
                }
                let outcome = X509StoreContext::ssl_idx()
                    .ok()
                    .and_then(|idx| ctx.ex_data(idx))
                    .ok_or_else(|| Error::Tls {
                        reason: "OpenSSL gave no connection to the certificate check".into(),
                        source: None,
                    })
                    .and_then(received_chain)
                    .and_then(|chain| {
                        let (ee, intermediates) = chain.split_first().expect("non-empty chain");
                        verifier
                            .verify_server_cert(ee, intermediates, &expected, &[], UnixTime::now())
                            .map(|_| ())
                            .map_err(|e| crate::tls::map_rustls_error(&e))
                    });
                let ok = outcome.is_ok();
                v.outcome = Some(outcome);
                ok
            });
            let mut stream = SslStream::new(ssl, wire).map_err(config_error)?;
            let result = stream.connect();
            let outcome = verdict
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .outcome
                .take();
            match (result, outcome) {
                (Err(_), Some(Err(refused))) => return Err(refused),
                (Err(e), _) => return Err(map_handshake_error(e)),
                (Ok(()), Some(Ok(()))) => {}
                (Ok(()), Some(Err(refused))) => return Err(refused),
                // Fail closed: a handshake that completed without the verifier's consent.
                (Ok(()), None) => {
                    return Err(Error::ServerNotAuthorized {
                        reason: "the TLS handshake completed without the server certificate \
                                 being checked"
                            .into(),
                    })
                }
            }
            let server_chain = received_chain(stream.ssl())?;
            let session = CertSession {
                stream,
                server_chain,
            };
            log::debug!(
                "ts0003 TLS profile handshake: {} {}",
                session.stream.ssl().version_str(),
                session.cipher_suite().unwrap_or("?")
            );
            Ok(Box::new(session))
        }
    }

    /// A failed handshake that the verifier did not refuse: an alert from the server, a closed
    /// connection, a timeout.
    fn map_handshake_error(e: openssl::ssl::Error) -> Error {
        match crate::psk::handshake_failure_detail(e) {
            Err(e) => e,
            Ok(detail) => {
                let hint = if detail.contains("handshake failure")
                    || detail.contains("protocol version")
                    || detail.contains("no cipher")
                {
                    " (no cipher suite in common: the ts0003 TLS profile offers TLS 1.2 \
                     ECDHE-ECDSA suites only, TS-0003 10.2.3)"
                } else if detail.contains("certificate") || detail.contains("access denied") {
                    crate::tls::CLIENT_CERT_HINT
                } else {
                    ""
                };
                Error::Tls {
                    reason: format!("TLS handshake failed (ts0003 profile): {detail}{hint}"),
                    source: None,
                }
            }
        }
    }
}
