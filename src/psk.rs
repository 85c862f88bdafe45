//! PPSK-based RSPF (TS-0003 8.3.2.1): Initial Certificate Provisioning over EST certificate-less
//! TLS mutual authentication (RFC 7030 3.3.3, CR 8.3.Z.2.1 and 8.3.Z.2.2 pre-condition B.i).
//!
//! The device holds a pre-provisioned symmetric key Kpm and its identifier KpmID; the TLS
//! handshake uses `psk_identity = KpmID` and `psk = Kpm` (TS-0003 8.3.2.1) with the key exchange
//! of RFC 4279 (TS-0003 10.2.2). Both ends are authenticated by the PSK alone: there is no server
//! certificate to verify, and none is pretended to be verified.
//!
//! rustls has no PSK support, so this path uses OpenSSL through the `openssl` crate, behind the
//! cargo feature `psk` (`psk-vendored` builds OpenSSL from source). It plugs into the same
//! transport ([`crate::transport::TlsStack`]) and the same procedure code
//! ([`crate::client::MefClient::provision`] with [`crate::client::InitialAuth::Psk`]); the
//! certificate paths stay on rustls unless the ts0003 TLS profile is chosen
//! ([`crate::ts0003`]). [`PskCredential`] itself needs no OpenSSL, so it exists in
//! every build; without the feature a PSK provisioning is refused before any I/O.
//!
//! What is offered (`OpenSslPskStack`):
//! - TLS 1.2 with PSK-authenticated suites only, stronger first (ECDHE-PSK and DHE-PSK for
//!   forward secrecy, RFC 4279 7.1; AEAD before CBC) and the mandatory
//!   TLS_PSK_WITH_AES_128_CBC_SHA256 of RFC 5487 (TS-0003 10.2.2) last. No RSA-PSK (it needs a
//!   server certificate) and no NULL ciphers.
//! - TLS 1.3 with an external PSK: OpenSSL's `psk_client_callback` also serves TLS 1.3, turning
//!   the key into an external PSK bound to SHA-256 (so only the SHA-256 suites are offered:
//!   TLS_CHACHA20_POLY1305_SHA256 and TLS_AES_128_GCM_SHA256), with `psk_dhe_ke` (ECDHE, so
//!   forward secrecy). A TLS 1.3 server may ignore the PSK and answer with a certificate instead;
//!   that fallback is refused: the certificate verification callback fails every certificate
//!   (the PSK is the only acceptable server authentication), and after the handshake the session
//!   must have been PSK-authenticated with no peer certificate.
//! - SNI is sent for DNS host names (TS-0003 10.2.1, RFC 6066 3), as on the rustls path.
//!
//! Errors (TS-0003 8.3.9.7): a failed PSK handshake, wrong Kpm included, is
//! [`Error::Tls`], class [`crate::ErrorClass::Server`] (MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR:
//! "an error regarding communicating with the Certificate Provisioning server"). The client
//! cannot tell a wrong local Kpm from an unknown KpmID, a MEF holding another key, or a server
//! without TLS-PSK: all it sees is an alert (`bad_record_mac`, `decrypt_error`,
//! `unknown_psk_identity`, `handshake_failure`) or a closed connection while communicating with
//! the server, so it reports what it observed rather than guessing a local fault; the message
//! names the possible causes. This is the same rule as every other TLS failure. A server that
//! authenticates with a certificate instead of the PSK is [`Error::ServerNotAuthorized`] (also
//! Server). Only what is checked locally before any I/O is [`crate::ErrorClass::BadArguments`]:
//! malformed KpmIDs and keys ([`PskCredential::new`]) and a build without the `psk` feature.
//!
//! Secrets: Kpm lives in `Zeroizing`; the copy captured by the OpenSSL callback is a
//! `Zeroizing` that is wiped when the stack (and with it the OpenSSL context) is dropped; the
//! buffer OpenSSL hands to the callback is OPENSSL_cleanse'd by OpenSSL after deriving the keys.
//! Neither `Debug` nor any error carries the key.

use crate::error::{Error, Result};
use std::fmt;
use zeroize::Zeroizing;

// The limits both sides apply (proto::psk, shared with the MEF; tests/agreement.rs).
pub use crate::proto::psk::{MAX_IDENTITY_LEN, MAX_KEY_LEN, MIN_KEY_LEN};

/// Whether this build can run TLS-PSK handshakes (the cargo feature `psk`).
pub const SUPPORTED: bool = cfg!(feature = "psk");

