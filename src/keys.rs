//! Key pairs: the [`PrivateKey`] trait through which every signature of this library is made
//! (TLS client authentication and the CSR), so a private key can live in an HSM, a TPM, a secure
//! element or a C caller's callback and never pass through this library's memory; and
//! [`SoftwareKey`], the in-process implementation on ring.
//!
//! TS-0003 10.1.1.1: certificates use id-ecPublicKey on secp256r1 with SHA-256, so
//! [`KeyAlgorithm::EcdsaP256Sha256`] is the default everywhere.

use crate::error::Result;
use zeroize::Zeroizing;

/// A key type together with the signature algorithm it signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
// Not #[non_exhaustive]: the C ABI (mef_key_type) and the CLI map every
// algorithm one-to-one; a new one must fail to compile there until it is mapped.
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (TS-0003 10.1.1.1; the default).
    #[default]
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384Sha384,
    /// Ed25519 (RFC 8410).
    Ed25519,
}

/// A private key this library can ask to sign, wherever it lives.
///
/// Implementations must be usable from the thread running a procedure; the library never calls
/// a key from two threads at once for one procedure.
pub trait PrivateKey: Send + Sync + std::fmt::Debug {
    /// The key type and signature algorithm.
    fn algorithm(&self) -> KeyAlgorithm;

    /// The public key as a DER SubjectPublicKeyInfo.
    fn public_key_info(&self) -> &[u8];

    /// Signs `message` (the whole message; the implementation hashes it with the algorithm's
    /// hash). ECDSA signatures are DER Ecdsa-Sig-Value, as X.509 and TLS carry them.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;

    /// The PKCS #8 DER of the key, for stores that persist software keys. Keys held outside
    /// the process return `None` (the default).
    fn pkcs8_der(&self) -> Option<Zeroizing<Vec<u8>>> {
        None
    }

    /// The RFC 7512 PKCS #11 URI of a key held in a token, for stores that record where the
    /// key is (`key.uri`) instead of the key. Other keys return `None` (the default).
    fn pkcs11_uri(&self) -> Option<String> {
        None
    }
}

/// Whether `key` is the key of `certificate` (DER): the one check, made wherever a key and a
/// certificate are paired (a client identity before any I/O, the store before it installs or
/// loads credentials, the C API's setters). A certificate that does not parse is a bad argument.
pub fn is_key_of(key: &dyn PrivateKey, certificate: &[u8]) -> Result<bool> {
    let cert = crate::x509::parse_certificate(certificate).map_err(|e| {
        crate::Error::invalid(
            "certificate",
            format!("the certificate cannot be parsed: {e}"),
        )
    })?;
    Ok(crate::x509::has_spki(&cert, key.public_key_info()))
}

use crate::error::Error;
use crate::proto::csrattrs::{CsrRequirements, Curve, HashAlg, KeyRequirement};
use der::asn1::{Any, BitString, ObjectIdentifier};
use der::{Decode, Encode};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

// The OIDs (one spelling, proto::oids) as der's type.
use crate::proto::oids;
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap(oids::EC_PUBLIC_KEY);
const OID_SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap(oids::SECP256R1);
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap(oids::SECP384R1);
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap(oids::ED25519);
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap(oids::RSA_ENCRYPTION);

/// Why a key that signs outside this library's own code failed its check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyCheckError {
    /// The public key is not a DER SubjectPublicKeyInfo.
    #[error("the public key is not a DER SubjectPublicKeyInfo")]
    NotSpki(#[source] der::Error),
    /// The public key is of another type than the key says it is.
    #[error("the public key is not a {0} key")]
    WrongAlgorithm(KeyAlgorithm),
    /// The signature does not verify under the key's own public key.
    #[error("the key returned a signature that does not verify under its public key")]
    BadSignature,
}

/// Whether `spki` is a DER SubjectPublicKeyInfo of `algorithm`'s key type (RFC 5480 for EC,
/// RFC 8410 for Ed25519). The one check for keys held outside this library (C callbacks,
/// PKCS #11 tokens, a caller's own [`PrivateKey`]).
pub fn check_public_key(spki: &[u8], algorithm: KeyAlgorithm) -> Result<(), KeyCheckError> {
    let info = SubjectPublicKeyInfoOwned::from_der(spki).map_err(KeyCheckError::NotSpki)?;
    let curve = info
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    let ok = match algorithm {
        KeyAlgorithm::EcdsaP256Sha256 => {
            info.algorithm.oid == OID_EC_PUBLIC_KEY && curve == Some(OID_SECP256R1)
        }
        KeyAlgorithm::EcdsaP384Sha384 => {
            info.algorithm.oid == OID_EC_PUBLIC_KEY && curve == Some(OID_SECP384R1)
        }
        KeyAlgorithm::Ed25519 => info.algorithm.oid == OID_ED25519,
    };
    if ok {
        Ok(())
    } else {
        Err(KeyCheckError::WrongAlgorithm(algorithm))
    }
}

