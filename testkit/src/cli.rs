//! Arguments the CLI's tests give the `onem2m-est` binary, and the MEF they give them against.

use std::path::{Path, PathBuf};

use onem2m_mef::{MefConfig, RunningMef};
use tempfile::TempDir;

use crate::{MefFixture, CSE_ID};

/// `--subject-type cse --subject-id CSE_ID --out OUT`: the test PKI's CSE and the folder of its
/// credentials.
pub fn cse_out_args(out: &Path) -> [String; 6] {
    [
        "--subject-type".into(),
        "cse".into(),
        "--subject-id".into(),
        CSE_ID.into(),
        "--out".into(),
        out.display().to_string(),
    ]
}

/// `--trust-anchors CA_PEM --tls-cert DIR/device.pem --tls-key DIR/device.key`: Initial
/// Certificate Provisioning with the device's third-party certificate
/// ([`crate::Manufacturer::write_device_files`] in `dir`), the MEF authenticated by `ca_pem`.
pub fn third_party_args(ca_pem: &Path, dir: &Path) -> [String; 6] {
    [
        "--trust-anchors".into(),
        ca_pem.display().to_string(),
        "--tls-cert".into(),
        dir.join("device.pem").display().to_string(),
        "--tls-key".into(),
        dir.join("device.key").display().to_string(),
    ]
}

/// A MEF trusting a manufacturer CA ([`MefFixture`]), with the device's PEM files in `dir`
/// beside the MEF's data: what the CLI's `--tls-cert` and `--tls-key` read. The MEF stops when
/// dropped.
pub struct CliMef {
    pub dir: TempDir,
    pub mef: RunningMef,
}

impl CliMef {
    /// The MEF of manufacturer `name` ([`MefFixture::start_with`]), `tweak` applied to its
    /// configuration.
    pub fn start_with(name: &str, tweak: impl FnOnce(&mut MefConfig)) -> CliMef {
        let MefFixture { mef, maker, dir } = MefFixture::start_with(name, tweak);
        maker.write_device_files(dir.path());
        CliMef { dir, mef }
    }

    /// `name` in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The MEF's EST base URI (`--server`).
    pub fn server(&self) -> String {
        self.mef.base_uri(None)
    }

    /// [`third_party_args`] for this MEF and device.
    pub fn third_party_args(&self) -> [String; 6] {
        third_party_args(&self.mef.ca_cert_pem_path(), self.dir.path())
    }
}
