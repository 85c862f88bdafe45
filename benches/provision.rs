//! Provisioning benchmark (BENCHMARKS.md explains every figure). A `harness = false` bench:
//!
//! ```text
//! cargo bench --bench provision [--features psk] -- [--quick] inproc
//! cargo bench --bench provision -- setup DIR          # manufacturer CA + device certificate PEMs
//! cargo bench --bench provision -- load --uri URI --ta PEM --dir DIR [--threads N]
//!                                       [--seconds S] [--mef-pid PID] [--conns K]
//! ```
//!
//! `inproc` runs the reference MEF in this process on 127.0.0.1 and times each procedure through
//! the Rust API: wall time, CPU time of the client thread (`/proc/thread-self/schedstat`), TLS
//! handshakes and bytes on the wire. `load` drives an external MEF process with full enrolments
//! (a new mutual-TLS connection each), for a bounded time, and reports throughput, latency
//! percentiles, the MEF's CPU per enrolment and its memory per open connection.
//!
//! Only loopback, only bounded loops: every mode stops by itself.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use onem2m_est::client::{InitialAuth, KeySource, MefClient, Provisioned, Reprovision};
use onem2m_est::csr::build_csr;
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
use onem2m_est::proto::csrattrs::{ChallengePassword, CsrRequirements, RequestedExtension};
use onem2m_est::store::{certs_to_pem, read_pem_certs, read_pem_key, CredentialStore, FileStore};
use onem2m_est::tls::{client_config, ClientIdentity};
use onem2m_est::transport::TransportConfig;
use onem2m_est::uri::EstUri;
use onem2m_est_testkit::mef::MemStore;
use onem2m_est_testkit::server::cse_client;
use onem2m_est_testkit::{Manufacturer, CSE_ID};
use onem2m_mef::RunningMef;
use rustls_pki_types::{CertificateDer, ServerName};
use zeroize::Zeroizing;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // cargo bench passes --bench; libtest-style flags are not ours.
    args.retain(|a| a != "--bench");
    let quick = take_flag(&mut args, "--quick");
    let mode = if args.is_empty() {
        "inproc".to_string()
    } else {
        args.remove(0)
    };
    match mode.as_str() {
        "inproc" => inproc(quick, &mut args),
        "setup" => {
            let dir = PathBuf::from(args.first().expect("setup DIR"));
            write_manufacturer(&Manufacturer::new("bench"), &dir);
            println!(
                "wrote {}/{{manufacturer-ca,device,device.key}}.pem",
                dir.display()
            );
        }
        "load" => load(quick, &mut args),
        other => {
            eprintln!("unknown mode {other:?}: inproc | setup DIR | load ...");
            std::process::exit(2);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn take_flag(args: &mut Vec<String>, name: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != name);
    args.len() != before
}

fn take_opt(args: &mut Vec<String>, name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.remove(i);
    (i < args.len()).then(|| args.remove(i))
}

/// CPU time consumed by the calling thread so far (CLOCK_THREAD_CPUTIME_ID).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// utime + stime of a process, from /proc/PID/stat (clock ticks of 10 ms on Linux).
fn process_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// VmRSS of a process in KiB.
fn process_rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Median and spread of a sample.
struct Summary {
    median: f64,
    p10: f64,
    p90: f64,
    min: f64,
    max: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn summary(values: &[f64]) -> Summary {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Summary {
        median: percentile(&v, 0.5),
        p10: percentile(&v, 0.1),
        p90: percentile(&v, 0.9),
        min: *v.first().unwrap_or(&f64::NAN),
        max: *v.last().unwrap_or(&f64::NAN),
    }
}

fn print_row(name: &str, unit: &str, values: &[f64]) {
    let s = summary(values);
    println!(
        "  {name:<28} median {:>9.3} {unit:<3} p10 {:>9.3}  p90 {:>9.3}  min {:>9.3}  max {:>9.3}  (n={})",
        s.median,
        s.p10,
        s.p90,
        s.min,
        s.max,
        values.len()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// Writes the manufacturer's CA certificate and the device's certificate and key into `dir`.
fn write_manufacturer(maker: &Manufacturer, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("manufacturer-ca.pem"),
        certs_to_pem(std::slice::from_ref(&maker.ca_cert)),
    )
    .unwrap();
    maker.write_device_files(dir);
}

fn transport() -> TransportConfig {
    onem2m_est_testkit::mef::transport()
}

fn client_for(uri: &str) -> MefClient {
    cse_client(uri, CSE_ID, transport())
}

// ---------------------------------------------------------------------------------------------
// inproc: the procedures through the Rust API against the in-process MEF
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Samples {
    wall_ms: Vec<f64>,
    cpu_ms: Vec<f64>,
    handshakes: Vec<f64>,
    bytes_out: Vec<f64>,
    bytes_in: Vec<f64>,
}

impl Samples {
    fn time(&mut self, f: impl FnOnce() -> Provisioned) {
        let (c0, t0) = (thread_cpu(), Instant::now());
        let p = f();
        let (wall, cpu) = (t0.elapsed(), thread_cpu() - c0);
        self.wall_ms.push(ms(wall));
        self.cpu_ms.push(ms(cpu));
        self.handshakes.push(p.connection.handshakes as f64);
        self.bytes_out.push(p.connection.bytes_written as f64);
        self.bytes_in.push(p.connection.bytes_read as f64);
    }

    fn print(&self, title: &str) {
        println!("{title}");
        print_row("wall time", "ms", &self.wall_ms);
        print_row("client CPU (thread)", "ms", &self.cpu_ms);
        print_row("TLS handshakes", "", &self.handshakes);
        print_row("bytes sent", "B", &self.bytes_out);
        print_row("bytes received", "B", &self.bytes_in);
    }
}

/// `warmup` untimed then `iters` timed runs of `run`, each on a fresh `setup()` (not timed).
fn measure<S>(
    warmup: usize,
    iters: usize,
    mut setup: impl FnMut() -> S,
    mut run: impl FnMut(&mut S) -> Provisioned,
) -> Samples {
    let mut s = Samples::default();
    for i in 0..warmup + iters {
        let mut state = setup();
        if i < warmup {
            run(&mut state);
        } else {
            s.time(|| run(&mut state));
        }
    }
    s
}

fn inproc(quick: bool, args: &mut Vec<String>) {
    let iters: usize = take_opt(args, "--iters")
        .map(|v| v.parse().expect("--iters N"))
        .unwrap_or(if quick { 20 } else { 300 });
    let warmup = if quick { 3 } else { 20 };
    // For profilers (perf, callgrind): only the first section.
    let only_initial = take_flag(args, "--only-initial");
    // The MEF database on tmpfs, so that these figures are CPU and network; the cost of its
    // fsyncs (durability) is measured on its own at the end, with the database on disk.
    let data = mef_data_dir(false);
    let maker = Manufacturer::new("bench");
    #[allow(unused_mut)] // Changed only with `psk`.
    let mut config = maker.mef_config(data.path());
    #[cfg(feature = "psk")]
    {
        config.psk_listen = Some("127.0.0.1:0".parse().unwrap());
    }
    let mef = maker.start_mef(config);
    let auth = InitialAuth::Certificate {
        trust_anchors: vec![mef.ca_cert_der()],
        client: maker.identity(),
    };
    let client = client_for(&mef.base_uri(None));
    println!(
        "# in-process: reference MEF on {} ({} iterations after {} warm-up)",
        mef.local_addr(),
        iters,
        warmup
    );

    // Initial Certificate Provisioning, in-memory store.
    let provision = |store: &mut dyn CredentialStore| {
        client.provision(&auth, store, KeySource::Generate).unwrap()
    };
    measure(warmup, iters, MemStore::default, |store| provision(store))
        .print("Initial Certificate Provisioning, Rust API, memory store");
    if only_initial {
        return;
    }

    // The same with the FileStore (fsync of the key, certificate, trust anchors and directory).
    let out = tempfile::TempDir::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let s = measure(
        warmup.min(3),
        iters.min(100),
        || FileStore::new(out.path()).unwrap(),
        |store| provision(store),
    );
    s.print(&format!(
        "Initial Certificate Provisioning, Rust API, FileStore on disk ({}; fsyncs: durability)",
        out.path().display()
    ));

    // Re-Provisioning, renew and rekey, in memory.
    for (mode, name) in [(Reprovision::Renew, "renew"), (Reprovision::Rekey, "rekey")] {
        let mut store = MemStore::default();
        client
            .provision(&auth, &mut store, KeySource::Generate)
            .unwrap();
        measure(
            warmup,
            iters,
            || (),
            |_| client.reprovision(&mut store, mode).unwrap(),
        )
        .print(&format!("Re-Provisioning ({name}), Rust API, memory store"));
    }

    #[cfg(feature = "psk")]
    {
        use onem2m_est::psk::PskCredential;
        let kpm: Vec<u8> = (0u8..32).collect();
        mef.add_psk("kpm-bench", &kpm, onem2m_mef::SubjectType::Cse, CSE_ID)
            .unwrap();
        let auth = InitialAuth::Psk(PskCredential::new("kpm-bench", kpm).unwrap());
        let client = client_for(&mef.psk_base_uri(None).unwrap());
        measure(warmup, iters, MemStore::default, |store| {
            client.provision(&auth, store, KeySource::Generate).unwrap()
        })
        .print("PSK Initial Certificate Provisioning (OpenSSL TLS-PSK), Rust API, memory store");
    }
    #[cfg(not(feature = "psk"))]
    println!("PSK provisioning: skipped (build with --features psk)");

    components(quick, &mef, &maker);
    mef.shutdown();

    // Durability: the same procedure with the MEF database on disk (its commit is fsynced
    // before the certificate is returned).
    let data = mef_data_dir(true);
    let mef = maker.start_mef(maker.mef_config(data.path()));
    let auth = InitialAuth::Certificate {
        trust_anchors: vec![mef.ca_cert_der()],
        client: maker.identity(),
    };
    let client = client_for(&mef.base_uri(None));
    let mut s = Samples::default();
    for i in 0..3 + iters.min(100) {
        let mut store = MemStore::default();
        let mut run = || {
            client
                .provision(&auth, &mut store, KeySource::Generate)
                .unwrap()
        };
        if i < 3 {
            run();
        } else {
            s.time(run);
        }
    }
    s.print(&format!(
        "Initial Certificate Provisioning, MEF database on disk ({}), memory store",
        data.path().display()
    ));
    mef.shutdown();
}

/// A temporary MEF data directory: on disk (the target directory's file system) or on tmpfs
/// (/dev/shm, where fsync costs nothing) when there is one.
fn mef_data_dir(on_disk: bool) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if !on_disk && shm.is_dir() {
        tempfile::TempDir::new_in(shm).unwrap()
    } else {
        tempfile::TempDir::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
    }
}

/// The client-side pieces of a procedure, timed alone.
fn components(quick: bool, mef: &RunningMef, maker: &Manufacturer) {
    let n = if quick { 50 } else { 2000 };
    println!("Client-side components (thread CPU, {n} runs)");
    let uri = EstUri::parse(&mef.base_uri(None)).unwrap();
    let tas = vec![mef.ca_cert_der()];
    let mut cfg = Vec::new();
    let mut keygen = Vec::new();
    let mut csr = Vec::new();
    let reqs = CsrRequirements {
        challenge_password: ChallengePassword::Value(Zeroizing::new("0123456789abcdef".into())),
        extensions: vec![RequestedExtension {
            oid: onem2m_est::proto::oids::SUBJECT_ALT_NAME.into(),
            critical: false,
            value: onem2m_est::proto::san::encode(&[onem2m_est::proto::san::GeneralName::Dns(
                CSE_ID.into(),
            )])
            .unwrap(),
        }],
        key: None,
        hash: None,
        unrecognized: Vec::new(),
    };
    let identity = SubjectIdentity::new(SubjectType::Cse, CSE_ID).unwrap();
    for _ in 0..n {
        let c0 = thread_cpu();
        let c = client_config(&tas, Some(maker.identity()), &uri).unwrap();
        cfg.push(us(thread_cpu() - c0));
        drop(c);
        let c0 = thread_cpu();
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        keygen.push(us(thread_cpu() - c0));
        let c0 = thread_cpu();
        let built = build_csr(&key as &dyn PrivateKey, Some(&identity), &reqs, None).unwrap();
        csr.push(us(thread_cpu() - c0));
        std::hint::black_box(built);
    }
    print_row("TLS client config", "us", &cfg);
    print_row("P-256 key generation", "us", &keygen);
    print_row("CSR build + sign", "us", &csr);
}

// ---------------------------------------------------------------------------------------------
// load: an external MEF under bounded load
// ---------------------------------------------------------------------------------------------

fn load(quick: bool, args: &mut Vec<String>) {
    let uri = take_opt(args, "--uri").expect("--uri URI");
    let ta = read_pem_certs(take_opt(args, "--ta").expect("--ta PEM")).unwrap();
    let dir = PathBuf::from(take_opt(args, "--dir").expect("--dir DIR"));
    let threads: usize = take_opt(args, "--threads")
        .map(|v| v.parse().unwrap())
        .unwrap_or(2);
    let seconds: f64 = take_opt(args, "--seconds")
        .map(|v| v.parse().unwrap())
        .unwrap_or(if quick { 1.0 } else { 5.0 });
    let mef_pid: Option<u32> = take_opt(args, "--mef-pid").map(|v| v.parse().unwrap());
    let conns: usize = take_opt(args, "--conns")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    let label = take_opt(args, "--label").unwrap_or_else(|| "load".into());
    let identity = ClientIdentity {
        chain: read_pem_certs(dir.join("device.pem")).unwrap(),
        key: Arc::new(read_pem_key(dir.join("device.key")).unwrap()),
    };
    let auth = InitialAuth::Certificate {
        trust_anchors: ta.clone(),
        client: identity.clone(),
    };
    let client = Arc::new(client_for(&uri));
    // Warm-up (also proves the setup works before timing).
    for _ in 0..5 {
        client
            .provision(&auth, &mut MemStore::default(), KeySource::Generate)
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = mef_pid.and_then(process_cpu);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (client, auth, stop) = (client.clone(), auth.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut failures = 0u64;
                // Bounded: stops at the deadline, or after a hard cap of enrolments.
                while !stop.load(Ordering::Relaxed) && lat.len() < 1_000_000 {
                    let t = Instant::now();
                    match client.provision(&auth, &mut MemStore::default(), KeySource::Generate) {
                        Ok(_) => lat.push(ms(t.elapsed())),
                        Err(_) => failures += 1,
                    }
                }
                (lat, failures)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut failures = 0;
    for h in handles {
        let (l, f) = h.join().unwrap();
        lat.extend(l);
        failures += f;
    }
    let elapsed = t0.elapsed();
    let cpu1 = mef_pid.and_then(process_cpu);
    let n = lat.len();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{label}: {n} enrolments in {:.2} s by {threads} client thread(s), {failures} failed: {:.0} enrolments/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    println!(
        "{label}: latency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        println!(
            "{label}: MEF CPU {:.0} ms in all, {:.3} ms per enrolment",
            ms(b - a),
            ms(b - a) / n.max(1) as f64
        );
    }
    if conns > 0 {
        if let Some(pid) = mef_pid {
            open_connections(&uri, &ta, identity, pid, conns);
        }
    }
}

/// Opens `k` mutual-TLS connections to the MEF, each kept alive after one `/cacerts`, and
/// reports how much the MEF's resident memory grew per connection.
fn open_connections(
    uri: &str,
    ta: &[CertificateDer<'static>],
    id: ClientIdentity,
    pid: u32,
    k: usize,
) {
    let base = EstUri::parse(uri).unwrap();
    let tls = client_config(ta, Some(id), &base).unwrap();
    let url = url_parts(uri);
    std::thread::sleep(Duration::from_millis(300));
    let before = process_rss_kib(pid).unwrap_or(0);
    let mut open = Vec::new();
    for _ in 0..k {
        let sock = TcpStream::connect(&url.0).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let name = ServerName::try_from("localhost").unwrap().to_owned();
        let conn = rustls::ClientConnection::new(tls.clone(), name).unwrap();
        let mut s = rustls::StreamOwned::new(conn, sock);
        write!(
            s,
            "GET {}/cacerts HTTP/1.1\r\nHost: localhost\r\n\r\n",
            url.1
        )
        .unwrap();
        s.flush().unwrap();
        // Read the response head and body (Content-Length), leaving the connection idle.
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "the MEF closed the connection");
            got.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&got, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break;
                }
            }
        }
        open.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = process_rss_kib(pid).unwrap_or(0);
    println!(
        "open connections: {k} idle kept-alive mutual-TLS connections, MEF RSS {before} -> {after} KiB: {:.1} KiB per connection",
        (after as f64 - before as f64) / k as f64
    );
    drop(open);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// ("127.0.0.1:PORT", "/.well-known/est[/label]") of an https://localhost:PORT/... URI.
fn url_parts(uri: &str) -> (String, String) {
    let rest = uri.strip_prefix("https://").expect("https URI");
    let (auth, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let port = auth.rsplit(':').next().unwrap();
    (format!("127.0.0.1:{port}"), path.to_string())
}
