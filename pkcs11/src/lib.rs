//! Keys that never leave a PKCS #11 token, shared by the onem2m-est client library (device keys,
//! `onem2m_est::pkcs11`) and the reference MEF (its CA key): [`Pkcs11Uri`] (RFC 7512),
//! [`PinSource`] and, with the `token` feature, `Token` and `TokenKey` (an EC P-256 key
//! pair in a token: opened, generated sensitive and never extractable, signing with CKM_ECDSA
//! over a SHA-256 digest, destroyed). One implementation of the token rules for both, so the MEF
//! does not depend on the client crate for them.
//!
//! The PIN is read from a file or an environment variable (never an argument or a URI), held in
//! `Zeroizing` memory and handed to the module; it is never logged nor put in an error.

// cryptoki's safe API only: `unsafe` lives in the C ABI crate alone.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use zeroize::Zeroizing;

#[cfg(feature = "token")]
mod token;
#[cfg(feature = "token")]
pub use token::{Token, TokenKey};

/// What went wrong, classified the way the callers report it (the client library maps these to
/// its own `Error` variants of the same names).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A URI, PIN source or module path that cannot be used: refused before any token I/O.
    #[error("invalid argument {argument}: {reason}")]
    InvalidArgument {
        /// What was refused.
        argument: &'static str,
        /// Why (never the PIN).
        reason: String,
    },
    /// The token or module failed or refused (a wrong PIN, no such key, a PKCS #11 error).
    #[error("key operation failed: {reason}")]
    Key {
        /// What failed (never the PIN).
        reason: String,
    },
    /// Something the token or this code does not support (no CKM_ECDSA, a curve other than
    /// P-256).
    #[error("not supported: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn invalid_arg(argument: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        argument,
        reason: reason.into(),
    }
}

