//! The reference MEF (M2M Enrolment Function) of oneM2M TS-0003 8.3.6: an EST server
//! (RFC 7030, RFC 8951), Registration Authority and MEF CA.
//!
//! It enforces the MEF side of the CR clause 8.3.Z.2: the client authenticates with a TLS
//! certificate (a third-party certificate registered in the identity registry, or one this MEF
//! issued) or, on the optional TLS-PSK listener, with a registered (KpmID, Kpm) pair
//! (PPSK-based RSPF, initial provisioning only), never with HTTP authentication; /csrattrs hands out a single-use challengePassword
//! and the subjectAltName of the client's identity; /simpleenroll, /simplereenroll and
//! /serverkeygen validate both before issuing.
//!
//! In-process use (tests, benchmarks):
//!
//! ```no_run
//! use onem2m_mef::{Mef, MefConfig, SubjectType};
//! # fn main() -> Result<(), onem2m_mef::MefError> {
//! let mef = Mef::start(MefConfig::new("/tmp/mef-data"))?;
//! println!("{}", mef.base_uri(None)); // https://localhost:PORT/.well-known/est
//! # let client_cert_der: Vec<u8> = Vec::new();
//! mef.add_identity(&client_cert_der, SubjectType::Ae, "https://sp.example.com/cse01/CAE01")?;
//! mef.shutdown();
//! # Ok(()) }
//! ```

// The MEF has no unsafe code.
#![forbid(unsafe_code)]

mod approval;
pub mod ca;
pub mod challenge;
mod conn;
mod est;
pub mod http;
pub mod identity;
mod logging;
mod metrics;
mod openssl_tls;
mod pool;
pub mod psk;
mod server;
mod state;
pub mod store;
pub mod ts0003;

// The stateless CSR checks of the enrollment operations, for the fuzz target `mef_csr`: with
// the `test-hooks` feature only (fuzz/Cargo.toml enables it), not part of the MEF's API.
#[cfg(feature = "test-hooks")]
pub use est::{
    csr_request, decode_csr_body, parse_csr, parse_csr_structure, CsrRequest, EncryptionKeyRequest,
};
pub use identity::{fingerprint, Identity, SubjectType};
pub use psk::add_psk;
pub use server::{add_identity, RunningMef};
pub use store::{Database, IssuedCert, PskEntry, RegistryEntry, Store};

use rustls_pki_types::CertificateDer;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors of the MEF (start-up, registry, issuance). Never carries key material or passwords.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MefError {
    /// File system access failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("database: {context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL refused or failed an operation (`--database postgres://...`).
    #[error("database: {context}: {source}")]
    Postgres {
        context: &'static str,
        #[source]
        source: postgres::Error,
    },
    /// The database cannot be reached (PostgreSQL stopped, restarting or unreachable): EST
    /// requests that need it are answered 503 with Retry-After until it is back.
    #[error("database unavailable: {context}: {source}")]
    DatabaseUnavailable {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Key or certificate generation, signing or parsing failed.
    #[error("crypto: {0}")]
    Crypto(String),
    /// TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The configuration or a file in the data directory is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// An identity (or fingerprint) given to the registry is not valid.
    #[error("invalid identity: {0}")]
    InvalidIdentity(String),
    /// EST wire-format encoding failed.
    #[error("encoding: {0}")]
    Proto(#[from] onem2m_est_proto::ProtoError),
}

/// Which extended key usage the MEF's TLS server certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerEku {
    /// id-kp-serverAuth only (what generic TLS clients expect).
    #[default]
    ServerAuth,
    /// id-kp-cmcRA only: RFC 7030 3.6.1 authorisation of an EST server acting as RA.
    CmcRa,
    /// Both.
    Both,
}

impl ServerEku {
    const ALL: [ServerEku; 3] = [ServerEku::ServerAuth, ServerEku::CmcRa, ServerEku::Both];

    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerEku::ServerAuth => "server-auth",
            ServerEku::CmcRa => "cmc-ra",
            ServerEku::Both => "both",
        }
    }
}

