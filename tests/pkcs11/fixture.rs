//! The SoftHSM2 token, the in-process MEF and the device of the PKCS #11 tests (tests/pkcs11,
//! and the C ABI crate's token test).

#![allow(dead_code)] // Each user takes a part.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use onem2m_est::client::{InitialAuth, MefClient};
use onem2m_est::pkcs11::{PinSource, Pkcs11Store, Pkcs11Uri};
use onem2m_est::tls::ClientIdentity;
use onem2m_est_testkit::server::cse_client;
use onem2m_est_testkit::{softhsm, Manufacturer};
use onem2m_mef::{MefConfig, RunningMef};
use rustls_pki_types::CertificateDer;
use tempfile::TempDir;

pub(crate) const CSE_ID: &str = "cse01.sp.example.com";
pub(crate) const PIN: &str = "246810";
/// One token per test: login state is per process and token, so a test's wrong PIN must meet a
/// token no other test of this process logged in to. No label is a prefix of another:
/// `pkcs11-tool --token-label` matches prefixes.
pub(crate) const TOKENS: [&str; 11] = [
    "provision",
    "upfront",
    "p384-required",
    "wrongpin",
    "missing",
    "faults",
    "firstfail",
    "ffi",
    "c-abi-wrong-pin",
    "mef-ca",
    "device-of-mef-ca",
];

/// The tests of this file one at a time: SoftHSM2 enumerating the token directory (every
/// C_GetSlotList) while another process (pkcs11-tool) writes a token there can fail with
/// CKR_GENERAL_ERROR, and the tests here mix in-process token work with pkcs11-tool.
pub(crate) fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The SoftHSM2 module (Debian's path).
pub(crate) fn module_path() -> PathBuf {
    softhsm::module_path()
}

/// The scratch SoftHSM2 configuration with every token of this file initialised, set in
/// SOFTHSM2_CONF before the module is first loaded (SoftHSM2 reads it at C_Initialize).
pub(crate) fn softhsm() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        for label in TOKENS {
            softhsm::init_token(&conf, label, "13579135", PIN);
        }
        std::env::set_var("SOFTHSM2_CONF", &conf);
        dir
    })
    .path()
}

pub(crate) fn pin_file(dir: &Path, pin: &str) -> PinSource {
    let path = dir.join("pin");
    std::fs::write(&path, format!("{pin}\n")).unwrap();
    PinSource::File(path)
}

/// `pkcs11-tool` on token `label`, logged in; its standard output.
pub(crate) fn pkcs11_tool(label: &str, args: &[&str]) -> String {
    softhsm();
    String::from_utf8_lossy(&softhsm::pkcs11_tool(None, label, PIN, args)).into_owned()
}

/// The private key objects of the token, as pkcs11-tool lists them (one block each).
pub(crate) fn private_keys(label: &str) -> Vec<String> {
    pkcs11_tool(label, &["--list-objects", "--type", "privkey"])
        .split("Private Key Object")
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// The DER SubjectPublicKeyInfo of the token's public key with CKA_ID `id`, read by pkcs11-tool.
pub(crate) fn token_public_key(label: &str, id: &[u8], scratch: &Path) -> Vec<u8> {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let out = scratch.join("pub.der");
    pkcs11_tool(
        label,
        &[
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            &hex,
            "--output-file",
            out.to_str().unwrap(),
        ],
    );
    std::fs::read(out).unwrap()
}

pub(crate) fn spki_of(cert: &CertificateDer<'_>) -> Vec<u8> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    c.public_key().raw.to_vec()
}

/// The manufacturer CA and the device certificate of the initial provisioning.
pub(crate) struct Setup {
    pub(crate) _mef_dir: TempDir,
    pub(crate) mef: RunningMef,
    pub(crate) device: ClientIdentity,
    pub(crate) device_key_pem: String,
    pub(crate) out: TempDir,
}

pub(crate) fn setup() -> Setup {
    setup_with(|_| {})
}

pub(crate) fn setup_with(tweak: impl FnOnce(&mut MefConfig)) -> Setup {
    let m = Manufacturer::new("token test");
    let mef_dir = TempDir::new().unwrap();
    let mut config = m.mef_config(mef_dir.path());
    tweak(&mut config);
    let mef = m.start_mef(config);
    Setup {
        _mef_dir: mef_dir,
        mef,
        device: m.identity(),
        device_key_pem: m.device_key_pem.to_string(),
        out: TempDir::new().unwrap(),
    }
}

impl Setup {
    pub(crate) fn auth(&self) -> InitialAuth {
        InitialAuth::Certificate {
            trust_anchors: vec![self.mef.ca_cert_der()],
            client: self.device.clone(),
        }
    }

    pub(crate) fn client(&self) -> MefClient {
        let mut t = onem2m_est_testkit::mef::transport();
        t.poll.default_delay = Duration::from_millis(10);
        cse_client(&self.mef.base_uri(None), CSE_ID, t)
    }

    pub(crate) fn creds(&self) -> PathBuf {
        self.out.path().join("creds")
    }

    pub(crate) fn store(&self, token: &str) -> Pkcs11Store {
        softhsm();
        Pkcs11Store::open(
            self.creds(),
            module_path(),
            Pkcs11Uri::parse(&format!("pkcs11:token={token};object=device")).unwrap(),
            pin_file(self.out.path(), PIN),
        )
        .unwrap()
    }

    /// The URI the current generation records, parsed.
    pub(crate) fn key_uri(&self) -> Pkcs11Uri {
        let text = std::fs::read_to_string(self.creds().join("current/key.uri")).unwrap();
        Pkcs11Uri::parse(text.trim()).unwrap()
    }

    /// No key.pem anywhere in the store directory.
    pub(crate) fn assert_no_key_pem(&self) {
        for entry in walk(&self.creds()) {
            assert_ne!(
                entry.file_name().unwrap(),
                "key.pem",
                "{} on disk",
                entry.display()
            );
        }
    }
}

pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