/// Whether `signature` over `message` verifies under `key`'s own public key. A wrong signature
/// would only surface as the server's rejection (of the CSR or of the handshake); checking it
/// on the device names the culprit.
pub fn check_signature(
    key: &dyn PrivateKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), KeyCheckError> {
    check_public_key(key.public_key_info(), key.algorithm())?;
    verify_own_signature(key, message, signature)
}

/// [`check_signature`] without its public-key check, for [`sign_checked`], which made that check
/// before signing.
fn verify_own_signature(
    key: &dyn PrivateKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), KeyCheckError> {
    let public =
        spki_public_key_bytes(key.public_key_info()).map_err(|_| KeyCheckError::BadSignature)?;
    let algorithm: &dyn signature::VerificationAlgorithm = match key.algorithm() {
        KeyAlgorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
        KeyAlgorithm::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
        KeyAlgorithm::Ed25519 => &signature::ED25519,
    };
    signature::UnparsedPublicKey::new(algorithm, public)
        .verify(message, signature)
        .map_err(|_| KeyCheckError::BadSignature)
}

/// Signs `message` with `key` and checks the result ([`check_public_key`],
/// [`check_signature`]): every signature of a procedure (the TLS handshake and the CSR) goes
/// through here, whichever [`PrivateKey`] made it.
pub(crate) fn sign_checked(key: &dyn PrivateKey, message: &[u8]) -> Result<Vec<u8>> {
    check_public_key(key.public_key_info(), key.algorithm()).map_err(key_check_error)?;
    let signature = key.sign(message)?;
    verify_own_signature(key, message, &signature).map_err(key_check_error)?;
    Ok(signature)
}

fn key_check_error(e: KeyCheckError) -> Error {
    Error::key(describe_check(&e), Some(Box::new(e)))
}

/// The check's text and its cause, for [`Error::Key`]'s reason.
fn describe_check(e: &KeyCheckError) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl KeyAlgorithm {
    /// A short human-readable name, for messages ("P-256 with SHA-256").
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256Sha256 => "ECDSA P-256 with SHA-256",
            KeyAlgorithm::EcdsaP384Sha384 => "ECDSA P-384 with SHA-384",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The ring key pair behind a [`SoftwareKey`].
enum RingKey {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A key pair held in this process, on ring.
///
/// The PKCS #8 encoding is kept (zeroized on drop) so a [`crate::store::CredentialStore`] can
/// persist it. `Debug` shows the algorithm only, never key material.
pub struct SoftwareKey {
    algorithm: KeyAlgorithm,
    key: RingKey,
    spki: Vec<u8>,
    pkcs8: Zeroizing<Vec<u8>>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn key_error(reason: impl Into<String>) -> Error {
    Error::Key {
        reason: reason.into(),
        source: None,
    }
}

fn ecdsa_signing_alg(algorithm: KeyAlgorithm) -> Option<&'static signature::EcdsaSigningAlgorithm> {
    match algorithm {
        // ASN.1 (DER Ecdsa-Sig-Value) signatures: what X.509, PKCS #10 and TLS carry.
        KeyAlgorithm::EcdsaP256Sha256 => Some(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        KeyAlgorithm::EcdsaP384Sha384 => Some(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        KeyAlgorithm::Ed25519 => None,
    }
}

/// The DER SubjectPublicKeyInfo for a raw public key (RFC 5480 for EC, RFC 8410 for Ed25519).
pub(crate) fn encode_spki(algorithm: KeyAlgorithm, public_key: &[u8]) -> Result<Vec<u8>> {
    let (oid, parameters) = match algorithm {
        KeyAlgorithm::EcdsaP256Sha256 => (OID_EC_PUBLIC_KEY, Some(OID_SECP256R1)),
        KeyAlgorithm::EcdsaP384Sha384 => (OID_EC_PUBLIC_KEY, Some(OID_SECP384R1)),
        // RFC 8410 3: the parameters MUST be absent.
        KeyAlgorithm::Ed25519 => (OID_ED25519, None),
    };
    let parameters = parameters
        .map(|curve| Any::encode_from(&curve))
        .transpose()
        .map_err(|e| key_error(format!("cannot encode the key's algorithm identifier: {e}")))?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid, parameters },
        subject_public_key: BitString::from_bytes(public_key)
            .map_err(|e| key_error(format!("cannot encode the public key: {e}")))?,
    };
    spki.to_der()
        .map_err(|e| key_error(format!("cannot encode the SubjectPublicKeyInfo: {e}")))
}

/// The key algorithm a PKCS #8 PrivateKeyInfo declares.
fn pkcs8_algorithm(der: &[u8]) -> Result<KeyAlgorithm> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der)
        .map_err(|e| key_error(format!("not a PKCS #8 private key: {e}")))?;
    let oid = info.algorithm.oid;
    if oid == OID_EC_PUBLIC_KEY {
        let curve: ObjectIdentifier = info
            .algorithm
            .parameters
            .ok_or_else(|| key_error("EC private key without a named curve"))?
            .decode_as()
            .map_err(|e| {
                key_error(format!(
                    "EC private key parameters are not a named curve: {e}"
                ))
            })?;
        if curve == OID_SECP256R1 {
            Ok(KeyAlgorithm::EcdsaP256Sha256)
        } else if curve == OID_SECP384R1 {
            Ok(KeyAlgorithm::EcdsaP384Sha384)
        } else {
            Err(Error::Unsupported {
                what: format!("EC keys on curve {curve} (supported: P-256, P-384)"),
            })
        }
    } else if oid == OID_ED25519 {
        Ok(KeyAlgorithm::Ed25519)
    } else if oid == OID_RSA_ENCRYPTION {
        Err(Error::Unsupported {
            what: RSA_UNSUPPORTED.into(),
        })
    } else {
        Err(Error::Unsupported {
            what: format!("private keys of algorithm {oid}"),
        })
    }
}

