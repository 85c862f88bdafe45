//! TLS for EST: the rustls client configuration (ring provider, TLS 1.2 and 1.3), the EST
//! server authorisation policy of RFC 7030 3.6 / 3.6.1, and client authentication with a
//! [`PrivateKey`] that may live outside this process.
//!
//! - Trust is explicit only (RFC 7030 3.6.1, "Explicit TA database"): the caller's trust anchors,
//!   never the system's or a bundled set.
//! - SNI is always sent (TS-0003 10.2.1, RFC 6066 section 3) when the base URI's host is a DNS
//!   name. For an IP-literal host none is sent: RFC 6066 section 3 forbids literal IP addresses
//!   in the HostName, and rustls omits the extension then, which is the correct behaviour.
//! - [`EstServerVerifier`] replaces rustls' stock verifier, which requires serverAuth whenever an
//!   EKU extension is present and so rejects a server certificate whose only EKU is id-kp-cmcRA,
//!   although RFC 7030 3.6.1 authorises exactly that certificate.

use crate::error::{Error, Result};
use crate::keys::{KeyAlgorithm, PrivateKey};
use crate::uri::EstUri;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::TrustAnchor;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureAlgorithm,
    SignatureScheme,
};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Arc;
use webpki::{EndEntityCert, KeyPurposeId, KeyPurposeIdIter};

/// id-kp-serverAuth (RFC 5280 4.2.1.12), DER contents of the OID.
const KP_SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-kp-cmcRA 1.3.6.1.5.5.7.3.28 (RFC 6402 2.10), DER contents of the OID.
const KP_CMC_RA: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x1c];

/// The crypto provider of every EST connection: ring (see ARCHITECTURE.md, "TLS").
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client certificate chain and the key that signs for it, for mutual TLS (TS-0003 8.3.6.2.3
/// re-provisioning authenticates with the current credentials; initial provisioning may use a
/// manufacturer certificate).
#[derive(Clone)]
pub struct ClientIdentity {
    /// The client certificate first, then any intermediates (DER).
    pub chain: Vec<CertificateDer<'static>>,
    /// The key of the first certificate; it may be backed by an HSM or a C callback.
    pub key: Arc<dyn PrivateKey>,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key's own Debug is the implementation's business; show only its algorithm.
        f.debug_struct("ClientIdentity")
            .field("chain_len", &self.chain.len())
            .field("key_algorithm", &self.key.algorithm())
            .finish()
    }
}

/// Which TLS stack and parameters the certificate-authenticated connections use.
///
/// - [`TlsProfile::Modern`] (the default): rustls, TLS 1.3 preferred and TLS 1.2 allowed, AEAD
///   suites only. This deviates from TS-0003 10.2.1 ("TLS v1.2 shall be used") and 10.2.3 (the
///   mandatory TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, a CBC suite rustls does not implement):
///   TLS 1.3 and AEAD suites avoid the CBC padding-oracle and MAC-then-encrypt weaknesses
///   (RFC 7457 2.1, RFC 9325 4.2), and every TLS 1.2 server with an ECDHE-ECDSA AEAD suite
///   still interoperates.
/// - [`TlsProfile::Ts0003`]: the profile of TS-0003 10.2.1 / 10.2.3, through OpenSSL (cargo
///   feature `psk`): TLS 1.2 only, ECDHE_ECDSA key exchange only, the mandatory
///   TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 included. For a MEF that offers nothing else.
///   Server authentication is the same [`EstServerVerifier`]. See `crate::ts0003`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TlsProfile {
    /// rustls, TLS 1.3 and 1.2, AEAD suites (the default).
    #[default]
    Modern,
    /// TS-0003 10.2.1 / 10.2.3: TLS 1.2 only, ECDHE-ECDSA suites, OpenSSL.
    Ts0003,
}

impl TlsProfile {
    /// The profile's name as the CLI and the Python binding spell it.
    pub fn name(self) -> &'static str {
        match self {
            TlsProfile::Modern => "modern",
            TlsProfile::Ts0003 => "ts0003",
        }
    }
}

impl std::str::FromStr for TlsProfile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "modern" => Ok(TlsProfile::Modern),
            "ts0003" => Ok(TlsProfile::Ts0003),
            other => Err(Error::invalid(
                "tls profile",
                format!("unknown TLS profile {other:?} (expected \"modern\" or \"ts0003\")"),
            )),
        }
    }
}

