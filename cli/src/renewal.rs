//! `onem2m-est renew` and `onem2m-est agent`: the library's renewal (`onem2m_est::renewal`)
//! for cron, systemd timers and unattended devices. The rules (when due, what to retry, when to
//! re-bootstrap) are the library's; this module parses arguments, sleeps, handles signals,
//! runs the hook and logs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use clap::Args;
use onem2m_est::client::{InitialAuth, MefClient, Reprovision};
use onem2m_est::renewal::{Action, RenewAt, RenewalPath, RenewalPolicy, RetryPolicy, Scheduler};
use onem2m_est::Error;

use super::token::StoreKeyArgs;
use super::{PskArgs, ServerArgs, SubjectArgs};

/// Exit code of `renew --if-due` when the certificate is not due: nothing was done.
pub const EXIT_NOT_DUE: u8 = 10;

pub const RENEW_EXIT_CODES: &str = "\
Exit codes:
  0   renewed: re-provisioned, or re-bootstrapped (Initial Certificate Provisioning with the
      bootstrap credential; the output says which)
  10  not due (--if-due): nothing done
  2   bad arguments (MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS)
  3   client-side failure (MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR): key, CSR, credential store,
      certificate expired with no bootstrap credential
  4   server-side failure (MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR): connection, TLS, server
      authorisation, rejection by the MEF, invalid response";

pub const AGENT_EXIT_CODES: &str = "\
Exit codes:
  0   stopped by SIGTERM or SIGINT (never in the middle of an install)
  2   bad arguments
  3   client-side failure that retrying cannot fix (store, key, expired without bootstrap)
  4   server-side failure that retrying cannot fix (the MEF refuses the identity, another 4xx,
      an EST server the trust anchors do not authorise)
Retryable failures (connection, timeout, TLS interrupted, 5xx, 408, 429, 202 beyond the polling
bounds) never end the agent: it retries with backoff, before notAfter.";

/// The third-party certificate of the certificate-based RSPF, kept for re-bootstrapping.
#[derive(Args, Debug)]
pub struct BootstrapArgs {
    /// PEM file with the explicit trust anchors that authenticate the MEF for Initial
    /// Certificate Provisioning (RFC 7030 3.6.1); re-provisioning uses DIR/trust-anchors.pem.
    #[arg(long, value_name = "PEM", requires_all = ["tls_cert", "tls_key"])]
    pub trust_anchors: Option<PathBuf>,
    /// PEM file with the third-party client certificate (and its chain).
    #[arg(long, value_name = "PEM", requires_all = ["trust_anchors", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the third-party certificate's private key.
    #[arg(long, value_name = "PEM", requires_all = ["trust_anchors", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
}

/// The renewal options of `renew` and `agent`.
#[derive(Args, Debug)]
pub struct RenewArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// The bootstrap credential for re-bootstrapping (Initial Certificate Provisioning when
    /// the MEF-provisioned certificate has expired or is refused): --trust-anchors with
    /// --tls-cert/--tls-key, or --psk-identity with a PSK key. Optional.
    #[command(flatten)]
    pub bootstrap: BootstrapArgs,
    #[command(flatten)]
    pub psk: PskArgs,
    /// Directory holding the current credentials; receives the new ones.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The device key in a PKCS #11 token, as for `reprovision`.
    #[command(flatten)]
    pub key: StoreKeyArgs,
    /// Generate a new key pair (rekey) instead of renewing with the current key.
    #[arg(long, conflicts_with = "server_keygen")]
    pub rekey: bool,
    /// Let the MEF generate the new key pair (/serverkeygen).
    #[arg(long)]
    pub server_keygen: bool,
    /// Renew when this fraction of the lifetime has passed, in (0, 1].
    #[arg(long, value_name = "F", default_value_t = 2.0 / 3.0, conflicts_with = "renew_before")]
    pub renew_at_fraction: f64,
    /// Renew this long before notAfter instead (e.g. `7d`, `12h`, `30s`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub renew_before: Option<Duration>,
    /// Renew earlier by up to this fraction of the lifetime, fixed per certificate, so a fleet
    /// spreads out, in [0, 1).
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    pub jitter: f64,
    /// Run this shell command (sh -c) after each successful install, e.g. to make the CSE
    /// reload its TLS credentials. Environment: ONEM2M_EST_DIR, ONEM2M_EST_RENEWAL
    /// (reprovisioned or rebootstrapped), ONEM2M_EST_NOT_AFTER (seconds since the epoch).
    #[arg(long, value_name = "CMD")]
    pub post_renew_hook: Option<String>,
}

