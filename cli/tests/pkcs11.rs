//! `onem2m-est provision --key pkcs11:URI --pkcs11-module PATH --pin-file PATH`, `reprovision`
//! (renew, `--rekey`), `renew` (renew, rekey, re-bootstrap) and the renewal `agent` with the device
//! key in a SoftHSM2 token, against the reference MEF on 127.0.0.1; the token inspected with
//! OpenSC's `pkcs11-tool`.
//!
//! Built without the library's `pkcs11` feature, the flags are accepted by the parser and refused
//! as unacceptable arguments (exit 2); both builds are tested. With it, SoftHSM2 and pkcs11-tool
//! are required: without them these tests fail (scripts/test.sh installs softhsm2 and opensc).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use onem2m_est_testkit::cli::{cse_out_args, CliMef};
use onem2m_est_testkit::process::{
    assert_code, assert_exit, assert_stdout, signal, text, wait_exit,
};
use onem2m_est_testkit::softhsm::{self, module_path};
use onem2m_mef::MefConfig;

const PIN: &str = "135790";
const TOKEN: &str = "cli-device";

struct Fixture {
    mef: CliMef,
}

impl Fixture {
    /// A MEF trusting a manufacturer CA, the device's PEM files, a PIN file, and (with the
    /// feature) a SoftHSM2 token initialised in `dir/tokens`.
    fn new() -> Fixture {
        Fixture::with(|_| {})
    }

    fn with(tweak: impl FnOnce(&mut MefConfig)) -> Fixture {
        let f = Fixture {
            mef: CliMef::start_with("CLI token test", tweak),
        };
        std::fs::write(f.path("pin"), format!("{PIN}\n")).unwrap();
        std::fs::write(f.path("wrong-pin"), "000000\n").unwrap();
        if onem2m_est::pkcs11::SUPPORTED {
            std::fs::create_dir(f.path("tokens")).unwrap();
            std::fs::write(
                f.conf(),
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\n",
                    f.path("tokens").display()
                ),
            )
            .unwrap();
            softhsm::init_token(&f.conf(), TOKEN, "24682468", PIN);
        }
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.mef.path(name)
    }

    fn conf(&self) -> PathBuf {
        self.path("softhsm2.conf")
    }

    fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_onem2m-est"))
            .env("SOFTHSM2_CONF", self.conf())
            .env("TEST_TOKEN_PIN", PIN)
            .args(args)
            .output()
            .expect("the onem2m-est binary runs")
    }

    /// Runs `args`, then the token of `module` with the PIN from the environment, then `extra`.
    fn run_with_token(&self, args: &[String], module: &str, extra: &[&str]) -> Output {
        let token = ["--pkcs11-module", module, "--pin-env", "TEST_TOKEN_PIN"];
        let tail = token.iter().chain(extra).map(|s| s.to_string());
        self.run(&args.iter().cloned().chain(tail).collect::<Vec<_>>())
    }

    fn provision(&self, out: &Path, pin_file: &str) -> Output {
        let mut args = vec![
            "provision".to_string(),
            "--server".into(),
            self.mef.server(),
        ];
        args.extend(self.mef.third_party_args());
        args.extend(cse_out_args(out));
        args.extend([
            "--key".into(),
            format!("pkcs11:token={TOKEN};object=device"),
            "--pkcs11-module".into(),
            module_path_or_dummy().display().to_string(),
            "--pin-file".into(),
            self.path(pin_file).display().to_string(),
        ]);
        self.run(&args)
    }

    /// Private key objects in the token, as pkcs11-tool lists them.
    fn private_keys(&self) -> Vec<String> {
        let out = softhsm::pkcs11_tool(
            Some(&self.conf()),
            TOKEN,
            PIN,
            &["--list-objects", "--type", "privkey"],
        );
        String::from_utf8_lossy(&out)
            .split("Private Key Object")
            .skip(1)
            .map(str::to_owned)
            .collect()
    }
}

/// The SoftHSM2 module, or (without the feature, where nothing is loaded) any path.
fn module_path_or_dummy() -> PathBuf {
    if onem2m_est::pkcs11::SUPPORTED {
        module_path()
    } else {
        PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
    }
}

