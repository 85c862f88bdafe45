//! Content-Type values (RFC 9110 8.3.1) and the media types EST uses.

use crate::ProtoError;

/// `application/pkcs7-mime` (RFC 7030 4.1.3, 4.2.3); the `smime-type=certs-only` parameter is
/// expected but its absence is tolerated by readers.
pub const PKCS7_MIME: &str = "application/pkcs7-mime";
/// `application/csrattrs` (RFC 7030 4.5.2).
pub const CSRATTRS: &str = "application/csrattrs";
/// `application/pkcs10` (RFC 5967), the body of enrollment requests.
pub const PKCS10: &str = "application/pkcs10";
/// `application/pkcs8` (RFC 5958), the private key part of a serverkeygen response.
pub const PKCS8: &str = "application/pkcs8";
/// `multipart/mixed`, the serverkeygen response (RFC 7030 4.4.2).
pub const MULTIPART_MIXED: &str = "multipart/mixed";
/// `text/plain`, error bodies.
pub const TEXT_PLAIN: &str = "text/plain";
/// The full Content-Type a certs-only response carries.
pub const CERTS_ONLY_CONTENT_TYPE: &str = "application/pkcs7-mime; smime-type=certs-only";

/// A parsed media type: lower-cased `type/subtype` and its parameters in order
/// (names lower-cased, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses a Content-Type header value. Tolerates white space around `;` and `=`,
    /// quoted-string parameter values, and a trailing `;`.
    pub fn parse(value: &str) -> Result<MediaType, ProtoError> {
        let _ = value;
        todo!("proto helper")
    }

    /// True when the essence equals `essence` (ASCII case-insensitive).
    pub fn is(&self, essence: &str) -> bool {
        self.essence.eq_ignore_ascii_case(essence)
    }

    /// The value of parameter `name` (ASCII case-insensitive), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
