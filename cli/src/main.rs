//! `onem2m-est`: a command-line MEF Client for oneM2M Certificate Provisioning (TS-0003 8.3.6)
//! over EST. A thin layer over the `onem2m-est` library: argument parsing, reading PEM files,
//! printing, and exit codes.
//!
//! PPSK-based RSPF (TS-0003 8.3.2.1): `--psk-identity KpmID` with `--psk-key-hex HEX` or
//! `--psk-key-file PATH` replaces `--trust-anchors`/`--tls-cert`/`--tls-key` on `provision`,
//! `serverkeygen`, `cacerts` and `csrattrs`. The key file holds the Kpm as hexadecimal text
//! (white space, line breaks and ':' ignored; e.g. `openssl rand -hex 32 > kpm.hex`), never raw
//! bytes: text is unambiguous and survives editors and configuration tools. Needs the library's
//! `psk` feature (this crate's `psk` feature enables it); without it the flags exit 2.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod renewal;
mod token;
use onem2m_est::client::{
    Channel, Config, InitialAuth, KeySource, MefClient, Provisioned, Reprovision,
};
use onem2m_est::identity::{SpId, SubjectIdentity};
use onem2m_est::keys::PrivateKey;
use onem2m_est::psk::PskCredential;
use onem2m_est::store::{read_pem_certs, read_pem_key, FileStore};
use onem2m_est::tls::ClientIdentity;
use onem2m_est::transport::TransportConfig;
use onem2m_est::uri::EstUri;
use onem2m_est::{Error, ErrorClass};
use rustls_pki_types::CertificateDer;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (MEF_CLIENT_CMD_OK)
  2  bad arguments (MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS)
  3  client-side failure (MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR): key, CSR, credential store
  4  server-side failure (MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR): connection, TLS, server
     authorisation, rejection by the MEF, invalid response
  141  standard output closed early (e.g. `| head -1`): nothing more is printed, the
     command's work (files written) is complete, as 128 + SIGPIPE in a C tool";

/// Exit status when standard output is a closed pipe: what a shell reports for a C tool killed
/// by SIGPIPE (128 + 13), so `set -o pipefail` scripts see the same as with any other tool.
const EXIT_BROKEN_PIPE: u8 = 141;

/// `print!` to standard output that ends the process quietly on a closed pipe (EPIPE) instead of
/// panicking like `print!`. Rust ignores SIGPIPE, so the write itself reports the broken pipe.
macro_rules! out {
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*), false) };
}

/// `println!` counterpart of [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*), true) };
}

/// `eprintln!` that ignores a closed standard error (`2>&1 | head -1`) instead of panicking:
/// the exit status still says what happened.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

fn write_stdout(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| {
        if newline {
            stdout.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(EXIT_BROKEN_PIPE.into());
        }
        // Any other failure to print (a full disk behind a redirect, ...) is reported, not a
        // panic; the exit status is the client-side one.
        errln!("onem2m-est: error: cannot write to standard output: {e}");
        std::process::exit(3);
    }
}

/// MEF Client for oneM2M Certificate Provisioning over EST (TS-0003 8.3.6, RFC 7030).
#[derive(Parser, Debug)]
#[command(name = "onem2m-est", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

/// How much is printed, and in which form (the conventions of command-line tools).
#[derive(Args, Debug, Clone, Copy)]
struct OutputArgs {
    /// Show the library's progress log on stderr: -v steps (info), -vv details (debug), -vvv
    /// everything (trace). Without it only warnings are shown. Never shows keys or passwords.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    verbose: u8,
    /// Print nothing but errors: no log, no summary on stdout (--json output is still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Print the result as one JSON object on stdout, also on failure (with the error, its
    /// class and the CERT_PROV cmdStatusCode).
    #[arg(long, global = true)]
    json: bool,
}

/// The library logs through the `log` facade; this prints its records on stderr, one line
/// each, prefixed with the level (the CLI's -v).
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = record.level().as_str().to_ascii_lowercase();
            errln!("onem2m-est: {level}: {}", record.args());
        }
    }

    fn flush(&self) {}
}

fn init_log(output: OutputArgs) {
    let level = match (output.quiet, output.verbose) {
        (true, _) => log::LevelFilter::Off,
        (false, 0) => log::LevelFilter::Warn,
        (false, 1) => log::LevelFilter::Info,
        (false, 2) => log::LevelFilter::Debug,
        (false, _) => log::LevelFilter::Trace,
    };
    if log::set_logger(&StderrLog).is_ok() {
        log::set_max_level(level);
    }
}

