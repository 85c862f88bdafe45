//! `--key pkcs11:URI`, `--pkcs11-module PATH`, `--pin-file PATH` / `--pin-env VAR`: the device key
//! in a PKCS #11 token (RFC 7512 URI). The rules are the library's (`onem2m_est::pkcs11`); this
//! only turns the flags into its arguments. The PIN is never an argument.

use clap::Args;
use onem2m_est::pkcs11::{self, PinSource, Pkcs11Uri};
use onem2m_est::store::{CredentialStore, FileStore};
use onem2m_est::Error;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// PKCS #11 module (shared library) of the token holding the key given as --key pkcs11:URI
    /// (needs a build with the `pkcs11` feature).
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// File holding the token's user PIN (the PIN is never given as an argument).
    #[arg(long, value_name = "PATH", conflicts_with = "pin_env")]
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the token's user PIN.
    #[arg(long, value_name = "VAR")]
    pub pin_env: Option<String>,
}

/// `--key pkcs11:URI` with the token flags, for the commands that work on DIR's installed
/// credentials (`reprovision`, `renew`, `agent`). A token-backed DIR records its key's URI
/// (`key.uri`), so `--pkcs11-module` with `--pin-file`/`--pin-env` is enough; `--key` names the
/// token and label when DIR records none (a re-bootstrap into an empty DIR) or another one.
#[derive(Args, Debug)]
pub struct StoreKeyArgs {
    /// pkcs11:URI: the token and label of the key (default: the URI DIR records in key.uri).
    #[arg(long, value_name = "pkcs11:URI", requires = "pkcs11_module")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub token: TokenArgs,
}

impl StoreKeyArgs {
    /// The credential store of `out`: a PKCS #11 store with `--pkcs11-module`, a `FileStore`
    /// otherwise. Everything is checked here (module, token, mechanisms, PIN), before any I/O.
    pub fn store(&self, out: &Path) -> Result<Box<dyn CredentialStore>, Error> {
        let uri = match key_uri(self.key.as_deref())? {
            None if self.key.is_some() => {
                return Err(Error::InvalidArgument {
                    argument: "--key",
                    reason: "here --key is a pkcs11: URI".into(),
                })
            }
            uri => uri,
        };
        store(out, uri.as_ref(), &self.token, false)
    }
}

/// The token key URI when `--key` is a `pkcs11:` URI (RFC 7512), else `None` (a PEM file).
pub fn key_uri(key: Option<&Path>) -> Result<Option<Pkcs11Uri>, Error> {
    match key.and_then(Path::to_str) {
        Some(text) if text.starts_with("pkcs11:") => Ok(Some(Pkcs11Uri::parse(text)?)),
        _ => Ok(None),
    }
}

/// The credential store of `out`: a PKCS #11 store when a token key is given (`uri`) or, with
/// `uri_required` false (re-provisioning), when `--pkcs11-module` names the token holding the
/// recorded key; a `FileStore` otherwise.
pub fn store(
    out: &Path,
    uri: Option<&Pkcs11Uri>,
    args: &TokenArgs,
    uri_required: bool,
) -> Result<Box<dyn CredentialStore>, Error> {
    let invalid = |argument: &'static str, reason: &str| Error::InvalidArgument {
        argument,
        reason: reason.into(),
    };
    let Some(module) = &args.pkcs11_module else {
        if uri.is_some() {
            return Err(invalid(
                "--pkcs11-module",
                "--key pkcs11:URI needs the token's module",
            ));
        }
        if args.pin_file.is_some() || args.pin_env.is_some() {
            return Err(invalid(
                "--pin-file",
                "a PIN is for a token key (--key pkcs11:URI with --pkcs11-module)",
            ));
        }
        return Ok(Box::new(FileStore::new(out)?));
    };
    if uri.is_none() && uri_required {
        return Err(invalid(
            "--key",
            "--pkcs11-module needs --key pkcs11:URI (the token and the key's label)",
        ));
    }
    let pin = match (&args.pin_file, &args.pin_env) {
        (Some(path), _) => PinSource::File(path.clone()),
        (None, Some(var)) => PinSource::Env(var.clone()),
        (None, None) => {
            return Err(invalid(
                "--pin-file",
                "a token key needs --pin-file PATH or --pin-env VAR",
            ))
        }
    };
    pkcs11::open_store(out, module, uri, pin)
}

/// What `out` records for its key: `key.uri` (a token key) or `key.pem`.
pub fn key_file(out: &Path) -> PathBuf {
    let uri = out.join(onem2m_est::store::KEY_URI_FILE);
    if uri.exists() {
        uri
    } else {
        out.join(onem2m_est::store::KEY_FILE)
    }
}
