//! The `onem2m-mef` binary as an operator meets it (issue #14): the README's openssl recipe
//! makes a device certificate the MEF accepts without warnings; `identity add` warns about a
//! version 1 certificate and refuses to replace a registration silently; management commands
//! refuse a data directory without a database; every log line is timestamped and refusals
//! (a TLS handshake, a request) are logged at warn with the peer. Needs the openssl CLI (the
//! test fails without it; scripts/test.sh installs it).

use onem2m_est_testkit::process::{run, text};
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const MEF: &str = env!("CARGO_BIN_EXE_onem2m-mef");
const CSE_ID: &str = "cse01.sp.example.com";

fn mef(args: &[&str]) -> Output {
    run(MEF, args)
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed (scripts/test.sh installs it)");
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
}

/// The README's recipe, run as it is written.
fn run_readme_recipe(dir: &Path) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let start = readme
        .find("<!-- snippet: openssl-recipe -->")
        .expect("the README's openssl recipe is marked");
    let body = &readme[start..];
    let body = &body[body.find("```sh\n").expect("a sh block") + 6..];
    let script = &body[..body.find("\n```").expect("the block ends")];
    let o = Command::new("bash")
        .args(["-euc", script])
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(o.status.success(), "the README recipe failed: {}", text(&o));
    for f in ["manufacturer-ca.pem", "device.pem", "device.key"] {
        assert!(dir.join(f).is_file(), "the recipe made no {f}");
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path, what: &str, pattern: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| pattern(l)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line {what}; the log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `2026-12-01T11:28:12.345Z WARN  ...`
fn timestamped(line: &str) -> bool {
    let b = line.as_bytes();
    line.len() > 25 && b[4] == b'-' && b[10] == b'T' && b[23] == b'Z' && b[24] == b' '
}

/// openssl s_client with a client certificate (`cert` and `device.key` in `dir`), sending
/// `request`; its standard output.
fn s_client(dir: &Path, addr: &str, cert: &str, request: &str) -> String {
    let (cert, key) = (dir.join(cert), dir.join("device.key"));
    let args = [
        "-ign_eof",
        "-connect",
        addr,
        "-cert",
        cert.to_str().unwrap(),
        "-key",
        key.to_str().unwrap(),
    ];
    let o = onem2m_est_testkit::openssl::s_client(&args, request);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn an_operator_session() {
    let tmp = std::env::temp_dir().join(format!("onem2m-mef-operator-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let dir = tmp.as_path();
    run_readme_recipe(dir);
    let data = dir.join("mef-data");
    let data_s = data.to_str().unwrap();
    let device = dir.join("device.pem");
    let device_s = device.to_str().unwrap();

    // A mistyped --data-dir: said so, and nothing created.
    let typo = dir.join("mef-dat");
    let o = mef(&["identity", "list", "--data-dir", typo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no MEF database"), "{}", text(&o));
    assert!(!typo.exists());

    // The recipe's certificate: registered without warnings.
    let add = |cert: &str, replace: bool| {
        let mut args = vec![
            "identity",
            "add",
            "--data-dir",
            data_s,
            "--client-cert",
            cert,
        ];
        args.extend(["--subject-type", "cse", "--subject-id", CSE_ID]);
        if replace {
            args.push("--replace");
        }
        mef(&args)
    };
    let o = add(device_s, false);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("warning"), "{}", text(&o));
    assert!(stderr.contains("created a new one"), "{}", text(&o));

    // Not replaced silently.
    let o = add(device_s, false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("already registered") && text(&o).contains("--replace"));
    let o = add(device_s, true);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // What `openssl x509 -req` makes by default: version 1. Registered, with a warning.
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "device.csr",
            "-CA",
            "manufacturer-ca.pem",
            "-CAkey",
            "manufacturer-ca.key",
            "-CAcreateserial",
            "-sha256",
            "-days",
            "30",
            "-out",
            "v1.pem",
        ],
    );
    let o = add(dir.join("v1.pem").to_str().unwrap(), false);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning: ")
            && text(&o).contains("X.509 version 1"),
        "{}",
        text(&o)
    );

    // cert list: a header, even with nothing issued.
    let o = mef(&["cert", "list", "--data-dir", data_s]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("SERIAL FINGERPRINT TYPE"));

    // The server: timestamps, and refusals at warn with the peer.
    let log = dir.join("mef.log");
    let out = dir.join("mef.out");
    let child = Command::new(MEF)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_s,
            "--client-trust",
        ])
        .arg(dir.join("manufacturer-ca.pem"))
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let listening = wait_for(&out, "listening on", |l| l.starts_with("listening on "));
    let addr = listening.trim_start_matches("listening on ").to_string();

    // The v1 certificate: TLS refuses it; the MEF says why and who.
    s_client(dir, &addr, "v1.pem", "");
    let line = wait_for(&log, "for the refused handshake", |l| {
        l.contains("TLS handshake")
    });
    assert!(timestamped(&line), "{line}");
    assert!(
        line.contains(" WARN ") && line.contains("127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("refused"), "{line}");

    // A refused request (unknown EST path): warn, the check, the peer's certificate.
    let answer = s_client(
        dir,
        &addr,
        "device.pem",
        "GET /.well-known/est/x/y/z HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.contains("HTTP/1.1 4"), "{answer}");
    let line = wait_for(&log, "for the refused request", |l| {
        l.contains("refused GET")
    });
    assert!(timestamped(&line) && line.contains(" WARN "), "{line}");
    assert!(line.contains("from 127.0.0.1:") && line.contains("client certificate sha256 "));
    for l in std::fs::read_to_string(&log).unwrap().lines() {
        assert!(timestamped(l), "a log line without a timestamp: {l}");
    }
    drop(_running);
    let _ = std::fs::remove_dir_all(&tmp);
}
