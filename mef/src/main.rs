//! `onem2m-mef`: runs the reference MEF, or manages its identity registry, PSK registry and
//! issued certificates.

#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use onem2m_mef::{Database, EkuPolicy, KeyPurpose, Mef, MefConfig, ServerEku, Store, SubjectType};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the operation failed (the message says what failed and why): an unreadable or invalid
     file, no database in --data-dir, an identity already registered, nothing to remove
  2  usage error (unknown option, missing or malformed argument)";

#[derive(Parser)]
#[command(
    name = "onem2m-mef",
    version,
    about = "Reference oneM2M MEF: EST server, RA and CA (TS-0003 8.3.6)",
    after_help = EXIT_CODES,
    // `--data-dir` is required to serve; management commands take their own.
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
    /// Most detailed log level on stderr: error, warn, info or debug (every line is timestamped,
    /// UTC). Refused requests and TLS handshakes are logged at warn.
    #[arg(long, value_name = "LEVEL", default_value = "info", global = true,
          value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Data directory (CA, server certificate, database); created on the first start.
    #[arg(long, value_name = "DIR", required = true)]
    data_dir: Option<PathBuf>,
    /// Where the MEF keeps its records: `sqlite` (DIR/mef.sqlite, the default) or a PostgreSQL
    /// connection URL (postgres://USER@HOST:PORT/DB) shared by replicas, which then keep only
    /// their key material in --data-dir. Default: $ONEM2M_MEF_DATABASE, else sqlite (the
    /// variable keeps a password in the URL out of the process list).
    #[arg(long, value_name = "sqlite|postgres://...")]
    database: Option<String>,
    /// Most PostgreSQL connections this replica keeps open (its pool).
    #[arg(long, value_name = "N", default_value_t = onem2m_mef::store::DEFAULT_POOL_SIZE)]
    database_pool: u32,
    /// URL issued certificates name as their CRL distribution point (default
    /// https://FIRST-HOSTNAME:PORT/crl/mef-ca.crl, served by this listener).
    #[arg(long)]
    crl_url: Option<String>,
    /// Host name or IP address of the TLS server certificate (repeatable;
    /// default localhost, 127.0.0.1 and ::1).
    #[arg(long = "hostname")]
    hostnames: Vec<String>,
    /// EKU of the TLS server certificate: server-auth, cmc-ra (RFC 7030 3.6.1) or both.
    #[arg(long, default_value = "server-auth")]
    server_eku: ServerEku,
    /// PEM file of trust anchors for third-party client certificates (repeatable).
    #[arg(long, value_name = "PEM")]
    client_trust: Vec<PathBuf>,
    /// Lifetime of issued certificates, in days.
    #[arg(long, default_value_t = 365)]
    cert_lifetime_days: u64,
    /// Lifetime of issued certificates as a duration (`90s`, `10min`, `30d`, `1y 2d`); replaces
    /// --cert-lifetime-days. Short lifetimes are for renewal tests.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration,
          conflicts_with = "cert_lifetime_days")]
    cert_lifetime: Option<Duration>,
    /// Lifetime of a challengePassword handed out by /csrattrs, in seconds.
    #[arg(long, default_value_t = 300)]
    challenge_ttl_secs: u64,
    /// Answer the first N attempts of each CSR with 202 Accepted (manual-approval simulation).
    #[arg(long, default_value_t = 0)]
    approval_polls: u32,
    /// Retry-After seconds sent with those 202 answers.
    #[arg(long, default_value_t = 1)]
    retry_after: u64,
    /// Largest accepted request body in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    max_body: usize,
    /// Most connections served at once.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
    /// Connection threads kept running and reused (default: the available parallelism); more
    /// are started while all are busy, up to --max-connections.
    #[arg(long)]
    workers: Option<usize>,
    /// Socket read/write and keep-alive idle timeout, in seconds.
    #[arg(long, default_value_t = 30)]
    io_timeout_secs: u64,
    /// Also run a TLS-PSK listener (PPSK-based RSPF, TS-0003 8.3.2.1) on this address, for
    /// clients holding a (KpmID, Kpm) pair registered with `psk add`. Its address is printed as
    /// "psk listening on ADDR".
    #[arg(long, value_name = "ADDR")]
    psk_listen: Option<SocketAddr>,
    /// Also run a certificate listener restricted to TS-0003 10.2.1/10.2.3 (TLS 1.2 and
    /// TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 only, OpenSSL) on this address, for clients in
    /// the ts0003 TLS profile. Its address is printed as "ts0003 listening on ADDR".
    #[arg(long, value_name = "ADDR")]
    ts0003_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics (text format) at http://ADDR/metrics: plain HTTP without
    /// authentication, so bind it to loopback or a management network, never a public address.
    /// Its address is printed as "metrics listening on ADDR".
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    #[command(flatten)]
    token: CaTokenArgs,
    /// extendedKeyUsage of certificates issued to AEs: comma-separated server-auth,
    /// client-auth (CR 8.3.Z.2.3 step 3d; /csrattrs requests it, the CSR must match it).
    #[arg(long, value_delimiter = ',', default_value = "server-auth,client-auth")]
    ae_eku: Vec<KeyPurpose>,
    /// extendedKeyUsage of certificates issued to CSEs (as --ae-eku).
    #[arg(long, value_delimiter = ',', default_value = "server-auth,client-auth")]
    cse_eku: Vec<KeyPurpose>,
    /// extendedKeyUsage of certificates issued to Nodes (as --ae-eku).
    #[arg(long, value_delimiter = ',', default_value = "server-auth,client-auth")]
    node_eku: Vec<KeyPurpose>,
    /// SP domain (repeatable; TS-0003 10.1.1.5): a CA created on this start carries them as
    /// permitted dNSName nameConstraints, and AE-IDs/CSE-IDs outside them are refused.
    #[arg(long = "sp-domain")]
    sp_domains: Vec<String>,
}