/// Why an RSA private key is refused, wherever it comes from.
/// It blames the key, which is what the user has to change (issue #14).
const RSA_UNSUPPORTED: &str = "the key is an RSA key, which this client cannot use: TS-0003 \
    10.1.1.1 profiles ECDSA P-256 keys (id-ecPublicKey on secp256r1) and the ring provider has no \
    RSA; make a P-256 key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)";

/// Whether `der` is a PKCS #1 RSAPrivateKey (RFC 8017 A.1.2): a SEQUENCE of a version and eight
/// INTEGERs, then optionally otherPrimeInfos. Only recognised, to say why it is refused.
fn is_pkcs1_rsa_private_key(der_bytes: &[u8]) -> bool {
    use der::{Reader as _, Tagged as _};
    let Ok(seq) = der::asn1::AnyRef::from_der(der_bytes) else {
        return false;
    };
    if seq.tag() != der::Tag::Sequence {
        return false;
    }
    let Ok(mut reader) = der::SliceReader::new(seq.value()) else {
        return false;
    };
    let mut integers = 0;
    while !reader.is_finished() {
        match der::asn1::AnyRef::decode(&mut reader) {
            Ok(a) if a.tag() == der::Tag::Integer && integers < 9 => integers += 1,
            Ok(a) if a.tag() == der::Tag::Sequence && integers == 9 => {} // otherPrimeInfos
            _ => return false,
        }
    }
    integers == 9
}

/// Wraps a SEC1 ECPrivateKey (RFC 5915) in a PKCS #8 PrivateKeyInfo (RFC 5958), which is the
/// only form ring loads. The curve comes from the ECPrivateKey's parameters.
fn sec1_to_pkcs8(sec1_der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let ec = sec1::EcPrivateKey::try_from(sec1_der)
        .map_err(|e| key_error(format!("not a SEC1 EC private key: {e}")))?;
    let curve = ec
        .parameters
        .and_then(|p| p.named_curve())
        .ok_or_else(|| key_error("SEC1 EC private key without a named curve"))?;
    if ec.public_key.is_none() {
        // ring needs the public key to check the pair; it cannot derive it.
        return Err(key_error(
            "SEC1 EC private key without its publicKey field is not supported",
        ));
    }
    let parameters =
        Any::encode_from(&curve).map_err(|e| key_error(format!("cannot encode the curve: {e}")))?;
    let private_key = der::asn1::OctetStringRef::new(sec1_der)
        .map_err(|e| key_error(format!("cannot wrap the SEC1 key: {e}")))?;
    let info = pkcs8::PrivateKeyInfoRef::new(
        x509_cert::spki::AlgorithmIdentifier {
            oid: OID_EC_PUBLIC_KEY,
            parameters: Some(der::asn1::AnyRef::from(&parameters)),
        },
        private_key,
    );
    let mut out = Zeroizing::new(Vec::new());
    info.encode_to_vec(&mut out)
        .map_err(|e| key_error(format!("cannot encode PKCS #8: {e}")))?;
    Ok(out)
}

/// Re-encodes an Ed25519 PKCS #8 as version 1 (no publicKey field), the form of RFC 8410 7
/// that OpenSSL 3.0 reads; ring generates version 2 (RFC 5958), which it refuses.
fn ed25519_pkcs8_v1(der: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(der)
        .map_err(|e| key_error(format!("not a PKCS #8 private key: {e}")))?;
    if info.public_key.is_none() {
        return Ok(Zeroizing::new(der.to_vec()));
    }
    let v1 = pkcs8::PrivateKeyInfoRef::new(info.algorithm, info.private_key);
    let mut out = Zeroizing::new(Vec::new());
    v1.encode_to_vec(&mut out)
        .map_err(|e| key_error(format!("cannot encode PKCS #8: {e}")))?;
    Ok(out)
}

