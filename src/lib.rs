//! onem2m-est: oneM2M Certificate Provisioning (TS-0003 clause 8.3.6) over EST (RFC 7030).
//!
//! (crate documentation is written with the client API)

// The C ABI and its `unsafe` live in the onem2m-est-ffi crate (ffi/).
#![forbid(unsafe_code)]

pub mod certprov;
pub mod client;
pub mod csr;
pub mod describe;
pub mod error;
pub mod identity;
pub mod keys;
// Keys in a PKCS #11 token (RFC 7512 URIs): URIs and PIN sources in every build, the token
// only with the `pkcs11` feature.
pub mod pkcs11;
// PskCredential exists in every build; the OpenSSL TLS-PSK stack only with the `psk` feature.
pub mod psk;
// Renewal policy, retry schedule, re-bootstrap and the agent's decisions (issue #12).
pub mod renewal;
pub mod store;
pub mod tls;
pub mod transport;
// The TS-0003 TLS profile on OpenSSL (with the `psk` feature; refused without it).
pub mod ts0003;
pub mod uri;
pub mod validate;
pub mod x509;

pub use onem2m_est_proto as proto;

pub use error::{Error, ErrorClass, Operation, Result};

// Every Rust snippet of README.md compiles as a doctest, so the README cannot drift from the API
// (issue #14). Only under `cargo test`; not part of the documented API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
