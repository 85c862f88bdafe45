//! An `onem2m-mef serve` process that can be SIGKILLed and restarted on the same address and
//! data directory (the restart and HA tests), its log in a file, and its `/metrics` scraped
//! and parsed strictly.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use onem2m_est_testkit::PortHold;

/// One MEF process. Dropping it kills it.
pub struct Replica {
    child: Option<Child>,
    pub name: String,
    pub dir: PathBuf,
    /// The main listener (kept across restarts).
    pub addr: SocketAddr,
    /// The `/metrics` listener of the current process.
    pub metrics: Option<SocketAddr>,
    /// stderr of every run of this replica, appended.
    pub log: PathBuf,
    pub ca_der: Vec<u8>,
    args: Vec<String>,
    /// The main port while the process is killed, so that no other test's server takes it.
    hold: Option<PortHold>,
}

impl Replica {
    /// Starts `onem2m-mef serve` on `listen` (port 0: a free one, kept for restarts) with
    /// `--metrics-listen 127.0.0.1:0` and `extra`.
    pub fn start(name: &str, dir: &Path, listen: &str, extra: &[&str]) -> Replica {
        let log = dir.with_extension(format!("{name}.log"));
        let mut r = Replica {
            child: None,
            name: name.into(),
            dir: dir.to_path_buf(),
            addr: listen.parse().unwrap(),
            metrics: None,
            log,
            ca_der: Vec::new(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            hold: None,
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(super::bin())
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(["--metrics-listen", "127.0.0.1:0", "--data-dir"])
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn onem2m-mef");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                panic!(
                    "{}: the MEF ended before it listened; log:\n{}",
                    self.name,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            let l = line.trim();
            if let Some(a) = l.strip_prefix("listening on ") {
                self.addr = a.parse().unwrap();
            } else if let Some(a) = l.strip_prefix("metrics listening on ") {
                self.metrics = Some(a.parse().unwrap());
            } else if l.starts_with("CA certificate: ") {
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = out.read_to_string(&mut sink);
        });
        let ca_pem = std::fs::read(self.dir.join("mef-ca.pem")).unwrap();
        self.ca_der = pem::parse(ca_pem).unwrap().into_contents();
        self.child = Some(child);
    }

    /// SIGKILL (no shutdown path runs), wait for the process to be gone, and hold its port
    /// until [`Replica::restart`].
    pub fn kill(&mut self) {
        if self.end_process() {
            self.hold = Some(PortHold::new(self.addr));
        }
    }

    /// SIGKILLs the process if it runs; whether it did.
    fn end_process(&mut self) -> bool {
        match self.child.take() {
            Some(mut c) => {
                let _ = c.kill();
                let _ = c.wait();
                true
            }
            None => false,
        }
    }

    /// Starts the process again on the same address and data directory, releasing the port
    /// [`Replica::kill`] held just before.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running replica");
        self.hold = None;
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// `https://localhost:PORT/.well-known/est`.
    pub fn base_uri(&self) -> String {
        format!("https://localhost:{}/.well-known/est", self.addr.port())
    }

    /// Scrapes and parses `/metrics`.
    pub fn scrape(&self) -> Scrape {
        scrape(self.metrics.expect("no metrics listener"))
    }

    /// The text this replica logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.end_process();
    }
}

/// The parsed samples of one scrape: `name{k="v",...}` (labels sorted) to value, and the
/// declared type of each metric family.
#[derive(Debug, Default)]
pub struct Scrape {
    pub samples: HashMap<String, f64>,
    pub types: HashMap<String, String>,
    pub text: String,
}

impl Scrape {
    /// A sample's value; panics if absent.
    pub fn get(&self, key: &str) -> f64 {
        *self
            .samples
            .get(key)
            .unwrap_or_else(|| panic!("no sample {key} in:\n{}", self.text))
    }
}

/// GET /metrics over plain HTTP/1.1; checks the status and content type, then parses.
pub fn scrape(addr: SocketAddr) -> Scrape {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    parse_exposition(body)
}

/// A strict parser of the Prometheus text format as the MEF writes it: every sample belongs
/// to a family declared by `# TYPE` before it (histograms through `_bucket`, `_sum`,
/// `_count`), label values are quoted without escapes, values are numbers, no sample twice.
pub fn parse_exposition(body: &str) -> Scrape {
    let mut sc = Scrape {
        text: body.to_string(),
        ..Scrape::default()
    };
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "type {kind}"
            );
            assert!(
                sc.types.insert(name.into(), kind.into()).is_none(),
                "{name} declared twice"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "line {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("value of {line:?} is not a number")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((n, l)) => {
                let l = l.strip_suffix('}').unwrap_or_else(|| panic!("{line:?}"));
                let mut labels: Vec<(String, String)> = l
                    .split(',')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        assert!(
                            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                            "{line:?}"
                        );
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap_or_else(|| panic!("{line:?}"));
                        assert!(!v.contains(['"', '\\']), "{line:?}");
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                labels.sort();
                (n, labels)
            }
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| sc.types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(
            sc.types.contains_key(family),
            "sample {name} without a # TYPE line"
        );
        let key = if labels.is_empty() {
            name.to_string()
        } else {
            let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{name}{{{}}}", l.join(","))
        };
        assert!(
            sc.samples.insert(key.clone(), value).is_none(),
            "sample {key} twice"
        );
    }
    sc
}

/// GET `{base}/csrattrs` and return the challengePassword it handed out.
pub fn fetch_password(agent: &ureq::Agent, base: &str) -> String {
    super::get(agent, &format!("{base}/csrattrs"))
        .unwrap()
        .attrs()
        .password
}

/// Presents one challengePassword in `n` simultaneous `/simpleenroll` requests (each its own
/// connection and CSR), request `i` to `bases[i % len]`; returns the statuses.
pub fn race_password(
    agent: &ureq::Agent,
    bases: &[String],
    san: rcgen::SanType,
    password: &str,
    n: usize,
) -> Vec<u16> {
    let csrs: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let key = rcgen::KeyPair::generate().unwrap();
            super::make_csr(&key, std::slice::from_ref(&san), Some(password), None)
        })
        .collect();
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let hs: Vec<_> = csrs
            .iter()
            .enumerate()
            .map(|(i, csr)| {
                let (barrier, url) = (&barrier, format!("{}/simpleenroll", bases[i % bases.len()]));
                s.spawn(move || {
                    barrier.wait();
                    super::post_csr(agent, &url, csr).status
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// `PRAGMA integrity_check` of a MEF's SQLite database.
pub fn sqlite_integrity(dir: &Path) -> String {
    let db = rusqlite::Connection::open(dir.join(onem2m_mef::store::DB_FILE)).unwrap();
    db.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// (serial, fingerprint, authenticated_by) of every certificate the MEF recorded.
pub fn recorded(store: &onem2m_mef::Store) -> Vec<(String, String, Option<String>)> {
    store
        .list_issued()
        .unwrap()
        .into_iter()
        .map(|c| {
            let by = store.authenticated_by(&c.fingerprint).unwrap();
            (c.serial, c.fingerprint, by)
        })
        .collect()
}