/// The CA key in a PKCS #11 token: for serving, and for the management commands that sign with
/// it (`ca rollover`, `ca retire-old`, `cert revoke`).
#[derive(Args)]
struct CaTokenArgs {
    /// The CA key in a PKCS #11 token: pkcs11:URI (RFC 7512) of an existing EC P-256 key pair,
    /// instead of DIR/mef-ca.key; with --pkcs11-module and --pin-file or --pin-env. Needs a
    /// build with the MEF's `pkcs11` feature.
    #[arg(long, value_name = "pkcs11:URI", requires = "pkcs11_module")]
    ca_key: Option<String>,
    /// PKCS #11 module (shared library) of the token holding --ca-key.
    #[arg(long, value_name = "PATH")]
    pkcs11_module: Option<PathBuf>,
    /// File holding the token's user PIN (the PIN is never an argument).
    #[arg(long, value_name = "PATH", conflicts_with = "pin_env")]
    pin_file: Option<PathBuf>,
    /// Environment variable holding the token's user PIN.
    #[arg(long, value_name = "VAR")]
    pin_env: Option<String>,
}

impl CaTokenArgs {
    /// The token CA key given, if any. Module or PIN flags without --ca-key are refused.
    fn ca_key(&self) -> Result<Option<onem2m_mef::CaKeyInToken>, Failure> {
        match (&self.ca_key, &self.pkcs11_module) {
            (Some(uri), Some(module)) => Ok(Some(onem2m_mef::CaKeyInToken {
                module: module.clone(),
                uri: uri.clone(),
                pin_file: self.pin_file.clone(),
                pin_env: self.pin_env.clone(),
            })),
            _ if self.any() => Err(Failure(
                "--pkcs11-module, --pin-file and --pin-env go with --ca-key pkcs11:URI".into(),
            )),
            _ => Ok(None),
        }
    }

    fn any(&self) -> bool {
        self.ca_key.is_some()
            || self.pkcs11_module.is_some()
            || self.pin_file.is_some()
            || self.pin_env.is_some()
    }
}

#[derive(Subcommand)]
enum Command {
    /// Manage the identity registry of third-party client certificates.
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Manage certificates this MEF issued.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Manage the PSK registry of PPSK-based RSPF: KpmID -> (Kpm, identity).
    #[command(subcommand)]
    Psk(PskCommand),
    /// Roll the MEF CA over (RFC 7030 4.1.3). Restart the MEF after each step.
    #[command(subcommand)]
    Ca(CaCommand),
}

/// The identity a registration (`identity add`, `psk add`) provisions.
#[derive(Args)]
struct SubjectArgs {
    /// ae, cse or node.
    #[arg(long)]
    subject_type: SubjectType,
    /// AE-ID URI, CSE-ID domain name or Node-ID URI.
    #[arg(long)]
    subject_id: String,
}

