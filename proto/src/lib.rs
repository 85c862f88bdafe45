//! EST message encoding and decoding (RFC 7030 as clarified by RFC 8951), for oneM2M
//! Certificate Provisioning (TS-0003 clause 8.3.6).
//!
//! Everything here is pure: bytes in, values out, no I/O, no clocks (callers pass `now`),
//! no global state. That makes every function a fuzz target and lets the client library
//! and the reference MEF share one implementation of the wire format.
//!
//! - [`base64body`]: the base64 transfer of every EST body (RFC 8951 section 3.1).
//! - [`media`]: Content-Type values and the EST media types.
//! - [`certs_only`]: certs-only CMS SignedData (RFC 7030 4.1.3, 4.2.3), DER and BER.
//! - [`csrattrs`]: CsrAttrs (RFC 7030 4.5.2 with the RFC 8951 correction) and what they ask of a CSR.
//! - [`multipart`]: the multipart/mixed response of server-side key generation (RFC 7030 4.4.2).
//! - [`retry_after`]: the Retry-After header of a 202 response (RFC 7030 4.2.3).
//! - [`san`]: subjectAltName values (RFC 5280 4.2.1.6) as oneM2M identities use them.
//! - [`identity`]: AE-ID / CSE-ID / Node-ID forms (TS-0001 7.2) and their subjectAltName
//!   (TS-0003 10.1.1.5/7/8), for the client and the MEF alike.
//! - [`oids`]: the object identifiers used above.

// Pure wire format.
#![forbid(unsafe_code)]

pub mod base64body;
pub mod certs_only;
pub mod csrattrs;
pub mod eku;
pub mod identity;
pub mod media;
pub mod multipart;
pub mod oids;
pub mod psk;
pub mod retry_after;
pub mod san;

mod error;
mod raw;

// Shared with the integration tests, which cannot see this crate's test modules.
#[cfg(test)]
#[path = "../tests/support/openssl_cli.rs"]
mod openssl_cli;

pub use error::ProtoError;