impl SoftwareKey {
    /// Generates a new key pair.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<SoftwareKey> {
        let rng = SystemRandom::new();
        // ring's Document is not zeroized on drop; the copy we keep is.
        let pkcs8 = match ecdsa_signing_alg(algorithm) {
            Some(alg) => EcdsaKeyPair::generate_pkcs8(alg, &rng),
            None => Ed25519KeyPair::generate_pkcs8(&rng),
        }
        .map_err(|_| key_error(format!("{algorithm} key generation failed")))?;
        SoftwareKey::from_checked_pkcs8(algorithm, Zeroizing::new(pkcs8.as_ref().to_vec()))
    }

    /// Loads a PKCS #8 PrivateKeyInfo (DER). EC keys must carry their public key (ring checks
    /// the pair).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SoftwareKey> {
        let algorithm = pkcs8_algorithm(der)?;
        SoftwareKey::from_checked_pkcs8(algorithm, Zeroizing::new(der.to_vec()))
    }

    /// Loads the private key of a /serverkeygen response. RFC 7030 4.4.2 puts a PKCS #8
    /// PrivateKeyInfo in its application/pkcs8 part, but servers built on OpenSSL's
    /// `i2d_PrivateKey` (Cisco libest) send the "traditional" form there: a SEC1 ECPrivateKey
    /// (RFC 5915) is accepted and wrapped into PKCS #8; a PKCS #1 RSAPrivateKey is recognised
    /// and refused like any RSA key. Anything else fails as PKCS #8 does.
    pub fn from_server_key_der(der: &[u8]) -> Result<SoftwareKey> {
        if pkcs8::PrivateKeyInfoRef::try_from(der).is_ok() {
            return SoftwareKey::from_pkcs8_der(der);
        }
        if sec1::EcPrivateKey::try_from(der).is_ok() {
            return SoftwareKey::from_pkcs8_der(&sec1_to_pkcs8(der)?);
        }
        if is_pkcs1_rsa_private_key(der) {
            return Err(Error::Unsupported {
                what: RSA_UNSUPPORTED.into(),
            });
        }
        SoftwareKey::from_pkcs8_der(der)
    }

    /// Loads a PEM private key: PKCS #8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY", RFC 5915).
    /// Other blocks (such as "EC PARAMETERS" written by `openssl ecparam -genkey`) are skipped.
    pub fn from_pem(pem_text: &str) -> Result<SoftwareKey> {
        let blocks =
            pem::parse_many(pem_text).map_err(|e| key_error(format!("malformed PEM: {e}")))?;
        for block in blocks {
            match block.tag() {
                "PRIVATE KEY" => {
                    let der = Zeroizing::new(block.into_contents());
                    return SoftwareKey::from_pkcs8_der(&der);
                }
                "EC PRIVATE KEY" => {
                    let der = Zeroizing::new(block.into_contents());
                    let pkcs8 = sec1_to_pkcs8(&der)?;
                    return SoftwareKey::from_pkcs8_der(&pkcs8);
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(key_error(
                        "encrypted private keys are not supported; decrypt the key first",
                    ))
                }
                "RSA PRIVATE KEY" => {
                    return Err(Error::Unsupported {
                        what: RSA_UNSUPPORTED.into(),
                    })
                }
                _ => continue,
            }
        }
        Err(key_error(
            "no \"PRIVATE KEY\" or \"EC PRIVATE KEY\" PEM block found",
        ))
    }

    fn from_checked_pkcs8(
        algorithm: KeyAlgorithm,
        pkcs8: Zeroizing<Vec<u8>>,
    ) -> Result<SoftwareKey> {
        let rng = SystemRandom::new();
        let key = match ecdsa_signing_alg(algorithm) {
            Some(alg) => RingKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &rng)
                    .map_err(|e| key_error(format!("{algorithm} key rejected: {e}")))?,
            ),
            // PKCS #8 v1 (no public key, as OpenSSL writes it) and v2 are both accepted.
            None => RingKey::Ed25519(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8)
                    .map_err(|e| key_error(format!("Ed25519 key rejected: {e}")))?,
            ),
        };
        let public = match &key {
            RingKey::Ecdsa(k) => k.public_key().as_ref(),
            RingKey::Ed25519(k) => k.public_key().as_ref(),
        };
        let spki = encode_spki(algorithm, public)?;
        // Checked above against its own publicKey if it had one; kept in the portable form.
        let pkcs8 = match algorithm {
            KeyAlgorithm::Ed25519 => ed25519_pkcs8_v1(&pkcs8)?,
            _ => pkcs8,
        };
        Ok(SoftwareKey {
            algorithm,
            key,
            spki,
            pkcs8,
            rng,
        })
    }

    /// The key as PKCS #8 PEM ("PRIVATE KEY"), zeroized on drop.
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        // der's encoder writes straight into the output string: no unzeroized copy.
        Zeroizing::new(
            der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &self.pkcs8)
                .expect("PEM encoding of a small in-memory buffer cannot fail"),
        )
    }
}

impl PrivateKey for SoftwareKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_info(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match &self.key {
            RingKey::Ecdsa(k) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| key_error("ECDSA signing failed")),
            RingKey::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }

    fn pkcs8_der(&self) -> Option<Zeroizing<Vec<u8>>> {
        Some(self.pkcs8.clone())
    }
}

