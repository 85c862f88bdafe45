//! `onem2m-mef --ca-key pkcs11:URI --pkcs11-module PATH --pin-file PATH`: the MEF CA key in a
//! SoftHSM2 token (a key pair made with OpenSC's `pkcs11-tool --keypairgen`), no mef-ca.key on
//! disk, the CA certificate holding the token's public key and verifying, the same CA after a
//! restart, and another token key refused for it (tests/pkcs11.rs enrols a client under it);
//! `ca rollover` with the new CA key generated in the token and a client re-provisioning across
//! the overlap, `ca retire-old` destroying the old key; `cert revoke` rewriting the CRL file
//! signed in the token.
//! Built without the MEF's `pkcs11` feature the binary refuses the flag (tested too); with it,
//! SoftHSM2 and pkcs11-tool are required: without them this test fails.

mod common;

use common::{agent, get, run_cli_on, temp_dir, MefProc, BIN};
use onem2m_est_testkit::softhsm::{self, module_path};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

const PIN: &str = "864200";
/// One token per test (the MEF processes log in to them). No label is a prefix of another:
/// `pkcs11-tool --token-label` matches prefixes.
const TOKENS: [&str; 3] = ["mef", "rollover", "revoke"];

/// The tests of this file one at a time: SoftHSM2 processes reading the token directory while
/// another process writes a token there can fail C_GetTokenInfo (CKR_GENERAL_ERROR).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The scratch SoftHSM2 configuration with every token of this file initialised, in
/// SOFTHSM2_CONF (once, before any test starts a process: the MEF and pkcs11-tool inherit it).
fn softhsm() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let scratch = temp_dir("pkcs11-softhsm");
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
        std::env::set_var("SOFTHSM2_CONF", &conf);
        for label in TOKENS {
            softhsm::init_token(&conf, label, "11223344", PIN);
        }
        scratch
    })
}

fn pkcs11_tool_on(token: &str, args: &[&str]) -> Vec<u8> {
    softhsm();
    softhsm::pkcs11_tool(None, token, PIN, args)
}

/// The MEF's flags for a CA key in the token: its URI, the module and the PIN file.
fn token_flags<'a>(uri: &'a str, module: &'a str, pin: &'a str) -> [&'a str; 6] {
    [
        "--ca-key",
        uri,
        "--pkcs11-module",
        module,
        "--pin-file",
        pin,
    ]
}

/// A scratch and a data directory, and the path of a PIN file in the scratch one.
fn dirs_and_pin(scratch: &str, data: &str) -> (PathBuf, PathBuf, String) {
    let (scratch, data) = (temp_dir(scratch), temp_dir(data));
    std::fs::write(scratch.join("pin"), PIN).unwrap();
    let pin = scratch.join("pin").display().to_string();
    (scratch, data, pin)
}

#[test]
fn the_ca_key_lives_in_the_token() {
    let (scratch, data, pin) = dirs_and_pin("pkcs11-scratch", "pkcs11-data");
    let uri = "pkcs11:token=mef;object=mef-ca";
    if !cfg!(feature = "pkcs11") {
        let out = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(token_flags(uri, "/nonexistent.so", &pin))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("no PKCS #11 support"), "{stderr}");
        assert!(!data.join("mef-ca.pem").exists());
        return;
    }
    let _serial = one_at_a_time();
    softhsm();
    operator_keypair("mef", "mef-ca", "ca");

    let module = module_path().display().to_string();
    let mef = MefProc::start(&data, &token_flags(uri, &module, &pin));
    assert!(!data.join("mef-ca.key").exists(), "no CA key on disk");
    let (_, ca) = x509_parser::parse_x509_certificate(&mef.ca_der).unwrap();
    let token_public = token_public_key("mef", ["--id", "ca"], &scratch.join("ca.pub.der"));
    assert_eq!(ca.public_key().raw, token_public);
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

    // `ca rollover` without the token keys cannot roll a token CA over: refused, saying what
    // it needs, the data directory unchanged (ca_rollover_with_the_ca_key_in_the_token does it).
    let before = std::fs::read(data.join("mef-ca.pem")).unwrap();
    let (ok, _, err) = run_cli_on(&data, &["ca", "rollover"], &[]);
    assert!(!ok);
    assert!(
        err.contains("PKCS #11 token") && err.contains("--new-ca-key"),
        "{err}"
    );
    assert_eq!(std::fs::read(data.join("mef-ca.pem")).unwrap(), before);
    for f in ["mef-ca-old.pem", "mef-ca.key", "mef-ca-newwithold.pem"] {
        assert!(!data.join(f).exists(), "{f}");
    }

    // A restart finds the same CA; another key in the token is refused for it.
    let again = MefProc::start(&data, &token_flags(uri, &module, &pin));
    assert_eq!(
        again.ca_der,
        std::fs::read(data.join("mef-ca.pem"))
            .map(|p| pem::parse(p).unwrap().into_contents())
            .unwrap()
    );
    again.stop();
    operator_keypair("mef", "other", "0b");
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(token_flags("pkcs11:token=mef;object=other", &module, &pin))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("made with another key"), "{stderr}");
    assert!(!stderr.contains(PIN), "{stderr}");
}