/// Whether the human-readable summary goes to stdout.
static SUMMARY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// `outln!` for the human-readable summary: silent with -q or --json.
macro_rules! sayln {
    ($($arg:tt)*) => {
        if SUMMARY.load(std::sync::atomic::Ordering::Relaxed) {
            outln!($($arg)*)
        }
    };
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Initial Certificate Provisioning (TS-0003 8.3.6.2.2) with a third-party client certificate
    /// or a pre-provisioned symmetric key (--psk-identity, PPSK-based RSPF).
    #[command(after_help = EXIT_CODES)]
    Provision {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        auth: ThirdPartyArgs,
        #[command(flatten)]
        psk: PskArgs,
        #[command(flatten)]
        subject: SubjectArgs,
        /// Directory receiving cert.pem, key.pem (0600) and trust-anchors.pem.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Use this existing private key (PEM) instead of generating one; or pkcs11:URI: generate
        /// the key pair in that PKCS #11 token under the URI's object label (DIR records the URI
        /// in key.uri, no key.pem).
        #[arg(long, value_name = "PEM|pkcs11:URI", conflicts_with = "server_keygen")]
        key: Option<PathBuf>,
        #[command(flatten)]
        token: token::TokenArgs,
        /// Let the MEF generate the key pair (/serverkeygen, RFC 7030 4.4).
        #[arg(long)]
        server_keygen: bool,
    },
    /// Certificate Re-Provisioning (TS-0003 8.3.6.2.3): authenticates with DIR's credentials and
    /// replaces them only on success.
    #[command(after_help = EXIT_CODES)]
    Reprovision {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        subject: SubjectArgs,
        /// Directory holding the current credentials; receives the new ones.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Generate a new key pair (rekey) instead of renewing with the current key.
        #[arg(long, conflicts_with = "server_keygen")]
        rekey: bool,
        #[command(flatten)]
        key: token::StoreKeyArgs,
        /// Let the MEF generate the new key pair (/serverkeygen).
        #[arg(long)]
        server_keygen: bool,
    },
    /// Provisioning with a key pair generated by the MEF (/serverkeygen, RFC 7030 4.4). With
    /// --tls-cert/--tls-key or --psk-identity it is an initial provisioning, without them it
    /// authenticates with the credentials in --out.
    #[command(after_help = EXIT_CODES)]
    Serverkeygen {
        #[command(flatten)]
        mef: MefArgs,
        #[command(flatten)]
        subject: SubjectArgs,
        /// Directory receiving (and, without --tls-cert, holding) the credentials.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Renews the credentials in --out (re-provisioning; re-bootstrapping with the bootstrap
    /// credential when the certificate expired or the MEF refuses it). With --if-due only
    /// when due: for cron and systemd timers.
    #[command(after_help = renewal::RENEW_EXIT_CODES)]
    Renew {
        #[command(flatten)]
        args: renewal::RenewArgs,
        /// Renew only if the renewal policy says the certificate is due (or it expired);
        /// otherwise exit 10.
        #[arg(long)]
        if_due: bool,
    },
    /// A renewal agent: sleeps until the next renewal, renews, retries with backoff, runs
    /// --post-renew-hook after each install; SIGTERM stops it between steps, SIGHUP reloads.
    #[command(after_help = renewal::AGENT_EXIT_CODES)]
    Agent(renewal::AgentArgs),
    /// Fetch and print the MEF CA certificates (/cacerts, RFC 7030 4.1).
    #[command(after_help = EXIT_CODES)]
    Cacerts {
        #[command(flatten)]
        mef: MefArgs,
        /// Print PEM instead of a summary.
        #[arg(long)]
        pem: bool,
    },
    /// Fetch and print the CSR attributes the MEF requires (/csrattrs, RFC 7030 4.5).
    #[command(after_help = EXIT_CODES)]
    Csrattrs {
        #[command(flatten)]
        mef: MefArgs,
    },
    /// Show the credentials installed in DIR: identity, issuer, serial, validity (days left),
    /// trust anchors. No network. Exit 3 when DIR holds no complete set.
    #[command(after_help = EXIT_CODES)]
    Status {
        /// Directory the credentials were installed in (provision/reprovision --out).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// The MEF and what authenticates to it besides the credentials in --out: trust anchors with
/// an optional client certificate, or a PSK (serverkeygen, cacerts, csrattrs).
#[derive(Args, Debug)]
struct MefArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    auth: OptionalThirdPartyArgs,
    #[command(flatten)]
    psk: PskArgs,
}

impl MefArgs {
    /// `send` from a client without a subject, over TLS-PSK with --psk-identity, otherwise over
    /// certificate TLS with --trust-anchors (and the client certificate when given): the
    /// channel of cacerts and csrattrs.
    fn request<T>(
        &self,
        send: impl FnOnce(&MefClient, Channel<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let client = client(&self.server, &SubjectArgs::none())?;
        match self.psk.credential()? {
            Some(credential) => send(&client, Channel::Psk(&credential)),
            None => {
                let (tas, identity) = optional_auth(&self.auth)?;
                send(&client, Channel::certificate(&tas, identity))
            }
        }
    }
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// The EST base URI, e.g. https://mef.example.com/.well-known/est/LABEL
    #[arg(long, value_name = "URL")]
    server: String,
    /// The EST base URI of the MEF's TLS-PSK listener, when it is not --server (the reference
    /// MEF's --psk-listen): Initial Certificate Provisioning with --psk-identity goes there,
    /// certificate-authenticated requests to --server. Lets `renew` and `agent` re-bootstrap
    /// with the Kpm.
    #[arg(long, value_name = "URL")]
    psk_server: Option<String>,
    /// Connect, TLS and response timeout, in seconds (0 is refused).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// At most this many requests when the MEF answers 202 Accepted (RFC 7030 4.2.3; at least
    /// 1).
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_polls: u32,
    /// At most this long in total waiting on 202 Accepted, in seconds. Each wait is at least
    /// the MEF's Retry-After; a longer Retry-After ends the command (exit 4) with how long the
    /// MEF asked for, instead of asking again early.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    max_poll_time: u64,
    /// TLS profile of certificate-authenticated connections: `modern` (rustls, TLS 1.3/1.2
    /// AEAD suites) or `ts0003` (TS-0003 10.2.1/10.2.3: TLS 1.2 only, ECDHE-ECDSA suites with
    /// the mandatory TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, through OpenSSL; needs a build
    /// with the `psk` feature).
    #[arg(long, value_name = "PROFILE", default_value = "modern",
          value_parser = ["modern", "ts0003"])]
    tls_profile: String,
}

#[derive(Args, Debug)]
struct ThirdPartyArgs {
    /// PEM file with the explicit trust anchors that authenticate the MEF (RFC 7030 3.6.1).
    #[arg(long, value_name = "PEM", required_unless_present = "psk_identity")]
    trust_anchors: Option<PathBuf>,
    /// PEM file with the third-party client certificate (and its chain).
    #[arg(long, value_name = "PEM", required_unless_present = "psk_identity")]
    tls_cert: Option<PathBuf>,
    /// PEM file with the client certificate's private key.
    #[arg(long, value_name = "PEM", required_unless_present = "psk_identity")]
    tls_key: Option<PathBuf>,
}

/// PPSK-based RSPF (TS-0003 8.3.2.1): certificate-less TLS-PSK (RFC 7030 3.3.3). The PSK alone
/// authenticates both ends, so it replaces the trust anchors and the client certificate.
/// `Debug` is written by hand so the key never shows.
#[derive(Args)]
struct PskArgs {
    /// The KpmID, sent as the TLS psk_identity.
    #[arg(
        long,
        value_name = "ID",
        requires = "psk_key",
        conflicts_with_all = ["trust_anchors", "tls_cert", "tls_key"]
    )]
    psk_identity: Option<String>,
    /// The Kpm as hexadecimal text (16 to 64 bytes). Visible in the process list: prefer
    /// --psk-key-file outside tests.
    #[arg(long, value_name = "HEX", group = "psk_key", requires = "psk_identity")]
    psk_key_hex: Option<String>,
    /// A file holding the Kpm as hexadecimal text (white space and ':' ignored).
    #[arg(
        long,
        value_name = "PATH",
        group = "psk_key",
        requires = "psk_identity"
    )]
    psk_key_file: Option<PathBuf>,
}

