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

#[cfg(test)]
mod tests {
    use super::*;

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