/// `openssl verify -CAfile ANCHOR CERT` (files in `dir`): whether it verifies.
#[cfg(feature = "pkcs11")]
fn openssl_verify(dir: &Path, anchor: &str, cert: &str, extra: &[&str]) -> (bool, String) {
    common::run_text(
        Command::new("openssl")
            .arg("verify")
            .args(extra)
            .arg("-CAfile")
            .arg(dir.join(anchor))
            .arg(dir.join(cert)),
    )
}

/// The DER public key of the object `selector` (`["--id", ID]` or `["--label", LABEL]`) of
/// token `token`, read with pkcs11-tool through `file`.
fn token_public_key(token: &str, selector: [&str; 2], file: &Path) -> Vec<u8> {
    let file_arg = file.to_str().unwrap();
    let [by, name] = selector;
    pkcs11_tool_on(
        token,
        &[
            "--read-object",
            "--type",
            "pubkey",
            by,
            name,
            "--output-file",
            file_arg,
        ],
    );
    std::fs::read(file).unwrap()
}

/// A key pair made in token `token` with pkcs11-tool, as an operator makes the first CA key.
fn operator_keypair(token: &str, label: &str, id: &str) {
    pkcs11_tool_on(
        token,
        &[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            label,
            "--id",
            id,
        ],
    );
}

/// The MEF's DER certificate file `name` in `dir`.
#[cfg(feature = "pkcs11")]
fn pem_file(dir: &Path, name: &str) -> Vec<u8> {
    pem::parse(std::fs::read(dir.join(name)).unwrap())
        .unwrap()
        .into_contents()
}

/// A device enrolled by the client library (software key, file store), for the end-to-end
/// checks: its third-party certificate is registered with the MEF of `data` as a CSE.
#[cfg(feature = "pkcs11")]
mod device {
    use super::common::{register, MefProc, ThirdPartyCa};
    use onem2m_est::client::{InitialAuth, KeySource, MefClient, Provisioned, Reprovision};
    use onem2m_est::keys::SoftwareKey;
    use onem2m_est::store::{CredentialStore, Credentials, FileStore};
    use onem2m_est::tls::ClientIdentity;
    use onem2m_est::transport::TransportConfig;
    use onem2m_est_testkit::server::cse_client;
    use rustls_pki_types::CertificateDer;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    pub const CSE_ID: &str = "cse01.sp.example.com";

    pub struct Device {
        identity: ClientIdentity,
        pub tp_pem: PathBuf,
        pub out: PathBuf,
    }

    impl Device {
        pub fn new(scratch: &Path, data: &Path) -> Device {
            let tp = ThirdPartyCa::new(scratch, "manufacturer");
            let creds = tp.issue_client("device");
            register(data, &creds, "cse", CSE_ID);
            let key =
                SoftwareKey::from_pkcs8_der(&zeroize::Zeroizing::new(creds.key.serialize_der()))
                    .unwrap();
            Device {
                identity: ClientIdentity {
                    chain: vec![CertificateDer::from(creds.cert_der.clone())],
                    key: Arc::new(key),
                },
                tp_pem: tp.pem_path.clone(),
                out: scratch.join("device-creds"),
            }
        }

        fn client(mef: &MefProc) -> MefClient {
            let base = format!("https://{}:{}/.well-known/est", mef.host, mef.addr.port());
            cse_client(&base, CSE_ID, TransportConfig::default())
        }

        /// Initial Certificate Provisioning with the MEF CA as the explicit trust anchor.
        pub fn provision(&self, mef: &MefProc) -> Provisioned {
            let auth = InitialAuth::Certificate {
                trust_anchors: vec![CertificateDer::from(mef.ca_der.clone())],
                client: self.identity.clone(),
            };
            Self::client(mef)
                .provision(
                    &auth,
                    &mut FileStore::new(&self.out).unwrap(),
                    KeySource::Generate,
                )
                .unwrap()
        }

