//! The load runner of the restart and HA tests (issue #17) and of the HA benchmark: N client
//! threads, each one device, run full Initial Certificate Provisioning and then Certificate
//! Re-Provisioning (TS-0003 8.3.6.2.2, 8.3.6.2.3) in a loop for a fixed time, through the
//! project's client library. A procedure that fails (its replica died, the database was away)
//! is retried whole, with bounded backoff. Every attempt is logged with the principal it
//! authenticated as, every certificate received with its serial and fingerprint, so the
//! consistency checks can account for every certificate the MEF recorded.

use onem2m_est::client::{InitialAuth, KeySource, MefClient, Reprovision};
use onem2m_est::keys::SoftwareKey;
use onem2m_est::tls::ClientIdentity;
use onem2m_est::transport::TransportConfig;
use onem2m_est_testkit::mef::MemStore;
use onem2m_est_testkit::server::cse_client;
use rustls_pki_types::CertificateDer;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A device: its third-party (manufacturer) certificate and key and its CSE-ID.
#[derive(Clone)]
pub struct Device {
    pub cse_id: String,
    pub client: ClientIdentity,
    /// SHA-256 of the third-party certificate: the principal of its initial provisioning.
    pub fingerprint: String,
}

/// Makes `n` devices under the third-party CA `tp` and registers each with the MEF of
/// `mef_dir` (`onem2m-mef identity add`).
pub fn devices(tp: &super::ThirdPartyCa, mef_dir: &Path, n: usize) -> Vec<Device> {
    devices_on(tp, mef_dir, None, n)
}

/// [`devices`], registered in `database` (`--database URL`) when given.
pub fn devices_on(
    tp: &super::ThirdPartyCa,
    mef_dir: &Path,
    database: Option<&str>,
    n: usize,
) -> Vec<Device> {
    (0..n)
        .map(|i| {
            let creds = tp.issue_client(&format!("load device {i}"));
            let cse_id = format!("cse{i:03}.sp.example.com");
            register_on(mef_dir, database, &creds, &cse_id);
            device_of(&creds, cse_id)
        })
        .collect()
}

/// Registers a CSE's third-party certificate (`identity add`, with `--database URL` when
/// given).
pub fn register_on(
    mef_dir: &Path,
    database: Option<&str>,
    creds: &super::ClientCreds,
    cse_id: &str,
) {
    let certs = mef_dir.with_extension(format!("client-{}.pem", &creds.fingerprint()[..16]));
    super::register_with(mef_dir, database, &certs, creds, "cse", cse_id);
}

/// The client-library view of test credentials.
pub fn device_of(creds: &super::ClientCreds, cse_id: String) -> Device {
    let key = SoftwareKey::from_pkcs8_der(&creds.key.serialize_der()).unwrap();
    Device {
        cse_id,
        client: ClientIdentity {
            chain: vec![CertificateDer::from(creds.cert_der.clone())],
            key: Arc::new(key),
        },
        fingerprint: creds.fingerprint(),
    }
}

/// Which procedure an attempt ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedure {
    Initial,
    Reprovision,
}

/// One attempt of a procedure.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub device: usize,
    pub procedure: Procedure,
    /// The fingerprint the TLS client certificate of the attempt had (the MEF records it as
    /// the certificate's `authenticated_by`).
    pub principal: String,
    /// `Ok((serial hex, fingerprint))` of the certificate received, or the error text.
    pub outcome: Result<(String, String), String>,
    pub elapsed: Duration,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub attempts: Vec<Attempt>,
    /// Procedures given up after the retry bound.
    pub abandoned: usize,
    pub wall: Duration,
}

impl LoadReport {
    pub fn completed(&self) -> usize {
        self.attempts.iter().filter(|a| a.outcome.is_ok()).count()
    }

    /// Failed attempts (each one was retried, unless its procedure was abandoned).
    pub fn failed_attempts(&self) -> usize {
        self.attempts.len() - self.completed()
    }

    /// (serial, fingerprint) of every certificate a client received.
    pub fn received(&self) -> Vec<(String, String)> {
        self.attempts
            .iter()
            .filter_map(|a| a.outcome.as_ref().ok().cloned())
            .collect()
    }

    /// Latencies of the completed procedures, sorted, in milliseconds.
    pub fn latencies_ms(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .attempts
            .iter()
            .filter(|a| a.outcome.is_ok())
            .map(|a| a.elapsed.as_secs_f64() * 1e3)
            .collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v
    }