impl std::str::FromStr for ServerEku {
    type Err = MefError;
    fn from_str(s: &str) -> Result<Self, MefError> {
        parse_spelling(s, &ServerEku::ALL, ServerEku::as_str, "server EKU")
    }
}

/// The one of `all` whose command-line spelling (`spell`) is `s`: parsing follows `as_str`, so
/// each spelling is written once. The error names `what` and every spelling.
fn parse_spelling<T: Copy>(
    s: &str,
    all: &[T],
    spell: fn(T) -> &'static str,
    what: &str,
) -> Result<T, MefError> {
    if let Some(v) = all.iter().copied().find(|v| spell(*v) == s) {
        return Ok(v);
    }
    let names: Vec<&str> = all.iter().map(|v| spell(*v)).collect();
    let expected = match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(MefError::Config(format!(
        "unknown {what} {s:?} (expected {expected})"
    )))
}

/// A key purpose the MEF grants in the certificates it issues (RFC 5280 4.2.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// id-kp-serverAuth: the holder may serve TLS (a CSE serving AEs and other CSEs, an AE
    /// receiving notifications, TS-0003 8.2).
    ServerAuth,
    /// id-kp-clientAuth: the holder may authenticate as a TLS client (and to this MEF).
    ClientAuth,
}

impl KeyPurpose {
    const ALL: [KeyPurpose; 2] = [KeyPurpose::ServerAuth, KeyPurpose::ClientAuth];

    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::ServerAuth => "server-auth",
            KeyPurpose::ClientAuth => "client-auth",
        }
    }

    /// The dotted OID.
    pub fn oid(self) -> &'static str {
        match self {
            KeyPurpose::ServerAuth => onem2m_est_proto::oids::KP_SERVER_AUTH,
            KeyPurpose::ClientAuth => onem2m_est_proto::oids::KP_CLIENT_AUTH,
        }
    }
}

impl std::str::FromStr for KeyPurpose {
    type Err = MefError;
    fn from_str(s: &str) -> Result<Self, MefError> {
        parse_spelling(s, &KeyPurpose::ALL, KeyPurpose::as_str, "key purpose")
    }
}

/// The extendedKeyUsage issuance policy, per subject type: what /csrattrs requests (CR
/// 8.3.Z.2.2 step 2), what the CSR must carry (CR 8.3.Z.2.3 step 3d) and what the issued
/// certificate holds. Each list must be non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkuPolicy {
    /// AE-ID certificates.
    pub ae: Vec<KeyPurpose>,
    /// CSE-ID certificates.
    pub cse: Vec<KeyPurpose>,
    /// Node-ID certificates.
    pub node: Vec<KeyPurpose>,
}

impl Default for EkuPolicy {
    /// serverAuth and clientAuth for every subject type: TS-0003 8.2 makes a CSE a TLS server
    /// for AEs and other CSEs and an AE a receiver of notifications, and CR 8.3.Z.2.2 step 3f
    /// lets the EST client certificate serve in other security protocols.
    fn default() -> Self {
        let both = vec![KeyPurpose::ServerAuth, KeyPurpose::ClientAuth];
        EkuPolicy {
            ae: both.clone(),
            cse: both.clone(),
            node: both,
        }
    }
}

impl EkuPolicy {
    /// The key purposes for a subject type.
    pub fn for_type(&self, t: SubjectType) -> &[KeyPurpose] {
        match t {
            SubjectType::Ae => &self.ae,
            SubjectType::Cse => &self.cse,
            SubjectType::Node => &self.node,
        }
    }

    /// Refuses an empty list or one naming a purpose twice.
    pub fn validate(&self) -> Result<(), MefError> {
        for t in [SubjectType::Ae, SubjectType::Cse, SubjectType::Node] {
            let p = self.for_type(t);
            if p.is_empty() {
                return Err(MefError::Config(format!(
                    "the EKU policy for {t} is empty (RFC 5280 4.2.1.12: at least one purpose)"
                )));
            }
            if p.iter().enumerate().any(|(i, a)| p[..i].contains(a)) {
                return Err(MefError::Config(format!(
                    "the EKU policy for {t} names a purpose twice"
                )));
            }
        }
        Ok(())
    }
}

