//! The `onem2m-est` binary with PPSK-based RSPF flags (--psk-identity, --psk-key-hex,
//! --psk-key-file) against the reference MEF's TLS-PSK listener on 127.0.0.1.
//!
//! Built without the library's `psk` feature, the flags are accepted by the parser and refused
//! as unacceptable arguments (exit 2); both builds are tested.

use std::path::{Path, PathBuf};
use std::process::Output;

use onem2m_est_testkit::mef::{psk_mef_config, start_psk_mef};
use onem2m_est_testkit::process::{
    self, assert_code, assert_exit, assert_stderr, assert_stdout, text,
};
use onem2m_est_testkit::CSE_ID;
use onem2m_mef::{RunningMef, SubjectType};
use tempfile::TempDir;

const KPM_ID: &str = "kpm-cli-0001";
const KPM_HEX: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

struct Fixture {
    dir: TempDir,
    mef: RunningMef,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new().unwrap();
        let kpm: Vec<u8> = (0..KPM_HEX.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&KPM_HEX[i..i + 2], 16).unwrap())
            .collect();
        let config = psk_mef_config(&dir.path().join("mef"));
        let mef = start_psk_mef(config, KPM_ID, &kpm);
        // The key file format: hexadecimal text, line breaks and ':' allowed.
        let wrapped = format!("{}\n{}\n", &KPM_HEX[..32], &KPM_HEX[32..]);
        std::fs::write(dir.path().join("kpm.hex"), wrapped).unwrap();
        Fixture { dir, mef }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn psk_server(&self) -> String {
        self.mef.psk_base_uri(None).unwrap()
    }

    /// `--psk-identity KPM_ID --psk-key-file DIR/kpm.hex`: the Kpm the MEF knows.
    fn kpm_args(&self) -> [String; 4] {
        [
            "--psk-identity".into(),
            KPM_ID.into(),
            "--psk-key-file".into(),
            self.path("kpm.hex").display().to_string(),
        ]
    }

    /// `command` to the MEF's TLS-PSK listener, then `args`.
    fn psk(&self, command: &str, args: &[&str]) -> Output {
        let server = self.psk_server();
        run(&[&[command, "--server", &server], args].concat())
    }

    /// `command` to the MEF's TLS-PSK listener with the Kpm it knows ([`Fixture::kpm_args`]).
    fn psk_args(&self, command: &str) -> Vec<String> {
        let mut args = vec![command.into(), "--server".into(), self.psk_server()];
        args.extend(self.kpm_args());
        args
    }

    /// `command` over TLS-PSK with `--out out`. Without the `psk` feature: asserts the refusal
    /// and gives `None`; with it: asserts success and gives the output.
    fn psk_into(&self, command: &str, out: &Path) -> Option<Output> {
        let mut args = self.psk_args(command);
        args.extend(["--out".into(), out.display().to_string()]);
        let o = run(&args);
        if !onem2m_est::psk::SUPPORTED {
            assert_unsupported(&o);
            return None;
        }
        assert_code(&o, 0);
        Some(o)
    }
}

fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    process::run(env!("CARGO_BIN_EXE_onem2m-est"), args)
}

/// Without the `psk` feature every PSK command is an unacceptable argument.
fn assert_unsupported(o: &Output) {
    assert_exit(o, 2, "no TLS-PSK support");
}

fn out_files_exist(out: &Path) {
    for name in ["cert.pem", "key.pem", "trust-anchors.pem"] {
        assert!(out.join(name).exists(), "{name} written");
    }
}

#[test]
fn psk_provision_then_certificate_reprovision() {
    let f = Fixture::new();
    let out = f.path("cred");
    let Some(o) = f.psk_into("provision", &out) else {
        assert!(!out.join("cert.pem").exists());
        return;
    };
    out_files_exist(&out);
    assert_stdout(&o, CSE_ID);
    assert_stdout(&o, "trust anchors installed: 1");
    let tas = std::fs::read_to_string(out.join("trust-anchors.pem")).unwrap();
    let mef_ca = std::fs::read_to_string(f.mef.ca_cert_pem_path()).unwrap();
    assert_eq!(
        tas.trim(),
        mef_ca.trim(),
        "the MEF CA became the trust anchor"
    );

    // Re-provisioning is certificate-based, on the MEF's certificate listener.
    let cert_before = std::fs::read(out.join("cert.pem")).unwrap();
    let o = run(&[
        "reprovision",
        "--server",
        &f.mef.base_uri(None),
        "--out",
        &out.display().to_string(),
    ]);
    assert_code(&o, 0);
    assert_ne!(std::fs::read(out.join("cert.pem")).unwrap(), cert_before);
}

