//! What an operator monitors (issue #17): counters, gauges and histograms in the Prometheus
//! text exposition format (version 0.0.4), served as `GET /metrics` on a listener of its own
//! (`--metrics-listen`, plain HTTP, off by default). It carries no secret and no client-chosen
//! text: every label value comes from a fixed set ([`Operation`], [`Reason`], the listener
//! names), so a client cannot grow the series or inject text. The listener has no
//! authentication: bind it to loopback or a management network, never to the public side.
//!
//! A registry of atomics: recording is a few relaxed atomic adds on the request path, no lock
//! and no allocation; the text is written only when scraped. The database figures are
//! process-wide ([`DATABASE`]): the store is reached from every listener, and one process runs
//! one MEF outside tests.

use crate::http::{self, ReadError, Response};
use crate::pool::PoolGauge;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The EST operation a request addressed (RFC 7030 3.2.2), from its path; the label values of
/// `operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    CaCerts,
    CsrAttrs,
    SimpleEnroll,
    SimpleReenroll,
    ServerKeygen,
    Crl,
    Other,
}

impl Operation {
    const ALL: [Operation; 7] = [
        Operation::CaCerts,
        Operation::CsrAttrs,
        Operation::SimpleEnroll,
        Operation::SimpleReenroll,
        Operation::ServerKeygen,
        Operation::Crl,
        Operation::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Operation::CaCerts => "cacerts",
            Operation::CsrAttrs => "csrattrs",
            Operation::SimpleEnroll => "simpleenroll",
            Operation::SimpleReenroll => "simplereenroll",
            Operation::ServerKeygen => "serverkeygen",
            Operation::Crl => "crl",
            Operation::Other => "other",
        }
    }

    /// The operation of a request path: the last segment of an EST path, or the CRL path.
    /// Anything else (unknown operations, other paths) is `Other`.
    pub(crate) fn of_path(path: &str) -> Operation {
        let path = path.split('?').next().unwrap_or("");
        if path.trim_start_matches('/') == crate::ca::CRL_PATH.trim_start_matches('/') {
            return Operation::Crl;
        }
        if !path.contains("/.well-known/est/") {
            return Operation::Other;
        }
        match path.rsplit('/').next().unwrap_or("") {
            "cacerts" => Operation::CaCerts,
            "csrattrs" => Operation::CsrAttrs,
            "simpleenroll" => Operation::SimpleEnroll,
            "simplereenroll" => Operation::SimpleReenroll,
            "serverkeygen" => Operation::ServerKeygen,
            _ => Operation::Other,
        }
    }

    fn is_issuance(self) -> bool {
        matches!(
            self,
            Operation::SimpleEnroll | Operation::SimpleReenroll | Operation::ServerKeygen
        )
    }
}

/// Why a request was refused: the response status, named (the label values of `reason`). The
/// refusal text itself goes to the log (crate::logging), not into a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    HeadTooLarge,
    Internal,
    NotImplemented,
    Unavailable,
    Other,
}

impl Reason {
    const ALL: [Reason; 11] = [
        Reason::BadRequest,
        Reason::Forbidden,
        Reason::NotFound,
        Reason::MethodNotAllowed,
        Reason::PayloadTooLarge,
        Reason::UnsupportedMediaType,
        Reason::HeadTooLarge,
        Reason::Internal,
        Reason::NotImplemented,
        Reason::Unavailable,
        Reason::Other,
    ];

    fn of_status(status: u16) -> Reason {
        match status {
            400 => Reason::BadRequest,
            403 => Reason::Forbidden,
            404 => Reason::NotFound,
            405 => Reason::MethodNotAllowed,
            413 => Reason::PayloadTooLarge,
            415 => Reason::UnsupportedMediaType,
            431 => Reason::HeadTooLarge,
            500 => Reason::Internal,
            501 => Reason::NotImplemented,
            503 => Reason::Unavailable,
            _ => Reason::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Reason::BadRequest => "bad_request",
            Reason::Forbidden => "forbidden",
            Reason::NotFound => "not_found",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::PayloadTooLarge => "payload_too_large",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::HeadTooLarge => "head_too_large",
            Reason::Internal => "internal_error",
            Reason::NotImplemented => "not_implemented",
            Reason::Unavailable => "unavailable",
            Reason::Other => "other",
        }
    }
}

