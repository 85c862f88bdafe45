//! Keys that never leave a PKCS #11 token (an HSM, a secure element, a smart card, a TPM through
//! tpm2-pkcs11): [`Pkcs11Uri`] (RFC 7512), [`PinSource`], `Pkcs11Key` (a [`PrivateKey`]
//! signing with the token's CKM_ECDSA) and `Pkcs11Store`, a [`CredentialStore`] that generates
//! each procedure's key pair inside the token and records its URI (`key.uri`) in the
//! [`FileStore`](crate::store::FileStore) layout instead of a `key.pem`.
//!
//! [`Pkcs11Uri`], [`PinSource`], [`open_store`] and [`open_key`] exist in every build; the
//! token itself (`Pkcs11Key`, `Pkcs11Store`, on `cryptoki`) only with the `pkcs11` feature.
//! Without it, [`open_store`] and [`open_key`] refuse as bad arguments, before any I/O.
//!
//! All-or-nothing (CR 8.3.Z.2.2 step 3f, as the file store): a key pair generated for a
//! procedure that fails is destroyed in the token ([`CredentialStore::discard_key`]); the
//! previous key stays usable until the new certificate is installed, and is destroyed only
//! then, and only if this store had installed it (a key placed by hand is never destroyed).
//!
//! The PIN is read from a file or an environment variable (never an argument or a URI), held in
//! `Zeroizing` memory and handed to the module; it is never logged nor put in an error.
//!
//! The token code itself (URIs, PIN sources, sessions, generating and signing) is the crate
//! `onem2m-est-pkcs11`, shared with the MEF; this module adapts it to [`PrivateKey`] and
//! [`CredentialStore`] and to this crate's [`Error`].

use crate::error::{Error, Result};
use crate::keys::PrivateKey;
use crate::store::CredentialStore;
use std::path::Path;
use std::sync::Arc;

/// The URI and PIN source types are the shared token crate's (`onem2m-est-pkcs11`, also the
/// MEF's): one implementation of RFC 7512 and of the PIN rules.
pub use onem2m_est_pkcs11::{PinSource, Pkcs11Uri};

#[cfg(feature = "pkcs11")]
mod token;
#[cfg(feature = "pkcs11")]
pub use token::{Pkcs11Key, Pkcs11Store};

/// Whether this build can use PKCS #11 tokens (the `pkcs11` feature).
pub const SUPPORTED: bool = cfg!(feature = "pkcs11");

/// The token crate's errors as this crate's, same classes: a refused argument is
/// `InvalidArgument` (BadArguments), a token failure `Key` and a missing capability
/// `Unsupported` (Client).
impl From<onem2m_est_pkcs11::Error> for Error {
    fn from(e: onem2m_est_pkcs11::Error) -> Error {
        match e {
            onem2m_est_pkcs11::Error::InvalidArgument { argument, reason } => {
                Error::InvalidArgument { argument, reason }
            }
            onem2m_est_pkcs11::Error::Key { reason } => Error::Key {
                reason,
                source: None,
            },
            onem2m_est_pkcs11::Error::Unsupported { what } => Error::Unsupported { what },
        }
    }
}

/// A `Pkcs11Store` in `dir` (the CLI's, C's and Python's way in): keys generated in the token
/// of `module_path` that `uri` names, under its `object` label. With `uri` `None`, the URI is the
/// one `dir` records (`current/key.uri`, its `id` dropped), for re-provisioning.
pub fn open_store(
    dir: &Path,
    module_path: &Path,
    uri: Option<&Pkcs11Uri>,
    pin: PinSource,
) -> Result<Box<dyn CredentialStore>> {
    #[cfg(feature = "pkcs11")]
    {
        let uri = match uri {
            Some(u) => u.clone(),
            None => recorded_uri(dir)?,
        };
        Ok(Box::new(Pkcs11Store::open(dir, module_path, uri, pin)?))
    }
    #[cfg(not(feature = "pkcs11"))]
    {
        let _ = (dir, module_path, uri, pin);
        Err(unsupported())
    }
}

/// An existing key in a token, as a [`PrivateKey`] (e.g. a factory key for the initial TLS
/// client authentication).
pub fn open_key(
    module_path: &Path,
    uri: &Pkcs11Uri,
    pin: &PinSource,
) -> Result<Arc<dyn PrivateKey>> {
    #[cfg(feature = "pkcs11")]
    {
        Ok(Arc::new(Pkcs11Key::open(module_path, uri, pin)?))
    }
    #[cfg(not(feature = "pkcs11"))]
    {
        let _ = (module_path, uri, pin);
        Err(unsupported())
    }
}

#[cfg(not(feature = "pkcs11"))]
fn unsupported() -> Error {
    Error::invalid(
        "PKCS #11 key",
        "this build has no PKCS #11 support (build with the `pkcs11` feature)",
    )
}

/// The token and label of the key `dir` records, without its `id` (the next key gets its own).
#[cfg(feature = "pkcs11")]
fn recorded_uri(dir: &Path) -> Result<Pkcs11Uri> {
    // Through the store's own resolution of `current` (a symlink on Unix, a pointer file
    // elsewhere).
    let path = crate::store::FileStore::new(dir)?
        .current_dir()
        .join(crate::store::KEY_URI_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::NotProvisioned {
        reason: format!(
            "{}: {e} (no key in a PKCS #11 token recorded)",
            path.display()
        ),
    })?;
    let uri = Pkcs11Uri::parse(text.trim())?;
    Ok(Pkcs11Uri { id: None, ..uri })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_keep_their_class() {
        let err: Error = Pkcs11Uri::parse("pkcs11:token=t?pin-value=123456")
            .unwrap_err()
            .into();
        assert_eq!(err.class(), crate::ErrorClass::BadArguments);
        assert!(!err.to_string().contains("123456"), "{err}");
        let err: Error = PinSource::Env("ONEM2M_EST_NO_SUCH_PIN_VARIABLE".into())
            .read()
            .unwrap_err()
            .into();
        assert_eq!(err.class(), crate::ErrorClass::BadArguments);
    }
}
