//! The TLS-PSK listener of PPSK-based RSPF (TS-0003 8.3.2.1; CR 8.3.Z.2.1: EST certificate-less
//! TLS mutual authentication, RFC 7030 3.3.3), on OpenSSL (rustls has no PSK support).
//!
//! The client's `psk_identity` is a KpmID looked up in the PSK registry ([`crate::Store`]); the
//! connection's principal is that KpmID and the identity registered with it. Unknown KpmIDs and
//! wrong keys fail the handshake: the listener has no certificate, so without the PSK there is
//! nothing to authenticate with (TLS 1.2 answers `unknown_psk_identity` or `decrypt_error` /
//! `bad_record_mac`; TLS 1.3 rejects the binder or finds no certificate to fall back to).
//!
//! Suites: TLS 1.2 PSK-authenticated suites only (ECDHE-PSK and DHE-PSK first, the mandatory
//! TLS_PSK_WITH_AES_128_CBC_SHA256 of TS-0003 10.2.2 included), and TLS 1.3 external PSKs with
//! the SHA-256 suites (OpenSSL binds a `psk_server_callback` key to SHA-256). No session tickets
//! and no session cache: every connection proves the PSK again.

use crate::conn::{ConnInfo, Principal, TlsAcceptor};
use crate::identity::{Identity, SubjectType};
use crate::openssl_tls::{acceptor_builder, negotiated};
use crate::store::Store;
use crate::MefError;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslAcceptor, SslStream, SslVersion};
use std::io;
use std::net::TcpStream;
use std::sync::Arc;

// The limits and suites the client library applies too: one source (proto::psk). The MEF
// validates with its own errors; tests/agreement.rs pins that both refuse the same keys.
pub use onem2m_est_proto::psk::{MAX_IDENTITY_LEN, MAX_KEY_LEN, MIN_KEY_LEN};
use onem2m_est_proto::psk::{TLS12_CIPHERS, TLS13_SUITES};

/// Checks a KpmID and Kpm before they are registered. Errors never show the key.
pub fn validate(kpm_id: &str, kpm: &[u8]) -> Result<(), MefError> {
    if kpm_id.is_empty() {
        return Err(MefError::InvalidIdentity("the KpmID is empty".into()));
    }
    if kpm_id.len() > MAX_IDENTITY_LEN {
        return Err(MefError::InvalidIdentity(format!(
            "the KpmID is longer than {MAX_IDENTITY_LEN} bytes (RFC 4279 5.3)"
        )));
    }
    if kpm_id.chars().any(char::is_control) {
        return Err(MefError::InvalidIdentity(
            "the KpmID contains control characters".into(),
        ));
    }
    if kpm.len() < MIN_KEY_LEN || kpm.len() > MAX_KEY_LEN {
        return Err(MefError::Config(format!(
            "the Kpm must be {MIN_KEY_LEN} to {MAX_KEY_LEN} bytes long (it is {} bytes)",
            kpm.len()
        )));
    }
    Ok(())
}

/// Registers a PSK in `store` (see [`crate::RunningMef::add_psk`]); validates it first.
pub fn add_psk(
    store: &Store,
    kpm_id: &str,
    kpm: &[u8],
    subject_type: SubjectType,
    subject_id: &str,
) -> Result<(), MefError> {
    validate(kpm_id, kpm)?;
    let identity = Identity::new(subject_type, subject_id)?;
    store.add_psk(kpm_id, kpm, &identity)
}

