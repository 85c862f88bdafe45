//! `openssl s_server` as the peer of interop tests: the reference implementation of TLS-PSK and
//! of the ts0003 profile (TS-0003 10.2.1, 10.2.3) that both the core's and the CLI's tests
//! connect to.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::tools::require_tool;

/// `openssl s_server` on 127.0.0.1 at a port the OS picks; killed (and reaped) when dropped.
pub struct SServer {
    child: Child,
    port: u16,
}

impl SServer {
    /// Runs `openssl s_server -accept 127.0.0.1:0 ARGS` with its stderr going to `stderr`, and
    /// waits until it prints the address it listens on. `None` when the openssl CLI is missing
    /// and `ONEM2M_REQUIRE_TOOLS` is not set ([`crate::require_tool`]): the test returns.
    pub fn start<S: AsRef<OsStr>>(args: &[S], stderr: Stdio) -> Option<SServer> {
        if !require_tool("openssl", "Debian package openssl") {
            return None;
        }
        let mut child = Command::new("openssl")
            .arg("s_server")
            .args(["-accept", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the openssl CLI runs (Debian package openssl)");
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut port = None;
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(addr) = line.trim().strip_prefix("ACCEPT ") {
                port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
                break;
            }
            line.clear();
        }
        // Keep draining stdout so that s_server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        let port = port.expect("s_server printed its address");
        Some(SServer { child, port })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://localhost:PORT/.well-known/est`.
    pub fn uri(&self) -> String {
        format!("https://localhost:{}/.well-known/est", self.port)
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl s_client ARGS` with `request` (raw HTTP) on its stdin, until it exits or 20 s have
/// passed (then it is killed); its output. The request should say `Connection: close`: the
/// server then ends the connection after the response and s_client exits. Stdin stays open
/// until then (closing it early can end s_client before the response arrives).
pub fn s_client<S: AsRef<OsStr>>(args: &[S], request: &str) -> Output {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl CLI runs (Debian package openssl)");
    let mut stdin = child.stdin.take().expect("s_client's stdin");
    // s_client may already have given up (a refused handshake): its output says why.
    let _ = stdin.write_all(request.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().expect("waiting for s_client").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    drop(stdin);
    child.wait_with_output().expect("s_client's output")
}

/// Runs the openssl CLI with `args` in `dir` and asserts that it succeeded; its output.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI runs (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        crate::process::text(&out)
    );
    out
}

/// With the openssl CLI in `dir`: a P-256 key `NAME.key` and its CSR `NAME.csr` for `subject`
/// (`/CN=...`), for a CA to sign.
pub fn p256_key_and_csr(dir: &Path, name: &str, subject: &str) {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    run_in(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ],
    );
    run_in(
        dir,
        &["req", "-new", "-key", &key, "-subj", subject, "-out", &csr],
    );
}
