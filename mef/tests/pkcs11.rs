//! `onem2m-mef --ca-key pkcs11:URI --pkcs11-module PATH --pin-file PATH`: the MEF CA key in a
//! SoftHSM2 token (a key pair made with OpenSC's `pkcs11-tool --keypairgen`), no mef-ca.key on
//! disk, the CA certificate holding the token's public key and verifying, the same CA after a
//! restart, and another token key refused for it (tests/pkcs11.rs enrols a client under it).
//! Built without the MEF's `pkcs11` feature the binary refuses the flag (tested too); with it,
//! SoftHSM2 and pkcs11-tool are required: without them this test fails.

mod common;

use common::{agent, get, run_cli, temp_dir, MefProc, BIN};
use std::path::PathBuf;
use std::process::Command;

const PIN: &str = "864200";

fn module_path() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("SoftHSM2 is required (Debian package softhsm2; scripts/test.sh installs it)")
}

fn pkcs11_tool(args: &[&str]) -> Vec<u8> {
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module_path())
        .args(["--token-label", "mef", "--login", "--pin", PIN])
        .args(args)
        .output()
        .expect("pkcs11-tool is required (Debian package opensc)");
    assert!(out.status.success(), "pkcs11-tool {args:?}: {out:?}");
    out.stdout
}

#[test]
fn the_ca_key_lives_in_the_token() {
    let scratch = temp_dir("pkcs11-scratch");
    let data = temp_dir("pkcs11-data");
    std::fs::write(scratch.join("pin"), PIN).unwrap();
    let pin = scratch.join("pin").display().to_string();
    let uri = "pkcs11:token=mef;object=mef-ca";
    if !cfg!(feature = "pkcs11") {
        let out = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args([
                "--ca-key",
                uri,
                "--pkcs11-module",
                "/nonexistent.so",
                "--pin-file",
                &pin,
            ])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no PKCS #11 support"), "{stderr}");
        assert!(!data.join("mef-ca.pem").exists());
        return;
    }
    std::fs::create_dir(scratch.join("tokens")).unwrap();
    let conf = scratch.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\n",
            scratch.join("tokens").display()
        ),
    )
    .unwrap();
    // The spawned MEF and pkcs11-tool inherit it.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "mef"])
        .args(["--so-pin", "11223344", "--pin", PIN])
        .output()
        .expect("softhsm2-util is required (Debian package softhsm2)");
    assert!(out.status.success(), "{out:?}");
    pkcs11_tool(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--label",
        "mef-ca",
        "--id",
        "ca",
    ]);

    let module = module_path().display().to_string();
    let mef = MefProc::start(
        &data,
        &[
            "--ca-key",
            uri,
            "--pkcs11-module",
            &module,
            "--pin-file",
            &pin,
        ],
    );
    assert!(!data.join("mef-ca.key").exists(), "no CA key on disk");
    let (_, ca) = x509_parser::parse_x509_certificate(&mef.ca_der).unwrap();
    let token_public = scratch.join("ca.pub.der");
    pkcs11_tool(&[
        "--read-object",
        "--type",
        "pubkey",
        "--id",
        "ca",
        "--output-file",
        token_public.to_str().unwrap(),
    ]);
    assert_eq!(ca.public_key().raw, std::fs::read(&token_public).unwrap());
    // The self-signed CA certificate verifies: the token signed it.
    ca.verify_signature(None).unwrap();
    // The CRL (RFC 5280 5) is signed with the CA key too, so in the token.
    let r = get(
        &agent(&mef.ca_der, None),
        &format!("https://localhost:{}/crl/mef-ca.crl", mef.addr.port()),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, crl) = x509_parser::parse_x509_crl(&r.body).unwrap();
    assert_eq!(crl.issuer(), ca.subject());
    crl.verify_signature(ca.public_key()).unwrap();
    mef.stop();

    // `ca rollover` does not support a CA key in a token: refused, the data directory unchanged.
    let before = std::fs::read(data.join("mef-ca.pem")).unwrap();
    let (ok, _, err) = run_cli(&["ca", "rollover", "--data-dir", data.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("PKCS #11 token") && err.contains("not supported"),
        "{err}"
    );
    assert_eq!(std::fs::read(data.join("mef-ca.pem")).unwrap(), before);
    for f in ["mef-ca-old.pem", "mef-ca.key", "mef-ca-newwithold.pem"] {
        assert!(!data.join(f).exists(), "{f}");
    }

    // A restart finds the same CA; another key in the token is refused for it.
    let again = MefProc::start(
        &data,
        &[
            "--ca-key",
            uri,
            "--pkcs11-module",
            &module,
            "--pin-file",
            &pin,
        ],
    );
    assert_eq!(
        again.ca_der,
        std::fs::read(data.join("mef-ca.pem"))
            .map(|p| pem::parse(p).unwrap().into_contents())
            .unwrap()
    );
    again.stop();
    pkcs11_tool(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--label",
        "other",
        "--id",
        "0b",
    ]);
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args([
            "--ca-key",
            "pkcs11:token=mef;object=other",
            "--pkcs11-module",
            &module,
            "--pin-file",
            &pin,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("made with another key"), "{stderr}");
    assert!(!stderr.contains(PIN), "{stderr}");
}