/// The pre-provisioned symmetric key Kpm and its identifier KpmID (TS-0003 8.3.2.1).
///
/// `Debug` shows the KpmID only; the key is never printed.
#[derive(Clone)]
pub struct PskCredential {
    identity: String,
    key: Zeroizing<Vec<u8>>,
}

impl PskCredential {
    /// A credential from the KpmID (sent as `psk_identity`, RFC 4279 5.1: UTF-8 text) and Kpm.
    ///
    /// Refused ([`Error::InvalidArgument`]): an empty KpmID, one longer than
    /// [`MAX_IDENTITY_LEN`] bytes or holding control characters (OpenSSL takes it as a C
    /// string; RFC 4279 5.1 makes it printable text); a Kpm shorter than [`MIN_KEY_LEN`] or
    /// longer than [`MAX_KEY_LEN`] bytes.
    pub fn new(identity: impl Into<String>, key: impl Into<Zeroizing<Vec<u8>>>) -> Result<Self> {
        let identity = identity.into();
        let key = key.into();
        if identity.is_empty() {
            return Err(Error::invalid("psk identity", "the KpmID is empty"));
        }
        if identity.len() > MAX_IDENTITY_LEN {
            return Err(Error::invalid(
                "psk identity",
                format!(
                    "the KpmID is {} bytes long; at most {MAX_IDENTITY_LEN} are supported \
                     (RFC 4279 5.3)",
                    identity.len()
                ),
            ));
        }
        if identity.chars().any(char::is_control) {
            return Err(Error::invalid(
                "psk identity",
                "the KpmID contains control characters",
            ));
        }
        if key.len() < MIN_KEY_LEN {
            return Err(Error::invalid(
                "psk key",
                format!(
                    "the Kpm is {} bytes long; at least {MIN_KEY_LEN} bytes (128 bits) are \
                     required (RFC 4279 7.2: short PSKs fall to brute force)",
                    key.len()
                ),
            ));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(Error::invalid(
                "psk key",
                format!(
                    "the Kpm is {} bytes long; at most {MAX_KEY_LEN} are supported (RFC 4279 5.3)",
                    key.len()
                ),
            ));
        }
        Ok(PskCredential { identity, key })
    }

    /// A credential whose Kpm is given as hexadecimal text (upper or lower case, optional ':'
    /// separators and surrounding white space), e.g. from a configuration file or the CLI.
    pub fn from_hex(identity: impl Into<String>, key_hex: &str) -> Result<Self> {
        Self::new(identity, decode_hex(key_hex)?)
    }

    /// The KpmID (`psk_identity`).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The Kpm. Keep copies in `Zeroizing` too.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for PskCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PskCredential")
            .field("identity", &self.identity)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Decodes hexadecimal key text into zeroized bytes, by the rule the MEF reads it with too
/// (`proto::psk::decode_kpm_hex`: ':' and white space ignored); errors never echo the text.
pub(crate) fn decode_hex(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    crate::proto::psk::decode_kpm_hex(text).map_err(|e| Error::invalid("psk key", e.to_string()))
}

#[cfg(feature = "psk")]
pub use stack::OpenSslPskStack;
#[cfg(feature = "psk")]
pub(crate) use stack::{client_context, handshake_failure_detail, ssl_for};

#[cfg(feature = "psk")]
mod stack {
    use super::PskCredential;
    use crate::error::{Error, Result};
    use crate::transport::{handshake_io_error, TlsSession, TlsStack, WireSocket};
    use openssl::error::ErrorStack;
    use openssl::ssl::{
        ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslStream,
        SslVerifyMode, SslVersion,
    };
    use rustls_pki_types::ServerName;
    use std::fmt;
    use std::io::{self, Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use zeroize::Zeroizing;

    // The suites both sides offer (proto::psk, shared with the MEF).
    use crate::proto::psk::{TLS12_CIPHERS, TLS13_SUITES};

    /// The TLS-PSK [`TlsStack`] on OpenSSL: certificate-less TLS mutual authentication with a
    /// [`PskCredential`] (RFC 7030 3.3.3). See the [module documentation](super).
    pub struct OpenSslPskStack {
        context: SslContext,
        identity: String,
    }

    impl fmt::Debug for OpenSslPskStack {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("OpenSslPskStack")
                .field("identity", &self.identity)
                .finish_non_exhaustive()
        }
    }

    fn config_error(e: ErrorStack) -> Error {
        Error::Tls {
            reason: format!("cannot configure OpenSSL for TLS-PSK: {e}"),
            source: Some(Box::new(e)),
        }
    }

