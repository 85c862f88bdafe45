//! certs-only CMS: a SignedData with no signers whose `certificates` field carries the payload
//! (RFC 7030 4.1.3 and 4.2.3, RFC 5652 5.1, the "degenerate" PKCS #7 of RFC 2315).

use crate::ProtoError;

/// Decodes a ContentInfo holding certs-only SignedData, given in DER or in BER with
/// indefinite lengths (what Java-based CAs send), and returns each certificate as DER.
/// Order follows the encoding, but callers must not rely on it (a SET OF has no order).
/// Non-certificate CertificateChoices (attribute certificates, ...) are an error.
/// Zero certificates decode to an empty vector: the caller decides whether that is acceptable.
pub fn decode(der_or_ber: &[u8]) -> Result<Vec<Vec<u8>>, ProtoError> {
    let _ = der_or_ber;
    todo!("proto helper")
}

/// Encodes certificates (each DER) as a certs-only ContentInfo in DER: version 1, no digest
/// algorithms, encapContentInfo of type id-data with no content, no signers.
pub fn encode(certs: &[&[u8]]) -> Result<Vec<u8>, ProtoError> {
    let _ = certs;
    todo!("proto helper")
}