impl RenewArgs {
    pub fn policy(&self, retry: RetryPolicy) -> RenewalPolicy {
        let renew_at = match self.renew_before {
            Some(margin) => RenewAt::BeforeNotAfter(margin),
            None => RenewAt::Fraction(self.renew_at_fraction),
        };
        RenewalPolicy::new(renew_at, self.jitter, retry)
    }

    fn mode(&self) -> Reprovision {
        if self.server_keygen {
            Reprovision::ServerKeygen
        } else if self.rekey {
            Reprovision::Rekey
        } else {
            Reprovision::Renew
        }
    }

    /// The bootstrap credential, read from its files now (again on SIGHUP).
    fn bootstrap(&self) -> Result<Option<InitialAuth>, Error> {
        if let Some(credential) = self.psk.credential()? {
            return Ok(Some(InitialAuth::Psk(credential)));
        }
        let b = &self.bootstrap;
        match (&b.trust_anchors, &b.tls_cert, &b.tls_key) {
            (Some(tas), Some(cert), Some(key)) => super::initial_auth(tas, cert, key).map(Some),
            // clap requires all three together.
            _ => Ok(None),
        }
    }

    fn client(&self) -> Result<MefClient, Error> {
        super::client(&self.server, &self.subject)
    }
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(flatten)]
    pub renew: RenewArgs,
    /// The first retry delay after a failed attempt (doubling, with jitter).
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = humantime::parse_duration)]
    pub retry_initial: Duration,
    /// The largest retry delay.
    #[arg(long, value_name = "DURATION", default_value = "6h",
          value_parser = humantime::parse_duration)]
    pub retry_max: Duration,
}

