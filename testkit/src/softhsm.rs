//! SoftHSM2 and OpenSC's `pkcs11-tool` for the PKCS #11 tests (the core's, the C ABI crate's,
//! the CLI's and the MEF's): the module, token initialisation and a logged-in `pkcs11-tool`.
//! Each is required: a missing tool fails the test, naming the Debian package.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The SoftHSM2 module (Debian's paths).
pub fn module_path() -> PathBuf {
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("SoftHSM2 is required (Debian package softhsm2; scripts/test.sh installs it)")
}

/// Initialises token `label` (user PIN `pin`) under the SoftHSM2 configuration `conf`.
pub fn init_token(conf: &Path, label: &str, so_pin: &str, pin: &str) {
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .args(["--init-token", "--free", "--label", label])
        .args(["--so-pin", so_pin, "--pin", pin])
        .output()
        .expect("softhsm2-util is required (Debian package softhsm2)");
    assert!(out.status.success(), "softhsm2-util: {out:?}");
}

/// `pkcs11-tool` on token `label`, logged in with `pin`; its standard output. `conf` is the
/// SoftHSM2 configuration, `None` for the process's SOFTHSM2_CONF.
pub fn pkcs11_tool(conf: Option<&Path>, label: &str, pin: &str, args: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new("pkcs11-tool");
    if let Some(conf) = conf {
        cmd.env("SOFTHSM2_CONF", conf);
    }
    let out = cmd
        .arg("--module")
        .arg(module_path())
        .args(["--token-label", label, "--login", "--pin", pin])
        .args(args)
        .output()
        .expect("pkcs11-tool is required (Debian package opensc)");
    assert!(out.status.success(), "pkcs11-tool {args:?}: {out:?}");
    out.stdout
}