fn curve_name(curve: Curve) -> &'static str {
    match curve {
        Curve::P256 => "P-256",
        Curve::P384 => "P-384",
        Curve::P521 => "P-521",
    }
}

pub(crate) fn hash_name(hash: HashAlg) -> &'static str {
    match hash {
        HashAlg::Sha256 => "SHA-256",
        HashAlg::Sha384 => "SHA-384",
        HashAlg::Sha512 => "SHA-512",
    }
}

pub(crate) fn key_requirement_name(key: KeyRequirement) -> String {
    match key {
        KeyRequirement::Ec(curve) => format!("an EC key on {}", curve_name(curve)),
        KeyRequirement::Rsa { bits: Some(bits) } => format!("a {bits}-bit RSA key"),
        KeyRequirement::Rsa { bits: None } => "an RSA key".into(),
        KeyRequirement::Ed25519 => "an Ed25519 key".into(),
    }
}

/// Whether `algorithm` satisfies the hash requirement. Ed25519 hashes with SHA-512 internally
/// (RFC 8032 5.1), so a SHA-512 demand is taken as satisfied by it.
fn hash_matches(algorithm: KeyAlgorithm, hash: HashAlg) -> bool {
    matches!(
        (algorithm, hash),
        (KeyAlgorithm::EcdsaP256Sha256, HashAlg::Sha256)
            | (KeyAlgorithm::EcdsaP384Sha384, HashAlg::Sha384)
            | (KeyAlgorithm::Ed25519, HashAlg::Sha512)
    )
}

fn key_matches(algorithm: KeyAlgorithm, key: KeyRequirement) -> bool {
    matches!(
        (algorithm, key),
        (
            KeyAlgorithm::EcdsaP256Sha256,
            KeyRequirement::Ec(Curve::P256)
        ) | (
            KeyAlgorithm::EcdsaP384Sha384,
            KeyRequirement::Ec(Curve::P384)
        ) | (KeyAlgorithm::Ed25519, KeyRequirement::Ed25519)
    )
}

/// Chooses the algorithm of a key to generate from what a /csrattrs response demands
/// (RFC 7030 4.5.2; CR 8.3.Z.2.2 step 3a "a key pair of suitable key length").
///
/// With no demand, `default` (TS-0003 10.1.1.1: P-256 with SHA-256). A key type alone picks
/// that type with its natural hash; a hash alone keeps `default` if it matches, else picks the
/// ECDSA curve of that strength. Combinations ring cannot sign with (P-256 with SHA-384, P-521,
/// RSA, ...) are [`Error::Unsupported`].
pub fn key_algorithm_for(
    key: Option<KeyRequirement>,
    hash: Option<HashAlg>,
    default: KeyAlgorithm,
) -> Result<KeyAlgorithm> {
    let by_key = match key {
        None => None,
        Some(KeyRequirement::Ec(Curve::P256)) => Some(KeyAlgorithm::EcdsaP256Sha256),
        Some(KeyRequirement::Ec(Curve::P384)) => Some(KeyAlgorithm::EcdsaP384Sha384),
        Some(KeyRequirement::Ec(Curve::P521)) => {
            return Err(Error::Unsupported {
                what: "the server requires a P-521 key; P-521 is not available with the ring \
                       provider"
                    .into(),
            })
        }
        Some(KeyRequirement::Rsa { .. }) => {
            return Err(Error::Unsupported {
                what: format!(
                    "the server requires {}; RSA key generation is not available with the ring \
                     provider",
                    key_requirement_name(key.expect("matched Some"))
                ),
            })
        }
        Some(KeyRequirement::Ed25519) => Some(KeyAlgorithm::Ed25519),
    };
    match (by_key, hash) {
        (Some(alg), None) => Ok(alg),
        (Some(alg), Some(h)) if hash_matches(alg, h) => Ok(alg),
        (Some(_), Some(h)) => Err(Error::Unsupported {
            what: format!(
                "the server requires {} signed with {}; this combination is not available with \
                 the ring provider",
                key_requirement_name(key.expect("by_key is Some")),
                hash_name(h)
            ),
        }),
        (None, None) => Ok(default),
        (None, Some(h)) if hash_matches(default, h) => Ok(default),
        (None, Some(HashAlg::Sha256)) => Ok(KeyAlgorithm::EcdsaP256Sha256),
        (None, Some(HashAlg::Sha384)) => Ok(KeyAlgorithm::EcdsaP384Sha384),
        (None, Some(HashAlg::Sha512)) => Err(Error::Unsupported {
            what: "the server requires SHA-512 signatures; ECDSA with SHA-512 (P-521) is not \
                   available with the ring provider"
                .into(),
        }),
    }
}