impl std::fmt::Debug for PskArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskArgs")
            .field("psk_identity", &self.psk_identity)
            .field(
                "psk_key_hex",
                &self.psk_key_hex.as_ref().map(|_| "<redacted>"),
            )
            .field("psk_key_file", &self.psk_key_file)
            .finish()
    }
}

impl PskArgs {
    /// The credential, when --psk-identity was given. Bad keys are bad arguments (exit 2);
    /// no message shows the key.
    fn credential(&self) -> Result<Option<PskCredential>, Error> {
        let Some(identity) = &self.psk_identity else {
            return Ok(None);
        };
        let hex = match (&self.psk_key_hex, &self.psk_key_file) {
            (Some(hex), _) => zeroize::Zeroizing::new(hex.clone()),
            (None, Some(path)) => {
                zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    Error::InvalidArgument {
                        argument: "--psk-key-file",
                        reason: format!("cannot read {} as hexadecimal text: {e}", path.display()),
                    }
                })?)
            }
            (None, None) => {
                return Err(Error::InvalidArgument {
                    argument: "--psk-key-hex",
                    reason: "--psk-identity needs --psk-key-hex or --psk-key-file".into(),
                })
            }
        };
        let compact: zeroize::Zeroizing<String> =
            zeroize::Zeroizing::new(hex.split_whitespace().collect());
        PskCredential::from_hex(identity.clone(), &compact).map(Some)
    }
}

