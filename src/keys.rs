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
}
