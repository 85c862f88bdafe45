//! The base64 transfer encoding of EST bodies.
//!
//! RFC 8951 section 3.1: every EST body is base64 (RFC 4648 section 4) whatever
//! Content-Transfer-Encoding says; a receiver ignores that header and tolerates white space
//! (line breaks or not). We send unwrapped base64 because strongSwan 5.9.8's decoder cannot skip
//! line breaks, which RFC 8951 lets a sender omit.

use crate::ProtoError;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use base64::Engine;
use zeroize::Zeroizing;

/// Decodes an EST body: ASCII white space (SP, HT, CR, LF) anywhere is skipped, and so are NUL
/// bytes after the base64 text (Cisco libest counts a C string's terminating NUL in
/// Content-Length); padding must be correct when present and may be absent; any other byte
/// outside the standard alphabet (a NUL inside the text, URL-safe characters, ...) is an error.
pub fn decode(body: &[u8]) -> Result<Vec<u8>, ProtoError> {
    // RFC 8951 section 3 asks receivers to be liberal about what surrounds the base64 text: only
    // the tail is trimmed of NULs (mixed with white space, in any order), so a NUL followed by
    // more base64 is still refused as garbage.
    let end = body
        .iter()
        .rposition(|b| !matches!(b, 0 | b' ' | b'\t' | b'\r' | b'\n'))
        .map_or(0, |i| i + 1);
    // Zeroized: the body may be a private key (RFC 7030 4.4.2).
    let compact: Zeroizing<Vec<u8>> = Zeroizing::new(
        body[..end]
            .iter()
            .copied()
            .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .collect(),
    );
    // The Indifferent engine also takes partial padding ("QQ="); RFC 4648 3.2 padding is either
    // complete (a multiple of four characters) or absent, so a padded text must be whole quads.
    if compact.contains(&b'=') && !compact.len().is_multiple_of(4) {
        return Err(ProtoError::Base64(format!(
            "incomplete padding ({} characters after removing white space)",
            compact.len()
        )));
    }
    STANDARD_PAD_INDIFFERENT
        .decode(compact.as_slice())
        .map_err(|e| ProtoError::Base64(e.to_string()))
}

/// Encodes an EST body: standard alphabet, padded, one line, followed by CRLF.
pub fn encode(data: &[u8]) -> String {
    let mut s = STANDARD.encode(data);
    s.push_str("\r\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_all_lengths() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37).wrapping_add(n)).collect();
            let text = encode(&data);
            assert!(text.ends_with("\r\n"));
            assert!(!text[..text.len() - 2].contains(['\r', '\n']));
            assert_eq!(decode(text.as_bytes()).unwrap(), data);
        }
    }

    #[test]
    fn known_vector() {
        assert_eq!(encode(b"foobar"), "Zm9vYmFy\r\n");
        assert_eq!(encode(b"fo"), "Zm8=\r\n");
        assert_eq!(decode(b"Zm8=").unwrap(), b"fo");
    }

    #[test]
    fn whitespace_anywhere_is_skipped() {
        assert_eq!(decode(b" Zm9v\r\nYm\tFy \n").unwrap(), b"foobar");
        assert_eq!(decode(b"Zm8\r\n=\r\n").unwrap(), b"fo");
        assert_eq!(decode(b"\r\n").unwrap(), b"");
        assert_eq!(decode(b"").unwrap(), b"");
    }

    #[test]
    fn missing_padding_is_accepted() {
        assert_eq!(decode(b"Zm8").unwrap(), b"fo");
        assert_eq!(decode(b"Zg").unwrap(), b"f");
    }

    #[test]
    fn partial_or_misplaced_padding_is_rejected() {
        assert!(decode(b"Zg=").is_err());
        assert!(decode(b"Zg===").is_err());
        assert!(decode(b"Zg==Zm8=").is_err());
        assert!(decode(b"=").is_err());
    }

    #[test]
    fn field_framing_around_the_text_is_tolerated() {
        // What servers in the field send around the base64 text: libest's NUL terminator
        // (counted in Content-Length), CRLF or LF line breaks, leading white space, no final
        // newline, and combinations of these.
        let cases: [&[u8]; 11] = [
            b"Zm9vYmFy\0",
            b"Zm9vYmFy\0\0\0",
            b"Zm9vYmFy\n\0",
            b"Zm9vYmFy\r\n\0",
            b"Zm9vYmFy\0\r\n",
            b"\r\n  Zm9vYmFy\r\n\r\n",
            b"\nZm9v\nYmFy",
            b"Zm9v\r\nYmFy\r\n",
            b"Zm9v\nYmFy\n",
            b"\t Zm9vYmFy \t",
            b"Zm9vYmFy",
        ];
        for body in cases {
            assert_eq!(decode(body).unwrap(), b"foobar", "{body:?}");
        }
        // Padded text (the case seen in the field: 56 characters + NUL).
        assert_eq!(decode(b"Zm8=\n\0").unwrap(), b"fo");
        assert_eq!(decode(b"Zg==\0").unwrap(), b"f");
        assert_eq!(decode(b"\0").unwrap(), b"");
        assert_eq!(decode(b"\r\n\0\r\n").unwrap(), b"");
    }

    #[test]
    fn nul_or_junk_inside_the_text_stays_an_error() {
        for body in [
            &b"Zm9v\0YmFy\0"[..],
            b"\0Zm9vYmFy",
            b"Zm9v\0\nYmFy",
            b"Zm8=\0Zm8=",
            b"Zm9vYmFy\0!",
            b"Zm9vYmFy\x01",
            b"Zm9vYmFy\n.\n",
            b"Zm8\0=",
        ] {
            assert!(decode(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn foreign_bytes_are_rejected() {
        assert!(decode(b"Zm9v\0YmFy").is_err());
        assert!(decode(b"Zm9v-_Fy").is_err());
        assert!(decode(b"Zm9v\x0bYmFy").is_err()); // vertical tab is not EST white space
        assert!(decode("Zm9vYmF\u{e9}".as_bytes()).is_err());
        // A single leftover character cannot encode a byte.
        assert!(decode(b"Zm9vY").is_err());
    }
}