#[derive(Args, Debug)]
struct OptionalThirdPartyArgs {
    /// PEM file with the explicit trust anchors that authenticate the MEF (RFC 7030 3.6.1).
    /// Required unless --psk-identity is given; for serverkeygen only with --tls-cert (without
    /// it the trust anchors installed in --out are used).
    #[arg(long, value_name = "PEM")]
    trust_anchors: Option<PathBuf>,
    /// PEM file with a client certificate (and its chain).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM file with the client certificate's private key.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SubjectArgs {
    /// certSubjectType: ae, cse or node (TS-0003 8.3.9.7).
    #[arg(long, value_name = "TYPE", requires = "subject_id")]
    subject_type: Option<String>,
    /// certSubjectID: an AE-ID (`//SP-ID/CSE-ID/AE-ID` or its full URI), a CSE-ID
    /// (`//SP-ID/CSE-ID` or its public domain name) or a Node-ID (a URI or a dotted OID). With
    /// --sp-id also the SP-relative forms (`/CSE-ID/AE-ID`, `/CSE-ID`, a bare CSE-ID).
    #[arg(long, value_name = "ID", requires = "subject_type")]
    subject_id: Option<String>,
    /// The M2M-SP-ID (`//example.net`) that SP-relative subject IDs belong to (TS-0001 7.2).
    #[arg(long, value_name = "SP-ID", requires = "subject_id")]
    sp_id: Option<String>,
    /// The FQDN of the MEF that issued the CERT_PROV command: the command's arguments
    /// (--server, --subject-type, --subject-id) are verified against it before anything else
    /// (TS-0003 8.3.9.7); a mismatch exits 2.
    #[arg(long, value_name = "FQDN")]
    mef_fqdn: Option<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // With --json a usage error is a JSON object too (a bad-arguments failure, exit 2),
            // so a caller that reads stdout always gets one; clap's text still goes to stderr.
            if e.exit_code() == 2 {
                if let Some(object) = usage_error_json(&e, std::env::args_os().skip(1)) {
                    outln!("{object}");
                }
            }
            // clap exits 2 on usage errors, 0 on --help/--version: the same contract as ours.
            e.exit();
        }
    };
    init_log(cli.output);
    if cli.output.quiet || cli.output.json {
        SUMMARY.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    let json = cli.output.json;
    let name = command_name(&cli.command);
    // renew and agent choose their own exit codes (renewed, not due, ...) and print their own
    // decision lines; every other subcommand returns a result object for --json.
    let outcome = match cli.command {
        Command::Renew { args, if_due } => renewal::renew(&args, if_due).map(|code| (code, None)),
        Command::Agent(args) => renewal::agent(&args).map(|code| (code, None)),
        other => run(other).map(|result| (ExitCode::SUCCESS, Some(result))),
    };
    match outcome {
        Ok((code, result)) => {
            if let (true, Some(result)) = (json, result) {
                let mut object = serde_json::json!({ "ok": true, "command": name });
                object
                    .as_object_mut()
                    .expect("an object")
                    .extend(result.as_object().cloned().unwrap_or_default());
                outln!("{object}");
            }
            code
        }
        Err(e) => {
            if json {
                let status = onem2m_est::certprov::CmdStatus::from(e.class());
                let object = serde_json::json!({
                    "ok": false,
                    "command": name,
                    "error": e.text_with_causes(),
                    "class": match e.class() {
                        ErrorClass::BadArguments => "bad-arguments",
                        ErrorClass::Client => "client",
                        ErrorClass::Server => "server",
                    },
                    "cmdStatusCode": status.name(),
                });
                outln!("{object}");
            }
            // The status and its name are the core's (certprov::CmdStatus); the exit codes
            // are this command's.
            let status = onem2m_est::certprov::CmdStatus::from(e.class());
            let code = match e.class() {
                ErrorClass::BadArguments => 2,
                ErrorClass::Client => 3,
                ErrorClass::Server => 4,
            };
            let status = status.name();
            errln!("onem2m-est: error: {e}");
            for cause in e.unquoted_causes() {
                errln!("  caused by: {cause}");
            }
            errln!("onem2m-est: status: {status}");
            ExitCode::from(code)
        }
    }
}

