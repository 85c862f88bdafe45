//! The `onem2m-est` binary against the reference MEF on 127.0.0.1: outputs, files, exit codes.

use std::ops::Deref;
use std::path::Path;
use std::process::{Command, Output};

use onem2m_est_testkit::cli::CliMef;
use onem2m_est_testkit::openssl;
use onem2m_est_testkit::process::{
    self, assert_code, assert_exit, assert_stderr, assert_stdout, text,
};
use onem2m_est_testkit::{require_tool, TestCa, CSE_ID};
use onem2m_mef::{Mef, MefConfig};
use tempfile::TempDir;

/// A MEF trusting a manufacturer CA, and the device's PEM files in `dir` ([`CliMef`]), with
/// the commands these tests run against it.
struct Fixture(CliMef);

impl Deref for Fixture {
    type Target = CliMef;

    fn deref(&self) -> &CliMef {
        &self.0
    }
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(|_| {})
    }

    /// Like [`Fixture::new`], with `tweak` applied to the MEF's configuration.
    fn with(tweak: impl FnOnce(&mut MefConfig)) -> Fixture {
        Fixture(CliMef::start_with("CLI test", tweak))
    }

    fn provision(&self, out: &Path) -> Output {
        self.provision_as("cse", CSE_ID, &[], out)
    }

    /// `provision` from this MEF with the third-party certificate for the subject
    /// `subject_type`, `subject_id`, then `args` and `--out out`.
    fn provision_as(
        &self,
        subject_type: &str,
        subject_id: &str,
        args: &[&str],
        out: &Path,
    ) -> Output {
        let out = out.display().to_string();
        let subject = ["--subject-type", subject_type, "--subject-id", subject_id];
        self.third_party(&["provision"], &[&subject, args, &["--out", &out]].concat())
    }

    /// `command` (after any global flags it starts with) to this MEF with the third-party
    /// certificate, then `args`.
    fn third_party(&self, command: &[&str], args: &[&str]) -> Output {
        let mut all: Vec<String> = command.iter().map(|a| a.to_string()).collect();
        all.extend(["--server".into(), self.server()]);
        all.extend(self.third_party_args());
        all.extend(args.iter().map(|a| a.to_string()));
        run(&all)
    }

    /// `reprovision` from this MEF with the credentials in `out`, then `args`.
    fn reprovision(&self, out: &Path, args: &[&str]) -> Output {
        reprovision(&self.server(), out, args)
    }

    /// `cacerts` from this MEF, authenticated by its CA certificate, then `args`.
    fn cacerts(&self, args: &[&str]) -> Output {
        let ta = self.mef.ca_cert_pem_path().display().to_string();
        let server = self.server();
        run(&[
            &["cacerts", "--server", &server, "--trust-anchors", &ta],
            args,
        ]
        .concat())
    }
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    process::run(env!("CARGO_BIN_EXE_onem2m-est"), args)
}

/// `reprovision` from `server` with the credentials in `out`, then `args`.
fn reprovision(server: &str, out: &Path, args: &[&str]) -> Output {
    let out = out.display().to_string();
    run(&[&["reprovision", "--server", server, "--out", &out], args].concat())
}

#[test]
fn provision_then_reprovision_writes_the_credentials() {
    let f = Fixture::new();
    let out = f.path("cred");
    let o = f.provision(&out);
    assert_code(&o, 0);
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
    assert_stdout(&o, CSE_ID);
    assert_stdout(&o, "TLS handshakes: 1");

    let key_before = std::fs::read(out.join("key.pem")).unwrap();
    let o = f.reprovision(&out, &["--rekey"]);
    assert_code(&o, 0);
    assert_ne!(std::fs::read(out.join("key.pem")).unwrap(), key_before);

    let o = f.reprovision(&out, &[]);
    assert_eq!(o.status.code(), Some(0), "renew: {}", text(&o));
}

#[test]
fn serverkeygen_initial_and_cacerts_and_csrattrs() {
    let f = Fixture::new();
    let out = f.path("cred");
    let o = f.third_party(&["serverkeygen"], &["--out", out.to_str().unwrap()]);
    assert_code(&o, 0);
    assert!(out.join("key.pem").exists());

    let o = f.cacerts(&["--pem"]);
    assert_code(&o, 0);
    assert_stdout(&o, "-----BEGIN CERTIFICATE-----");

    let o = f.third_party(&["csrattrs"], &[]);
    assert_code(&o, 0);
    assert_stdout(&o, "challengePassword: supplied by the server");
    assert_stdout(&o, CSE_ID);
}

#[test]
fn bad_arguments_exit_2() {
    let f = Fixture::new();
    let out = f.path("cred");
    let o = f.provision_as("gateway", CSE_ID, &[], &out);
    assert_exit(&o, 2, "MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS");

    let o = run(&["provision", "--server", "http://localhost/", "--out", "x"]);
    assert_eq!(o.status.code(), Some(2), "usage error: {}", text(&o));
}