    /// The counts, printed (the test log shows them).
    pub fn print(&self, label: &str) {
        let lat = self.latencies_ms();
        let pct = |p: f64| {
            lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let initial = self
            .attempts
            .iter()
            .filter(|a| a.outcome.is_ok() && a.procedure == Procedure::Initial)
            .count();
        super::say(format!(
            "{label}: {} procedures completed ({initial} initial, {} re-provisioning) in {:.1} s \
             ({:.0}/s), {} failed attempts retried, {} abandoned, {} certificates received; \
             latency ms p50 {:.1} p99 {:.1}",
            self.completed(),
            self.completed() - initial,
            self.wall.as_secs_f64(),
            self.completed() as f64 / self.wall.as_secs_f64(),
            self.failed_attempts() - self.abandoned,
            self.abandoned,
            self.received().len(),
            pct(0.5),
            pct(0.99),
        ));
    }

    /// The client log: one line per certificate received (serial, fingerprint, device).
    pub fn write_log(&self, path: &Path) {
        let mut text = String::new();
        for a in &self.attempts {
            match &a.outcome {
                Ok((serial, fp)) => text.push_str(&format!(
                    "received serial={serial} sha256={fp} device={} procedure={:?}\n",
                    a.device, a.procedure
                )),
                Err(e) => text.push_str(&format!(
                    "failed device={} procedure={:?} principal={}: {e}\n",
                    a.device, a.procedure, a.principal
                )),
            }
        }
        std::fs::write(path, text).unwrap();
    }
}

/// How a run goes.
pub struct LoadConfig {
    /// The base URI every client uses (a replica, or the balancer in front of them).
    pub base_uri: String,
    /// The MEF CA certificate (the clients' explicit trust anchor for initial provisioning).
    pub trust_anchor: Vec<u8>,
    pub devices: Vec<Device>,
    pub duration: Duration,
    /// Attempts of one procedure before it is abandoned.
    pub max_attempts: u32,
}

fn client(base_uri: &str, cse_id: &str) -> MefClient {
    let transport = TransportConfig::default()
        .with_timeouts(
            Duration::from_secs(2),
            Duration::from_secs(5),
            Duration::from_secs(10),
        )
        .unwrap();
    cse_client(base_uri, cse_id, transport)
}

fn serial_and_fingerprint(der: &[u8]) -> (String, String) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let serial: String = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (serial, onem2m_mef::fingerprint(der))
}

/// Runs the load: one thread per device; each runs initial provisioning, then one
/// re-provisioning (renew), and again, until `duration` is over (a procedure under way is
/// finished, with its retries). Returns every attempt.
pub fn run(cfg: &LoadConfig) -> LoadReport {
    let stop = Arc::new(AtomicBool::new(false));
    let ta = vec![CertificateDer::from(cfg.trust_anchor.clone())];
    let t0 = Instant::now();
    let handles: Vec<_> = cfg
        .devices
        .iter()
        .enumerate()
        .map(|(i, dev)| {
            let (dev, stop, ta) = (dev.clone(), stop.clone(), ta.clone());
            let c = client(&cfg.base_uri, &dev.cse_id);
            let max_attempts = cfg.max_attempts;
            std::thread::spawn(move || device_loop(i, &dev, &c, &ta, &stop, max_attempts))
        })
        .collect();
    std::thread::sleep(cfg.duration);
    stop.store(true, Ordering::SeqCst);
    let mut report = LoadReport::default();
    for h in handles {
        let (attempts, abandoned) = h.join().unwrap();
        report.attempts.extend(attempts);
        report.abandoned += abandoned;
    }
    report.wall = t0.elapsed();
    report
}