/// Checks that an existing key satisfies the key type and hash a /csrattrs response demands
/// (CR 8.3.Z.2.2 step 3a "select an existing public/private key pair of suitable key length").
pub fn check_key_satisfies(key: &dyn PrivateKey, reqs: &CsrRequirements) -> Result<()> {
    let algorithm = key.algorithm();
    if let Some(k) = reqs.key {
        if !key_matches(algorithm, k) {
            return Err(Error::Unsupported {
                what: format!(
                    "the server requires {} but the key is {algorithm}",
                    key_requirement_name(k)
                ),
            });
        }
    }
    if let Some(h) = reqs.hash {
        if !hash_matches(algorithm, h) {
            return Err(Error::Unsupported {
                what: format!(
                    "the server requires {} signatures but the key is {algorithm}",
                    hash_name(h)
                ),
            });
        }
    }
    Ok(())
}

/// The subjectPublicKey BIT STRING contents of a DER SubjectPublicKeyInfo (for EC keys the
/// uncompressed point, for Ed25519 the 32-byte key).
pub(crate) fn spki_public_key_bytes(spki_der: &[u8]) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|e| key_error(format!("malformed SubjectPublicKeyInfo: {e}")))?;
    spki.subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| key_error("SubjectPublicKeyInfo public key has unused bits"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::signature::UnparsedPublicKey;

    const ALL: [KeyAlgorithm; 3] = [
        KeyAlgorithm::EcdsaP256Sha256,
        KeyAlgorithm::EcdsaP384Sha384,
        KeyAlgorithm::Ed25519,
    ];

    fn verify(key: &SoftwareKey, msg: &[u8], sig: &[u8]) -> bool {
        let public = spki_public_key_bytes(key.public_key_info()).unwrap();
        let alg: &dyn signature::VerificationAlgorithm = match key.algorithm() {
            KeyAlgorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
            KeyAlgorithm::Ed25519 => &signature::ED25519,
        };
        UnparsedPublicKey::new(alg, public).verify(msg, sig).is_ok()
    }

    #[test]
    fn generate_sign_verify_roundtrip_pem() {
        for alg in ALL {
            let key = SoftwareKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            let sig = key.sign(b"hello").unwrap();
            assert!(verify(&key, b"hello", &sig), "{alg}");
            assert!(!verify(&key, b"hellO", &sig), "{alg}");
            let pem = key.to_pkcs8_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            let again = SoftwareKey::from_pem(&pem).unwrap();
            assert_eq!(again.algorithm(), alg);
            assert_eq!(again.public_key_info(), key.public_key_info());
            assert_eq!(*again.pkcs8_der().unwrap(), *key.pkcs8_der().unwrap());
        }
    }

    #[test]
    fn spki_matches_x509_parser_view() {
        use x509_parser::prelude::FromDer;
        for alg in ALL {
            let key = SoftwareKey::generate(alg).unwrap();
            let (rest, spki) =
                x509_parser::x509::SubjectPublicKeyInfo::from_der(key.public_key_info()).unwrap();
            assert!(rest.is_empty());
            let expected_oid = match alg {
                KeyAlgorithm::Ed25519 => "1.3.101.112",
                _ => "1.2.840.10045.2.1",
            };
            assert_eq!(spki.algorithm.algorithm.to_id_string(), expected_oid);
            if alg == KeyAlgorithm::EcdsaP256Sha256 {
                // TS-0003 10.1.1.1: uncompressed point.
                assert_eq!(spki.subject_public_key.data.len(), 65);
                assert_eq!(spki.subject_public_key.data[0], 4);
            }
        }
    }

    #[test]
    fn debug_does_not_print_key_material() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let dbg = format!("{key:?}");
        assert_eq!(dbg, "SoftwareKey { algorithm: EcdsaP256Sha256, .. }");
    }

    fn openssl(args: &[&str]) -> Option<Vec<u8>> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(out.stdout)
    }

    #[test]
    fn loads_openssl_sec1_and_pkcs8_keys() {
        // SEC1 with an EC PARAMETERS block first, as `openssl ecparam -genkey` writes it.
        let Some(sec1) = openssl(&["ecparam", "-name", "prime256v1", "-genkey"]) else {
            panic!("the openssl CLI is required for this test");
        };
        let sec1 = String::from_utf8(sec1).unwrap();
        assert!(sec1.contains("EC PARAMETERS") && sec1.contains("EC PRIVATE KEY"));
        let key = SoftwareKey::from_pem(&sec1).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP256Sha256);
        // The converted PKCS #8 must load again and give the same public key.
        let again = SoftwareKey::from_pem(&key.to_pkcs8_pem()).unwrap();
        assert_eq!(again.public_key_info(), key.public_key_info());

        let p384 = openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ])
        .unwrap();
        let key = SoftwareKey::from_pem(std::str::from_utf8(&p384).unwrap()).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::EcdsaP384Sha384);

        // OpenSSL writes Ed25519 as PKCS #8 v1 (no public key).
        let ed = openssl(&["genpkey", "-algorithm", "ED25519"]).unwrap();
        let key = SoftwareKey::from_pem(std::str::from_utf8(&ed).unwrap()).unwrap();
        assert_eq!(key.algorithm(), KeyAlgorithm::Ed25519);
        let sig = key.sign(b"m").unwrap();
        assert!(verify(&key, b"m", &sig));
    }

    #[test]
    fn openssl_reads_our_keys_and_agrees_on_the_public_key() {
        let dir = tempfile::tempdir().unwrap();
        for alg in ALL {
            let key = SoftwareKey::generate(alg).unwrap();
            let path = dir.path().join(format!("{alg:?}.pem"));
            std::fs::write(&path, key.to_pkcs8_pem().as_bytes()).unwrap();
            let spki = openssl(&[
                "pkey",
                "-in",
                path.to_str().unwrap(),
                "-pubout",
                "-outform",
                "DER",
            ])
            .unwrap();
            assert_eq!(spki, key.public_key_info(), "{alg}");
        }
    }

    /// The key forms a /serverkeygen response carries in the field: PKCS #8 (RFC 7030 4.4.2),
    /// and OpenSSL's traditional DER as libest sends it (SEC1 EC, PKCS #1 RSA).
    #[test]
    fn server_generated_keys_in_pkcs8_sec1_and_pkcs1() {
        let dir = tempfile::tempdir().unwrap();
        let sec1_pem = dir.path().join("sec1.pem");
        let Some(_) = openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            sec1_pem.to_str().unwrap(),
        ]) else {
            panic!("the openssl CLI is required for this test");
        };
        let der_of = |args: &[&str]| openssl(args).expect("openssl runs");
        let sec1 = der_of(&["ec", "-in", sec1_pem.to_str().unwrap(), "-outform", "DER"]);
        let pkcs8 = der_of(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            sec1_pem.to_str().unwrap(),
            "-outform",
            "DER",
        ]);
        assert!(
            SoftwareKey::from_pkcs8_der(&sec1).is_err(),
            "SEC1 is not PKCS #8"
        );
        let from_sec1 = SoftwareKey::from_server_key_der(&sec1).unwrap();
        let from_pkcs8 = SoftwareKey::from_server_key_der(&pkcs8).unwrap();
        assert_eq!(from_sec1.algorithm(), KeyAlgorithm::EcdsaP256Sha256);
        assert_eq!(from_sec1.public_key_info(), from_pkcs8.public_key_info());

        let rsa_pem = dir.path().join("rsa.pem");
        der_of(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            rsa_pem.to_str().unwrap(),
        ]);
        let pkcs1 = der_of(&[
            "rsa",
            "-in",
            rsa_pem.to_str().unwrap(),
            "-traditional",
            "-outform",
            "DER",
        ]);
        assert!(is_pkcs1_rsa_private_key(&pkcs1));
        let err = SoftwareKey::from_server_key_der(&pkcs1).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("10.1.1.1"), "{err}");
        // A key inside is not leaked into the error text, and garbage is a key error.
        let err = SoftwareKey::from_server_key_der(b"\x30\x03\x02\x01\x00").unwrap_err();
        assert!(matches!(err, Error::Key { .. }), "{err}");
        assert!(!is_pkcs1_rsa_private_key(&sec1));
        assert!(!is_pkcs1_rsa_private_key(&pkcs8));
    }

    #[test]
    fn rejects_rsa_and_garbage() {
        let rsa = openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ])
        .unwrap();
        let err = SoftwareKey::from_pem(std::str::from_utf8(&rsa).unwrap()).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        // The message blames the key, not a server requirement (issue #14).
        let text = err.to_string();
        assert!(
            text.starts_with("not supported: the key is an RSA key"),
            "{text}"
        );
        assert!(!text.contains("server"), "{text}");
        let err =
            SoftwareKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .unwrap_err();
        assert!(matches!(err, Error::Key { .. }), "{err}");
        let err = SoftwareKey::from_pkcs8_der(b"\x30\x03\x02\x01\x00").unwrap_err();
        assert!(matches!(err, Error::Key { .. }), "{err}");
    }

    #[test]
    fn algorithm_selection() {
        use KeyAlgorithm::*;
        let p256 = Some(KeyRequirement::Ec(Curve::P256));
        let p384 = Some(KeyRequirement::Ec(Curve::P384));
        let ed25519 = Some(KeyRequirement::Ed25519);
        let (sha256, sha384) = (Some(HashAlg::Sha256), Some(HashAlg::Sha384));
        // (key requirement, hash requirement, the caller's default) -> the algorithm chosen.
        for (k, h, default, want) in [
            (None, None, EcdsaP256Sha256, EcdsaP256Sha256),
            (None, None, Ed25519, Ed25519),
            (p256, None, Ed25519, EcdsaP256Sha256),
            (p256, sha256, Ed25519, EcdsaP256Sha256),
            (p384, sha384, EcdsaP256Sha256, EcdsaP384Sha384),
            (None, sha384, EcdsaP256Sha256, EcdsaP384Sha384),
            (None, sha256, Ed25519, EcdsaP256Sha256),
            (ed25519, None, EcdsaP256Sha256, Ed25519),
        ] {
            assert_eq!(
                key_algorithm_for(k, h, default).unwrap(),
                want,
                "{k:?} {h:?} (default {default:?})"
            );
        }
        for (k, h) in [
            (p256, sha384),
            (p384, sha256),
            (Some(KeyRequirement::Ec(Curve::P521)), None),
            (None, Some(HashAlg::Sha512)),
            (Some(KeyRequirement::Rsa { bits: Some(2048) }), None),
        ] {
            let err = key_algorithm_for(k, h, EcdsaP256Sha256).unwrap_err();
            assert!(
                matches!(err, Error::Unsupported { .. }),
                "{k:?} {h:?}: {err}"
            );
        }
        let err = key_algorithm_for(
            Some(KeyRequirement::Rsa { bits: None }),
            None,
            EcdsaP256Sha256,
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("RSA key generation is not available with the ring provider"));
    }

    #[test]
    fn existing_key_check() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let mut reqs = CsrRequirements {
            challenge_password: crate::proto::csrattrs::ChallengePassword::NotRequested,
            extensions: vec![],
            key: None,
            hash: None,
            unrecognized: vec![],
        };
        check_key_satisfies(&key, &reqs).unwrap();
        reqs.key = Some(KeyRequirement::Ec(Curve::P256));
        reqs.hash = Some(HashAlg::Sha256);
        check_key_satisfies(&key, &reqs).unwrap();
        reqs.hash = Some(HashAlg::Sha384);
        assert!(matches!(
            check_key_satisfies(&key, &reqs),
            Err(Error::Unsupported { .. })
        ));
        reqs.hash = None;
        reqs.key = Some(KeyRequirement::Ec(Curve::P384));
        let err = check_key_satisfies(&key, &reqs).unwrap_err();
        assert!(err.to_string().contains("P-384"), "{err}");
    }

    /// A key held elsewhere that misbehaves: it signs with `signer` but claims `spki` and
    /// `algorithm`, or returns a corrupted signature.
    #[derive(Debug)]
    pub(crate) struct Misbehaving {
        pub(crate) signer: SoftwareKey,
        pub(crate) spki: Vec<u8>,
        pub(crate) algorithm: KeyAlgorithm,
        pub(crate) corrupt: bool,
    }

    impl PrivateKey for Misbehaving {
        fn algorithm(&self) -> KeyAlgorithm {
            self.algorithm
        }
        fn public_key_info(&self) -> &[u8] {
            &self.spki
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
            let mut sig = self.signer.sign(message)?;
            if self.corrupt {
                let last = sig.len() - 1;
                sig[last] ^= 1;
            }
            Ok(sig)
        }
    }

    pub(crate) fn misbehaving(
        corrupt: bool,
        other_key: bool,
        algorithm: KeyAlgorithm,
    ) -> Misbehaving {
        let signer = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let spki = if other_key {
            SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256)
                .unwrap()
                .public_key_info()
                .to_vec()
        } else {
            signer.public_key_info().to_vec()
        };
        Misbehaving {
            signer,
            spki,
            algorithm,
            corrupt,
        }
    }

    #[test]
    fn every_signature_is_checked_against_the_keys_own_public_key() {
        for alg in ALL {
            let key = SoftwareKey::generate(alg).unwrap();
            let sig = sign_checked(&key, b"m").unwrap();
            assert!(verify(&key, b"m", &sig), "{alg}");
        }
        let p256 = KeyAlgorithm::EcdsaP256Sha256;
        let err = sign_checked(&misbehaving(true, false, p256), b"m").unwrap_err();
        assert!(matches!(err, Error::Key { .. }), "{err:?}");
        assert!(err.to_string().contains("does not verify"), "{err}");
        // A signature by another key than the one the key says it is.
        let err = sign_checked(&misbehaving(false, true, p256), b"m").unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        // A public key of another type than the key's algorithm.
        let err = sign_checked(
            &misbehaving(false, false, KeyAlgorithm::EcdsaP384Sha384),
            b"m",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("is not a ECDSA P-384 with SHA-384 key"),
            "{err}"
        );
        let mut garbage = misbehaving(false, false, p256);
        garbage.spki = vec![0x30, 0x03, 0x02, 0x01, 0x00];
        let err = sign_checked(&garbage, b"m").unwrap_err();
        assert!(
            err.to_string().contains("not a DER SubjectPublicKeyInfo"),
            "{err}"
        );
    }

    #[test]
    fn public_key_check_names_the_key_type() {
        let key = SoftwareKey::generate(KeyAlgorithm::Ed25519).unwrap();
        check_public_key(key.public_key_info(), KeyAlgorithm::Ed25519).unwrap();
        assert!(matches!(
            check_public_key(key.public_key_info(), KeyAlgorithm::EcdsaP256Sha256),
            Err(KeyCheckError::WrongAlgorithm(KeyAlgorithm::EcdsaP256Sha256))
        ));
    }
}
