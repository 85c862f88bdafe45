//! The base64 transfer encoding of EST bodies.
//!
//! RFC 8951 section 3.1: every EST body is base64 (RFC 4648 section 4) whatever
//! Content-Transfer-Encoding says; a receiver ignores that header and tolerates white space
//! (line breaks or not). We send unwrapped base64 because strongSwan 5.9.8's decoder cannot skip
//! line breaks, which RFC 8951 lets a sender omit.

use crate::ProtoError;

/// Decodes an EST body: ASCII white space (SP, HT, CR, LF) anywhere is skipped; padding must be
/// correct when present and may be absent; any other byte outside the standard alphabet
/// (a NUL, URL-safe characters, ...) is an error.
pub fn decode(body: &[u8]) -> Result<Vec<u8>, ProtoError> {
    let _ = body;
    todo!("proto helper")
}

/// Encodes an EST body: standard alphabet, padded, one line, followed by CRLF.
pub fn encode(data: &[u8]) -> String {
    let _ = data;
    todo!("proto helper")
}