    /// An OpenSSL client context for TLS `min` to `max` offering the TLS 1.2 suites
    /// `tls12_ciphers` (the PSK stack's and the ts0003 profile's). No renegotiation, no
    /// compression; no tickets: a provisioning connection is used once, and a resumed session
    /// would not re-prove the PSK to a later reader.
    pub(crate) fn client_context(
        min: SslVersion,
        max: SslVersion,
        tls12_ciphers: &str,
        config_error: fn(ErrorStack) -> Error,
    ) -> Result<SslContextBuilder> {
        let mut b = SslContextBuilder::new(SslMethod::tls_client()).map_err(config_error)?;
        b.set_min_proto_version(Some(min)).map_err(config_error)?;
        b.set_max_proto_version(Some(max)).map_err(config_error)?;
        b.set_cipher_list(tls12_ciphers).map_err(config_error)?;
        b.set_options(
            SslOptions::NO_RENEGOTIATION | SslOptions::NO_COMPRESSION | SslOptions::NO_TICKET,
        );
        Ok(b)
    }

    /// One connection's `Ssl` on `context` for the server `name`.
    pub(crate) fn ssl_for(
        context: &SslContext,
        name: &ServerName<'static>,
        config_error: fn(ErrorStack) -> Error,
    ) -> Result<Ssl> {
        let mut ssl = Ssl::new(context).map_err(config_error)?;
        if let ServerName::DnsName(dns) = name {
            // TS-0003 10.2.1: SNI; never for IP literals (RFC 6066 3).
            ssl.set_hostname(dns.as_ref()).map_err(config_error)?;
        }
        Ok(ssl)
    }

    impl OpenSslPskStack {
        /// A stack authenticating with `credential`. The key is copied (zeroized on drop) into
        /// the OpenSSL callback.
        pub fn new(credential: &PskCredential) -> Result<Self> {
            let mut b = client_context(
                SslVersion::TLS1_2,
                SslVersion::TLS1_3,
                TLS12_CIPHERS,
                config_error,
            )?;
            b.set_ciphersuites(TLS13_SUITES).map_err(config_error)?;
            // Only the PSK authenticates the server: a certificate is never acceptable (this
            // refuses a TLS 1.3 server that ignores the PSK and falls back to a certificate).
            // Each connection installs its own callback too, to report the reason.
            b.set_verify_callback(SslVerifyMode::PEER, |_, _| false);
            let identity = Zeroizing::new(credential.identity().as_bytes().to_vec());
            let key = Zeroizing::new(credential.key().to_vec());
            b.set_psk_client_callback(move |_ssl, _hint, id_out, psk_out| {
                // The identity hint of RFC 4279 5.2 is ignored: KpmID is pre-provisioned.
                if identity.len() >= id_out.len() || key.len() > psk_out.len() {
                    return Ok(0);
                }
                id_out[..identity.len()].copy_from_slice(&identity);
                id_out[identity.len()] = 0;
                psk_out[..key.len()].copy_from_slice(&key);
                Ok(key.len())
            });
            Ok(OpenSslPskStack {
                context: b.build(),
                identity: credential.identity().to_owned(),
            })
        }
    }

    /// An established OpenSSL session over the wire socket.
    struct PskSession(SslStream<WireSocket>);

    impl fmt::Debug for PskSession {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("PskSession")
                .field("version", &self.0.ssl().version_str())
                .field("cipher", &self.0.ssl().current_cipher().map(|c| c.name()))
                .finish()
        }
    }

    impl Read for PskSession {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for PskSession {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            self.0.flush()
        }
    }

    impl TlsSession for PskSession {
        fn wire(&mut self) -> &mut WireSocket {
            self.0.get_mut()
        }
    }

    impl TlsStack for OpenSslPskStack {
        fn handshake(
            &self,
            name: &ServerName<'static>,
            wire: WireSocket,
        ) -> Result<Box<dyn TlsSession>> {
            let mut ssl = ssl_for(&self.context, name, config_error)?;
            let certificate_offered = Arc::new(AtomicBool::new(false));
            let flag = certificate_offered.clone();
            ssl.set_verify_callback(SslVerifyMode::PEER, move |_, _| {
                flag.store(true, Ordering::Relaxed);
                false
            });
            let mut stream = SslStream::new(ssl, wire).map_err(config_error)?;
            if let Err(e) = stream.connect() {
                if certificate_offered.load(Ordering::Relaxed) {
                    return Err(certificate_refused());
                }
                return Err(map_handshake_error(e));
            }
            let ssl = stream.ssl();
            // Belt and braces: the session must rest on the PSK alone.
            if ssl.peer_certificate().is_some() {
                return Err(certificate_refused());
            }
            if ssl.version2() == Some(SslVersion::TLS1_3) && !ssl.session_reused() {
                return Err(Error::ServerNotAuthorized {
                    reason: "the TLS 1.3 handshake did not use the PSK".into(),
                });
            }
            log::debug!(
                "TLS-PSK handshake as {:?}: {} {}",
                self.identity,
                ssl.version_str(),
                ssl.current_cipher().map(|c| c.name()).unwrap_or("?")
            );
            Ok(Box::new(PskSession(stream)))
        }
    }

