//! HAProxy (Debian's `haproxy`) in front of MEF replicas, for the HA tests (issue #17): TCP
//! mode, because the MEF terminates mutual TLS itself (a balancer terminating TLS would hide
//! the client certificate); `balance roundrobin`; health checks that complete a TLS handshake
//! with each replica (no client certificate, no request: they need no database, so a replica
//! whose database is away stays in the pool and answers 503 itself, and they leave the
//! request counters alone); everything on 127.0.0.1, the configuration in the test's temp
//! folder. Missing `haproxy` fails the test.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running haproxy. Dropping it stops it.
pub struct HaProxy {
    child: Child,
    /// The frontend clients connect to.
    pub addr: SocketAddr,
    stats_socket: PathBuf,
}

/// One server line of `show stat`.
#[derive(Debug, Clone)]
pub struct ServerStat {
    pub name: String,
    /// UP, DOWN, ...
    pub status: String,
    /// Sessions (connections) sent to it so far.
    pub sessions: u64,
}

/// The haproxy executable (Debian installs it in /usr/sbin).
pub fn haproxy_bin() -> String {
    for p in ["/usr/sbin/haproxy", "/usr/bin/haproxy"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "haproxy".into()
}

/// A free port on 127.0.0.1 (bound and released: haproxy cannot report the port it bound).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl HaProxy {
    /// Starts haproxy in `dir` balancing over `backends` (name, address) and waits until every
    /// backend passed its health check.
    pub fn start(dir: &Path, backends: &[(&str, SocketAddr)]) -> HaProxy {
        std::fs::create_dir_all(dir).unwrap();
        let stats_socket = dir.join("haproxy.sock");
        let _ = std::fs::remove_file(&stats_socket);
        let port = free_port();
        let mut cfg = format!(
            "global\n\
             \x20   maxconn 1024\n\
             \x20   stats socket {} mode 600 level admin\n\
             defaults\n\
             \x20   mode tcp\n\
             \x20   timeout connect 2s\n\
             \x20   timeout client 30s\n\
             \x20   timeout server 30s\n\
             frontend est\n\
             \x20   bind 127.0.0.1:{port}\n\
             \x20   default_backend mef\n\
             backend mef\n\
             \x20   balance roundrobin\n\
             \x20   option tcp-check\n\
             \x20   tcp-check connect ssl\n",
            stats_socket.display()
        );
        for (name, addr) in backends {
            // A TLS handshake without a client certificate. Quick detection for the tests:
            // every 200 ms, down after 2 failures in a row (one slow check on a busy machine
            // is no outage).
            cfg.push_str(&format!(
                "    server {name} {addr} check verify none inter 200ms fall 2 rise 1\n"
            ));
        }
        let cfg_path = dir.join("haproxy.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let child = Command::new(haproxy_bin())
            .args(["-db", "-f"])
            .arg(&cfg_path)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run haproxy ({e}): install it (apt-get install haproxy)")
            });
        let hp = HaProxy {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stats_socket,
        };
        hp.wait_up(backends.len());
        hp
    }

    /// `show stat` on the stats socket: the servers of the `mef` backend.
    pub fn stats(&self) -> Vec<ServerStat> {
        let Ok(mut s) = UnixStream::connect(&self.stats_socket) else {
            return Vec::new();
        };
        s.write_all(b"show stat\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let mut lines = out.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or("")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
        let (px, sv, st, stot) = (col("pxname"), col("svname"), col("status"), col("stot"));
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > stot && f[px] == "mef" && f[sv] != "BACKEND")
            .map(|f| ServerStat {
                name: f[sv].to_string(),
                status: f[st].to_string(),
                sessions: f[stot].parse().unwrap_or(0),
            })
            .collect()
    }

    /// Waits until `n` servers are UP (at most 20 s).
    pub fn wait_up(&self, n: usize) {
        self.wait_for(
            |s| s.iter().filter(|s| s.status == "UP").count() == n,
            "servers UP",
        );
    }

    /// Waits until `name` is DOWN (at most 20 s).
    pub fn wait_down(&self, name: &str) {
        self.wait_for(
            |s| {
                s.iter()
                    .any(|s| s.name == name && s.status.starts_with("DOWN"))
            },
            "server DOWN",
        );
    }

    fn wait_for(&self, ok: impl Fn(&[ServerStat]) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.stats();
            if ok(&s) {
                return;
            }
            assert!(Instant::now() < deadline, "haproxy: no {what}: {s:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The haproxy process (benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `https://localhost:PORT/.well-known/est` through the balancer.
    pub fn base_uri(&self) -> String {
        format!("https://localhost:{}/.well-known/est", self.addr.port())
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