/// The --json object of a usage error, when the arguments ask for --json (before any `--`):
/// the subcommand if one was named, clap's message without its "error: " prefix and usage
/// lines, and the bad-arguments class of every other argument failure (TS-0003 8.3.9.7).
fn usage_error_json(
    e: &clap::Error,
    args: impl Iterator<Item = std::ffi::OsString>,
) -> Option<serde_json::Value> {
    let args: Vec<_> = args.take_while(|a| a != "--").collect();
    if !args.iter().any(|a| a == "--json") {
        return None;
    }
    let cli = <Cli as clap::CommandFactory>::command();
    let command = args.iter().find_map(|a| {
        cli.get_subcommands()
            .find(|c| a == c.get_name())
            .map(|c| c.get_name().to_string())
    });
    let rendered = e.render().to_string();
    let message = rendered.lines().next().unwrap_or_default();
    let message = message.strip_prefix("error: ").unwrap_or(message);
    Some(serde_json::json!({
        "ok": false,
        "command": command,
        "error": message,
        "class": "bad-arguments",
        "cmdStatusCode": onem2m_est::certprov::CmdStatus::from(ErrorClass::BadArguments).name(),
    }))
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Provision { .. } => "provision",
        Command::Reprovision { .. } => "reprovision",
        Command::Serverkeygen { .. } => "serverkeygen",
        Command::Cacerts { .. } => "cacerts",
        Command::Csrattrs { .. } => "csrattrs",
        Command::Status { .. } => "status",
        Command::Renew { .. } => "renew",
        Command::Agent(_) => "agent",
    }
}

/// `--out DIR`: DIR itself may be created, but not missing parent folders, which are more
/// likely a mistyped path than an intention.
fn out_dir(out: &Path) -> Result<(), Error> {
    if out.exists() {
        return Ok(());
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return Ok(()),
    };
    if parent.is_dir() {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            argument: "--out",
            reason: format!(
                "{}: the folder {} does not exist (only DIR itself is created; create its \
                 parent first)",
                out.display(),
                parent.display()
            ),
        })
    }
}

fn run(command: Command) -> Result<serde_json::Value, Error> {
    match command {
        Command::Provision {
            server,
            auth,
            psk,
            subject,
            out,
            key,
            token,
            server_keygen,
        } => {
            let client = client(&server, &subject)?;
            let token_uri = token::key_uri(key.as_deref())?;
            let auth = match (psk.credential()?, &auth) {
                (Some(credential), _) => InitialAuth::Psk(credential),
                (
                    None,
                    ThirdPartyArgs {
                        trust_anchors: Some(tas),
                        tls_cert: Some(cert),
                        tls_key: Some(key),
                    },
                ) => initial_auth(tas, cert, key)?,
                (None, _) => {
                    return Err(Error::InvalidArgument {
                        argument: "--tls-cert",
                        reason: "give --trust-anchors, --tls-cert and --tls-key, or \
                                 --psk-identity with a PSK key"
                            .into(),
                    })
                }
            };
            let key = match (key, server_keygen) {
                // A token key is generated in the token (Pkcs11Store::create_key).
                (Some(_), _) if token_uri.is_some() => KeySource::Generate,
                (Some(path), _) => KeySource::Existing(Arc::new(read_pem_key(&path)?)),
                (None, true) => KeySource::ServerGenerated,
                (None, false) => KeySource::Generate,
            };
            out_dir(&out)?;
            let mut store = token::store(&out, token_uri.as_ref(), &token, true)?;
            let done = client.provision(&auth, store.as_mut(), key)?;
            Ok(report(&done, &out))
        }
        Command::Reprovision {
            server,
            subject,
            out,
            rekey,
            key,
            server_keygen,
        } => {
            let client = client(&server, &subject)?;
            let mode = if server_keygen {
                Reprovision::ServerKeygen
            } else if rekey {
                Reprovision::Rekey
            } else {
                Reprovision::Renew
            };
            out_dir(&out)?;
            let mut store = key.store(&out)?;
            let done = client.reprovision(store.as_mut(), mode)?;
            Ok(report(&done, &out))
        }
        Command::Serverkeygen {
            mef: MefArgs { server, auth, psk },
            subject,
            out,
        } => {
            let client = client(&server, &subject)?;
            let credential = psk.credential()?;
            out_dir(&out)?;
            let mut store = FileStore::new(&out)?;
            let done = if let Some(credential) = credential {
                let auth = InitialAuth::Psk(credential);
                client.provision(&auth, &mut store, KeySource::ServerGenerated)?
            } else {
                match (&auth.tls_cert, &auth.tls_key) {
                    (Some(cert), Some(key)) => {
                        let tas =
                            auth.trust_anchors
                                .as_ref()
                                .ok_or_else(|| Error::InvalidArgument {
                                    argument: "--trust-anchors",
                                    reason: "required with --tls-cert".into(),
                                })?;
                        let auth = initial_auth(tas, cert, key)?;
                        client.provision(&auth, &mut store, KeySource::ServerGenerated)?
                    }
                    _ => client.reprovision(&mut store, Reprovision::ServerKeygen)?,
                }
            };
            Ok(report(&done, &out))
        }
        Command::Cacerts { mef, pem } => {
            let certs = mef.request(|client, channel| client.cacerts(channel))?;
            if pem && SUMMARY.load(std::sync::atomic::Ordering::Relaxed) {
                out!("{}", onem2m_est::store::certs_to_pem(&certs));
            } else {
                for (i, cert) in certs.iter().enumerate() {
                    sayln!("certificate {}:", i + 1);
                    describe_cert(cert);
                }
            }
            let list: Vec<_> = certs
                .iter()
                .map(|c| {
                    let mut v = cert_json(c);
                    v["pem"] = onem2m_est::store::certs_to_pem(std::slice::from_ref(c)).into();
                    v
                })
                .collect();
            Ok(serde_json::json!({ "certificates": list }))
        }
        Command::Renew { .. } | Command::Agent(_) => unreachable!("dispatched in main"),
        Command::Csrattrs { mef } => {
            let reqs = mef.request(|client, channel| client.csrattrs(channel))?;
            match reqs {
                None => {
                    sayln!("the server has no CSR attributes (204/404)");
                    Ok(serde_json::json!({ "csr_attributes": null }))
                }
                Some(reqs) => Ok(serde_json::json!({
                    "csr_attributes": describe_requirements(&reqs)
                })),
            }
        }
        Command::Status { out } => status(&out),
    }
}