    fn certificate_refused() -> Error {
        Error::ServerNotAuthorized {
            reason: "the server authenticated with a certificate instead of the PSK; with \
                     PPSK-based RSPF (TS-0003 8.3.2.1, RFC 7030 3.3.3) only the PSK can \
                     authenticate the MEF, so the handshake was refused"
                .into(),
        }
    }

    /// A failed PSK handshake. From the client's side a wrong Kpm, an unknown KpmID and a
    /// server without (this) PSK look alike (an alert, or a closed connection), so the error
    /// names all of them; see `crate::error` for its class.
    fn map_handshake_error(e: openssl::ssl::Error) -> Error {
        match handshake_failure_detail(e) {
            Err(e) => e,
            Ok(detail) => Error::Tls {
                reason: format!(
                    "TLS-PSK handshake failed ({detail}): the server did not accept the PSK \
                         (unknown KpmID or a Kpm that does not match the MEF's) or offers no \
                         TLS-PSK cipher suite"
                ),
                source: None,
            },
        }
    }

    /// What a failed OpenSSL handshake says, for both OpenSSL stacks (TLS-PSK and the ts0003
    /// profile): `Err` when it is a timeout or an I/O error (already mapped), else the reasons
    /// OpenSSL gives, or what the absence of any means.
    pub(crate) fn handshake_failure_detail(
        e: openssl::ssl::Error,
    ) -> std::result::Result<String, Error> {
        if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE {
            // A blocking socket only "wants" more when its timeout expired.
            return Err(Error::Timeout {
                phase: "the TLS handshake".into(),
            });
        }
        let code = e.code();
        match e.into_io_error() {
            Ok(io) => Err(handshake_io_error(io)),
            Err(e) => Ok(e
                .ssl_error()
                .map(|stack| {
                    stack
                        .errors()
                        .iter()
                        .filter_map(|x| x.reason())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| {
                    if code == ErrorCode::SYSCALL || code == ErrorCode::ZERO_RETURN {
                        // No alert, no OS error: the peer just closed the connection.
                        "the server closed the connection during the handshake".to_string()
                    } else {
                        format!("OpenSSL error code {}", code.as_raw())
                    }
                })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_identities_and_short_keys() {
        let e = PskCredential::new("", vec![7u8; 16]).unwrap_err();
        assert_eq!(e.class(), crate::ErrorClass::BadArguments);
        assert!(PskCredential::new("id", vec![7u8; 15]).is_err());
        assert!(PskCredential::new("id", Vec::new()).is_err());
        assert!(PskCredential::new("id", vec![7u8; 65]).is_err());
        assert!(PskCredential::new("a\0b", vec![7u8; 16]).is_err());
        assert!(PskCredential::new("x".repeat(129), vec![7u8; 16]).is_err());
        let ok = PskCredential::new("kpm-01", vec![7u8; 16]).unwrap();
        assert_eq!((ok.identity(), ok.key()), ("kpm-01", &[7u8; 16][..]));
    }

    #[test]
    fn never_prints_the_key() {
        let c = PskCredential::from_hex("kpm-01", "00112233445566778899aabbccddeeff").unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("kpm-01"));
        assert!(!shown.contains("00112233"), "{shown}");
        assert!(!shown.contains("[0, 17"), "{shown}");
        let e = PskCredential::from_hex("kpm-01", "00112233445566778899aabbccddeefz").unwrap_err();
        assert!(!e.to_string().contains("0011"), "{e}");
    }

    #[test]
    fn decodes_hex() {
        assert_eq!(&decode_hex(" 0a:FF01 \n").unwrap()[..], &[0x0a, 0xff, 0x01]);
        assert!(decode_hex("abc").is_err());
        assert!(decode_hex("").is_err());
        assert!(decode_hex("zz").is_err());
    }
}
