//! multipart/mixed (RFC 2046 5.1) as server-side key generation returns it (RFC 7030 4.4.2):
//! an `application/pkcs8` part (the private key; CMS-enveloped keys are not supported) and an
//! `application/pkcs7-mime; smime-type=certs-only` part, each base64 per RFC 8951.

use crate::ProtoError;
use zeroize::Zeroizing;

/// One body part: its headers (names lower-cased) and its raw body bytes (not yet base64-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    /// The part's Content-Type header value, if present.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a multipart body given the boundary parameter of its Content-Type. Preamble and
/// epilogue are ignored; CRLF and bare LF line ends are both accepted; a missing close
/// delimiter is an error.
pub fn parse(boundary: &str, body: &[u8]) -> Result<Vec<Part>, ProtoError> {
    let _ = (boundary, body);
    todo!("proto helper")
}

/// A decoded serverkeygen response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeygenResponse {
    /// PKCS #8 PrivateKeyInfo (OneAsymmetricKey) DER. Zeroized on drop.
    pub private_key_pkcs8: Zeroizing<Vec<u8>>,
    /// The certificates of the certs-only part, each DER.
    pub certificates: Vec<Vec<u8>>,
}

/// Decodes a whole serverkeygen response from its Content-Type header value and body: finds the
/// application/pkcs8 part and the certs-only part (in any order), base64-decodes both, and
/// decodes the certs-only CMS. A missing part, a duplicated part, or an
/// `application/pkcs7-mime; smime-type=server-generated-key` (encrypted key) part is an error.
pub fn decode_serverkeygen(
    content_type: &str,
    body: &[u8],
) -> Result<ServerKeygenResponse, ProtoError> {
    let _ = (content_type, body);
    todo!("proto helper")
}

/// Encodes a serverkeygen response (the MEF side). Returns the Content-Type header value
/// (`multipart/mixed; boundary=...`, a boundary that occurs in neither part) and the body:
/// the PKCS #8 part first, then the certs-only part, each base64 per [`crate::base64body::encode`].
pub fn encode_serverkeygen(
    private_key_pkcs8: &[u8],
    certs: &[&[u8]],
) -> Result<(String, Vec<u8>), ProtoError> {
    let _ = (private_key_pkcs8, certs);
    todo!("proto helper")
}