/// Timeouts and polling bounds are the core's check (TransportConfig::with_timeouts /
/// with_polling), as for C and Python: zero is refused before any I/O, not taken as 1 s.
#[test]
fn zero_timeouts_and_attempts_exit_2_before_any_io() {
    let dir = tempfile::tempdir().unwrap();
    let tas = dir.path().join("tas.pem");
    std::fs::write(&tas, "").unwrap();
    // Port 9 (discard) on localhost: never reached, the arguments are refused first.
    for (option, value) in [("--timeout", "0"), ("--max-polls", "0")] {
        let o = run(&[
            "cacerts",
            "--server",
            "https://127.0.0.1:9/",
            "--trust-anchors",
            &tas.display().to_string(),
            option,
            value,
        ]);
        assert_eq!(o.status.code(), Some(2), "{option}: {}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(option), "{option}: {stderr}");
        assert!(
            stderr.contains("MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS"),
            "{stderr}"
        );
    }
}

/// A MEF that associates the device certificate with `identity` (type, ID as the MEF operator
/// writes it).
fn fixture_for(subject_type: onem2m_mef::SubjectType, id: &str) -> Fixture {
    let f = Fixture::new();
    let device = std::fs::read_to_string(f.path("device.pem")).unwrap();
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(device.as_bytes())
        .map(|c: rustls_pki_types::CertificateDer<'static>| c)
        .unwrap();
    f.mef.add_identity(der.as_ref(), subject_type, id).unwrap();
    f
}

#[test]
fn provision_with_an_absolute_ae_id() {
    // TS-0001 7.2 absolute AE-ID: SP-ID + SP-relative AE-ID. It used to be refused as "not a
    // URI"; it maps to the subjectAltName URI https://example.net/mn-cse/CAE-device1.
    let f = fixture_for(
        onem2m_mef::SubjectType::Ae,
        "//example.net/mn-cse/CAE-device1",
    );
    // The absolute form, and the SP-relative form with the SP-ID: the same AE.
    for (out, id, extra) in [
        (
            "cred",
            "//example.net/mn-cse/CAE-device1",
            ["--mef-fqdn", "localhost"],
        ),
        ("cred2", "/mn-cse/CAE-device1", ["--sp-id", "//example.net"]),
    ] {
        let o = f.provision_as("ae", id, &extra, &f.path(out));
        assert_eq!(o.status.code(), Some(0), "{id}: {}", text(&o));
        let stdout = String::from_utf8_lossy(&o.stdout);
        let uri = "https://example.net/mn-cse/CAE-device1";
        assert!(stdout.contains(uri), "{id}: {}", text(&o));
    }
    // Without the SP-ID it is a bad argument, and says what to give.
    let out = f.path("cred3");
    let o = f.provision_as("ae", "/mn-cse/CAE-device1", &[], &out);
    assert_exit(&o, 2, "//SP-ID/CSE-ID/AE-ID");
}

#[test]
fn a_cert_prov_command_for_another_mef_exits_2_before_any_io() {
    // TS-0003 8.3.9.7: the URI's FQDN must be the issuing MEF's. Checked before the PEM files
    // are read: they do not exist here, and the output directory is not created.
    let f = Fixture::new();
    let out = f.path("cred");
    let o = run(&[
        "provision",
        "--server",
        &f.server(),
        "--trust-anchors",
        "/nonexistent/ta.pem",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
        "--subject-type",
        "cse",
        "--subject-id",
        CSE_ID,
        "--mef-fqdn",
        "mef.example.org",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_exit(&o, 2, "MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS");
    assert_stderr(&o, "mef.example.org");
    assert!(!out.exists());

    // The same command from this MEF runs.
    let o = f.provision_as("cse", CSE_ID, &["--mef-fqdn", "localhost"], &out);
    assert_code(&o, 0);

    // A command always names its subject.
    let o = f.reprovision(&out, &["--mef-fqdn", "localhost"]);
    assert_code(&o, 2);
}

#[test]
fn reprovision_without_credentials_exits_3() {
    let f = Fixture::new();
    let o = f.reprovision(&f.path("empty"), &[]);
    assert_exit(&o, 3, "MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR");
}

#[test]
fn server_side_failures_exit_4_and_leave_the_credentials() {
    let f = Fixture::new();
    let out = f.path("cred");
    assert_eq!(f.provision(&out).status.code(), Some(0));
    let cert_before = std::fs::read(out.join("cert.pem")).unwrap();
    let server = f.server();
    let CliMef { dir, mef } = f.0;
    let _hold = onem2m_est_testkit::net::shut_down_holding_port(mef);
    let o = reprovision(&server, &out, &["--rekey"]);
    assert_exit(&o, 4, "MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR");
    assert_eq!(std::fs::read(out.join("cert.pem")).unwrap(), cert_before);
    drop(dir);
}

/// `onem2m-est cacerts ... | head -1`: standard output closed before the command prints. The
/// command ends quietly (no panic, no backtrace) with 141, what a shell reports for a C tool
/// killed by SIGPIPE.
#[test]
fn closed_stdout_ends_quietly_on_broken_pipe() {
    let f = Fixture::new();
    for pem in [true, false] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_onem2m-est"));
        cmd.args([
            "cacerts",
            "--server",
            &f.server(),
            "--trust-anchors",
            f.mef.ca_cert_pem_path().to_str().unwrap(),
        ]);
        if pem {
            cmd.arg("--pem");
        }
        let mut child = cmd
            .env("RUST_BACKTRACE", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the onem2m-est binary runs");
        // Close the reading end before the command has fetched anything to print (it needs a
        // TLS handshake and a request first), as `head` does once it has its line.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains("panicked"), "pem={pem}: {}", text(&o));
        assert!(!stderr.contains("backtrace"), "pem={pem}: {}", text(&o));
        assert_eq!(stderr, "", "pem={pem}: nothing on stderr");
        assert_eq!(o.status.code(), Some(141), "pem={pem}: {}", text(&o));
    }
}

/// `onem2m-est ... 2>&1 | head -1` when the command fails: its error text meets a closed pipe
/// too. It still ends with its own status (4: the server is unreachable), not a panic (101).
#[test]
fn closed_stderr_keeps_the_exit_status() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new().unwrap();
    let ta = dir.path().join("ta.pem");
    std::fs::write(&ta, TestCa::new("unused CA").cert_pem()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_onem2m-est"))
        .args([
            "cacerts",
            "--server",
            &format!("https://localhost:{port}/.well-known/est"),
            "--trust-anchors",
            ta.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the onem2m-est binary runs");
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(4), "{status:?}");
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
    let started = std::time::Instant::now();
    let o = f.provision_as("cse", CSE_ID, &["--max-poll-time", "60"], &out);
    assert_code(&o, 4);
    assert_stderr(&o, "900 s");
    assert_stderr(&o, "RFC 7030 4.2.3");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!out.join("cert.pem").exists());
}

/// The conventions of command-line tools (issue #14): -v/-q, --json on every subcommand,
/// `status`, and `--out` that does not create a mistyped path.
fn json(o: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output: {}", text(o)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

#[test]
fn verbose_shows_the_library_log_and_quiet_silences_everything_but_errors() {
    let f = Fixture::new();
    let o = f.third_party(
        &["-v", "provision"],
        &["--out", f.path("v").to_str().unwrap()],
    );
    assert_code(&o, 0);
    assert_stderr(&o, "onem2m-est: info: ");
    assert_stderr(&o, "/cacerts");
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Readable forms, not Rust Debug output (Some(Ec(P256))).
    assert!(
        !stderr.contains("Some(") && !stderr.contains("Ec("),
        "{}",
        text(&o)
    );

    // Without -v: no progress log.
    let o = f.reprovision(&f.path("v"), &[]);
    assert_code(&o, 0);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("info:"),
        "{}",
        text(&o)
    );
    assert_stdout(&o, "written:");

    // -q (after the subcommand): nothing on stdout or stderr on success; the error on failure.
    let o = f.reprovision(&f.path("v"), &["-q"]);
    assert_code(&o, 0);
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{}", text(&o));
    let o = run(&[
        "-q",
        "reprovision",
        "--server",
        &f.server(),
        "--out",
        f.path("nothing").to_str().unwrap(),
    ]);
    assert_exit(&o, 3, "error:");
}

#[test]
fn json_results_of_every_subcommand() {
    let f = Fixture::new();
    let out = f.path("j");
    let o = f.provision_as("cse", CSE_ID, &["--json"], &out);
    assert_code(&o, 0);
    let v = json(&o);
    assert_eq!(v["ok"], true);
    assert_eq!(v["command"], "provision");
    assert_eq!(
        v["installed"]["cert"],
        out.join("cert.pem").display().to_string()
    );
    assert_eq!(
        v["certificate"]["identity"][0],
        format!("DNS:{CSE_ID}"),
        "{v}"
    );
    assert!(
        v["certificate"]["serial"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert!(
        v["certificate"]["not_after"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{v}"
    );
    assert_eq!(v["trust_anchors"], 1);

    let o = run(&["status", "--json", "--out", out.to_str().unwrap()]);
    assert_code(&o, 0);
    let s = json(&o);
    assert_eq!(
        s["certificate"]["serial"], v["certificate"]["serial"],
        "{s}"
    );
    assert!(
        s["certificate"]["days_left"]
            .as_i64()
            .is_some_and(|d| d > 0),
        "{s}"
    );
    assert_eq!(s["trust_anchors"].as_array().map(Vec::len), Some(1), "{s}");
    let o = run(&["status", "--out", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("days left:") && stdout.contains(&format!("DNS:{CSE_ID}")),
        "{}",
        text(&o)
    );
    assert!(
        stdout.contains("issuer:") && stdout.contains("trust anchors: 1"),
        "{}",
        text(&o)
    );

    let o = f.cacerts(&["--json"]);
    assert_code(&o, 0);
    let c = json(&o);
    assert!(c["certificates"][0]["pem"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE"));

    let o = f.third_party(&["csrattrs", "--json"], &[]);
    assert_code(&o, 0);
    let a = json(&o);
    assert_eq!(a["csr_attributes"]["challenge_password"], "supplied", "{a}");
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("Some("),
        "{}",
        text(&o)
    );

    // A failure: the class and the CERT_PROV cmdStatusCode, still one JSON object.
    let o = run(&[
        "status",
        "--json",
        "--out",
        f.path("none").to_str().unwrap(),
    ]);
    assert_code(&o, 3);
    let e = json(&o);
    assert_eq!(e["ok"], false);
    assert_eq!(
        e["cmdStatusCode"], "MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR",
        "{e}"
    );
    let o = reprovision("https://localhost:1/.well-known/est", &out, &["--json"]);
    assert_code(&o, 4);
    assert_eq!(
        json(&o)["cmdStatusCode"],
        "MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR"
    );
}

/// A usage error under --json is a JSON object on stdout (bad arguments, exit 2), clap's text
/// on stderr; without --json stdout stays empty.
#[test]
fn usage_errors_are_json_under_json() {
    let o = run(&["provision", "--json", "--no-such-flag"]);
    assert_code(&o, 2);
    let e = json(&o);
    assert_eq!(e["ok"], false, "{e}");
    assert_eq!(e["command"], "provision", "{e}");
    assert_eq!(e["class"], "bad-arguments", "{e}");
    assert_eq!(
        e["cmdStatusCode"], "MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS",
        "{e}"
    );
    let error = e["error"].as_str().unwrap();
    assert!(error.contains("--no-such-flag"), "{e}");
    assert!(!error.starts_with("error:"), "{e}");
    assert_stderr(&o, "Usage:");

    // A missing required argument, and no subcommand at all.
    let o = run(&["--json", "cacerts"]);
    assert_code(&o, 2);
    assert_eq!(json(&o)["command"], "cacerts");
    let o = run(&["--json"]);
    assert_code(&o, 2);
    assert_eq!(json(&o)["command"], serde_json::Value::Null);

    // Without --json (or with it only after `--`): clap's text alone.
    for args in [
        &["provision", "--no-such-flag"][..],
        &["provision", "--", "--json"],
    ] {
        let o = run(args);
        assert_code(&o, 2);
        assert!(o.stdout.is_empty(), "{}", text(&o));
    }
}

#[test]
fn out_does_not_create_missing_parent_folders() {
    let f = Fixture::new();
    let out = f.path("no-such-folder").join("cred");
    let o = f.provision(&out);
    assert_exit(&o, 2, "does not exist");
    assert!(!f.path("no-such-folder").exists());
}

#[test]
fn help_texts_offer_no_default_that_does_not_exist() {
    let o = run(&["cacerts", "--help"]);
    assert_code(&o, 0);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(!help.contains("Defaults to DIR"), "{help}");
    for flag in ["--verbose", "--quiet", "--json"] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
}

/// A version 1 device certificate (what `openssl x509 -req` makes without -extfile): the MEF's
/// TLS refuses it, and the client's error says which properties servers commonly refuse.
#[test]
fn a_refused_client_certificate_is_explained() {
    if !require_tool("openssl", "Debian package openssl") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let ca = TestCa::new("device CA");
    ca.write_pem(dir.path(), "ca");
    openssl::p256_key_and_csr(dir.path(), "device", "/CN=device-v1");
    openssl::run_in(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "device.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            "device.pem",
        ],
    );
    let mut config = MefConfig::new(dir.path().join("mef"));
    config.client_trust = vec![ca.cert.clone()];
    let mef = Mef::start(config).unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let o = run(&[
        "provision",
        "--server",
        &mef.base_uri(None),
        "--trust-anchors",
        &mef.ca_cert_pem_path().display().to_string(),
        "--tls-cert",
        &p("device.pem"),
        "--tls-key",
        &p("device.key"),
        "--out",
        &p("cred"),
    ]);
    assert_code(&o, 4);
    assert_stderr(&o, "version 1");
    assert_stderr(&o, "clientAuth");
}
