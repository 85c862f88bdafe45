//! `mef_config_set_pkcs11_key`: the device key in a PKCS #11 token, with the built-in store
//! directory (`mef_config_set_store_dir`) holding the certificate files and `key.uri`. Converts
//! and delegates to [`est::pkcs11::open_store`]; the rules are there.

use std::ffi::c_char;
use std::path::{Path, PathBuf};

use super::config::{arg, with_config};
use super::{mef_config, mef_result};
use super::{str_arg, MEF_ERR_INVALID_ARGUMENT, MEF_ERR_NULL_ARGUMENT, MEF_OK};
use est::error::Result;
use est::pkcs11::{PinSource, Pkcs11Uri};
use est::store::CredentialStore;

/// What `mef_config_set_pkcs11_key` configured. The PIN itself is read only when the client is
/// created; the configuration holds where it is.
#[derive(Debug, Clone)]
pub(crate) struct Pkcs11KeyConfig {
    module: PathBuf,
    uri: Option<Pkcs11Uri>,
    pin: PinSource,
}

impl Pkcs11KeyConfig {
    /// Opens the token store in `dir` (module loaded, token found, PIN checked: before any
    /// network I/O).
    pub(crate) fn open(&self, dir: &Path) -> Result<Box<dyn CredentialStore>> {
        est::pkcs11::open_store(dir, &self.module, self.uri.as_ref(), self.pin.clone())
    }
}

/// Keeps the device key in a PKCS #11 token: key pairs are generated in the token of module
/// `module_path` (a shared library) that `uri` names (RFC 7512, e.g.
/// `pkcs11:token=device;object=cse01`), under its `object` label, and the store directory
/// (`mef_config_set_store_dir`, required) records the key's URI in `key.uri` instead of writing
/// `key.pem`. `uri` may be NULL to use the URI the store directory records (re-provisioning).
/// The user PIN is read from the file `pin_file` or the environment variable `pin_env`: exactly
/// one of them non-NULL; never pass the PIN itself. Token, mechanisms and PIN are checked by
/// `mef_client_new` (`MEF_ERR_KEY` for a wrong PIN or a missing token,
/// `MEF_ERR_UNSUPPORTED` for a token without P-256). What the token cannot hold is refused by
/// the procedures before any network I/O with `MEF_ERR_INVALID_ARGUMENT`: `/serverkeygen` (the
/// key would be made outside the token) and a configured key type other than P-256; a key type
/// the MEF's CSR attributes require and the token cannot make gives `MEF_ERR_UNSUPPORTED` before
/// any key is generated. A library built without the `pkcs11`
/// feature makes `mef_client_new` fail with `MEF_ERR_INVALID_ARGUMENT`. Exclusive with key and
/// credential callbacks.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `module_path` a NUL-terminated string; `uri`,
/// `pin_file` and `pin_env` NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_pkcs11_key(
    config: *mut mef_config,
    module_path: *const c_char,
    uri: *const c_char,
    pin_file: *const c_char,
    pin_env: *const c_char,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let module = arg!(config, "module_path", unsafe { str_arg(module_path) });
        let optional = |p: *const c_char| {
            if p.is_null() {
                Ok(None)
            } else {
                // SAFETY: non-NULL, NUL-terminated (caller's contract above).
                unsafe { str_arg(p) }.map(Some)
            }
        };
        let not_utf8 = |what: &str| {
            config.fail(
                MEF_ERR_INVALID_ARGUMENT,
                format!("{what} is not UTF-8 text"),
            )
        };
        let Ok(uri) = optional(uri) else {
            return not_utf8("uri");
        };
        let uri = match uri {
            Some(text) => match Pkcs11Uri::parse(text) {
                Ok(u) => Some(u),
                Err(e) => return config.fail(MEF_ERR_INVALID_ARGUMENT, e),
            },
            None => None,
        };
        let (Ok(pin_file), Ok(pin_env)) = (optional(pin_file), optional(pin_env)) else {
            return not_utf8("pin_file or pin_env");
        };
        let pin = match (pin_file, pin_env) {
            (Some(file), None) if !file.is_empty() => PinSource::File(PathBuf::from(file)),
            (None, Some(var)) if !var.is_empty() => PinSource::Env(var.to_string()),
            _ => {
                return config.fail(
                    MEF_ERR_INVALID_ARGUMENT,
                    "give exactly one of pin_file and pin_env",
                )
            }
        };
        if module.is_empty() {
            return config.fail(MEF_ERR_INVALID_ARGUMENT, "module_path is empty");
        }
        config.pkcs11_key = Some(Pkcs11KeyConfig {
            module: PathBuf::from(module),
            uri,
            pin,
        });
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

#[cfg(all(test, not(feature = "pkcs11")))]
mod tests {
    use super::super::*;
    use std::ffi::CString;

    /// Without the `pkcs11` feature the setter is accepted and the client refuses it as a bad
    /// argument, before any I/O.
    #[test]
    fn without_the_feature_the_client_refuses_a_token_key() {
        let tmp = tempfile::tempdir().unwrap();
        let module = CString::new("/nonexistent/module.so").unwrap();
        let uri = CString::new("pkcs11:token=t;object=o").unwrap();
        let var = CString::new("PIN_VAR").unwrap();
        let cfg = crate::tests::store_config(crate::tests::NO_MEF, &tmp.path().join("c"));
        // SAFETY: live CStrings; the configuration is freed once; no client is created.
        unsafe {
            assert_eq!(
                mef_config_set_pkcs11_key(
                    cfg,
                    module.as_ptr(),
                    uri.as_ptr(),
                    std::ptr::null(),
                    var.as_ptr()
                ),
                MEF_OK
            );
            let mut client = std::ptr::null_mut();
            assert_eq!(mef_client_new(cfg, &mut client), MEF_ERR_INVALID_ARGUMENT);
            assert!(client.is_null());
            mef_config_free(cfg);
        }
    }
}