fn device_loop(
    i: usize,
    dev: &Device,
    c: &MefClient,
    ta: &[CertificateDer<'static>],
    stop: &AtomicBool,
    max_attempts: u32,
) -> (Vec<Attempt>, usize) {
    let auth = InitialAuth::Certificate {
        trust_anchors: ta.to_vec(),
        client: dev.client.clone(),
    };
    let mut attempts = Vec::new();
    let mut abandoned = 0;
    let mut store = MemStore::default();
    while !stop.load(Ordering::SeqCst) {
        for procedure in [Procedure::Initial, Procedure::Reprovision] {
            if procedure == Procedure::Initial {
                store = MemStore::default();
            }
            let mut n = 0u32;
            loop {
                n += 1;
                let principal = match &store.0 {
                    Some(cur) => onem2m_mef::fingerprint(&cur.chain[0]),
                    None => dev.fingerprint.clone(),
                };
                let t = Instant::now();
                let r = match procedure {
                    Procedure::Initial => c.provision(&auth, &mut store, KeySource::Generate),
                    Procedure::Reprovision => c.reprovision(&mut store, Reprovision::Renew),
                };
                let outcome = r
                    .map(|p| serial_and_fingerprint(&p.chain[0]))
                    .map_err(|e| e.to_string());
                let ok = outcome.is_ok();
                attempts.push(Attempt {
                    device: i,
                    procedure,
                    principal,
                    outcome,
                    elapsed: t.elapsed(),
                });
                if ok {
                    break;
                }
                if n >= max_attempts {
                    abandoned += 1;
                    break;
                }
                // Bounded exponential backoff: 20 ms, 40 ms, ... at most 500 ms.
                std::thread::sleep(
                    Duration::from_millis(20 << (n - 1).min(5)).min(Duration::from_millis(500)),
                );
            }
            if store.0.is_none() {
                // The initial procedure was abandoned: start over.
                break;
            }
        }
    }
    (attempts, abandoned)
}

/// The consistency checks after a run, against the certificates the MEF recorded
/// (`(serial, fingerprint, authenticated_by)` of every row):
/// 1. every certificate a client received is recorded, with the principal it used;
/// 2. every recorded certificate a client did not receive was issued on a request whose
///    response was lost: its principal is one of an attempt that failed, and per principal
///    there are at most as many unreceived certificates as failed attempts (each attempt
///    fetches one challengePassword, each password yields at most one certificate, so more
///    would mean a password redeemed twice);
/// 3. per principal, certificates recorded <= attempts (the same bound over all attempts).
///
/// Returns a one-line summary.
pub fn check_consistency(
    report: &LoadReport,
    recorded: &[(String, String, Option<String>)],
) -> String {
    let by_fp: HashMap<&str, (&str, Option<&str>)> = recorded
        .iter()
        .map(|(s, f, a)| (f.as_str(), (s.as_str(), a.as_deref())))
        .collect();
    assert_eq!(by_fp.len(), recorded.len(), "a fingerprint recorded twice");
    let mut received = HashSet::new();
    for a in &report.attempts {
        if let Ok((serial, fp)) = &a.outcome {
            let (s, by) = by_fp.get(fp.as_str()).unwrap_or_else(|| {
                panic!(
                    "device {} received {fp} (serial {serial}), not in the database",
                    a.device
                )
            });
            assert_eq!(s, serial, "serial of {fp}");
            assert_eq!(*by, Some(a.principal.as_str()), "principal of {fp}");
            assert!(received.insert(fp.as_str()), "{fp} received twice");
        }
    }
    let mut failed: HashMap<&str, usize> = HashMap::new();
    let mut all: HashMap<&str, usize> = HashMap::new();
    for a in &report.attempts {
        *all.entry(a.principal.as_str()).or_default() += 1;
        if a.outcome.is_err() {
            *failed.entry(a.principal.as_str()).or_default() += 1;
        }
    }
    let mut unreceived: HashMap<&str, usize> = HashMap::new();
    let mut recorded_per: HashMap<&str, usize> = HashMap::new();
    for (serial, fp, by) in recorded {
        let by = by
            .as_deref()
            .unwrap_or_else(|| panic!("{serial}: no principal recorded"));
        *recorded_per.entry(by).or_default() += 1;
        if !received.contains(fp.as_str()) {
            *unreceived.entry(by).or_default() += 1;
        }
    }
    for (by, n) in &unreceived {
        let f = failed.get(by).copied().unwrap_or(0);
        assert!(
            *n <= f,
            "{n} certificate(s) issued to principal {by} were never received, but only {f} of \
             its attempts failed"
        );
    }
    for (by, n) in &recorded_per {
        let a = all.get(by).copied().unwrap_or(0);
        assert!(
            *n <= a,
            "{n} certificates issued to {by} on {a} attempts: a challengePassword redeemed twice"
        );
    }
    let lost: usize = unreceived.values().sum();
    format!(
        "consistency: {} certificates recorded, {} received by clients (all recorded, with \
         their principal), {lost} issued on requests whose response was lost (each matched by \
         a failed attempt of its principal), no principal with more certificates than attempts",
        recorded.len(),
        received.len()
    )
}