/// Configuration of a MEF instance.
#[derive(Debug, Clone)]
pub struct MefConfig {
    /// Address to listen on; port 0 picks a free port (see [`RunningMef::local_addr`]).
    pub listen: SocketAddr,
    /// Directory holding the CA, the server certificate and (with [`Database::Sqlite`]) the
    /// database.
    pub data_dir: PathBuf,
    /// Host names and IP addresses of the TLS server certificate.
    pub hostnames: Vec<String>,
    /// EKU of the TLS server certificate.
    pub server_eku: ServerEku,
    /// The EST server explicit trust anchor database for third-party client certificates.
    pub client_trust: Vec<CertificateDer<'static>>,
    /// Lifetime of issued certificates.
    pub cert_lifetime: Duration,
    /// How long a challengePassword from /csrattrs stays valid.
    pub challenge_ttl: Duration,
    /// Manual-approval simulation: answer the first N attempts of each CSR with 202.
    pub approval_polls: u32,
    /// Retry-After seconds of those 202 answers.
    pub retry_after_secs: u64,
    /// Largest accepted request body (413 beyond).
    pub max_body: usize,
    /// Most connections served at once; further ones are closed immediately.
    pub max_connections: usize,
    /// Connection threads kept running (reused from one connection to the next). When all are
    /// busy, more are started up to `max_connections` (so idle keep-alive clients never starve
    /// others) and those retire after a few idle seconds.
    pub workers: usize,
    /// Socket read/write (and keep-alive idle) timeout.
    pub io_timeout: Duration,
    /// Address of the TLS-PSK listener (PPSK-based RSPF, [`psk`]); `None` runs none. Port 0
    /// picks a free port (see [`RunningMef::psk_addr`]).
    pub psk_listen: Option<SocketAddr>,
    /// Address of a second certificate listener restricted to TS-0003 10.2.1/10.2.3 (TLS 1.2,
    /// TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 only, on OpenSSL, see [`ts0003`]); `None` runs
    /// none. Port 0 picks a free port (see [`RunningMef::ts0003_addr`]).
    pub ts0003_listen: Option<SocketAddr>,
    /// The extendedKeyUsage of issued certificates, per subject type.
    pub eku_policy: EkuPolicy,
    /// The SP domains (TS-0003 10.1.1.5): a CA created with some carries them as permitted
    /// dNSName nameConstraints, and the MEF refuses AE-IDs and CSE-IDs whose host lies outside
    /// them. Empty: no constraint.
    pub sp_domains: Vec<String>,
    /// The URL issued certificates name as their CRL distribution point (RFC 5280 4.2.1.13).
    /// `None`: `https://<first host name>:<bound port>/crl/mef-ca.crl`, served by the main
    /// listener.
    pub crl_url: Option<String>,
    /// The CA key in a PKCS #11 token instead of `mef-ca.key` ([`CaKeyInToken`]); `None` keeps
    /// the software key in the data directory.
    pub ca_key: Option<CaKeyInToken>,
    /// Address of the plain-HTTP `/metrics` listener (Prometheus text format, `crate::metrics`);
    /// `None` runs none. Unauthenticated: loopback or a management network only. Port 0 picks a
    /// free port (see [`RunningMef::metrics_addr`]).
    pub metrics_listen: Option<SocketAddr>,
    /// Where the records are kept: the SQLite file in `data_dir` (default) or PostgreSQL, shared
    /// by replicas ([`Database`]).
    pub database: Database,
}