/// `status --out DIR`: what is installed, read from the files (no network).
fn status(dir: &Path) -> Result<serde_json::Value, Error> {
    let missing = |what: &str, e: &dyn std::fmt::Display| Error::NotProvisioned {
        reason: format!("{}: {what}: {e}", dir.display()),
    };
    let chain = read_pem_certs(dir.join("cert.pem")).map_err(|e| missing("no certificate", &e))?;
    let tas = read_pem_certs(dir.join("trust-anchors.pem"))
        .map_err(|e| missing("no trust anchors", &e))?;
    if !dir.join("key.pem").exists() {
        return Err(missing("no key.pem", &"not found"));
    }
    let leaf = &chain[0];
    sayln!("credentials in {}:", dir.display());
    describe_cert(leaf);
    let mut cert = cert_json(leaf);
    if let Ok((_, parsed)) = x509_parser::parse_x509_certificate(leaf.as_ref()) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let days_left = (parsed.validity().not_after.timestamp() - now).div_euclid(86_400);
        sayln!(
            "  days left:   {days_left}{}",
            if days_left < 0 { " (expired)" } else { "" }
        );
        cert["days_left"] = days_left.into();
    }
    sayln!("trust anchors: {}", tas.len());
    for ta in &tas {
        if let Ok((_, parsed)) = x509_parser::parse_x509_certificate(ta.as_ref()) {
            sayln!(
                "  {} (not after {})",
                parsed.subject(),
                parsed.validity().not_after
            );
        }
    }
    let anchors: Vec<_> = tas.iter().map(cert_json).collect();
    Ok(serde_json::json!({
        "dir": dir.display().to_string(),
        "certificate": cert,
        "key": dir.join("key.pem").display().to_string(),
        "trust_anchors": anchors,
    }))
}

/// A certificate as JSON: the fields `describe_cert` prints. Times are RFC 3339 (UTC).
fn cert_json(der: &CertificateDer<'_>) -> serde_json::Value {
    let hex = sha256_hex(der);
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => {
            let names = san_texts(&cert);
            let time = |t: &x509_parser::time::ASN1Time| {
                t.to_datetime()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| t.to_string())
            };
            serde_json::json!({
                "subject": cert.subject().to_string(),
                "issuer": cert.issuer().to_string(),
                "serial": cert.raw_serial_as_string(),
                "not_before": time(&cert.validity().not_before),
                "not_after": time(&cert.validity().not_after),
                "identity": names,
                "ca": cert.is_ca(),
                "sha256": hex,
            })
        }
        Err(e) => {
            serde_json::json!({ "error": format!("unparseable certificate: {e}"), "sha256": hex })
        }
    }
}

impl SubjectArgs {
    fn none() -> SubjectArgs {
        SubjectArgs {
            subject_type: None,
            subject_id: None,
            sp_id: None,
            mef_fqdn: None,
        }
    }
}