/// `renew`: renews now, or with `--if-due` only when due.
pub fn renew(args: &RenewArgs, if_due: bool) -> Result<ExitCode, Error> {
    let policy = args.policy(RetryPolicy::default());
    policy.validate()?;
    let client = args.client()?;
    let bootstrap = args.bootstrap()?;
    let mut store = args.key.store(&args.out)?;
    let now = SystemTime::now();
    if if_due {
        if let Some(current) = store.load()? {
            let at = current.next_renewal_at(&policy)?;
            let expired = current.validity()?.expired_at(now);
            if now < at && !expired {
                println!("not due: renewal at {}", stamp(at));
                return Ok(ExitCode::from(EXIT_NOT_DUE));
            }
        }
    }
    let renewal = client.renew(store.as_mut(), args.mode(), bootstrap.as_ref(), now)?;
    match &renewal.path {
        RenewalPath::Reprovisioned => println!("renewed: re-provisioned"),
        RenewalPath::Rebootstrapped { reason } => {
            println!("renewed: re-bootstrapped with Initial Certificate Provisioning ({reason})")
        }
    }
    super::report(&renewal.provisioned, &args.out);
    run_hook(args, &renewal);
    if let Some(current) = store.load()? {
        println!(
            "next renewal at: {}",
            stamp(current.next_renewal_at(&policy)?)
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    Stop(&'static str),
    Reload,
}

/// The signal thread: SIGTERM/SIGINT ask to stop, SIGHUP to reload. The agent acts on them
/// between steps, so an attempt in progress always finishes (the store installs a whole set
/// or nothing) before the agent stops.
fn signals() -> Result<mpsc::Receiver<Signal>, Error> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|e| {
            Error::InvalidArgument {
                argument: "signals",
                reason: format!("cannot install the signal handlers: {e}"),
            }
        })?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in signals.forever() {
            let signal = match s {
                SIGHUP => Signal::Reload,
                SIGINT => Signal::Stop("SIGINT"),
                _ => Signal::Stop("SIGTERM"),
            };
            if tx.send(signal).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// A decision log line: UTC timestamp, then the message (stderr, one line each).
fn log(message: &str) {
    eprintln!("{} onem2m-est: {message}", stamp(SystemTime::now()));
}

fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Waits until `until` or a signal. Waits in slices of at most a minute against the wall
/// clock, so a suspended or re-set clock is noticed.
fn wait(rx: &mpsc::Receiver<Signal>, until: SystemTime) -> Option<Signal> {
    loop {
        let left = until.duration_since(SystemTime::now()).ok()?;
        if left.is_zero() {
            return None;
        }
        match rx.recv_timeout(left.min(Duration::from_secs(60))) {
            Ok(signal) => return Some(signal),
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(left.min(Duration::from_secs(60)))
            }
        }
    }
}

/// `agent`: sleeps until the next renewal, renews, retries with backoff, runs the hook, and
/// stops cleanly on SIGTERM. Everything it decides from is re-read from the store, so a
/// restart loses nothing.
pub fn agent(args: &AgentArgs) -> Result<ExitCode, Error> {
    let retry = RetryPolicy::new(
        args.retry_initial,
        args.retry_max,
        Duration::from_secs(1).min(args.retry_initial),
    );
    let mut scheduler = Scheduler::new(args.renew.policy(retry))?;
    let rx = signals()?;
    let mut client = args.renew.client()?;
    let mut bootstrap = args.renew.bootstrap()?;
    let mut store = args.renew.key.store(&args.renew.out)?;
    log(&format!(
        "started: store {}, bootstrap credential {}",
        args.renew.out.display(),
        if bootstrap.is_some() {
            "configured"
        } else {
            "none"
        }
    ));
    loop {
        // Signals that arrived during the last step.
        while let Ok(signal) = rx.try_recv() {
            if let Some(code) = on_signal(signal, args, &mut client, &mut bootstrap) {
                return Ok(code);
            }
        }
        let installed = store.load()?;
        let now = SystemTime::now();
        match scheduler.next_action(installed.as_ref(), now)? {
            Action::Sleep { until, reason } => {
                log(&format!("next attempt at {} ({reason})", stamp(until)));
                if let Some(signal) = wait(&rx, until) {
                    if let Some(code) = on_signal(signal, args, &mut client, &mut bootstrap) {
                        return Ok(code);
                    }
                }
            }
            Action::Renew { reason } => {
                log(&format!("renewing: {reason}"));
                match client.renew(store.as_mut(), args.renew.mode(), bootstrap.as_ref(), now) {
                    Ok(renewal) => {
                        scheduler.succeeded();
                        installed_ok(args, &renewal);
                    }
                    Err(e) => {
                        let text = e.text_with_causes();
                        let installed = store.load().ok().flatten();
                        let now = SystemTime::now();
                        match scheduler.failed(e, installed.as_ref(), now) {
                            Ok(at) => log(&format!(
                                "attempt {} failed (retryable), next attempt at {}: {text}",
                                scheduler.failures(),
                                stamp(at),
                            )),
                            Err(e) => {
                                log(&format!("giving up, retrying cannot fix this: {e}"));
                                return Err(e);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn installed_ok(args: &AgentArgs, renewal: &onem2m_est::renewal::Renewal) {
    match &renewal.path {
        RenewalPath::Reprovisioned => log("renewed: re-provisioned, new credentials installed"),
        RenewalPath::Rebootstrapped { reason } => log(&format!(
            "renewed: re-bootstrapped with Initial Certificate Provisioning ({reason}), new \
             credentials installed"
        )),
    }
    run_hook(&args.renew, renewal);
}

/// Runs --post-renew-hook, once, after an install; its failure is logged, not fatal (the
/// credentials are installed either way).
fn run_hook(args: &RenewArgs, renewal: &onem2m_est::renewal::Renewal) {
    let how = match renewal.path {
        RenewalPath::Reprovisioned => "reprovisioned",
        RenewalPath::Rebootstrapped { .. } => "rebootstrapped",
    };
    let not_after = renewal.provisioned.not_after.as_secs();
    if let Some(hook) = &args.post_renew_hook {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(hook)
            .env("ONEM2M_EST_DIR", &args.out)
            .env("ONEM2M_EST_RENEWAL", how)
            .env("ONEM2M_EST_NOT_AFTER", not_after.to_string())
            .status();
        match status {
            Ok(s) if s.success() => log("post-renew hook succeeded"),
            // The credentials are installed either way; the hook's host must notice.
            Ok(s) => log(&format!("post-renew hook failed: {s}")),
            Err(e) => log(&format!("post-renew hook could not run: {e}")),
        }
    }
}

/// Acts on a signal; `Some(exit code)` to stop.
fn on_signal(
    signal: Signal,
    args: &AgentArgs,
    client: &mut MefClient,
    bootstrap: &mut Option<InitialAuth>,
) -> Option<ExitCode> {
    match signal {
        Signal::Stop(name) => {
            log(&format!(
                "{name}: stopping; no attempt in progress, the installed set is complete"
            ));
            Some(ExitCode::SUCCESS)
        }
        Signal::Reload => {
            // Server settings and the bootstrap files are read again; the store is re-read
            // before every decision anyway.
            match (args.renew.client(), args.renew.bootstrap()) {
                (Ok(c), Ok(b)) => {
                    *client = c;
                    *bootstrap = b;
                    log("SIGHUP: reloaded the bootstrap credential and the store");
                }
                (Err(e), _) | (_, Err(e)) => log(&format!(
                    "SIGHUP: reload failed, keeping the previous settings: {e}"
                )),
            }
            None
        }
    }
}