/// Where a management command finds the records.
#[derive(Args)]
struct StoreArgs {
    /// The MEF's data directory: its database with --database sqlite (the default), and its CA
    /// (the CRL file there is rewritten after a revocation).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// `sqlite` (DIR/mef.sqlite) or the PostgreSQL URL the MEF replicas use (see `onem2m-mef
    /// --help`). Default: $ONEM2M_MEF_DATABASE, else sqlite.
    #[arg(long, value_name = "sqlite|postgres://...")]
    database: Option<String>,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Make a new CA key and certificate and the OldWithNew/NewWithOld link certificates; the
    /// new CA issues from the next start on, and the old one stays trusted and served in
    /// /cacerts until `ca retire-old`.
    /// With the CA key in a PKCS #11 token: --ca-key (the current key), --new-ca-key (the new
    /// key pair is generated in the token under its object label, unused so far) and the token
    /// flags; restart the MEF with --ca-key set to the new key's URI it prints.
    Rollover {
        #[arg(long)]
        data_dir: PathBuf,
        /// pkcs11:URI (RFC 7512) under which the new CA key pair is generated (a new object=
        /// label; same module and PIN as --ca-key).
        #[arg(long, value_name = "pkcs11:URI", requires = "ca_key")]
        new_ca_key: Option<String>,
        #[command(flatten)]
        token: CaTokenArgs,
    },
    /// End the overlap: remove the old CA and the link certificates. An old CA key in a PKCS
    /// #11 token (recorded by the rollover) is destroyed in it: give --pkcs11-module and
    /// --pin-file or --pin-env.
    RetireOld {
        #[arg(long)]
        data_dir: PathBuf,
        /// PKCS #11 module (shared library) of the token holding the old CA key.
        #[arg(long, value_name = "PATH")]
        pkcs11_module: Option<PathBuf>,
        /// File holding the token's user PIN.
        #[arg(
            long,
            value_name = "PATH",
            conflicts_with = "pin_env",
            requires = "pkcs11_module"
        )]
        pin_file: Option<PathBuf>,
        /// Environment variable holding the token's user PIN.
        #[arg(long, value_name = "VAR", requires = "pkcs11_module")]
        pin_env: Option<String>,
    },
}

#[derive(Subcommand)]
enum PskCommand {
    /// Register (or replace) a KpmID with its key Kpm and the identity it provisions.
    Add {
        #[command(flatten)]
        db: StoreArgs,
        /// The KpmID (the TLS psk_identity).
        #[arg(long)]
        kpm_id: String,
        /// The Kpm as hexadecimal text (16 to 64 bytes). Visible in the process list: prefer
        /// --kpm-file outside tests.
        #[arg(
            long,
            conflicts_with = "kpm_file",
            required_unless_present = "kpm_file"
        )]
        kpm_hex: Option<String>,
        /// A file holding the Kpm as hexadecimal text (e.g. from `openssl rand -hex 32`).
        #[arg(long)]
        kpm_file: Option<PathBuf>,
        #[command(flatten)]
        subject: SubjectArgs,
    },
    /// List registered KpmIDs and their identities (never the keys).
    List {
        #[command(flatten)]
        db: StoreArgs,
    },
    /// Remove a registered KpmID, revoking every certificate enrolled with it (and their
    /// renewals).
    Remove {
        #[command(flatten)]
        db: StoreArgs,
        /// The KpmID to remove.
        #[arg(long)]
        kpm_id: String,
    },
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Associate an identity with a third-party client certificate.
    Add {
        #[command(flatten)]
        db: StoreArgs,
        /// The client certificate (PEM); its SHA-256 fingerprint is registered.
        #[arg(
            long,
            conflicts_with = "fingerprint",
            required_unless_present = "fingerprint"
        )]
        client_cert: Option<PathBuf>,
        /// SHA-256 fingerprint of the client certificate DER (hex, ':' allowed).
        #[arg(long)]
        fingerprint: Option<String>,
        #[command(flatten)]
        subject: SubjectArgs,
        /// Replace the identity already registered for this certificate (refused without it).
        #[arg(long)]
        replace: bool,
    },
    /// List registered identities.
    List {
        #[command(flatten)]
        db: StoreArgs,
    },
    /// Remove a registered identity, revoking every certificate enrolled with that client
    /// certificate (and their renewals).
    Remove {
        #[command(flatten)]
        db: StoreArgs,
        #[arg(
            long,
            conflicts_with = "fingerprint",
            required_unless_present = "fingerprint"
        )]
        /// The client certificate (PEM) whose registration is removed.
        client_cert: Option<PathBuf>,
        /// SHA-256 fingerprint of the client certificate DER (hex, ':' allowed).
        #[arg(long)]
        fingerprint: Option<String>,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// List issued certificates: a header line, then one line each (dates in UTC).
    List {
        #[command(flatten)]
        db: StoreArgs,
        /// One JSON object per line instead (times as Unix seconds and RFC 3339).
        #[arg(long)]
        json: bool,
    },
    /// Revoke an issued certificate and its renewals (refused by every operation from then
    /// on), or every certificate issued for an identity.
    Revoke {
        #[command(flatten)]
        db: StoreArgs,
        /// Serial number or SHA-256 fingerprint (hex).
        #[arg(
            long,
            conflicts_with = "subject_id",
            required_unless_present = "subject_id"
        )]
        id: Option<String>,
        /// With --subject-id: revoke every certificate issued for this identity (ae, cse or
        /// node).
        #[arg(long, requires = "subject_id")]
        subject_type: Option<SubjectType>,
        /// AE-ID URI, CSE-ID domain name or Node-ID URI.
        #[arg(long, requires = "subject_type")]
        subject_id: Option<String>,
        /// With the CA key in a PKCS #11 token, the CRL file is signed in the token and
        /// rewritten now (otherwise only a running MEF regenerates it).
        #[command(flatten)]
        token: CaTokenArgs,
    },
}

