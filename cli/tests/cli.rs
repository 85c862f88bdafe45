//! The `onem2m-est` binary against the reference MEF on 127.0.0.1: outputs, files, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use onem2m_mef::{Mef, MefConfig, RunningMef};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tempfile::TempDir;

const CSE_ID: &str = "cse01.sp.example.com";

struct Fixture {
    dir: TempDir,
    mef: RunningMef,
}

impl Fixture {
    /// A MEF trusting a manufacturer CA, and the device's PEM files in `dir`.
    fn new() -> Fixture {
        Fixture::with(|_| {})
    }

    /// Like [`Fixture::new`], with `tweak` applied to the MEF's configuration.
    fn with(tweak: impl FnOnce(&mut MefConfig)) -> Fixture {
        let dir = TempDir::new().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "CLI test manufacturer CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let device_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "CLI test device");
        let device = params.signed_by(&device_key, &issuer).unwrap();
        std::fs::write(dir.path().join("device.pem"), device.pem()).unwrap();
        std::fs::write(dir.path().join("device.key"), device_key.serialize_pem()).unwrap();

        let mut config = MefConfig::new(dir.path().join("mef"));
        config.client_trust = vec![ca.der().clone()];
        tweak(&mut config);
        let mef = Mef::start(config).unwrap();
        mef.add_identity(device.der().as_ref(), onem2m_mef::SubjectType::Cse, CSE_ID)
            .unwrap();
        Fixture { dir, mef }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self) -> String {
        self.mef.base_uri(None)
    }

    fn third_party_args(&self) -> Vec<String> {
        vec![
            "--trust-anchors".into(),
            self.mef.ca_cert_pem_path().display().to_string(),
            "--tls-cert".into(),
            self.path("device.pem").display().to_string(),
            "--tls-key".into(),
            self.path("device.key").display().to_string(),
        ]
    }

    fn provision(&self, out: &Path) -> Output {
        let mut args = vec!["provision".to_string(), "--server".into(), self.server()];
        args.extend(self.third_party_args());
        args.extend([
            "--subject-type".into(),
            "cse".into(),
            "--subject-id".into(),
            CSE_ID.into(),
            "--out".into(),
            out.display().to_string(),
        ]);
        run(&args)
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

#[test]
fn provision_then_reprovision_writes_the_credentials() {
    let f = Fixture::new();
    let out = f.path("cred");
    let o = f.provision(&out);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for name in ["cert.pem", "key.pem", "trust-anchors.pem"] {
        assert!(out.join(name).exists(), "{name} written");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains(CSE_ID), "{}", text(&o));
    assert!(stdout.contains("TLS handshakes: 1"), "{}", text(&o));

    let key_before = std::fs::read(out.join("key.pem")).unwrap();
    let o = run(&[
        "reprovision",
        "--server",
        &f.server(),
        "--out",
        out.to_str().unwrap(),
        "--rekey",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_ne!(std::fs::read(out.join("key.pem")).unwrap(), key_before);

    let o = run(&[
        "reprovision",
        "--server",
        &f.server(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "renew: {}", text(&o));
}

#[test]
fn serverkeygen_initial_and_cacerts_and_csrattrs() {
    let f = Fixture::new();
    let out = f.path("cred");
    let mut args = vec!["serverkeygen".to_string(), "--server".into(), f.server()];
    args.extend(f.third_party_args());
    args.extend(["--out".into(), out.display().to_string()]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out.join("key.pem").exists());

    let o = run(&[
        "cacerts",
        "--server",
        &f.server(),
        "--trust-anchors",
        f.mef.ca_cert_pem_path().to_str().unwrap(),
        "--pem",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("-----BEGIN CERTIFICATE-----"));

    let mut args = vec!["csrattrs".to_string(), "--server".into(), f.server()];
    args.extend(f.third_party_args());
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("challengePassword: supplied by the server"),
        "{}",
        text(&o)
    );
    assert!(stdout.contains(CSE_ID), "{}", text(&o));
}

#[test]
fn bad_arguments_exit_2() {
    let f = Fixture::new();
    let out = f.path("cred");
    let mut args = vec!["provision".to_string(), "--server".into(), f.server()];
    args.extend(f.third_party_args());
    args.extend([
        "--subject-type".into(),
        "gateway".into(),
        "--subject-id".into(),
        CSE_ID.into(),
        "--out".into(),
        out.display().to_string(),
    ]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS"));

    let o = run(&["provision", "--server", "http://localhost/", "--out", "x"]);
    assert_eq!(o.status.code(), Some(2), "usage error: {}", text(&o));
}

#[test]
fn reprovision_without_credentials_exits_3() {
    let f = Fixture::new();
    let o = run(&[
        "reprovision",
        "--server",
        &f.server(),
        "--out",
        f.path("empty").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR"));
}

#[test]
fn server_side_failures_exit_4_and_leave_the_credentials() {
    let f = Fixture::new();
    let out = f.path("cred");
    assert_eq!(f.provision(&out).status.code(), Some(0));
    let cert_before = std::fs::read(out.join("cert.pem")).unwrap();
    let server = f.server();
    let Fixture { dir, mef } = f;
    mef.shutdown();
    let o = run(&[
        "reprovision",
        "--server",
        &server,
        "--out",
        out.to_str().unwrap(),
        "--rekey",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR"));
    assert_eq!(std::fs::read(out.join("cert.pem")).unwrap(), cert_before);
    drop(dir);
}

#[test]
fn a_retry_after_beyond_the_poll_time_exits_4_saying_when_to_retry() {
    // RFC 7030 4.2.3: the MEF asks to be asked again in 15 minutes, more than --max-poll-time:
    // the CLI does not resend early, it says how long the MEF asked for.
    let f = Fixture::with(|c| {
        c.approval_polls = 1;
        c.retry_after_secs = 900;
    });
    let out = f.path("out");
    let mut args = vec!["provision".to_string(), "--server".into(), f.server()];
    args.extend(f.third_party_args());
    args.extend([
        "--subject-type".into(),
        "cse".into(),
        "--subject-id".into(),
        CSE_ID.into(),
        "--max-poll-time".into(),
        "60".into(),
        "--out".into(),
        out.display().to_string(),
    ]);
    let started = std::time::Instant::now();
    let o = run(&args);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("900 s") && stderr.contains("RFC 7030 4.2.3"),
        "{}",
        text(&o)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!out.join("cert.pem").exists());
}