        pub fn reprovision(&self, mef: &MefProc, mode: Reprovision) -> Provisioned {
            Self::client(mef)
                .reprovision(&mut FileStore::new(&self.out).unwrap(), mode)
                .unwrap()
        }

        pub fn installed(&self) -> Credentials {
            FileStore::new(&self.out).unwrap().load().unwrap().unwrap()
        }
    }
}

/// RFC 7030 4.1.3 with the CA key in a token: `ca rollover --ca-key OLD --new-ca-key NEW`
/// generates the new CA key pair in the token (P-256, sensitive, never extractable, the new
/// label), signs NewWithNew and the link certificates there (each verifies with `openssl verify`
/// under the CA that signed it, not under the other) and writes no key file; the MEF restarted
/// with the new key serves the overlap, and a device provisioned under the old CA re-provisions,
/// installing the new anchors and a certificate under the new CA (as
/// tests/provisioning.rs's file-key rollover); `ca retire-old` destroys the old key in the token.
#[test]
fn ca_rollover_with_the_ca_key_in_the_token() {
    let (scratch, data, pin) = dirs_and_pin("pkcs11-rollover-scratch", "pkcs11-rollover-data");
    let old_uri = "pkcs11:token=rollover;object=mef-ca";
    let new_label_uri = "pkcs11:token=rollover;object=mef-ca-2";
    #[cfg(not(feature = "pkcs11"))]
    {
        let _ = &scratch; // the token path keeps its files there

        // A software CA, then a token rollover asked for: refused, nothing changed.
        let token = token_flags(old_uri, "/nonexistent.so", &pin);
        let args = [&["--new-ca-key", new_label_uri][..], &token].concat();
        let (ok, out, err) = run_cli_on(&data, &["ca", "rollover"], &args);
        assert!(!ok, "{out}");
        assert!(err.contains("no PKCS #11 support"), "{err}");
        assert!(!data.join("mef-ca-old.pem").exists());
    }
    #[cfg(feature = "pkcs11")]
    rollover_in_the_token(&scratch, &data, &pin, old_uri, new_label_uri);
}