#[test]
fn psk_serverkeygen_cacerts_and_csrattrs() {
    let f = Fixture::new();
    let out = f.path("skg");
    if f.psk_into("serverkeygen", &out).is_none() {
        return;
    }
    out_files_exist(&out);

    let o = f.psk(
        "cacerts",
        &["--psk-identity", KPM_ID, "--psk-key-hex", KPM_HEX, "--pem"],
    );
    assert_code(&o, 0);
    assert_stdout(&o, "BEGIN CERTIFICATE");

    let o = run(&f.psk_args("csrattrs"));
    assert_code(&o, 0);
    assert_stdout(&o, CSE_ID);
    assert_stdout(&o, "not shown");
}

#[test]
fn a_wrong_key_is_a_server_side_failure() {
    let f = Fixture::new();
    let out = f.path("wrong");
    let o = f.psk(
        "provision",
        &[
            "--psk-identity",
            KPM_ID,
            "--psk-key-hex",
            &"00".repeat(32),
            "--out",
            &out.display().to_string(),
        ],
    );
    if !onem2m_est::psk::SUPPORTED {
        assert_unsupported(&o);
        return;
    }
    // TS-0003 8.3.9.7: the handshake failed while communicating with the MEF.
    assert_exit(&o, 4, "MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR");
    assert_stderr(&o, "PSK");
    assert!(!out.join("cert.pem").exists());
}

#[test]
fn bad_psk_arguments_exit_2_without_showing_the_key() {
    let f = Fixture::new();
    let out = f.path("bad").display().to_string();
    let short = "00112233445566778899aabbccddee"; // 15 bytes
    let not_hex = "zz112233445566778899aabbccddeeff";
    std::fs::write(f.path("raw.bin"), [0xffu8, 0xfe, 0x00, 0x01]).unwrap();
    let raw = f.path("raw.bin").display().to_string();
    let missing = f.path("missing.hex").display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        // Too short (RFC 4279 7.2), not hexadecimal, a raw binary file, a missing file.
        vec!["--psk-identity", KPM_ID, "--psk-key-hex", short],
        vec!["--psk-identity", KPM_ID, "--psk-key-hex", not_hex],
        vec!["--psk-identity", KPM_ID, "--psk-key-file", &raw],
        vec!["--psk-identity", KPM_ID, "--psk-key-file", &missing],
        // An empty KpmID.
        vec!["--psk-identity", "", "--psk-key-hex", KPM_HEX],
    ];
    for extra in cases {
        let o = f.psk("provision", &[&["--out", &out][..], &extra].concat());
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        let all = text(&o);
        for secret in [short, not_hex] {
            assert!(!all.contains(secret), "{extra:?} shows the key: {all}");
        }
    }
    // Usage errors (clap, exit 2): PSK with certificate flags, a key without an identity, an
    // identity without a key, both key forms.
    let ta = f.mef.ca_cert_pem_path().display().to_string();
    let usage: Vec<Vec<&str>> = vec![
        vec![
            "--psk-identity",
            KPM_ID,
            "--psk-key-hex",
            KPM_HEX,
            "--trust-anchors",
            &ta,
        ],
        vec!["--psk-key-hex", KPM_HEX],
        vec!["--psk-identity", KPM_ID],
        vec![
            "--psk-identity",
            KPM_ID,
            "--psk-key-hex",
            KPM_HEX,
            "--psk-key-file",
            &missing,
        ],
    ];
    for extra in usage {
        let o = f.psk("provision", &[&["--out", &out][..], &extra].concat());
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--"),
            "{extra:?}: {}",
            text(&o)
        );
    }
    // Neither certificate flags nor a PSK: still a usage error naming what is missing.
    let o = f.psk("provision", &["--out", &out]);
    assert_exit(&o, 2, "--trust-anchors");
}

/// `renew` with a Kpm as the bootstrap credential and the MEF's TLS-PSK listener named by
/// `--psk-server`: re-provisions on `--server` while the certificate is valid, re-bootstraps
/// over TLS-PSK once the MEF refuses the certificate (here: revoked) (issue #12).
#[test]
fn renew_rebootstraps_with_the_kpm_on_the_psk_server() {
    let f = Fixture::new();
    let out = f.path("cred");
    if f.psk_into("provision", &out).is_none() {
        return;
    }
    let renew = |f: &Fixture| {
        let mut args = vec![
            "renew".to_string(),
            "--server".into(),
            f.mef.base_uri(None),
            "--psk-server".into(),
            f.psk_server(),
        ];
        args.extend(f.kpm_args());
        args.extend(["--out".into(), out.display().to_string()]);
        run(&args)
    };
    let o = renew(&f);
    assert_code(&o, 0);
    assert_stdout(&o, "re-provisioned");
    // The MEF revokes the certificate: re-provisioning is refused, the Kpm re-bootstraps.
    let pem = std::fs::read_to_string(out.join("cert.pem")).unwrap();
    f.mef.revoke_identity(SubjectType::Cse, CSE_ID).unwrap();
    let o = renew(&f);
    assert_code(&o, 0);
    assert_stdout(&o, "re-bootstrapped");
    assert_ne!(std::fs::read_to_string(out.join("cert.pem")).unwrap(), pem);
}