/// The core's refusal of an argument, named as the CLI option that carried it.
fn renamed(e: Error, option: &'static str) -> Error {
    match e {
        Error::InvalidArgument { reason, .. } => Error::InvalidArgument {
            argument: option,
            reason,
        },
        other => other,
    }
}

fn client(server: &ServerArgs, subject: &SubjectArgs) -> Result<MefClient, Error> {
    let base = EstUri::parse(&server.server)?;
    let timeout = Duration::from_secs(server.timeout);
    let transport = TransportConfig::default()
        .with_timeouts(timeout, timeout, timeout)
        .map_err(|e| renamed(e, "--timeout"))?
        .with_polling(server.max_polls, Duration::from_secs(server.max_poll_time))
        .map_err(|e| renamed(e, "--max-polls"))?;
    let mut config = Config::new(base)
        .transport(transport)
        .tls_profile(server.tls_profile.parse()?);
    if let Some(psk_server) = &server.psk_server {
        config = config.psk_base_uri(EstUri::parse(psk_server)?);
    }
    if let (Some(t), Some(id)) = (&subject.subject_type, &subject.subject_id) {
        let subject_type = onem2m_est::identity::parse_subject_type(t)?;
        let identity = match &subject.sp_id {
            None => SubjectIdentity::new(subject_type, id.clone())?,
            Some(sp) => {
                let sp = SpId::parse(sp).map_err(|e| Error::InvalidArgument {
                    argument: "--sp-id",
                    reason: e.to_string(),
                })?;
                SubjectIdentity::with_sp_id(subject_type, id.clone(), &sp)?
            }
        };
        config = config.identity(identity);
    }
    if let Some(fqdn) = &subject.mef_fqdn {
        config = config.mef_fqdn(fqdn.clone());
    }
    // The CERT_PROV arguments are checked before any file is read or connection made; the
    // library checks again when the procedure starts (the same function).
    onem2m_est::certprov::verify_config(&config)?;
    Ok(MefClient::new(config))
}

fn initial_auth(tas: &Path, cert: &Path, key: &Path) -> Result<InitialAuth, Error> {
    Ok(InitialAuth::Certificate {
        trust_anchors: read_pem_certs(tas)?,
        client: ClientIdentity {
            chain: read_pem_certs(cert)?,
            key: Arc::new(read_pem_key(key)?),
        },
    })
}

/// Trust anchors and an optional client identity for cacerts/csrattrs.
fn optional_auth(
    auth: &OptionalThirdPartyArgs,
) -> Result<(Vec<CertificateDer<'static>>, Option<ClientIdentity>), Error> {
    let tas = auth
        .trust_anchors
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument {
            argument: "--trust-anchors",
            reason: "the explicit trust anchors that authenticate the MEF are required (or \
                     --psk-identity with a PSK key)"
                .into(),
        })?;
    let identity = match (&auth.tls_cert, &auth.tls_key) {
        (Some(cert), Some(key)) => {
            let key: Arc<dyn PrivateKey> = Arc::new(read_pem_key(key)?);
            Some(ClientIdentity {
                chain: read_pem_certs(cert)?,
                key,
            })
        }
        _ => None,
    };
    Ok((read_pem_certs(tas)?, identity))
}

fn report(done: &Provisioned, out: &Path) -> serde_json::Value {
    if let Some(leaf) = done.chain.first() {
        sayln!("provisioned certificate:");
        describe_cert(leaf);
    }
    sayln!("trust anchors installed: {}", done.trust_anchors.len());
    sayln!("TLS handshakes: {}", done.connection.handshakes);
    if let Some(suite) = done.connection.cipher_suite {
        sayln!("TLS cipher suite: {suite}");
    }
    let files = [
        out.join("cert.pem"),
        token::key_file(out),
        out.join("trust-anchors.pem"),
    ];
    sayln!(
        "written: {} {} {}",
        files[0].display(),
        files[1].display(),
        files[2].display()
    );
    serde_json::json!({
        "installed": {
            "cert": files[0].display().to_string(),
            "key": files[1].display().to_string(),
            "trust_anchors": files[2].display().to_string(),
        },
        "certificate": done.chain.first().map(cert_json),
        "trust_anchors": done.trust_anchors.len(),
        "tls_handshakes": done.connection.handshakes,
        "tls_cipher_suite": done.connection.cipher_suite,
    })
}

fn describe_cert(der: &CertificateDer<'_>) {
    let hex = sha256_hex(der);
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => {
            sayln!("  subject:     {}", cert.subject());
            sayln!("  issuer:      {}", cert.issuer());
            sayln!("  serial:      {}", cert.raw_serial_as_string());
            sayln!("  not before:  {}", cert.validity().not_before);
            sayln!("  not after:   {}", cert.validity().not_after);
            for name in san_texts(&cert) {
                sayln!("  subjectAltName: {name}");
            }
            sayln!("  CA:          {}", cert.is_ca());
        }
        Err(e) => sayln!("  (unparseable certificate: {e})"),
    }
    sayln!("  SHA-256:     {hex}");
}