const N_OP: usize = Operation::ALL.len();
const N_REASON: usize = Reason::ALL.len();

/// A histogram with fixed bucket bounds (seconds).
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative; the last one is +Inf).
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0u64;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Issuance takes one or two ECDSA signatures and a commit: milliseconds, seconds under load.
const ISSUANCE_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// A store call: tens of microseconds in SQLite on tmpfs, a commit's fsync or a network round
/// trip to a database server beyond.
const DATABASE_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// The database figures of this process: every store call (each a query or a transaction, on
/// SQLite or PostgreSQL) is timed and its failure counted where the store dispatches it to
/// its backend (`store::dispatch!`).
pub(crate) struct DatabaseMetrics {
    calls: AtomicU64,
    errors: AtomicU64,
    duration: std::sync::OnceLock<Histogram>,
}

/// The process-wide database figures.
pub(crate) static DATABASE: DatabaseMetrics = DatabaseMetrics {
    calls: AtomicU64::new(0),
    errors: AtomicU64::new(0),
    duration: std::sync::OnceLock::new(),
};

impl DatabaseMetrics {
    fn histogram(&self) -> &Histogram {
        self.duration
            .get_or_init(|| Histogram::new(DATABASE_BOUNDS))
    }

    /// One store call took `d` (waiting for a connection of the pool included).
    pub(crate) fn call(&self, d: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.histogram().observe(d);
    }

    /// A database operation failed.
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Store calls so far (tests and benchmarks count them per enrolment).
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// Times one store call (`store::dispatch!`): [`DATABASE`] records it at [`StoreCall::end`].
pub(crate) struct StoreCall(Instant);

impl StoreCall {
    pub(crate) fn start() -> StoreCall {
        StoreCall(Instant::now())
    }

    /// The call returned; `failed` when with an error.
    pub(crate) fn end(self, failed: bool) {
        DATABASE.call(self.0.elapsed());
        if failed {
            DATABASE.error();
        }
    }
}

/// The figures of one MEF instance.
pub(crate) struct Metrics {
    started_unix: f64,
    ca_not_after: i64,
    requests: [AtomicU64; N_OP],
    refusals: [[AtomicU64; N_REASON]; N_OP],
    issued: [AtomicU64; N_OP],
    tls_failures: AtomicU64,
    issuance: Histogram,
    pools: Mutex<Vec<(&'static str, PoolGauge)>>,
    /// The store, for its database connection pool (PostgreSQL).
    store: Arc<crate::Store>,
}

impl Metrics {
    /// A registry for a MEF whose CA certificate expires at `ca_not_after` (Unix seconds).
    pub(crate) fn new(ca_not_after: i64, store: Arc<crate::Store>) -> Metrics {
        Metrics {
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            ca_not_after,
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            refusals: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            issued: std::array::from_fn(|_| AtomicU64::new(0)),
            tls_failures: AtomicU64::new(0),
            issuance: Histogram::new(ISSUANCE_BOUNDS),
            pools: Mutex::new(Vec::new()),
            store,
        }
    }

    /// A request to `path` was answered with `status` after `elapsed` in the handler.
    pub(crate) fn request(&self, path: &str, status: u16, elapsed: Duration) {
        let op = Operation::of_path(path);
        let i = op as usize;
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        if status >= 400 {
            self.refusals[i][Reason::of_status(status) as usize].fetch_add(1, Ordering::Relaxed);
        } else if status == 200 && op.is_issuance() {
            self.issued[i].fetch_add(1, Ordering::Relaxed);
            self.issuance.observe(elapsed);
        }
    }