/// Minimal stderr logger (the MEF is a reference/test server; no logging framework needed):
/// `2026-12-01T11:28:12.345Z WARN message`, UTC, one line per record (--log-level).
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) && r.target().starts_with("onem2m_mef") {
            // One write per line: stderr is unbuffered, and eprintln! issues a write per
            // formatted piece (about ten system calls per issued certificate).
            let line = format!("{} {:<5} {}\n", timestamp(), r.level(), r.args());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
    fn flush(&self) {}
}

/// Now in UTC, RFC 3339 with milliseconds.
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{}.{:03}Z", utc(now.unix_timestamp()), now.millisecond())
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SS` (UTC).
fn utc(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("@{unix}"),
    }
}

/// After a revocation by `cert revoke`: the CRL file rewritten, signed in the token when the CA
/// key is there (`--ca-key`). Without it a token CA's file is left to the running MEF, and the
/// operator is told.
fn revoked_crl(
    db: &StoreArgs,
    store: &Store,
    in_token: Option<&onem2m_mef::CaKeyInToken>,
) -> Result<(), Failure> {
    // PostgreSQL without --data-dir: no CRL file here (the replicas regenerate the one they
    // serve).
    let Some(data_dir) = db.data_dir.as_deref() else {
        return Ok(());
    };
    match in_token {
        Some(spec) => Ok(onem2m_mef::ca::refresh_crl_file_in_token(
            data_dir, store, spec,
        )?),
        None if onem2m_mef::ca::ca_key_in_token(data_dir) => {
            eprintln!(
                "note: the CA key is in a PKCS #11 token: {} is not rewritten now (a running MEF \
                 regenerates it; give --ca-key with --pkcs11-module and --pin-file to sign it \
                 here)",
                data_dir.join(onem2m_mef::ca::CRL_FILE).display()
            );
            Ok(())
        }
        None => Ok(onem2m_mef::ca::refresh_crl_file(data_dir, store)?),
    }
}

/// A failure of a command: what failed, then why (the prefix says which step, not a category).
struct Failure(String);

impl Failure {
    fn of(what: impl std::fmt::Display) -> impl FnOnce(onem2m_mef::MefError) -> Failure {
        let what = what.to_string();
        move |e| Failure(format!("{what}: {}", mef_text(&e)))
    }
}

impl From<onem2m_mef::MefError> for Failure {
    fn from(e: onem2m_mef::MefError) -> Failure {
        Failure(mef_text(&e))
    }
}

/// The error without the category word "configuration:" that says nothing to an operator.
fn mef_text(e: &onem2m_mef::MefError) -> String {
    match e {
        onem2m_mef::MefError::Config(m) => m.clone(),
        other => other.to_string(),
    }
}

/// `--database`, else $ONEM2M_MEF_DATABASE, else SQLite. Errors never repeat the text (a URL
/// may hold a password).
fn database_arg(arg: Option<&str>) -> Result<Database, Failure> {
    let (what, text) = match arg {
        Some(t) => ("--database", t.to_owned()),
        None => match std::env::var("ONEM2M_MEF_DATABASE") {
            Ok(t) => ("ONEM2M_MEF_DATABASE", t),
            Err(_) => return Ok(Database::Sqlite),
        },
    };
    text.parse().map_err(Failure::of(what))
}

/// The database of a management command: it must exist (a mistyped --data-dir would otherwise
/// create an empty one and report "nothing registered"). PostgreSQL: the replicas' database
/// (migrated if needed).
fn existing_store(args: &StoreArgs) -> Result<Store, Failure> {
    open_store(args, false)
}

/// The database of an `add` command, which may be the first use of the data directory: then a
/// new database is created, and said so.
fn store_for_add(args: &StoreArgs) -> Result<Store, Failure> {
    open_store(args, true)
}

fn open_store(args: &StoreArgs, create: bool) -> Result<Store, Failure> {
    let database = database_arg(args.database.as_deref())?;
    if let Database::Postgres { .. } = database {
        let dir = args
            .data_dir
            .as_deref()
            .unwrap_or(std::path::Path::new("."));
        return Store::open_database(&database, dir)
            .map_err(Failure::of("opening the PostgreSQL database"));
    }
    let Some(data_dir) = args.data_dir.as_deref() else {
        // A usage error (exit code 2), as clap reports a missing argument.
        use clap::CommandFactory;
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--data-dir <DIR> is required unless --database (or $ONEM2M_MEF_DATABASE) \
                 names a PostgreSQL database",
            )
            .exit()
    };
    let existed = data_dir.join(DB_FILE).is_file();
    if !existed && !create {
        return Err(Failure(format!(
            "--data-dir {}: no MEF database there ({DB_FILE} not found); check the path, or \
             start the MEF or add an identity there first",
            data_dir.display()
        )));
    }
    let store = Store::open(data_dir).map_err(Failure::of(format!(
        "opening the database in {}",
        data_dir.display()
    )))?;
    if !existed {
        eprintln!(
            "onem2m-mef: note: no database in {}: created a new one",
            data_dir.display()
        );
    }
    Ok(store)
}

/// After a revocation: the CRL file in the data directory, when there is one (replicas serve
/// a CRL regenerated from the database in any case).
fn refresh_crl(args: &StoreArgs, store: &Store) -> Result<(), Failure> {
    match &args.data_dir {
        Some(dir) => Ok(onem2m_mef::ca::refresh_crl_file(dir, store)?),
        None => Ok(()),
    }
}

/// `identity list` and `psk list`: one line per registration, its key and identity.
fn print_registrations<'a>(entries: impl Iterator<Item = (&'a String, &'a onem2m_mef::Identity)>) {
    for (key, identity) in entries {
        println!(
            "{key} {} {}",
            identity.subject_type(),
            identity.subject_id()
        );
    }
}

/// After `identity remove` or `psk remove` of `key`: what it revoked, and the CRL file
/// rewritten; `missing` is the failure when nothing was registered under `key`.
fn removed(
    db: &StoreArgs,
    store: &Store,
    key: &str,
    revoked: Option<usize>,
    missing: String,
) -> Result<(), Failure> {
    match revoked {
        Some(revoked) => {
            println!("removed {key}; revoked {revoked} certificate(s) enrolled with it");
            refresh_crl(db, store)
        }
        None => Err(Failure(missing)),
    }
}

use onem2m_mef::store::DB_FILE;

/// What TLS will refuse in a client certificate, or what the onem2m-est client cannot use
/// (issue #14: a v1 certificate from `openssl x509 -req` was refused with a bare alert).
fn certificate_warnings(der: &[u8]) -> Vec<String> {
    use x509_parser::prelude::*;
    let mut warnings = Vec::new();
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return vec!["the certificate does not parse as X.509".into()];
    };
    // RFC 5280 4.1.2.1: extensions need v3; rustls/webpki refuses other versions.
    if cert.version() != X509Version::V3 {
        warnings.push(format!(
            "it is X.509 version {} (TLS refuses it: webpki accepts only v3; `openssl x509 -req` \
             makes v1 unless given -extfile with extensions)",
            cert.version().0 + 1
        ));
    }
    // RFC 5280 4.2.1.12: with an EKU, the certificate is only for the purposes it lists.
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        if !eku.value.client_auth && !eku.value.any {
            warnings.push(
                "its extendedKeyUsage lacks clientAuth (TLS refuses it as a client certificate)"
                    .into(),
            );
        }
    }
    if let Ok(Some(ku)) = cert.key_usage() {
        if !ku.value.digital_signature() {
            warnings.push(
                "its keyUsage lacks digitalSignature (TLS client authentication signs with it)"
                    .into(),
            );
        }
    }
    let key_oid = cert.public_key().algorithm.algorithm.to_id_string();
    if key_oid == "1.2.840.113549.1.1.1" {
        warnings.push(
            "its key is RSA: the onem2m-est client cannot use RSA keys (TS-0003 10.1.1.1 \
             profiles ECDSA P-256)"
                .into(),
        );
    }
    let now = ASN1Time::now();
    if cert.validity().not_after < now {
        warnings.push(format!("it expired on {}", cert.validity().not_after));
    } else if cert.validity().not_before > now {
        warnings.push(format!(
            "it is not valid before {}",
            cert.validity().not_before
        ));
    }
    warnings
}

static LOGGER: StderrLogger = StderrLogger;

fn fingerprint_arg(
    client_cert: Option<&std::path::Path>,
    fingerprint: Option<String>,
) -> Result<String, Failure> {
    match (client_cert, fingerprint) {
        (Some(p), _) => {
            let certs = onem2m_mef::read_pem_certs(p)
                .map_err(Failure::of(format!("--client-cert {}", p.display())))?;
            Ok(onem2m_mef::fingerprint(&certs[0]))
        }
        (None, Some(f)) => {
            onem2m_mef::identity::normalize_fingerprint(&f).map_err(Failure::of("--fingerprint"))
        }
        (None, None) => Err(Failure("give --client-cert or --fingerprint".into())),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Some(Command::Identity(IdentityCommand::Add {
            db,
            client_cert,
            fingerprint,
            subject:
                SubjectArgs {
                    subject_type,
                    subject_id,
                },
            replace,
        })) => {
            let fp = fingerprint_arg(client_cert.as_deref(), fingerprint)?;
            if let Some(path) = &client_cert {
                let certs = onem2m_mef::read_pem_certs(path)
                    .map_err(Failure::of(format!("--client-cert {}", path.display())))?;
                for w in certificate_warnings(certs[0].as_ref()) {
                    eprintln!("onem2m-mef: warning: {}: {w}", path.display());
                }
            }
            let store = store_for_add(&db)?;
            let existing = store
                .list_identities()
                .map_err(Failure::of("reading the identity registry"))?
                .into_iter()
                .find(|e| e.fingerprint == fp);
            if let (Some(e), false) = (&existing, replace) {
                return Err(Failure(format!(
                    "identity add: {fp} is already registered as {} {}; pass --replace to \
                     replace it",
                    e.identity.subject_type(),
                    e.identity.subject_id()
                )));
            }
            onem2m_mef::add_identity(&store, fp.as_bytes(), subject_type, &subject_id)
                .map_err(Failure::of("identity add"))?;
            println!("{fp} {subject_type} {subject_id}");
            Ok(())
        }
        Some(Command::Identity(IdentityCommand::List { db })) => {
            let entries = existing_store(&db)?.list_identities()?;
            print_registrations(entries.iter().map(|e| (&e.fingerprint, &e.identity)));
            Ok(())
        }
        Some(Command::Identity(IdentityCommand::Remove {
            db,
            client_cert,
            fingerprint,
        })) => {
            let fp = fingerprint_arg(client_cert.as_deref(), fingerprint)?;
            let store = existing_store(&db)?;
            let revoked = store.remove_identity(&fp)?;
            removed(
                &db,
                &store,
                &fp,
                revoked,
                format!("identity remove: no identity registered for {fp}"),
            )
        }
        Some(Command::Cert(CertCommand::List { db, json })) => {
            let issued = existing_store(&db)?.list_issued()?;
            if !json {
                println!("SERIAL FINGERPRINT TYPE SUBJECT-ID NOT-BEFORE NOT-AFTER REVOKED");
            }
            for c in issued {
                if json {
                    println!(
                        "{{\"serial\":{:?},\"fingerprint\":{:?},\"subject_type\":\"{}\",\
                         \"subject_id\":{:?},\"not_before\":\"{}Z\",\"not_after\":\"{}Z\",\
                         \"not_after_unix\":{},\"revoked\":{}}}",
                        c.serial,
                        c.fingerprint,
                        c.identity.subject_type(),
                        c.identity.subject_id(),
                        utc(c.not_before),
                        utc(c.not_after),
                        c.not_after,
                        c.revoked
                    );
                } else {
                    println!(
                        "{} {} {} {} {}Z {}Z {}",
                        c.serial,
                        c.fingerprint,
                        c.identity.subject_type(),
                        c.identity.subject_id(),
                        utc(c.not_before),
                        utc(c.not_after),
                        if c.revoked { "yes" } else { "no" }
                    );
                }
            }
            Ok(())
        }
        Some(Command::Cert(CertCommand::Revoke {
            db,
            id,
            subject_type,
            subject_id,
            token,
        })) => {
            // Checked before anything is revoked.
            let in_token = token.ca_key()?;
            let store = existing_store(&db)?;
            match (id, subject_type, subject_id) {
                (Some(id), _, _) => match store.revoke_counted(&id)? {
                    Some(n) => {
                        println!("revoked {id}: {n} certificate(s) with its renewals");
                        revoked_crl(&db, &store, in_token.as_ref())
                    }
                    None => Err(Failure(format!("cert revoke: no issued certificate {id}"))),
                },
                (None, Some(ty), Some(subject)) => {
                    let identity = onem2m_mef::Identity::new(ty, &subject)?;
                    let n = store.revoke_identity(&identity)?;
                    println!("revoked {n} certificate(s) issued for {identity}");
                    revoked_crl(&db, &store, in_token.as_ref())
                }
                _ => Err(Failure(
                    "cert revoke: give --id, or --subject-type and --subject-id".into(),
                )),
            }
        }
        Some(Command::Ca(CaCommand::Rollover {
            data_dir,
            new_ca_key,
            token,
        })) => {
            match (token.ca_key()?, new_ca_key) {
                (Some(current), Some(new)) => {
                    let uri = onem2m_mef::ca::rollover_in_token(&data_dir, &current, &new)?;
                    println!(
                        "new MEF CA in {} with its key in the token: {uri}; the old CA and the \
                         link certificates are served until `ca retire-old` (restart the MEF \
                         with --ca-key '{uri}')",
                        data_dir.join(onem2m_mef::ca::CA_CERT_FILE).display()
                    );
                    return Ok(());
                }
                (Some(_), None) => {
                    return Err(Failure(
                        "ca rollover: a CA key in a token needs --new-ca-key pkcs11:URI (the \
                         label of the new key pair)"
                            .into(),
                    ))
                }
                _ => onem2m_mef::ca::rollover(&data_dir)?,
            }
            println!(
                "new MEF CA in {}; the old CA and the link certificates are served until \
                 `ca retire-old` (restart the MEF)",
                data_dir.join(onem2m_mef::ca::CA_CERT_FILE).display()
            );
            Ok(())
        }
        Some(Command::Ca(CaCommand::RetireOld {
            data_dir,
            pkcs11_module,
            pin_file,
            pin_env,
        })) => {
            match &pkcs11_module {
                Some(module) => onem2m_mef::ca::retire_old_in_token(
                    &data_dir,
                    module,
                    pin_file.as_deref(),
                    pin_env.as_deref(),
                )?,
                None => onem2m_mef::ca::retire_old(&data_dir)?,
            }
            println!("old MEF CA retired (restart the MEF)");
            Ok(())
        }
        Some(Command::Psk(PskCommand::Add {
            db,
            kpm_id,
            kpm_hex,
            kpm_file,
            subject:
                SubjectArgs {
                    subject_type,
                    subject_id,
                },
        })) => {
            let hex = match (kpm_hex, kpm_file) {
                (Some(h), _) => zeroize::Zeroizing::new(h),
                (None, Some(p)) => zeroize::Zeroizing::new(
                    std::fs::read_to_string(&p)
                        .map_err(|e| Failure(format!("--kpm-file {}: {e}", p.display())))?,
                ),
                (None, None) => return Err(Failure("give --kpm-hex or --kpm-file".into())),
            };
            let kpm = onem2m_mef::psk::decode_hex(&hex).map_err(Failure::of("the Kpm"))?;
            let store = store_for_add(&db)?;
            onem2m_mef::add_psk(&store, &kpm_id, &kpm, subject_type, &subject_id)
                .map_err(Failure::of("psk add"))?;
            println!("{kpm_id} {subject_type} {subject_id}");
            Ok(())
        }
        Some(Command::Psk(PskCommand::List { db })) => {
            let entries = existing_store(&db)?.list_psks()?;
            print_registrations(entries.iter().map(|e| (&e.kpm_id, &e.identity)));
            Ok(())
        }
        Some(Command::Psk(PskCommand::Remove { db, kpm_id })) => {
            let store = existing_store(&db)?;
            let revoked = store.remove_psk(&kpm_id)?;
            removed(
                &db,
                &store,
                &kpm_id,
                revoked,
                format!("psk remove: no PSK registered for KpmID {kpm_id}"),
            )
        }
        None => serve(cli.serve),
    }
}

fn serve(a: ServeArgs) -> Result<(), Failure> {
    let data_dir = a
        .data_dir
        .ok_or_else(|| Failure("--data-dir is required".into()))?;
    let mut config = MefConfig::new(&data_dir);
    config.database = match database_arg(a.database.as_deref())? {
        Database::Postgres { config, .. } => Database::Postgres {
            config,
            pool_size: a.database_pool.max(1),
        },
        sqlite => sqlite,
    };
    config.listen = a.listen;
    if !a.hostnames.is_empty() {
        config.hostnames = a.hostnames;
    }
    config.server_eku = a.server_eku;
    for p in &a.client_trust {
        config.client_trust.extend(
            onem2m_mef::read_pem_certs(p)
                .map_err(Failure::of(format!("--client-trust {}", p.display())))?,
        );
    }
    config.cert_lifetime = match a.cert_lifetime {
        Some(d) if d < Duration::from_secs(1) => {
            return Err(Failure("--cert-lifetime: it must be at least 1s".into()))
        }
        Some(d) => d,
        None => Duration::from_secs(a.cert_lifetime_days.max(1) * 24 * 3600),
    };
    config.challenge_ttl = Duration::from_secs(a.challenge_ttl_secs);
    config.approval_polls = a.approval_polls;
    config.retry_after_secs = a.retry_after;
    config.max_body = a.max_body;
    config.max_connections = a.max_connections.max(1);
    if let Some(w) = a.workers {
        config.workers = w.max(1);
    }
    config.io_timeout = Duration::from_secs(a.io_timeout_secs.max(1));
    config.psk_listen = a.psk_listen;
    config.ts0003_listen = a.ts0003_listen;
    config.metrics_listen = a.metrics_listen;
    config.ca_key = a.token.ca_key()?;
    config.eku_policy = EkuPolicy {
        ae: a.ae_eku,
        cse: a.cse_eku,
        node: a.node_eku,
    };
    config.sp_domains = a.sp_domains;
    config.crl_url = a.crl_url;
    let mef = Mef::start(config).map_err(Failure::of(format!(
        "starting the MEF (data directory {})",
        data_dir.display()
    )))?;
    let mut out = std::io::stdout().lock();
    // Tests parse these lines.
    let _ = writeln!(out, "listening on {}", mef.local_addr());
    if let Some(addr) = mef.psk_addr() {
        let _ = writeln!(out, "psk listening on {addr}");
    }
    if let Some(addr) = mef.ts0003_addr() {
        let _ = writeln!(out, "ts0003 listening on {addr}");
    }
    if let Some(addr) = mef.metrics_addr() {
        let _ = writeln!(out, "metrics listening on {addr}");
    }
    let _ = writeln!(out, "CA certificate: {}", mef.ca_cert_pem_path().display());
    let _ = out.flush();
    drop(out);
    // Serve until killed.
    loop {
        std::thread::park();
    }
}

fn main() {
    let cli = Cli::parse();
    let level = cli.log_level.parse().unwrap_or(log::LevelFilter::Info);
    let _ = log::set_logger(&LOGGER).map(|_| log::set_max_level(level));
    if let Err(Failure(e)) = run(cli) {
        eprintln!("onem2m-mef: error: {e}");
        std::process::exit(1);
    }
}