/// Where the MEF CA key is when it lives in a PKCS #11 token: an existing EC P-256 key pair
/// (e.g. made with `pkcs11-tool --keypairgen --key-type EC:prime256v1`), addressed by an RFC
/// 7512 URI, the module path and the user PIN source given separately (a file or an environment
/// variable, never the PIN itself). Needs the MEF's `pkcs11` feature.
#[derive(Debug, Clone)]
pub struct CaKeyInToken {
    /// The token's PKCS #11 module (shared library).
    pub module: PathBuf,
    /// `pkcs11:token=...;object=...` (RFC 7512).
    pub uri: String,
    /// A file holding the user PIN.
    pub pin_file: Option<PathBuf>,
    /// An environment variable holding the user PIN (when `pin_file` is `None`).
    pub pin_env: Option<String>,
}

impl MefConfig {
    /// Defaults: 127.0.0.1:0, host names localhost/127.0.0.1/::1, serverAuth EKU, no third-party
    /// trust anchors, 365-day certificates, 300 s challenge TTL, no approval delay, 64 KiB
    /// bodies, 64 connections, one resident worker per available CPU, 30 s timeouts, no PSK
    /// listener, serverAuth + clientAuth in issued certificates ([`EkuPolicy::default`]), no SP
    /// domains.
    pub fn new(data_dir: impl AsRef<Path>) -> MefConfig {
        MefConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.as_ref().to_path_buf(),
            hostnames: default_hostnames(),
            server_eku: ServerEku::ServerAuth,
            client_trust: Vec::new(),
            cert_lifetime: Duration::from_secs(365 * 24 * 3600),
            challenge_ttl: Duration::from_secs(300),
            approval_polls: 0,
            retry_after_secs: 1,
            max_body: 64 * 1024,
            max_connections: 64,
            workers: default_workers(),
            io_timeout: Duration::from_secs(30),
            psk_listen: None,
            ts0003_listen: None,
            ca_key: None,
            eku_policy: EkuPolicy::default(),
            sp_domains: Vec::new(),
            crl_url: None,
            metrics_listen: None,
            database: Database::Sqlite,
        }
    }
}

/// The default host names of the server certificate.
pub fn default_hostnames() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

/// The default number of resident connection threads: the available parallelism.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Entry point: starts a MEF.
pub struct Mef;

impl Mef {
    /// Creates (first start) or loads the CA, server certificate and database in
    /// `config.data_dir`, binds the listener and serves in background threads.
    pub fn start(config: MefConfig) -> Result<RunningMef, MefError> {
        server::start(config)
    }
}

/// Reads every certificate of a PEM file (for `--client-trust`).
pub fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, MefError> {
    let text = std::fs::read(path).map_err(|e| MefError::Io {
        context: format!("reading {}", path.display()),
        source: e,
    })?;
    let blocks = pem::parse_many(&text)
        .map_err(|e| MefError::Config(format!("{}: malformed PEM: {e}", path.display())))?;
    let certs: Vec<_> = blocks
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err(MefError::Config(format!(
            "{}: no CERTIFICATE block",
            path.display()
        )));
    }
    Ok(certs)
}

// Every Rust snippet of mef/README.md compiles as a doctest (issue #14: docs that cannot rot).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// A fresh scratch directory for a unit test: `onem2m-mef-NAME-PID` under the temporary
/// directory, emptied first (a previous run of the same process id may have left it).
#[cfg(test)]
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onem2m-mef-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_parse_back_and_errors_name_them_all() {
        for eku in ServerEku::ALL {
            assert_eq!(eku.as_str().parse::<ServerEku>().unwrap(), eku);
        }
        for purpose in KeyPurpose::ALL {
            assert_eq!(purpose.as_str().parse::<KeyPurpose>().unwrap(), purpose);
        }
        assert_eq!(
            "x".parse::<ServerEku>().unwrap_err().to_string(),
            "configuration: unknown server EKU \"x\" (expected server-auth, cmc-ra or both)"
        );
        assert_eq!(
            "x".parse::<KeyPurpose>().unwrap_err().to_string(),
            "configuration: unknown key purpose \"x\" (expected server-auth or client-auth)"
        );
    }
}