#[test]
fn provision_renew_and_rekey_with_the_key_in_the_token() {
    let f = Fixture::new();
    let out = f.path("cred");
    let o = f.provision(&out, "pin");
    if !onem2m_est::pkcs11::SUPPORTED {
        assert_exit(&o, 2, "no PKCS #11 support");
        assert!(!out.join("cert.pem").exists());
        return;
    }
    assert_code(&o, 0);
    assert!(out.join("cert.pem").exists() && out.join("trust-anchors.pem").exists());
    assert!(!out.join("key.pem").exists(), "no key on disk");
    let first = std::fs::read_to_string(out.join("key.uri")).unwrap();
    assert!(
        first.starts_with(&format!("pkcs11:token={TOKEN};object=device;id=")),
        "{first}"
    );
    assert_stdout(&o, "key.uri");
    let keys = f.private_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].contains("never extractable"), "{}", keys[0]);

    // Renew: the URI comes from DIR, the PIN from an environment variable.
    let cert = std::fs::read(out.join("cert.pem")).unwrap();
    let module = module_path().display().to_string();
    let reprovision = |extra: &[&str]| {
        let args = [
            "reprovision".to_string(),
            "--server".into(),
            f.mef.server(),
            "--out".into(),
            out.display().to_string(),
        ];
        f.run_with_token(&args, &module, extra)
    };
    let o = reprovision(&[]);
    assert_code(&o, 0);
    assert_ne!(std::fs::read(out.join("cert.pem")).unwrap(), cert);
    assert_eq!(std::fs::read_to_string(out.join("key.uri")).unwrap(), first);

    // Rekey: a new key in the token, the old one destroyed.
    let o = reprovision(&["--rekey"]);
    assert_code(&o, 0);
    let second = std::fs::read_to_string(out.join("key.uri")).unwrap();
    assert_ne!(second, first);
    assert_eq!(f.private_keys().len(), 1);
    assert!(!out.join("key.pem").exists());

    // Without the module the recorded key cannot be opened: a client-side error saying why.
    let o = f.run(&[
        "reprovision",
        "--server",
        &f.mef.server(),
        "--out",
        &out.display().to_string(),
    ]);
    assert_exit(&o, 3, "PKCS #11 token");
}

#[test]
fn a_wrong_pin_exits_3_and_never_shows_the_pin() {
    let f = Fixture::new();
    let out = f.path("cred");
    let o = f.provision(&out, "wrong-pin");
    if !onem2m_est::pkcs11::SUPPORTED {
        assert_code(&o, 2);
        return;
    }
    assert_code(&o, 3);
    let all = text(&o);
    assert!(all.contains("PIN was refused"), "{all}");
    assert!(!all.contains("000000") && !all.contains(PIN), "{all}");
    assert!(!out.join("cert.pem").exists());
    assert!(f.private_keys().is_empty());
}

#[test]
fn token_flags_without_what_they_need_exit_2() {
    let f = Fixture::new();
    let out = f.path("cred").display().to_string();
    let server = f.mef.server();
    let module = module_path_or_dummy().display().to_string();
    for (args, says) in [
        // No PIN source.
        (
            vec![
                "--key",
                "pkcs11:token=t;object=o",
                "--pkcs11-module",
                &module,
            ],
            "--pin-file",
        ),
        // No module.
        (vec!["--key", "pkcs11:token=t;object=o"], "module"),
        // A PIN in the URI.
        (
            vec![
                "--key",
                "pkcs11:token=t;object=o?pin-value=4711",
                "--pkcs11-module",
                &module,
            ],
            "pin-value",
        ),
    ] {
        let mut all = vec!["provision", "--server", &server, "--out", &out];
        all.extend([
            "--psk-identity",
            "x",
            "--psk-key-hex",
            "00112233445566778899aabbccddeeff",
        ]);
        all.extend(args.iter().copied());
        let o = f.run(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("4711"), "{}", text(&o));
    }
}