#[cfg(feature = "pkcs11")]
fn rollover_in_the_token(scratch: &Path, data: &Path, pin: &str, old_uri: &str, new_uri: &str) {
    use onem2m_est::client::Reprovision;
    let _serial = one_at_a_time();
    softhsm();
    operator_keypair("rollover", "mef-ca", "c1");
    let module = module_path().display().to_string();
    let d = data.to_str().unwrap();
    let token_flags = |uri: &str| {
        vec![
            "--ca-key".to_string(),
            uri.to_string(),
            "--pkcs11-module".into(),
            module.clone(),
            "--pin-file".into(),
            pin.to_string(),
        ]
    };
    let start = |uri: &str, tp_pem: &Path| {
        let mut args = token_flags(uri);
        args.extend(["--client-trust".into(), tp_pem.display().to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        MefProc::start(data, &args)
    };
    // The CA is created with the token key on the first start; the device provisioned under it.
    let first = MefProc::start(
        data,
        &token_flags(old_uri)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    first.stop();
    let device = device::Device::new(scratch, data);
    let mef = start(old_uri, &device.tp_pem);
    let old_ca = mef.ca_der.clone();
    device.provision(&mef);
    mef.stop();

    // The rollover, through the token.
    let mut args = vec!["--new-ca-key", new_uri];
    let flags = token_flags(old_uri);
    args.extend(flags.iter().map(String::as_str));
    let (ok, out, err) = run_cli_on(d, &["ca", "rollover"], &args);
    assert!(ok, "{out}{err}");
    assert!(!err.contains(PIN) && !out.contains(PIN), "{out}{err}");
    let printed = out
        .split_whitespace()
        .find(|w| w.starts_with("pkcs11:") && w.contains("mef-ca-2"))
        .map(|w| w.trim_end_matches(';'))
        .unwrap_or_else(|| panic!("the new key's URI is printed: {out}"))
        .to_string();
    assert!(printed.contains(";id="), "{printed}");
    // A second rollover is refused during the overlap.
    let (ok, _, err) = run_cli_on(d, &["ca", "rollover"], &args);
    assert!(!ok && err.contains("already in progress"), "{err}");
    for f in ["mef-ca.key", "mef-ca-old.key"] {
        assert!(!data.join(f).exists(), "{f}: no CA key on disk");
    }
    assert!(data.join("mef-ca-old.uri").exists());
    // Two keys in the token now; the new one made by the rollover is sensitive and never
    // extractable, and it is the new CA certificate's key.
    let keys = String::from_utf8(pkcs11_tool_on(
        "rollover",
        &["--list-objects", "--type", "privkey"],
    ))
    .unwrap();
    let blocks: Vec<&str> = keys.split("Private Key Object").skip(1).collect();
    assert_eq!(blocks.len(), 2, "{keys}");
    let new_block = blocks
        .iter()
        .find(|b| b.contains("label:      mef-ca-2"))
        .unwrap_or_else(|| panic!("{keys}"));
    assert!(new_block.contains("never extractable"), "{new_block}");
    assert!(new_block.contains("sensitive"), "{new_block}");
    let new_ca = pem_file(data, "mef-ca.pem");
    let (_, n) = x509_parser::parse_x509_certificate(&new_ca).unwrap();
    let public = token_public_key(
        "rollover",
        ["--label", "mef-ca-2"],
        &scratch.join("new-ca.pub.der"),
    );
    assert_eq!(n.public_key().raw, public);
    n.verify_signature(None).unwrap();
    assert_eq!(pem_file(data, "mef-ca-old.pem"), old_ca);
    // The checks of the file-key rollover (tests/est.rs): each link under the CA that signed it.
    for (anchor, link, other) in [
        ("mef-ca-old.pem", "mef-ca-newwithold.pem", "mef-ca.pem"),
        ("mef-ca.pem", "mef-ca-oldwithnew.pem", "mef-ca-old.pem"),
    ] {
        let (ok, out) = openssl_verify(data, anchor, link, &[]);
        assert!(ok, "{link} under {anchor}: {out}");
        assert!(
            !openssl_verify(data, other, link, &[]).0,
            "{link} must not verify under {other}"
        );
    }

    // Restarted with the old key: refused (the CA is the new key's now).
    let (ok, _, err) = {
        let out = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--data-dir", d])
            .args(token_flags(old_uri))
            .output()
            .unwrap();
        (
            out.status.success(),
            (),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok && err.contains("made with another key"), "{err}");
    // Restarted with the new key: the overlap is served, and the device, holding only the old
    // anchor, re-provisions (reaching the MEF through NewWithOld) and installs the new anchors.
    let mef = start(new_uri, &device.tp_pem);
    assert_eq!(mef.ca_der, new_ca);
    let renewed = device.reprovision(&mef, Reprovision::Rekey);
    let (_, leaf) = x509_parser::parse_x509_certificate(renewed.chain[0].as_ref()).unwrap();
    assert_eq!(leaf.issuer(), n.subject());
    leaf.verify_signature(Some(n.public_key())).unwrap();
    let installed = device.installed();
    assert!(
        installed
            .trust_anchors
            .iter()
            .any(|t| t.as_ref() == new_ca.as_slice()),
        "the new anchor is installed"
    );
    assert_eq!(
        installed.trust_anchors.len(),
        4,
        "NewWithNew, OldWithOld, the links"
    );
    mef.stop();

    // Retiring the old CA needs the token (its key is destroyed there first).
    let (ok, _, err) = run_cli_on(d, &["ca", "retire-old"], &[]);
    assert!(!ok && err.contains("PKCS #11 token"), "{err}");
    assert!(data.join("mef-ca-old.pem").exists());
    let overlap_files = [
        "mef-ca-old.pem",
        "mef-ca-old.uri",
        "mef-ca-newwithold.pem",
        "mef-ca-oldwithnew.pem",
    ];
    let overlap: Vec<Vec<u8>> = overlap_files
        .iter()
        .map(|f| std::fs::read(data.join(f)).unwrap())
        .collect();
    let token = ["--pkcs11-module", module.as_str(), "--pin-file", pin];
    common::retire_old(data, &token, "mef-ca-old.uri");
    let keys = String::from_utf8(pkcs11_tool_on(
        "rollover",
        &["--list-objects", "--type", "privkey"],
    ))
    .unwrap();
    assert_eq!(keys.matches("Private Key Object").count(), 1, "{keys}");
    assert!(keys.contains("label:      mef-ca-2"), "{keys}");
    // A run interrupted after destroying the old key and before removing the files (the state
    // put back by hand): running it again finishes the retirement.
    for (f, bytes) in overlap_files.iter().zip(&overlap) {
        std::fs::write(data.join(f), bytes).unwrap();
    }
    common::retire_old(data, &token, "mef-ca-old.uri");
    // After the overlap: the new CA alone; the device renews under it.
    let mef = start(&printed, &device.tp_pem);
    device.reprovision(&mef, Reprovision::Renew);
    assert_eq!(
        device
            .installed()
            .trust_anchors
            .iter()
            .map(|t| t.as_ref().to_vec())
            .collect::<Vec<_>>(),
        vec![new_ca]
    );
    mef.stop();
}

/// `cert revoke --ca-key pkcs11:URI ...` with the CA key in a token rewrites mef-ca.crl signed
/// in the token, with no MEF running: `openssl crl` verifies it under the CA and `openssl verify
/// -crl_check` sees the revocation right after the command. Without the token flags the command
/// says the file is left to the running MEF.
#[test]
fn cert_revoke_rewrites_the_crl_file_of_a_token_ca() {
    let (scratch, data, pin) = dirs_and_pin("pkcs11-revoke-scratch", "pkcs11-revoke-data");
    let uri = "pkcs11:token=revoke;object=mef-ca";
    #[cfg(not(feature = "pkcs11"))]
    {
        let _ = &scratch; // the token path keeps its files there
        let token = token_flags(uri, "/nonexistent.so", &pin);
        let args = [&["--id", "01"][..], &token].concat();
        let (ok, out, err) = run_cli_on(&data, &["cert", "revoke"], &args);
        assert!(!ok, "{out}");
        assert!(
            err.contains("no PKCS #11 support") || err.contains("no MEF"),
            "{err}"
        );
    }
    #[cfg(feature = "pkcs11")]
    revoke_with_the_token(&scratch, &data, &pin, uri);
}

#[cfg(feature = "pkcs11")]
fn revoke_with_the_token(scratch: &Path, data: &Path, pin: &str, uri: &str) {
    let _serial = one_at_a_time();
    softhsm();
    operator_keypair("revoke", "mef-ca", "c2");
    let module = module_path().display().to_string();
    let d = data.to_str().unwrap();
    let flags = token_flags(uri, module.as_str(), pin);
    let first = MefProc::start(data, &flags);
    first.stop();
    let device = device::Device::new(scratch, data);
    let mut args = flags.to_vec();
    let tp = device.tp_pem.display().to_string();
    args.extend(["--client-trust", tp.as_str()]);
    let mef = MefProc::start(data, &args);
    let issued = device.provision(&mef);
    mef.stop();
    std::fs::write(
        scratch.join("device.pem"),
        pem::encode(&pem::Pem::new("CERTIFICATE", issued.chain[0].to_vec())),
    )
    .unwrap();
    std::fs::copy(data.join("mef-ca.pem"), scratch.join("mef-ca.pem")).unwrap();
    let (_, leaf) = x509_parser::parse_x509_certificate(issued.chain[0].as_ref()).unwrap();
    let serial = leaf.raw_serial_as_string().replace(':', "");
    let crl_pem = |scratch: &Path| {
        let der = std::fs::read(data.join("mef-ca.crl")).unwrap();
        std::fs::write(
            scratch.join("crl.pem"),
            pem::encode(&pem::Pem::new("X509 CRL", der)),
        )
        .unwrap();
    };
    let verify = || {
        crl_pem(scratch);
        let crl = scratch.join("crl.pem").display().to_string();
        openssl_verify(
            scratch,
            "mef-ca.pem",
            "device.pem",
            &["-crl_check", "-CRLfile", &crl],
        )
    };
    // Before: not revoked.
    if data.join("mef-ca.crl").exists() {
        let (ok, out) = verify();
        assert!(ok, "{out}");
    }

    // Without the token flags: revoked in the database, the file left to a running MEF (what
    // the command did for a token CA before), and the operator told so.
    let before = std::fs::read(data.join("mef-ca.crl")).ok();
    let (ok, out, err) = run_cli_on(d, &["cert", "revoke"], &["--id", &serial]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("is not rewritten now"), "{err}");
    assert_eq!(std::fs::read(data.join("mef-ca.crl")).ok(), before);
    // With them: the file is rewritten now.
    let mut args = vec!["--id", &serial];
    args.extend(flags);
    let (ok, out, err) = run_cli_on(d, &["cert", "revoke"], &args);
    assert!(ok, "{out}{err}");
    assert!(!out.contains(PIN) && !err.contains(PIN));
    // The CRL file now lists the certificate, signed in the token.
    let (ok, text) = common::run_text(
        Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(data.join("mef-ca.crl"))
            .args(["-CAfile"])
            .arg(data.join("mef-ca.pem")),
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    assert!(
        text.to_uppercase().contains(&serial.to_uppercase()),
        "{serial}: {text}"
    );
    let (ok, out) = verify();
    assert!(!ok && out.contains("certificate revoked"), "{out}");
}