/// The SHA-256 fingerprint of a certificate DER, lower-case hex.
fn sha256_hex(der: &CertificateDer<'_>) -> String {
    let fingerprint = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
    fingerprint
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The subjectAltName entries as OpenSSL prints them (none when absent or unreadable).
fn san_texts(cert: &x509_parser::certificate::X509Certificate<'_>) -> Vec<String> {
    match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .map(general_name_text)
            .collect(),
        _ => Vec::new(),
    }
}

/// A subjectAltName entry as OpenSSL prints it (`DNS:cse01.sp.example.com`), not x509-parser's
/// Rust form.
fn general_name_text(name: &x509_parser::extensions::GeneralName<'_>) -> String {
    use x509_parser::extensions::GeneralName as G;
    match name {
        G::DNSName(d) => format!("DNS:{d}"),
        G::URI(u) => format!("URI:{u}"),
        G::RFC822Name(m) => format!("email:{m}"),
        G::IPAddress(ip) => match ip.len() {
            4 => format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            16 => {
                let bytes: [u8; 16] = (*ip).try_into().expect("16 bytes");
                format!("IP:{}", std::net::Ipv6Addr::from(bytes))
            }
            _ => "IP:(malformed)".into(),
        },
        G::DirectoryName(n) => format!("DirName:{n}"),
        G::RegisteredID(oid) => format!("RID:{oid}"),
        _ => "othername:(not shown)".into(),
    }
}

fn describe_requirements(reqs: &onem2m_est::proto::csrattrs::CsrRequirements) -> serde_json::Value {
    use onem2m_est::proto::csrattrs::ChallengePassword;
    // The password itself is a one-time secret bound to this client: never printed.
    let challenge = match &reqs.challenge_password {
        ChallengePassword::NotRequested => {
            sayln!("challengePassword: not requested");
            "not requested"
        }
        ChallengePassword::ChannelBinding => {
            sayln!("challengePassword: requested without a value (RFC 7030 3.5 channel binding)");
            "channel binding"
        }
        ChallengePassword::Value(v) => {
            sayln!(
                "challengePassword: supplied by the server ({} characters, not shown)",
                v.len()
            );
            "supplied"
        }
    };
    if let Some(san) = reqs.subject_alt_name() {
        match onem2m_est::proto::san::decode(san) {
            Ok(names) => sayln!(
                "subjectAltName (identity): {}",
                onem2m_est::identity::describe_general_names(&names)
            ),
            Err(e) => sayln!("subjectAltName: undecodable ({e})"),
        }
    }
    for ext in &reqs.extensions {
        if ext.oid != onem2m_est::proto::oids::SUBJECT_ALT_NAME {
            sayln!(
                "extension {}{}: {} bytes",
                ext.oid,
                if ext.critical { " (critical)" } else { "" },
                ext.value.len()
            );
        }
    }
    match reqs.key {
        Some(k) => sayln!("key type: {k}"),
        None => sayln!("key type: not specified"),
    }
    match reqs.hash {
        Some(h) => sayln!("signature hash: {h}"),
        None => sayln!("signature hash: not specified"),
    }
    for oid in &reqs.unrecognized {
        sayln!("unrecognised (ignored): {oid}");
    }
    // The JSON fields are the library's description, the one C and Python give too.
    let mut object = serde_json::json!({
        "challenge_password": challenge,
        "subject_alt_name": null,
        "extensions": [],
        "key_type": null,
        "signature_hash": null,
        "unrecognised": [],
    });
    for (field, value) in onem2m_est::describe::csr_attributes(reqs) {
        match field {
            "extension" | "unrecognised" => {
                let list = if field == "extension" {
                    "extensions"
                } else {
                    "unrecognised"
                };
                if let Some(items) = object[list].as_array_mut() {
                    items.push(value.into());
                }
            }
            _ => object[field] = value.into(),
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_psk() {
        let cli = Cli::try_parse_from([
            "onem2m-est",
            "cacerts",
            "--server",
            "https://localhost:1/.well-known/est",
            "--psk-identity",
            "kpm-01",
            "--psk-key-hex",
            "00112233445566778899aabbccddeeff",
        ])
        .unwrap();
        let shown = format!("{cli:?}");
        assert!(shown.contains("kpm-01"), "{shown}");
        assert!(!shown.contains("0011223344"), "{shown}");
    }
}