/// Checks that a client identity can be used: a parsable first certificate holding the key's
/// public key. Both TLS stacks call it before any I/O.
pub(crate) fn check_client_identity(identity: &ClientIdentity) -> Result<()> {
    let ee = identity
        .chain
        .first()
        .ok_or_else(|| Error::invalid("client identity", "the certificate chain is empty"))?;
    let cert = crate::x509::parse_certificate(ee).map_err(|e| {
        Error::invalid(
            "client identity",
            format!("the client certificate cannot be parsed: {e}"),
        )
    })?;
    if !crate::x509::has_spki(&cert, identity.key.public_key_info()) {
        return Err(Error::invalid(
            "client identity",
            "the client certificate's public key is not the key's public key",
        ));
    }
    Ok(())
}

/// Builds the rustls client configuration for talking EST to `base`.
///
/// `trust_anchors` is the explicit TA database (RFC 7030 3.6.1); it must not be empty. With an
/// `identity` the client authenticates with its certificate whenever the server asks.
pub fn client_config(
    trust_anchors: &[CertificateDer<'static>],
    identity: Option<ClientIdentity>,
    base: &EstUri,
) -> Result<Arc<ClientConfig>> {
    let verifier = Arc::new(EstServerVerifier::new(trust_anchors, base)?);
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Tls {
            reason: format!("cannot configure TLS: {e}"),
            source: None,
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(identity) => {
            builder.with_client_cert_resolver(Arc::new(ClientCertResolver::new(identity)?))
        }
        None => builder.with_no_client_auth(),
    };
    // TS-0003 10.2.1: SNI always (rustls leaves it out by itself for IP literals, RFC 6066 3).
    config.enable_sni = true;
    Ok(Arc::new(config))
}

// ---------------------------------------------------------------------------------------------
// Server authorisation (RFC 7030 3.6, 3.6.1)
// ---------------------------------------------------------------------------------------------

/// Why the server certificate was refused; carried through rustls inside
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))` and recovered by
/// [`map_rustls_error`] into [`Error::ServerNotAuthorized`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub(crate) struct ServerAuthFailure {
    /// What failed, for the user.
    pub reason: String,
}

impl From<String> for ServerAuthFailure {
    fn from(reason: String) -> ServerAuthFailure {
        ServerAuthFailure { reason }
    }
}

/// A signing failure of the client key during the handshake; carried through rustls inside
/// `rustls::Error::Other(..)` and recovered by [`map_rustls_error`] into [`Error::Key`], with
/// the key's own error as its source.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub(crate) struct SigningFailure {
    /// What the key reported (never key material: see [`PrivateKey::sign`]).
    pub reason: String,
    /// What failed underneath (a token's or a C callback's error), shared: rustls errors are
    /// `Clone`.
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// A shared source, as a link of an error chain: it shows the shared error and leads to it,
/// so a caller can still find (downcast) the error itself.
#[derive(Debug)]
struct SharedSource(Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The EST server certificate verifier (RFC 7030 3.6 and 3.6.1).
///
/// 1. The chain must verify to one of the explicit trust anchors (webpki path building,
///    validity period, signatures, basic constraints, name constraints).
/// 2. The end-entity certificate's EKU, when present, must include id-kp-serverAuth or
///    id-kp-cmcRA. Every intermediate CA certificate of the verified path whose keyUsage is
///    present asserts keyCertSign (RFC 5280 6.1.4 (n); webpki does not check keyUsage).
/// 3. Authorisation: the certificate matches the base URI's host (RFC 6125 6.4, via webpki's
///    subjectAltName matching) OR carries id-kp-cmcRA (RFC 7030 3.6.1).
///
/// Handshake signatures are checked with the ring provider's algorithms.
pub struct EstServerVerifier {
    roots: Vec<TrustAnchor<'static>>,
    expected: ServerName<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for EstServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EstServerVerifier")
            .field("trust_anchors", &self.roots.len())
            .field("expected", &self.expected)
            .finish()
    }
}

impl EstServerVerifier {
    /// A verifier for the server of `base` trusting exactly `trust_anchors` (non-empty).
    pub fn new(trust_anchors: &[CertificateDer<'static>], base: &EstUri) -> Result<Self> {
        if trust_anchors.is_empty() {
            return Err(Error::invalid(
                "trust anchors",
                "no trust anchor given: EST needs an explicit TA database (RFC 7030 3.6.1)",
            ));
        }
        let roots = trust_anchors
            .iter()
            .enumerate()
            .map(|(i, der)| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|ta| ta.to_owned())
                    .map_err(|e| {
                        Error::invalid(
                            "trust anchors",
                            format!("trust anchor #{i} is not a usable certificate: {e}"),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EstServerVerifier {
            roots,
            expected: base.server_name(),
            algorithms: provider().signature_verification_algorithms,
        })
    }

    /// Runs the policy; the error is the user-facing reason.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> std::result::Result<(), ServerAuthFailure> {
        if server_name != &self.expected {
            // The connector only ever connects to the base URI's authority (redirects elsewhere
            // are refused); anything else is a bug or an attack, refuse it.
            return Err(format!(
                "connected as {} but the EST base URI names {}",
                name_text(server_name),
                name_text(&self.expected)
            )
            .into());
        }
        let ee = EndEntityCert::try_from(end_entity)
            .map_err(|e| format!("the server certificate cannot be parsed: {e}"))?;
        let eku = EstEku::default();
        let path = ee
            .verify_for_usage(
                self.algorithms.all,
                &self.roots,
                intermediates,
                now,
                &eku,
                None,
                None,
            )
            .map_err(|e| chain_error_text(&e, &eku))?;
        for (i, ca) in path.intermediate_certificates().enumerate() {
            check_key_cert_sign(&ca.der())
                .map_err(|e| format!("intermediate CA certificate #{} {e}", i + 1))?;
        }

        match ee.verify_is_valid_for_subject_name(&self.expected) {
            Ok(()) => Ok(()),
            // RFC 7030 3.6.1: an RA certificate is authorised whatever its names.
            Err(_) if eku.cmc_ra.get() => Ok(()),
            Err(e) => Err(name_error_text(&e, &self.expected).into()),
        }
    }
}

impl ServerCertVerifier for EstServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, server_name, now)
            .map(|()| ServerCertVerified::assertion())
            .map_err(|failure| {
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                    failure,
                ))))
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// RFC 5280 6.1.4 (n): a CA certificate that signed the next one in the path must, if it has a
/// keyUsage extension, assert keyCertSign. The error completes "intermediate CA certificate #N".
/// Why a CA certificate of the path may not sign certificates.
#[derive(Debug, thiserror::Error)]
enum KeyCertSignProblem {
    #[error("does not parse: {0}")]
    Unparsable(#[source] der::Error),
    #[error("has a keyUsage without keyCertSign (RFC 5280 6.1.4 (n))")]
    NoKeyCertSign,
    #[error("has a malformed keyUsage: {0}")]
    MalformedKeyUsage(#[source] der::Error),
}

fn check_key_cert_sign(der: &[u8]) -> std::result::Result<(), KeyCertSignProblem> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).map_err(KeyCertSignProblem::Unparsable)?;
    match cert
        .tbs_certificate()
        .get_extension::<x509_cert::ext::pkix::KeyUsage>()
    {
        Ok(None) => Ok(()),
        Ok(Some((_, ku))) if ku.key_cert_sign() => Ok(()),
        Ok(Some(_)) => Err(KeyCertSignProblem::NoKeyCertSign),
        Err(e) => Err(KeyCertSignProblem::MalformedKeyUsage(e)),
    }
}

/// The EKU policy of an EST server certificate: no EKU extension, or one that includes
/// serverAuth or cmcRA. Records what it saw for the authorisation step and for messages.
/// webpki calls it for the end-entity certificate only, once per verification.
#[derive(Default)]
struct EstEku {
    cmc_ra: Cell<bool>,
    present: RefCell<Vec<String>>,
}

impl webpki::ExtendedKeyUsageValidator for EstEku {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> std::result::Result<(), webpki::Error> {
        let server_auth = KeyPurposeId::new(KP_SERVER_AUTH);
        let cmc_ra = KeyPurposeId::new(KP_CMC_RA);
        let (mut empty, mut ok) = (true, false);
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            empty = false;
            if id == cmc_ra {
                self.cmc_ra.set(true);
                ok = true;
            } else if id == server_auth {
                ok = true;
            }
            self.present.borrow_mut().push(
                id.to_decoded_oid()
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join("."),
            );
            present.push(id.to_decoded_oid());
        }
        if empty || ok {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFoundContext(
                webpki::RequiredEkuNotFoundContext {
                    required: webpki::KeyUsage::server_auth(),
                    present,
                },
            ))
        }
    }
}

/// What a certificate-refusing alert adds: the properties of a client certificate that TLS
/// servers commonly refuse (issue #14: a bare alert left newcomers guessing). RFC 5280 4.1.2.1
/// (v3 for extensions), 4.2.1.12 (EKU), 4.2.1.3 (keyUsage); TS-0003 10.1.1.1 (P-256). The
/// renewal module reads it to tell a refused identity from a broken path.
pub(crate) const CLIENT_CERT_HINT: &str =
    " (the server refused the client certificate, or none was sent; \
    servers commonly refuse a certificate that is X.509 version 1 (openssl x509 -req without \
    -extfile), has an extendedKeyUsage without clientAuth, a keyUsage without digitalSignature, \
    a key other than ECDSA P-256, is expired or not yet valid, does not chain to the CA the \
    server trusts for clients, or, on a MEF, is not registered for an identity)";

/// The TLS name of an alert (RFC 8446 6 / RFC 5246 7.2: `bad_certificate`), not its Rust name.
fn alert_name(alert: &rustls::AlertDescription) -> String {
    let debug = format!("{alert:?}");
    if debug.contains('(') {
        return format!("number {}", u8::from(*alert));
    }
    // CamelCase to snake_case, a run of capitals being one word (UnknownCA -> unknown_ca).
    let chars: Vec<char> = debug.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let starts_word = i > 0
            && c.is_ascii_uppercase()
            && (chars[i - 1].is_ascii_lowercase()
                || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
        if starts_word {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// A precise reason for a chain verification failure.
fn chain_error_text(e: &webpki::Error, eku: &EstEku) -> String {
    use webpki::Error as W;
    match e {
        W::UnknownIssuer => "the server certificate does not chain to any configured trust \
                             anchor (unknown issuer)"
            .into(),
        W::CertExpired { time, not_after } => format!(
            "a certificate of the server's chain expired at {} (now {})",
            utc_text(*not_after),
            utc_text(*time)
        ),
        W::CertNotValidYet { time, not_before } => format!(
            "a certificate of the server's chain is not valid before {} (now {})",
            utc_text(*not_before),
            utc_text(*time)
        ),
        W::RequiredEkuNotFoundContext(_) => format!(
            "the server certificate's extended key usage ({}) allows neither serverAuth nor \
             id-kp-cmcRA (RFC 7030 3.6.1)",
            eku.present.borrow().join(", ")
        ),
        W::CaUsedAsEndEntity => "the server presented a CA certificate as its own".into(),
        // The issuer's name matched a trust anchor or intermediate, its key did not.
        W::InvalidSignatureForPublicKey => "a signature in the server's certificate chain is \
                                            invalid: a certificate names a trusted CA as its \
                                            issuer but was not signed by its key (another CA of \
                                            the same name?)"
            .into(),
        other => format!("the server certificate chain is invalid: {other}"),
    }
}

/// A precise reason for a name mismatch without id-kp-cmcRA.
fn name_error_text(e: &webpki::Error, expected: &ServerName<'_>) -> String {
    let presented = match e {
        webpki::Error::CertNotValidForName(ctx) if !ctx.presented.is_empty() => {
            format!("it names {}", ctx.presented.join(", "))
        }
        webpki::Error::CertNotValidForName(_) => "it has no subjectAltName".to_string(),
        other => other.to_string(),
    };
    format!(
        "the server certificate is not valid for {} ({presented}) and does not carry \
         id-kp-cmcRA (RFC 7030 3.6.1)",
        name_text(expected)
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (proleptic Gregorian, days-from-civil inverse).
fn utc_text(t: UnixTime) -> String {
    let secs = t.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------------
// Client authentication with a PrivateKey
// ---------------------------------------------------------------------------------------------

/// Serves the one client identity; rustls asks it whenever the server requests a certificate.
#[derive(Debug)]
struct ClientCertResolver {
    certified: Arc<CertifiedKey>,
}

impl ClientCertResolver {
    fn new(identity: ClientIdentity) -> Result<Self> {
        check_client_identity(&identity)?;
        let key = Arc::new(KeyAdapter {
            key: identity.key.clone(),
        });
        Ok(ClientCertResolver {
            certified: Arc::new(CertifiedKey::new(identity.chain, key)),
        })
    }
}

impl ResolvesClientCert for ClientCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        // Always offer it: if the server's schemes exclude the key's, choose_scheme declines
        // and rustls sends an empty Certificate, which the server then judges.
        Some(self.certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// [`PrivateKey`] as a rustls [`SigningKey`].
struct KeyAdapter {
    key: Arc<dyn PrivateKey>,
}

impl fmt::Debug for KeyAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyAdapter")
            .field("algorithm", &self.key.algorithm())
            .finish()
    }
}

/// The TLS signature scheme a key algorithm signs with.
fn scheme_for(alg: KeyAlgorithm) -> SignatureScheme {
    match alg {
        KeyAlgorithm::EcdsaP256Sha256 => SignatureScheme::ECDSA_NISTP256_SHA256,
        KeyAlgorithm::EcdsaP384Sha384 => SignatureScheme::ECDSA_NISTP384_SHA384,
        KeyAlgorithm::Ed25519 => SignatureScheme::ED25519,
    }
}

impl SigningKey for KeyAdapter {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = scheme_for(self.key.algorithm());
        offered.contains(&scheme).then(|| {
            Box::new(KeySigner {
                key: self.key.clone(),
                scheme,
            }) as Box<dyn Signer>
        })
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.key.public_key_info()))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.key.algorithm() {
            KeyAlgorithm::EcdsaP256Sha256 | KeyAlgorithm::EcdsaP384Sha384 => {
                SignatureAlgorithm::ECDSA
            }
            KeyAlgorithm::Ed25519 => SignatureAlgorithm::ED25519,
        }
    }
}

/// Signs the handshake transcript (TLS 1.3 CertificateVerify content or the TLS 1.2 handshake
/// messages) with [`PrivateKey::sign`], which hashes the whole message itself.
struct KeySigner {
    key: Arc<dyn PrivateKey>,
    scheme: SignatureScheme,
}

impl fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySigner")
            .field("scheme", &self.scheme)
            .finish()
    }
}

impl Signer for KeySigner {
    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, rustls::Error> {
        crate::keys::sign_checked(self.key.as_ref(), message).map_err(|e| {
            let (reason, source) = match e {
                Error::Key { reason, source } => (reason, source.map(Arc::from)),
                other => {
                    let reason = other.to_string();
                    let source: Arc<dyn std::error::Error + Send + Sync> = Arc::new(other);
                    (reason, Some(source))
                }
            };
            rustls::Error::Other(OtherError(Arc::new(SigningFailure {
                reason: format!("the client key failed to sign the TLS handshake: {reason}"),
                source,
            })))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

// ---------------------------------------------------------------------------------------------
// Error mapping
// ---------------------------------------------------------------------------------------------

/// Maps a rustls error to this crate's error, recovering the reasons our verifier and signer
/// put inside it.
pub(crate) fn map_rustls_error(e: &rustls::Error) -> Error {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            match inner.downcast_ref::<ServerAuthFailure>() {
                Some(f) => Error::ServerNotAuthorized {
                    reason: f.reason.clone(),
                },
                None => Error::ServerNotAuthorized {
                    reason: inner.to_string(),
                },
            }
        }
        rustls::Error::InvalidCertificate(other) => Error::ServerNotAuthorized {
            reason: format!("invalid server certificate: {other}"),
        },
        rustls::Error::Other(OtherError(inner)) => match inner.downcast_ref::<SigningFailure>() {
            Some(f) => Error::Key {
                reason: f.reason.clone(),
                source: f
                    .source
                    .clone()
                    .map(|s| Box::new(SharedSource(s)) as crate::error::BoxError),
            },
            None => Error::Tls {
                reason: inner.to_string(),
                source: Some(Box::new(SharedSource(inner.clone()))),
            },
        },
        rustls::Error::AlertReceived(alert) => {
            use rustls::AlertDescription as A;
            let hint = match alert {
                A::BadCertificate
                | A::UnknownCA
                | A::CertificateRequired
                | A::CertificateUnknown
                | A::CertificateExpired
                | A::CertificateRevoked
                | A::AccessDenied
                | A::UnsupportedCertificate => CLIENT_CERT_HINT,
                // What a TS-0003 10.2.3 server that only offers CBC suites (or only TLS 1.2
                // with them) answers the modern profile, which has no CBC suite.
                A::HandshakeFailure | A::InsufficientSecurity | A::ProtocolVersion => {
                    " (no TLS version or cipher suite in common: the modern TLS profile offers \
                     TLS 1.3 and TLS 1.2 AEAD suites only; a server restricted to TS-0003 10.2.3 \
                     suites such as TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 needs the ts0003 \
                     TLS profile)"
                }
                _ => "",
            };
            // The alert is named as TLS names it; rustls's text ("received fatal alert:
            // UnknownCA") would only repeat it in a cause line, so it is not kept.
            Error::Tls {
                reason: format!("the server sent the TLS alert {}{hint}", alert_name(alert)),
                source: None,
            }
        }
        other => Error::Tls {
            reason: other.to_string(),
            source: Some(Box::new(other.clone())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_are_named_as_tls_names_them() {
        use rustls::AlertDescription as A;
        assert_eq!(alert_name(&A::BadCertificate), "bad_certificate");
        assert_eq!(alert_name(&A::UnknownCA), "unknown_ca");
        assert_eq!(alert_name(&A::CertificateRequired), "certificate_required");
        assert_eq!(alert_name(&A::from(250)), "number 250");
        let text = map_rustls_error(&rustls::Error::AlertReceived(A::BadCertificate)).to_string();
        assert!(
            text.contains("alert bad_certificate") && text.contains("version 1"),
            "{text}"
        );
    }

    #[test]
    fn utc_rendering() {
        assert_eq!(
            utc_text(UnixTime::since_unix_epoch(std::time::Duration::ZERO)),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            utc_text(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                951_782_400 + 3_723
            ))),
            "2000-02-29T01:02:03Z"
        );
    }

    #[test]
    fn eku_oid_constants() {
        assert_eq!(
            KeyPurposeId::new(KP_CMC_RA).to_decoded_oid(),
            vec![1, 3, 6, 1, 5, 5, 7, 3, 28]
        );
        assert_eq!(
            KeyPurposeId::new(KP_SERVER_AUTH).to_decoded_oid(),
            webpki::KeyUsage::SERVER_AUTH_REPR.to_vec()
        );
    }

    #[test]
    fn empty_trust_anchors_refused() {
        let base = EstUri::parse("https://mef.example.com/").unwrap();
        assert!(matches!(
            client_config(&[], None, &base),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            client_config(&[CertificateDer::from(vec![0x30, 0x00])], None, &base),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn verifier_reasons_survive_rustls() {
        let e = rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            ServerAuthFailure {
                reason: "because".into(),
            },
        ))));
        match map_rustls_error(&e) {
            Error::ServerNotAuthorized { reason } => assert_eq!(reason, "because"),
            other => panic!("{other:?}"),
        }
        #[derive(Debug, thiserror::Error)]
        #[error("the token is gone")]
        struct Gone;
        let e = rustls::Error::Other(OtherError(Arc::new(SigningFailure {
            reason: "hsm gone".into(),
            source: Some(Arc::new(Gone)),
        })));
        let mapped = map_rustls_error(&e);
        assert!(matches!(&mapped, Error::Key { reason, .. } if reason == "hsm gone"));
        // The key's own error stays reachable (downcastable) in the chain.
        let mut chain = std::error::Error::source(&mapped);
        let mut found = false;
        while let Some(link) = chain {
            found |= link.downcast_ref::<Gone>().is_some();
            chain = link.source();
        }
        assert!(found, "{mapped:?}");
        // Other TLS failures keep rustls's error as their source.
        let e = rustls::Error::DecryptError;
        let mapped = map_rustls_error(&e);
        let source = std::error::Error::source(&mapped).expect("rustls's error is kept");
        assert_eq!(source.downcast_ref::<rustls::Error>(), Some(&e));
    }
}
