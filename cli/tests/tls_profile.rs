//! `--tls-profile` of the `onem2m-est` binary against `openssl s_server` restricted to the
//! mandatory suite of TS-0003 10.2.3 (TLS 1.2, ECDHE-ECDSA-AES128-SHA256, client certificate
//! required), on 127.0.0.1. Needs the `openssl` CLI (the tests fail without it). Built without
//! the library's `psk` feature (no OpenSSL), `--tls-profile ts0003` exits 2 before any I/O.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tempfile::TempDir;

fn ca(cn: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    eku: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, "leaf");
    params.extended_key_usages = vec![eku];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

struct Fixture {
    dir: TempDir,
    server: Child,
    port: u16,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new().unwrap();
        let (mef_ca, mef_issuer) = ca("MEF CA");
        let (maker_ca, maker_issuer) = ca("manufacturer CA");
        let (server_cert, server_key) = leaf(
            &mef_issuer,
            &["localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (device_cert, device_key) =
            leaf(&maker_issuer, &[], ExtendedKeyUsagePurpose::ClientAuth);
        for (name, text) in [
            ("mef-ca.pem", &mef_ca),
            ("maker-ca.pem", &maker_ca),
            ("server.pem", &server_cert),
            ("server.key", &server_key),
            ("device.pem", &device_cert),
            ("device.key", &device_key),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let p = |n: &str| dir.path().join(n);
        let mut server = Command::new("openssl")
            .arg("s_server")
            .args(["-accept", "127.0.0.1:0", "-naccept", "4", "-tls1_2"])
            .args(["-cipher", "ECDHE-ECDSA-AES128-SHA256"])
            .args(["-Verify", "2", "-verify_return_error", "-www"])
            .arg("-cert")
            .arg(p("server.pem"))
            .arg("-key")
            .arg(p("server.key"))
            .arg("-CAfile")
            .arg(p("maker-ca.pem"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the openssl CLI runs (apt-get install openssl)");
        let mut out = BufReader::new(server.stdout.take().unwrap());
        let mut port = None;
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(addr) = line.trim().strip_prefix("ACCEPT ") {
                port = addr.rsplit(':').next().and_then(|p| p.parse().ok());
                break;
            }
            line.clear();
        }
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Fixture {
            dir,
            server,
            port: port.expect("s_server printed its address"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cacerts(&self, profile: &str) -> Output {
        let p = |n: &str| self.path(n).display().to_string();
        run(&[
            "cacerts".to_string(),
            "--server".into(),
            format!("https://localhost:{}/.well-known/est", self.port),
            "--trust-anchors".into(),
            p("mef-ca.pem"),
            "--tls-cert".into(),
            p("device.pem"),
            "--tls-key".into(),
            p("device.key"),
            "--tls-profile".into(),
            profile.into(),
            "--timeout".into(),
            "5".into(),
        ])
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_onem2m-est"))
        .args(args)
        .output()
        .expect("the onem2m-est binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn ts0003_profile_completes_the_handshake_with_the_mandatory_suite() {
    let f = Fixture::new();
    let o = f.cacerts("ts0003");
    if !onem2m_est::ts0003::SUPPORTED {
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(stderr(&o).contains("needs OpenSSL"), "{}", text(&o));
        return;
    }
    // s_server -www answers with an HTML page: a server-side failure (exit 4) about the
    // response, which only comes after a completed handshake with our client certificate.
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(stderr(&o).contains("Content-Type"), "{}", text(&o));
}

#[test]
fn the_default_profile_finds_no_common_suite() {
    let f = Fixture::new();
    let o = f.cacerts("modern");
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        stderr(&o).contains("no TLS version or cipher suite in common"),
        "{}",
        text(&o)
    );
    // The default is the modern profile.
    let p = |n: &str| f.path(n).display().to_string();
    let o = run(&[
        "cacerts".to_string(),
        "--server".into(),
        format!("https://localhost:{}/.well-known/est", f.port),
        "--trust-anchors".into(),
        p("mef-ca.pem"),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
}

#[test]
fn an_unknown_profile_is_a_usage_error() {
    let o = run(&[
        "cacerts",
        "--server",
        "https://localhost:1/.well-known/est",
        "--trust-anchors",
        "x.pem",
        "--tls-profile",
        "tls13",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
