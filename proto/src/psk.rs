//! The facts of the PPSK-based RSPF (TS-0003 8.3.2.1: TLS-PSK with psk_identity = KpmID and
//! psk = Kpm) that the client library and the MEF must agree on: key and identity limits and
//! the TLS-PSK suites. Both sides take them from here; each validates with its own error type.

/// Shortest Kpm accepted, in bytes: 128 bits. RFC 4279 7.2 warns that a PSK of limited entropy
/// falls to brute-force and dictionary attacks (a passive observer can test guesses offline
/// against a recorded plain-PSK handshake); TS-0003 8.3.2.1 requires Kpm to be a long-term
/// symmetric key, and 128 bits matches the AES-128 of the mandatory suite (TS-0003 10.2.2).
pub const MIN_KEY_LEN: usize = 16;

/// Longest Kpm accepted, in bytes: RFC 4279 5.3 requires every implementation to support PSKs of
/// up to 64 octets, so a longer key would not interoperate everywhere.
pub const MAX_KEY_LEN: usize = 64;

/// Longest KpmID accepted, in bytes (UTF-8): RFC 4279 5.3 requires support for identities of up
/// to 128 octets.
pub const MAX_IDENTITY_LEN: usize = 128;

/// TLS 1.2 suites, strongest first, as an OpenSSL cipher list; PSK-authenticated only
/// (`Au=PSK` in `openssl ciphers -v PSK`; no RSA-PSK, it needs a server certificate). The last
/// one, TLS_PSK_WITH_AES_128_CBC_SHA256, is mandatory (TS-0003 10.2.2, RFC 5487).
pub const TLS12_CIPHERS: &str = "ECDHE-PSK-CHACHA20-POLY1305:\
    DHE-PSK-AES256-GCM-SHA384:DHE-PSK-CHACHA20-POLY1305:DHE-PSK-AES128-GCM-SHA256:\
    ECDHE-PSK-AES256-CBC-SHA384:ECDHE-PSK-AES128-CBC-SHA256:\
    PSK-AES256-GCM-SHA384:PSK-CHACHA20-POLY1305:PSK-AES128-GCM-SHA256:\
    PSK-AES128-CBC-SHA256";

/// TLS 1.3 suites usable with an external PSK (OpenSSL binds it to SHA-256), as an OpenSSL
/// ciphersuites list.
pub const TLS13_SUITES: &str = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

/// Why a hexadecimal Kpm was refused. Never holds the text: it is a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KpmHexError {
    /// No digits at all.
    #[error("the hexadecimal Kpm is empty")]
    Empty,
    /// An odd number of digits (half a byte left over).
    #[error("the hexadecimal Kpm has an odd number of digits")]
    OddDigits,
    /// A character other than a hexadecimal digit, ':' or white space.
    #[error("the Kpm is not hexadecimal (only 0-9, a-f, A-F, ':' and white space are allowed)")]
    NotHex,
}

/// Decodes a Kpm written as hexadecimal text, the one way the client (`--psk-key-hex`, key
/// files, C and Python) and the MEF (`psk add --kpm-hex/--kpm-file`) read it: digits of either
/// case, with ASCII white space and ':' anywhere ignored (`00:11:22…`, `0011 2233…`, a line
/// break at the end of a file). The bytes are in zeroized memory; the limits of
/// [`MIN_KEY_LEN`]/[`MAX_KEY_LEN`] are checked by the caller with the KpmID.
pub fn decode_kpm_hex(text: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, KpmHexError> {
    let digits: zeroize::Zeroizing<Vec<u8>> = zeroize::Zeroizing::new(
        text.bytes()
            .filter(|b| !b.is_ascii_whitespace() && *b != b':')
            .collect(),
    );
    if digits.is_empty() {
        return Err(KpmHexError::Empty);
    }
    if !digits.len().is_multiple_of(2) {
        return Err(KpmHexError::OddDigits);
    }
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(digits.len() / 2));
    for pair in digits.chunks(2) {
        let digit = |b: u8| char::from(b).to_digit(16).ok_or(KpmHexError::NotHex);
        out.push((digit(pair[0])? * 16 + digit(pair[1])?) as u8);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kpm_hex_text_in_every_accepted_spelling_and_each_refusal() {
        for text in ["0aff01", "0A:FF:01", " 0a:FF01 \n", "0a ff\t01\r\n"] {
            assert_eq!(
                &decode_kpm_hex(text).unwrap()[..],
                &[0x0a, 0xff, 0x01],
                "{text:?}"
            );
        }
        assert_eq!(decode_kpm_hex(""), Err(KpmHexError::Empty));
        assert_eq!(decode_kpm_hex(" :\n"), Err(KpmHexError::Empty));
        assert_eq!(decode_kpm_hex("abc"), Err(KpmHexError::OddDigits));
        assert_eq!(decode_kpm_hex("0g"), Err(KpmHexError::NotHex));
        assert_eq!(decode_kpm_hex("0a-ff"), Err(KpmHexError::OddDigits));
        assert_eq!(decode_kpm_hex("0a-f"), Err(KpmHexError::NotHex));
        // The message never holds the text.
        assert!(!KpmHexError::NotHex.to_string().contains("0g"));
    }

    #[test]
    fn the_mandatory_suite_is_offered_and_every_suite_is_psk_authenticated() {
        assert!(TLS12_CIPHERS
            .split(':')
            .any(|s| s == "PSK-AES128-CBC-SHA256"));
        assert!(TLS12_CIPHERS
            .split(':')
            .all(|s| s.starts_with("PSK-") || s.contains("-PSK-")));
        assert!(TLS13_SUITES.split(':').all(|s| s.ends_with("_SHA256")));
        const { assert!(MIN_KEY_LEN * 8 >= 128 && MIN_KEY_LEN <= MAX_KEY_LEN) };
    }
}
