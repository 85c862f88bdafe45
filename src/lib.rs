//! onem2m-est: the MEF Client of oneM2M Certificate Provisioning (TS-0003 clause 8.3.6) over
//! EST (RFC 7030, RFC 8951).
//!
//! A [`MefClient`] runs the two procedures of TS-0003 8.3.6.2 against a MEF (an EST server):
//! [`MefClient::provision`], Initial Certificate Provisioning, authenticated by a third-party
//! certificate or a pre-provisioned PSK ([`InitialAuth`]), and [`MefClient::reprovision`],
//! Certificate Re-Provisioning with the installed certificate ([`Reprovision`]). Both fetch
//! the MEF CA certificates (`/cacerts`) and the CSR attributes (`/csrattrs`), obtain a key
//! ([`KeySource`]), enrol, validate what came back and install the trust anchors, the
//! certificate and the key together in a [`CredentialStore`] ([`FileStore`] on disk), or
//! change nothing. [`MefClient::renew`] decides between the two for a renewal agent.
//!
//! Every signature goes through [`PrivateKey`], so a key can live in an HSM, a TPM or a
//! PKCS #11 token (feature `pkcs11`); [`SoftwareKey`] is the in-process key. Every failure is
//! an [`Error`] whose [`Error::class`] is the CERT_PROV cmdStatusCode class of TS-0003 8.3.9.7
//! ([`CmdStatus`]).
//!
//! Initial Certificate Provisioning with a third-party certificate, then re-provisioning:
//!
//! ```no_run
//! use std::sync::Arc;
//! use onem2m_est::{
//!     ClientIdentity, Config, EstUri, FileStore, InitialAuth, KeySource, MefClient, Reprovision,
//!     SoftwareKey, SubjectIdentity, SubjectType,
//! };
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let base = EstUri::parse("https://mef.example.com/.well-known/est")?;
//!     let identity = SubjectIdentity::new(SubjectType::Cse, "/cse01")?;
//!     let client = MefClient::new(Config::new(base).identity(identity));
//!
//!     // The explicit trust anchors that authenticate the MEF (RFC 7030 3.6.1) and the
//!     // device's third-party certificate with its key (RFC 7030 3.3.2).
//!     let trust_anchors = onem2m_est::store::parse_certs_pem(&std::fs::read_to_string("mef-ca.pem")?)?;
//!     let auth = InitialAuth::Certificate {
//!         trust_anchors,
//!         client: ClientIdentity {
//!             chain: onem2m_est::store::parse_certs_pem(&std::fs::read_to_string("device.pem")?)?,
//!             key: Arc::new(SoftwareKey::from_pem(&std::fs::read_to_string("device.key")?)?),
//!         },
//!     };
//!     let mut store = FileStore::new("credentials")?;
//!     let done = client.provision(&auth, &mut store, KeySource::Generate)?;
//!     println!("{} certificate(s) installed", done.chain.len());
//!
//!     // Later: a new certificate for the same key, authenticated with the installed one.
//!     client.reprovision(&mut store, Reprovision::Renew)?;
//!     Ok(())
//! }
//! ```
//!
//! The modules hold the layers (ARCHITECTURE.md): [`proto`] the wire format, [`uri`], [`tls`]
//! and [`transport`] the connection, [`csr`], [`validate`], [`keys`] and [`store`] the steps,
//! [`client`] the procedures, [`renewal`] the renewal policy and [`certprov`] the CERT_PROV
//! command. The C ABI (`libonem2m_est`, `include/onem2m_est.h`) is the `onem2m-est-ffi`
//! crate.

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

pub use certprov::CmdStatus;
pub use client::{
    Channel, Config, ConnectionStats, InitialAuth, KeySource, MefClient, Provisioned, Reprovision,
};
pub use error::{Error, ErrorClass, Operation, Result};
pub use identity::{SpId, SubjectIdentity, SubjectType};
pub use keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
pub use psk::PskCredential;
pub use renewal::{RenewalPolicy, RetryPolicy};
pub use store::{CredentialStore, Credentials, FileStore};
pub use tls::{ClientIdentity, TlsProfile};
pub use transport::{PollPolicy, TransportConfig};
pub use uri::EstUri;

// Every Rust snippet of README.md compiles as a doctest, so the README cannot drift from the API
// (issue #14). Only under `cargo test`; not part of the documented API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
