/// Why bytes could not be decoded (or values encoded). Never carries secret material:
/// messages describe structure ("challengePassword value is not a string"), not content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The base64 text of a body is malformed (RFC 8951 3.1).
    #[error("malformed base64 body: {0}")]
    Base64(String),
    /// ASN.1 DER/BER structure is malformed or not what the operation returns.
    #[error("malformed {what}: {reason}")]
    Asn1 { what: &'static str, reason: String },
    /// A Content-Type value could not be parsed.
    #[error("malformed media type {value:?}: {reason}")]
    MediaType { value: String, reason: String },
    /// A multipart/mixed body could not be split into its parts.
    #[error("malformed multipart body: {0}")]
    Multipart(String),
    /// A Retry-After value is neither delta-seconds nor an HTTP-date.
    #[error("malformed Retry-After value {0:?}")]
    RetryAfter(String),
    /// A value is well-formed but outside what the profile allows.
    #[error("{0}")]
    Unsupported(String),
}