    /// A TLS handshake failed (refused or abandoned).
    pub(crate) fn tls_failure(&self) {
        self.tls_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Reports the busy and maximum threads of a listener's connection pool.
    pub(crate) fn add_pool(&self, listener: &'static str, gauge: PoolGauge) {
        self.pools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((listener, gauge));
    }

    /// The exposition text (Prometheus text format 0.0.4).
    pub(crate) fn render(&self) -> String {
        let mut o = String::with_capacity(8 * 1024);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        head(
            &mut o,
            "mef_requests_total",
            "counter",
            "EST and CRL requests answered, per operation.",
        );
        for op in Operation::ALL {
            let v = self.requests[op as usize].load(Ordering::Relaxed);
            let _ = writeln!(o, "mef_requests_total{{operation=\"{}\"}} {v}", op.label());
        }
        head(
            &mut o,
            "mef_refusals_total",
            "counter",
            "Requests answered with an error status, per operation and reason (the status).",
        );
        for op in Operation::ALL {
            for r in Reason::ALL {
                let v = self.refusals[op as usize][r as usize].load(Ordering::Relaxed);
                let _ = writeln!(
                    o,
                    "mef_refusals_total{{operation=\"{}\",reason=\"{}\"}} {v}",
                    op.label(),
                    r.label()
                );
            }
        }
        head(
            &mut o,
            "mef_certificates_issued_total",
            "counter",
            "Certificates issued, per operation.",
        );
        for op in Operation::ALL.into_iter().filter(|o| o.is_issuance()) {
            let v = self.issued[op as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                o,
                "mef_certificates_issued_total{{operation=\"{}\"}} {v}",
                op.label()
            );
        }
        head(&mut o, "mef_issuance_duration_seconds", "histogram", "Time to answer a request that issued a certificate (CSR checks, signing, database commit).");
        self.issuance
            .render(&mut o, "mef_issuance_duration_seconds", "");
        sample(
            &mut o,
            "mef_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed (refused by TLS or abandoned by the peer).",
            self.tls_failures.load(Ordering::Relaxed),
        );
        sample(
            &mut o,
            "mef_database_calls_total",
            "counter",
            "Store calls (each a database transaction or query), process-wide.",
            DATABASE.calls(),
        );
        sample(
            &mut o,
            "mef_database_errors_total",
            "counter",
            "Database operations that failed, process-wide.",
            DATABASE.errors.load(Ordering::Relaxed),
        );
        head(
            &mut o,
            "mef_database_duration_seconds",
            "histogram",
            "Time a store call took, the wait for a database connection included.",
        );
        DATABASE
            .histogram()
            .render(&mut o, "mef_database_duration_seconds", "");
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        head(
            &mut o,
            "mef_connection_threads_busy",
            "gauge",
            "Connection threads serving a connection, per listener.",
        );
        per_listener(
            &mut o,
            "mef_connection_threads_busy",
            &pools,
            PoolGauge::busy,
        );
        head(&mut o, "mef_connection_threads_limit", "gauge", "Most connection threads a listener runs (--max-connections): busy = limit is saturation.");
        per_listener(
            &mut o,
            "mef_connection_threads_limit",
            &pools,
            PoolGauge::limit,
        );
        head(
            &mut o,
            "mef_connections_queued",
            "gauge",
            "Accepted connections waiting for a thread, per listener.",
        );
        per_listener(&mut o, "mef_connections_queued", &pools, PoolGauge::queued);
        drop(pools);
        // PostgreSQL only (SQLite has no pool): the family is declared, without a sample.
        let db_pool = self.store.pool_state();
        head(
            &mut o,
            "mef_database_connections_busy",
            "gauge",
            "PostgreSQL connections of this process's pool in use.",
        );
        if let Some(p) = &db_pool {
            let _ = writeln!(
                o,
                "mef_database_connections_busy {}",
                p.connections.saturating_sub(p.idle)
            );
        }
        head(
            &mut o,
            "mef_database_connections_limit",
            "gauge",
            "Size limit of the PostgreSQL connection pool (--database-pool): busy = limit is saturation.",
        );
        if let Some(p) = &db_pool {
            let _ = writeln!(o, "mef_database_connections_limit {}", p.max);
        }
        sample(
            &mut o,
            "mef_ca_certificate_expiry_seconds",
            "gauge",
            "Seconds until the MEF CA certificate's notAfter (negative once expired).",
            self.ca_not_after - now,
        );
        sample(
            &mut o,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch in seconds.",
            self.started_unix,
        );
        o
    }
}

/// One sample per listener's connection pool.
fn per_listener<T: std::fmt::Display>(
    o: &mut String,
    name: &str,
    pools: &[(&'static str, PoolGauge)],
    value: impl Fn(&PoolGauge) -> T,
) {
    for (l, g) in pools {
        let _ = writeln!(o, "{name}{{listener=\"{l}\"}} {}", value(g));
    }
}

/// A family with one unlabelled sample: its HELP and TYPE lines, then `name value`.
fn sample(o: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    head(o, name, kind, help);
    let _ = writeln!(o, "{name} {value}");
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// Content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `/metrics` listener: one thread answering one connection at a time (scrapes are rare
/// and small), each with a short timeout so a stalled peer cannot hold it long.
pub(crate) struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    pub(crate) fn start(
        addr: SocketAddr,
        metrics: Arc<Metrics>,
    ) -> Result<MetricsServer, crate::MefError> {
        let listener = TcpListener::bind(addr).map_err(|e| crate::MefError::Io {
            context: format!("binding the metrics listener {addr}"),
            source: e,
        })?;
        let bound = listener.local_addr().map_err(|e| crate::MefError::Io {
            context: "reading the bound metrics address".into(),
            source: e,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mef-metrics".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(s) = stream {
                        serve_scrape(s, &metrics);
                    }
                }
            })
            .map_err(|e| crate::MefError::Io {
                context: "spawning the metrics thread".into(),
                source: e,
            })?;
        Ok(MetricsServer {
            addr: bound,
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_scrape(mut s: TcpStream, metrics: &Metrics) {
    let timeout = Some(Duration::from_secs(5));
    let _ = s.set_read_timeout(timeout);
    let _ = s.set_write_timeout(timeout);
    let mut buf = Vec::new();
    let resp = match http::read_request(&mut s, &mut buf, 0) {
        Ok(req) => match (req.method.as_str(), req.path.split('?').next()) {
            ("GET", Some("/metrics")) => {
                Response::new(200, CONTENT_TYPE, metrics.render().into_bytes())
            }
            (_, Some("/metrics")) => {
                Response::text(405, "GET /metrics").with_header("Allow", "GET")
            }
            _ => Response::text(404, "only /metrics is served here"),
        },
        Err(ReadError::Reject(r)) => r,
        Err(_) => return,
    };
    let _ = http::write_response(&mut s, &resp, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_come_from_a_fixed_set() {
        assert_eq!(
            Operation::of_path("/.well-known/est/simpleenroll"),
            Operation::SimpleEnroll
        );
        assert_eq!(
            Operation::of_path("/.well-known/est/lbl/serverkeygen"),
            Operation::ServerKeygen
        );
        assert_eq!(Operation::of_path(crate::ca::CRL_PATH), Operation::Crl);
        assert_eq!(
            Operation::of_path("/.well-known/est/evil\"label"),
            Operation::Other
        );
        assert_eq!(Operation::of_path("/cacerts"), Operation::Other);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(1));
        let mut o = String::new();
        h.render(&mut o, "x", "");
        assert!(o.contains("x_bucket{le=\"0.01\"} 1\n"), "{o}");
        assert!(o.contains("x_bucket{le=\"0.1\"} 2\n"), "{o}");
        assert!(o.contains("x_bucket{le=\"+Inf\"} 3\n"), "{o}");
        assert!(o.contains("x_count 3\n"), "{o}");
    }
}
