//! `--tls-profile` of the `onem2m-est` binary against `openssl s_server` restricted to the
//! mandatory suite of TS-0003 10.2.3 (TLS 1.2, ECDHE-ECDSA-AES128-SHA256, client certificate
//! required), on 127.0.0.1. Needs the `openssl` CLI (the test kit's `require_tool`: with
//! ONEM2M_REQUIRE_TOOLS=1 the tests fail without it). Built without the library's `psk` feature
//! (no OpenSSL), `--tls-profile ts0003` exits 2 before any I/O.

use std::path::PathBuf;
use std::process::{Output, Stdio};

use onem2m_est_testkit::openssl::SServer;
use onem2m_est_testkit::process::{self, stderr, text};
use onem2m_est_testkit::{Eku, TestCa};
use tempfile::TempDir;

struct Fixture {
    dir: TempDir,
    _server: SServer,
    port: u16,
}

impl Fixture {
    /// `None` (the test returns) when openssl is missing and `ONEM2M_REQUIRE_TOOLS` is not set.
    fn new() -> Option<Fixture> {
        let dir = TempDir::new().unwrap();
        let (mef_ca, maker_ca) = (TestCa::new("MEF CA"), TestCa::new("manufacturer CA"));
        let (server_cert, server_key) = mef_ca.issue_pem("leaf", &["localhost"], Eku::ServerAuth);
        let (device_cert, device_key) = maker_ca.issue_pem("leaf", &[], Eku::ClientAuth);
        for (name, text) in [
            ("mef-ca.pem", mef_ca.cert_pem().as_str()),
            ("maker-ca.pem", &maker_ca.cert_pem()),
            ("server.pem", &server_cert),
            ("server.key", &server_key),
            ("device.pem", &device_cert),
            ("device.key", &device_key),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let p = |n: &str| dir.path().join(n).display().to_string();
        let server = SServer::start(
            &[
                "-naccept",
                "4",
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-AES128-SHA256",
                "-Verify",
                "2",
                "-verify_return_error",
                "-www",
                "-cert",
                &p("server.pem"),
                "-key",
                &p("server.key"),
                "-CAfile",
                &p("maker-ca.pem"),
            ],
            Stdio::null(),
        )?;
        let port = server.port();
        Some(Fixture {
            dir,
            _server: server,
            port,
        })
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

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    process::run(env!("CARGO_BIN_EXE_onem2m-est"), args)
}

#[test]
fn ts0003_profile_completes_the_handshake_with_the_mandatory_suite() {
    let Some(f) = Fixture::new() else {
        return;
    };
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
    let Some(f) = Fixture::new() else {
        return;
    };
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