/// `renew` and `agent` with the installed key in the token: DIR's key.uri with the module and
/// PIN source is enough; `--rekey` generates the next key in the token; a re-bootstrap into an
/// empty DIR generates it under `--key`'s label.
#[test]
fn renew_and_the_agent_with_the_key_in_the_token() {
    // A short lifetime, so the agent's renewal is due within seconds.
    let f = Fixture::with(|c| c.cert_lifetime = Duration::from_secs(90));
    let out = f.path("cred");
    let module = module_path_or_dummy().display().to_string();
    let renew = |out: &Path, extra: &[&str]| {
        let mut args = vec!["renew".to_string(), "--server".into(), f.mef.server()];
        args.extend(cse_out_args(out));
        f.run_with_token(&args, &module, extra)
    };
    if !onem2m_est::pkcs11::SUPPORTED {
        let o = renew(&out, &[]);
        assert_code(&o, 2);
        assert!(text(&o).contains("no PKCS #11 support"), "{}", text(&o));
        return;
    }
    let o = f.provision(&out, "pin");
    assert_code(&o, 0);
    let first = std::fs::read_to_string(out.join("key.uri")).unwrap();

    // Renew: the key DIR records, in the token.
    let cert = std::fs::read(out.join("cert.pem")).unwrap();
    let o = renew(&out, &[]);
    assert_code(&o, 0);
    assert!(text(&o).contains("renewed: re-provisioned"), "{}", text(&o));
    assert_ne!(std::fs::read(out.join("cert.pem")).unwrap(), cert);
    assert_eq!(std::fs::read_to_string(out.join("key.uri")).unwrap(), first);
    assert!(!out.join("key.pem").exists());

    // Rekey: the next key generated in the token, the previous one destroyed.
    let o = renew(&out, &["--rekey"]);
    assert_code(&o, 0);
    let second = std::fs::read_to_string(out.join("key.uri")).unwrap();
    assert_ne!(second, first);
    assert_eq!(f.private_keys().len(), 1);
    assert!(!out.join("key.pem").exists());

    // /serverkeygen would put a key made by the MEF outside the token: exit 2 before any I/O.
    let o = renew(&out, &["--server-keygen"]);
    assert_code(&o, 2);
    assert!(text(&o).contains("/serverkeygen"), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("key.uri")).unwrap(),
        second
    );

    // Re-bootstrap into an empty DIR: Initial Certificate Provisioning with the third-party
    // certificate, the key generated in the token under --key's label.
    let other = f.path("cred2");
    let key = format!("pkcs11:token={TOKEN};object=device2");
    let bootstrap = f.mef.third_party_args();
    let mut extra = vec!["--key", &key];
    extra.extend(bootstrap.iter().map(String::as_str));
    let o = renew(&other, &extra);
    assert_code(&o, 0);
    assert!(text(&o).contains("re-bootstrapped"), "{}", text(&o));
    let uri = std::fs::read_to_string(other.join("key.uri")).unwrap();
    assert!(
        uri.starts_with(&format!("pkcs11:token={TOKEN};object=device2;id=")),
        "{uri}"
    );
    assert!(!other.join("key.pem").exists());
    assert_eq!(f.private_keys().len(), 2);

    // The agent, one cycle: due 88 s before notAfter of a 90 s certificate, i.e. at once.
    let cert = std::fs::read(out.join("cert.pem")).unwrap();
    let log = f.path("agent.log");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_onem2m-est"))
        .env("SOFTHSM2_CONF", f.conf())
        .args([
            "agent",
            "--server",
            &f.mef.server(),
            "--out",
            &out.display().to_string(),
            "--pkcs11-module",
            &module,
            "--pin-file",
            &f.path("pin").display().to_string(),
            "--renew-before",
            "88s",
            "--jitter",
            "0",
            "--retry-initial",
            "1s",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the agent starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(out.join("cert.pem")).unwrap() == cert && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&agent, "TERM");
    let status = wait_exit(&mut agent, Duration::from_secs(30));
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("renewed: re-provisioned"), "{log}");
    assert_ne!(std::fs::read(out.join("cert.pem")).unwrap(), cert, "{log}");
    assert_eq!(
        std::fs::read_to_string(out.join("key.uri")).unwrap(),
        second
    );
    assert!(!out.join("key.pem").exists());
    assert_eq!(f.private_keys().len(), 2);
}
