//! Object identifiers, dotted, as the rest of this crate exchanges them.

/// PKCS #9 challengePassword (RFC 2985 5.4.1).
pub const CHALLENGE_PASSWORD: &str = "1.2.840.113549.1.9.7";
/// PKCS #9 extensionRequest (RFC 2985 5.4.2).
pub const EXTENSION_REQUEST: &str = "1.2.840.113549.1.9.14";
/// subjectAltName (RFC 5280 4.2.1.6).
pub const SUBJECT_ALT_NAME: &str = "2.5.29.17";
/// keyUsage.
pub const KEY_USAGE: &str = "2.5.29.15";
/// extKeyUsage.
pub const EXT_KEY_USAGE: &str = "2.5.29.37";
/// id-ecPublicKey (RFC 5480).
pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// secp256r1 / P-256.
pub const SECP256R1: &str = "1.2.840.10045.3.1.7";
/// secp384r1 / P-384.
pub const SECP384R1: &str = "1.3.132.0.34";
/// secp521r1 / P-521.
pub const SECP521R1: &str = "1.3.132.0.35";
/// rsaEncryption.
pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
/// id-Ed25519 (RFC 8410).
pub const ED25519: &str = "1.3.101.112";
/// ecdsa-with-SHA256 / 384 / 512 (RFC 5758).
pub const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
pub const ECDSA_WITH_SHA384: &str = "1.2.840.10045.4.3.3";
pub const ECDSA_WITH_SHA512: &str = "1.2.840.10045.4.3.4";
/// sha256/384/512WithRSAEncryption (RFC 4055).
pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
pub const SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
pub const SHA512_WITH_RSA: &str = "1.2.840.113549.1.1.13";
/// id-kp-cmcRA (RFC 6402 2.10), the EKU that authorises an EST server as an RA (RFC 7030 3.6.1).
pub const KP_CMC_RA: &str = "1.3.6.1.5.5.7.3.28";
/// id-kp-serverAuth / id-kp-clientAuth.
pub const KP_SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
pub const KP_CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
/// id-data (RFC 5652 4), id-signedData (RFC 5652 5.1).
pub const ID_DATA: &str = "1.2.840.113549.1.7.1";
pub const ID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
/// id-aa-certificationRequestInfoTemplate (RFC 9908; IANA "SMI Security for S/MIME Attributes"
/// value 61): a CSR template. Not interpreted yet: reported in `CsrRequirements::unrecognized`.
pub const CSR_TEMPLATE: &str = "1.2.840.113549.1.9.16.2.61";
/// id-aa-decryptKeyID (RFC 4108 2.2.5): the symmetric key a /serverkeygen client asks the
/// private key to be encrypted to (RFC 7030 4.4.1.1).
pub const DECRYPT_KEY_ID: &str = "1.2.840.113549.1.9.16.2.37";
/// id-aa-asymmDecryptKeyID (RFC 7030 4.4.1.2, RFC 8951): the asymmetric key a /serverkeygen
/// client asks the private key to be encrypted to.
pub const ASYMM_DECRYPT_KEY_ID: &str = "1.2.840.113549.1.9.16.2.54";
/// smimeCapabilities (RFC 8551 2.5.2): the key encipherment algorithms a /serverkeygen client
/// accepts (RFC 7030 4.4.1).
pub const SMIME_CAPABILITIES: &str = "1.2.840.113549.1.9.15";
/// macAddress (RFC 2307), which the RFC 7030 4.5.2 example names inside an extensionRequest.
pub const MAC_ADDRESS: &str = "1.3.6.1.1.1.1.22";