/// Decodes a hexadecimal Kpm by the rule the client reads it with too
/// (`proto::psk::decode_kpm_hex`: ':' and white space ignored); errors never echo the text.
pub fn decode_hex(text: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, MefError> {
    onem2m_est_proto::psk::decode_kpm_hex(text).map_err(|e| MefError::Config(e.to_string()))
}

/// The OpenSSL acceptor of the PSK listener.
pub(crate) struct PskAcceptor {
    acceptor: SslAcceptor,
    /// Where the PSK callback leaves the KpmID it handed a key out for, per connection. That is
    /// only an offer: the principal is taken from the completed session (see `accept`).
    kpm_id: Index<Ssl, String>,
    store: Arc<Store>,
}

fn tls_err(e: impl std::fmt::Display) -> MefError {
    crate::openssl_tls::tls_err("TLS-PSK", e)
}

impl PskAcceptor {
    pub(crate) fn new(store: Arc<Store>) -> Result<PskAcceptor, MefError> {
        let lookups = store.clone();
        let kpm_id_index = Ssl::new_ex_index::<String>().map_err(tls_err)?;
        // mozilla_intermediate_v5 brings ffdhe2048 for the DHE-PSK suites; its certificate
        // suites are replaced below (and there is no certificate anyway).
        let mut b = acceptor_builder("TLS-PSK", SslVersion::TLS1_3, TLS12_CIPHERS)?;
        b.set_ciphersuites(TLS13_SUITES).map_err(tls_err)?;
        b.set_num_tickets(0).map_err(tls_err)?;
        let index = kpm_id_index;
        b.set_psk_server_callback(move |ssl, identity, psk_out| {
            let Some(kpm_id) = identity.and_then(|i| std::str::from_utf8(i).ok()) else {
                log::info!("TLS-PSK: a client offered a non-UTF-8 psk_identity");
                return Ok(0);
            };
            match lookups.lookup_psk(kpm_id) {
                Ok(Some((key, _))) if key.len() <= psk_out.len() => {
                    psk_out[..key.len()].copy_from_slice(&key);
                    ssl.set_ex_data(index, kpm_id.to_owned());
                    Ok(key.len())
                }
                Ok(_) => {
                    log::info!("TLS-PSK: unknown KpmID {kpm_id:?}");
                    Ok(0)
                }
                Err(e) => {
                    log::error!("TLS-PSK: looking up KpmID {kpm_id:?}: {e}");
                    Ok(0)
                }
            }
        });
        Ok(PskAcceptor {
            acceptor: b.build(),
            kpm_id: kpm_id_index,
            store,
        })
    }

    /// The KpmID the completed handshake proved (TS-0003 8.3.2.1: the PSK authenticates the
    /// client). The callback may have been asked about several identities (a TLS 1.3 client
    /// can offer a list, a HelloRetryRequest brings a second ClientHello), so what it last saw
    /// is not taken on trust:
    /// - TLS 1.2: OpenSSL records in the session the psk_identity whose key made the premaster
    ///   secret (RFC 4279 2); it must be the one the callback answered for.
    /// - TLS 1.3: the session OpenSSL built from the callback's answer holds the external PSK
    ///   the binder and the key schedule used (RFC 8446 4.2.11); it must be the registered Kpm
    ///   of that KpmID (compared in constant time).
    ///
    /// `offered` is the KpmID the callback recorded (a parameter so tests can disagree with
    /// the session).
    fn proven_kpm_id(
        &self,
        ssl: &openssl::ssl::SslRef,
        offered: Option<&str>,
    ) -> Result<String, String> {
        let offered = offered
            .map(str::to_owned)
            .ok_or("the handshake completed without an accepted KpmID")?;
        if let Some(id) = ssl.psk_identity() {
            return if id == offered.as_bytes() {
                Ok(offered)
            } else {
                Err("the session's psk_identity is not the KpmID the key was given for".into())
            };
        }
        let session = ssl.session().ok_or("the handshake left no session")?;
        let mut key = zeroize::Zeroizing::new(vec![0u8; session.master_key_len()]);
        let n = session.master_key(&mut key);
        let registered = self
            .store
            .lookup_psk(&offered)
            .map_err(|e| format!("looking up the KpmID: {e}"))?
            .ok_or("the KpmID was removed during the handshake")?
            .0;
        if n > 0 && bool::from(subtle::ConstantTimeEq::ct_eq(&key[..n], &registered[..])) {
            Ok(offered)
        } else {
            Err("the session key is not the Kpm of the KpmID the key was given for".into())
        }
    }
}

impl TlsAcceptor for PskAcceptor {
    type Stream = SslStream<TcpStream>;

    fn accept(&self, sock: TcpStream) -> io::Result<(Self::Stream, ConnInfo)> {
        let stream = self
            .acceptor
            .accept(sock)
            .map_err(|e| crate::logging::openssl_handshake_error("TLS-PSK", e))?;
        // The listener has no certificate, so a completed handshake used a PSK the callback
        // handed out; which one is read from the session.
        let offered = stream.ssl().ex_data(self.kpm_id).cloned();
        let kpm_id = self
            .proven_kpm_id(stream.ssl(), offered.as_deref())
            .map_err(|reason| {
                log::warn!("TLS-PSK: connection refused after the handshake: {reason}");
                io::Error::other(format!("TLS-PSK: {reason}"))
            })?;
        log::debug!(
            "TLS-PSK: KpmID {kpm_id:?} proven by the session's {}",
            if stream.ssl().psk_identity().is_some() {
                "psk_identity"
            } else {
                "key"
            }
        );
        log::debug!("TLS-PSK client {kpm_id:?}: {}", negotiated(stream.ssl()));
        Ok((stream, ConnInfo::new(Principal::Psk(kpm_id))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handshake with `kpm_id`/`kpm` at protocol `version` against the acceptor; then
    /// `check` on the server side of the completed session.
    fn with_session(
        acceptor: &PskAcceptor,
        version: SslVersion,
        kpm_id: &'static str,
        kpm: &'static [u8],
        check: impl FnOnce(&openssl::ssl::SslRef),
    ) {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
            b.set_cipher_list("PSK").unwrap();
            b.set_min_proto_version(Some(version)).unwrap();
            b.set_max_proto_version(Some(version)).unwrap();
            b.set_verify(SslVerifyMode::NONE);
            b.set_psk_client_callback(move |_, _, id_out, psk_out| {
                id_out[..kpm_id.len()].copy_from_slice(kpm_id.as_bytes());
                id_out[kpm_id.len()] = 0;
                psk_out[..kpm.len()].copy_from_slice(kpm);
                Ok(kpm.len())
            });
            let tcp = TcpStream::connect(addr).unwrap();
            let mut tls = b
                .build()
                .configure()
                .unwrap()
                .verify_hostname(false)
                .connect("localhost", tcp)
                .unwrap();
            // Wait for the server to close.
            let _ = std::io::Read::read(&mut tls, &mut [0u8; 1]);
        });
        let (sock, _) = listener.accept().unwrap();
        let mut stream = acceptor.acceptor.accept(sock).unwrap();
        assert_eq!(stream.ssl().version2(), Some(version));
        check(stream.ssl());
        let _ = stream.shutdown();
        drop(stream);
        client.join().unwrap();
    }

    #[test]
    fn the_principal_is_what_the_completed_session_proves() {
        let dir = crate::scratch_dir("psk");
        let store = Arc::new(Store::open(&dir).unwrap());
        const KEY_A: &[u8] = &[0xa1; 16];
        const KEY_B: &[u8] = &[0xb2; 32];
        add_psk(&store, "kpm-a", KEY_A, SubjectType::Cse, "a.example.com").unwrap();
        add_psk(&store, "kpm-b", KEY_B, SubjectType::Cse, "b.example.com").unwrap();
        let acceptor = PskAcceptor::new(store).unwrap();
        for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
            with_session(&acceptor, version, "kpm-a", KEY_A, |ssl| {
                // What the callback recorded, and the session agrees.
                assert_eq!(
                    ssl.ex_data(acceptor.kpm_id).map(String::as_str),
                    Some("kpm-a")
                );
                assert_eq!(acceptor.proven_kpm_id(ssl, Some("kpm-a")).unwrap(), "kpm-a");
                // Had the callback last seen another (registered) KpmID, the session would
                // not vouch for it: the identity is not taken from the callback's word.
                // TLS 1.2 proves it by the session's psk_identity, TLS 1.3 by its key.
                let err = acceptor.proven_kpm_id(ssl, Some("kpm-b")).unwrap_err();
                let by = if version == SslVersion::TLS1_2 {
                    "psk_identity"
                } else {
                    "session key"
                };
                assert!(err.contains(by), "{version:?}: {err}");
                assert!(acceptor.proven_kpm_id(ssl, None).is_err());
            });
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn validates_and_decodes() {
        assert!(validate("kpm", &[0u8; 16]).is_ok());
        assert!(validate("", &[0u8; 16]).is_err());
        assert!(validate("kpm", &[0u8; 15]).is_err());
        assert!(validate("kpm", &[0u8; 65]).is_err());
        assert!(validate("k\npm", &[0u8; 16]).is_err());
        assert_eq!(&decode_hex("0a:0B\n").unwrap()[..], &[10, 11]);
        assert!(decode_hex("0g").is_err());
        assert!(decode_hex("abc").is_err());
    }
}