/// A PKCS #11 URI (RFC 7512) naming a token and a private key object in it.
///
/// Path attributes understood: `token`, `manufacturer`, `serial`, `model` (which token),
/// `object` (CKA_LABEL), `id` (CKA_ID) and `type` (must be `private`). Any other attribute and
/// any query attribute is refused: an attribute this library ignored would widen the match to
/// another key, and the module path and PIN are given separately (a `pin-value` in a URI would
/// put the PIN on a command line).
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// CKA_LABEL of the token (`token=`).
    pub token: Option<String>,
    /// Manufacturer ID of the token (`manufacturer=`).
    pub manufacturer: Option<String>,
    /// Serial number of the token (`serial=`).
    pub serial: Option<String>,
    /// Model of the token (`model=`).
    pub model: Option<String>,
    /// CKA_LABEL of the key (`object=`).
    pub object: Option<String>,
    /// CKA_ID of the key (`id=`, percent-encoded octets).
    pub id: Option<Vec<u8>>,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl Pkcs11Uri {
    /// Parses `pkcs11:attr=value;...` (RFC 7512 2.3). Errors are [`Error::InvalidArgument`].
    pub fn parse(text: &str) -> Result<Pkcs11Uri> {
        use fluent_uri::pct_enc::{encoder::Path as PathEnc, EStr};
        let invalid = |reason: String| invalid_arg("PKCS #11 URI", reason);
        let uri = fluent_uri::Uri::parse(text).map_err(|e| {
            // The text is not echoed: it might hold a pin-value.
            invalid(format!("not a URI: {e}"))
        })?;
        if !uri.scheme().as_str().eq_ignore_ascii_case("pkcs11") {
            return Err(invalid("the scheme must be pkcs11:".into()));
        }
        if uri.authority().is_some() || uri.fragment().is_some() {
            return Err(invalid(
                "a pkcs11: URI has no authority and no fragment".into(),
            ));
        }
        if let Some(query) = uri.query() {
            let names: Vec<&str> = query
                .as_str()
                .split('&')
                .map(|a| a.split('=').next().unwrap_or(""))
                .collect();
            if names.contains(&"pin-value") {
                return Err(invalid(
                    "a pin-value in the URI is refused: give the PIN in a file or an environment \
                     variable"
                        .into(),
                ));
            }
            return Err(invalid(format!(
                "query attributes ({}) are not supported: the module path and the PIN are given \
                 separately",
                names.join(", ")
            )));
        }
        let mut out = Pkcs11Uri {
            token: None,
            manufacturer: None,
            serial: None,
            model: None,
            object: None,
            id: None,
        };
        let path = uri.path().as_str();
        if path.is_empty() {
            return Ok(out);
        }
        for attr in path.split(';') {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| invalid(format!("path attribute {attr:?} has no '='")))?;
            let value = EStr::<PathEnc>::new(value)
                .ok_or_else(|| invalid(format!("attribute {name}: bad percent-encoding")))?
                .decode()
                .to_bytes()
                .into_owned();
            let text = || {
                String::from_utf8(value.clone())
                    .map_err(|_| invalid(format!("attribute {name} is not UTF-8")))
            };
            let slot = match name {
                "token" => &mut out.token,
                "manufacturer" => &mut out.manufacturer,
                "serial" => &mut out.serial,
                "model" => &mut out.model,
                "object" => &mut out.object,
                "id" => {
                    if out.id.replace(value.clone()).is_some() {
                        return Err(invalid("attribute id given twice".into()));
                    }
                    continue;
                }
                "type" => {
                    if text()? != "private" {
                        return Err(invalid(
                            "type must be private: the URI names the device's private key".into(),
                        ));
                    }
                    continue;
                }
                other => {
                    return Err(invalid(format!(
                        "attribute {other} is not supported (token, manufacturer, serial, model, \
                         object, id, type)"
                    )))
                }
            };
            if slot.replace(text()?).is_some() {
                return Err(invalid(format!("attribute {name} given twice")));
            }
        }
        Ok(out)
    }

    /// A URI keys are generated under: a label (`object`), and no `id` (each key gets a fresh
    /// CKA_ID).
    pub fn check_for_generation(&self) -> Result<()> {
        if self.object.is_none() {
            return Err(invalid_arg(
                "PKCS #11 URI",
                "give object= (the label of the keys generated in the token)",
            ));
        }
        if self.id.is_some() {
            return Err(invalid_arg(
                "PKCS #11 URI",
                "id= names one key; generated keys get a fresh CKA_ID (remove id=)",
            ));
        }
        Ok(())
    }

    /// The same URI with `id` set (the CKA_ID of a key generated in the token).
    pub fn with_id(&self, id: &[u8]) -> Pkcs11Uri {
        Pkcs11Uri {
            id: Some(id.to_vec()),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for Pkcs11Uri {
    /// The URI text (RFC 7512 2.3; every octet of `id` percent-encoded, other values with
    /// everything but unreserved characters percent-encoded).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn enc(bytes: &[u8], all: bool) -> String {
            bytes
                .iter()
                .map(|&b| {
                    if !all && (b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        }
        let mut parts = Vec::new();
        for (name, value) in [
            ("token", &self.token),
            ("manufacturer", &self.manufacturer),
            ("serial", &self.serial),
            ("model", &self.model),
            ("object", &self.object),
        ] {
            if let Some(v) = value {
                parts.push(format!("{name}={}", enc(v.as_bytes(), false)));
            }
        }
        if let Some(id) = &self.id {
            parts.push(format!("id={}", enc(id, true)));
        }
        parts.push("type=private".into());
        write!(f, "pkcs11:{}", parts.join(";"))
    }
}

/// Where the token's user PIN comes from: never a command-line argument nor a URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// A file holding the PIN (one trailing newline is ignored).
    File(PathBuf),
    /// An environment variable holding the PIN.
    Env(String),
}

impl PinSource {
    /// Reads the PIN. Errors name the file or variable, never the PIN.
    pub fn read(&self) -> Result<Zeroizing<String>> {
        let pin = match self {
            PinSource::File(path) => {
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    invalid_arg("PIN file", format!("{}: cannot read: {e}", path.display()))
                })?)
            }
            PinSource::Env(name) => Zeroizing::new(
                std::env::var(name)
                    .map_err(|e| invalid_arg("PIN variable", format!("{name}: {e}")))?,
            ),
        };
        let trimmed = pin.strip_suffix('\n').unwrap_or(&pin);
        let trimmed = Zeroizing::new(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string());
        if trimmed.is_empty() {
            return Err(invalid_arg("PIN", "the PIN source is empty"));
        }
        Ok(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_parse_and_print() {
        let uri = Pkcs11Uri::parse("pkcs11:token=dev%20tok;object=device;type=private").unwrap();
        assert_eq!(uri.token.as_deref(), Some("dev tok"));
        assert_eq!(uri.object.as_deref(), Some("device"));
        let with_id = uri.with_id(&[0x01, 0xab]);
        assert_eq!(
            with_id.to_string(),
            "pkcs11:token=dev%20tok;object=device;id=%01%AB;type=private"
        );
        assert_eq!(Pkcs11Uri::parse(&with_id.to_string()).unwrap(), with_id);
    }

    #[test]
    fn uri_refusals_never_echo_a_pin() {
        for bad in [
            "pkcs11:token=t;object=o?pin-value=123456",
            "pkcs11:token=t?module-path=/x.so",
            "pkcs11:token=t;slot-id=1",
            "pkcs11:token=t;type=cert",
            "pkcs11:token=a;token=b",
            "file:token=t",
            "pkcs11:token=%zz",
        ] {
            let err = Pkcs11Uri::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains("123456"), "{err}");
        }
    }

    #[test]
    fn pin_source_trims_one_newline_and_refuses_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("pin");
        std::fs::write(&path, "1234\n").unwrap();
        assert_eq!(
            PinSource::File(path.clone()).read().unwrap().as_str(),
            "1234"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(PinSource::File(path).read().is_err());
        let err = PinSource::File(tmp.path().join("absent"))
            .read()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    }
}
