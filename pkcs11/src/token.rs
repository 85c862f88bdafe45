//! The token: `cryptoki` sessions, [`Token`] and [`TokenKey`]. Only with the `token` feature.

use crate::{Error, PinSource, Pkcs11Uri, Result};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use der::asn1::{BitStringRef, ObjectIdentifier, OctetString, UintRef};
use der::{Decode, Encode};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use zeroize::Zeroizing;

/// The named curve secp256r1 (RFC 5480 2.1.1.1): CKA_EC_PARAMS of a P-256 key.
const OID_SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

fn key_error(reason: impl Into<String>) -> Error {
    Error::Key {
        reason: reason.into(),
    }
}

/// A loaded and initialised module, one per path for the whole process (C_Initialize may be
/// called once per process).
fn module(path: &Path) -> Result<Pkcs11> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let m = Pkcs11::new(path).map_err(|e| {
        crate::invalid_arg(
            "PKCS #11 module",
            format!("{}: cannot load: {e}", path.display()),
        )
    })?;
    match m.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(key_error(format!(
                "{}: C_Initialize failed: {e}",
                path.display()
            )))
        }
    }
    modules.insert(path.to_path_buf(), m.clone());
    Ok(m)
}

/// A token: the module, its slot, and its label.
#[derive(Clone)]
pub struct Token {
    pkcs11: Pkcs11,
    slot: Slot,
    label: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("label", &self.label).finish()
    }
}

fn token_error(label: &str, what: &str, e: cryptoki::error::Error) -> Error {
    key_error(format!("PKCS #11 token {label:?}: {what}: {e}"))
}

impl Token {
    /// The one token the URI's token attributes match.
    pub fn find(module_path: &Path, uri: &Pkcs11Uri) -> Result<Token> {
        let pkcs11 = module(module_path)?;
        let slots = pkcs11
            .get_slots_with_initialized_token()
            .map_err(|e| key_error(format!("{}: C_GetSlotList: {e}", module_path.display())))?;
        let mut found = Vec::new();
        for slot in slots {
            let info = pkcs11
                .get_token_info(slot)
                .map_err(|e| key_error(format!("C_GetTokenInfo: {e}")))?;
            let matches = |want: &Option<String>, have: &str| {
                want.as_deref().is_none_or(|w| w == have.trim_end())
            };
            if matches(&uri.token, info.label())
                && matches(&uri.manufacturer, info.manufacturer_id())
                && matches(&uri.serial, info.serial_number())
                && matches(&uri.model, info.model())
            {
                found.push((slot, info.label().trim_end().to_string()));
            }
        }
        match found.len() {
            1 => {
                let (slot, label) = found.remove(0);
                Ok(Token {
                    pkcs11,
                    slot,
                    label,
                })
            }
            0 => Err(key_error(format!(
                "no initialised token of {} matches {uri}",
                module_path.display()
            ))),
            n => Err(key_error(format!(
                "{n} tokens of {} match {uri}: add token= or serial= to the URI",
                module_path.display()
            ))),
        }
    }

    /// The token must sign with CKM_ECDSA (and, to generate, CKM_EC_KEY_PAIR_GEN): checked
    /// when the store or key is opened, before any network I/O.
    pub fn check_mechanisms(&self, generate: bool) -> Result<()> {
        let list = self
            .pkcs11
            .get_mechanism_list(self.slot)
            .map_err(|e| token_error(&self.label, "C_GetMechanismList", e))?;
        let mut needed = vec![(MechanismType::ECDSA, "CKM_ECDSA")];
        if generate {
            needed.push((MechanismType::ECC_KEY_PAIR_GEN, "CKM_EC_KEY_PAIR_GEN"));
        }
        for (mechanism, name) in needed {
            if !list.contains(&mechanism) {
                return Err(Error::Unsupported {
                    what: format!("PKCS #11 token {:?} has no {name}", self.label),
                });
            }
        }
        Ok(())
    }

    /// The token's label (CKA_LABEL of the token), for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Logs in with the PIN of `pin`: a wrong PIN is refused now (`Error::Key`).
    pub fn login(&self, pin: &PinSource) -> Result<()> {
        self.session(&pin.read()?).map(|_| ())
    }

    /// Generates a key pair in this token under `uri`'s label ([`TokenKey::generate`]).
    pub fn generate(&self, uri: &Pkcs11Uri, pin: &PinSource) -> Result<TokenKey> {
        uri.check_for_generation()?;
        let pin = pin.read()?;
        generate_in(self, uri, self.session(&pin)?)
    }

    /// A read-write session logged in as the user.
    fn session(&self, pin: &Zeroizing<String>) -> Result<Session> {
        let session = self
            .pkcs11
            .open_rw_session(self.slot)
            .map_err(|e| token_error(&self.label, "C_OpenSession", e))?;
        let secret = cryptoki::types::AuthPin::from(pin.as_str().to_owned());
        match session.login(UserType::User, Some(&secret)) {
            // Login is per application and token: another session of this process already
            // logged in (its PIN was checked then).
            Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                Ok(session)
            }
            Err(cryptoki::error::Error::Pkcs11(RvError::PinIncorrect, _)) => {
                Err(key_error(format!(
                    "PKCS #11 token {:?}: the PIN was refused (CKR_PIN_INCORRECT)",
                    self.label
                )))
            }
            Err(cryptoki::error::Error::Pkcs11(RvError::PinLocked, _)) => Err(key_error(format!(
                "PKCS #11 token {:?}: the user PIN is locked (CKR_PIN_LOCKED)",
                self.label
            ))),
            Err(e) => Err(token_error(&self.label, "C_Login", e)),
        }
    }
}

/// The SubjectPublicKeyInfo of a P-256 public key object (CKA_EC_PARAMS, CKA_EC_POINT).
fn public_key_spki(session: &Session, label: &str, public: ObjectHandle) -> Result<Vec<u8>> {
    let attrs = session
        .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
        .map_err(|e| token_error(label, "C_GetAttributeValue (public key)", e))?;
    let (mut params, mut point) = (None, None);
    for a in attrs {
        match a {
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let params = params.ok_or_else(|| key_error("the public key has no CKA_EC_PARAMS"))?;
    let curve = ObjectIdentifier::from_der(&params).ok();
    if curve != Some(OID_SECP256R1) {
        return Err(Error::Unsupported {
            what: "PKCS #11 keys other than EC P-256 (TS-0003 10.1.1.1: secp256r1)".into(),
        });
    }
    let point = point.ok_or_else(|| key_error("the public key has no CKA_EC_POINT"))?;
    // PKCS #11 3.0 2.3.3: CKA_EC_POINT is the DER OCTET STRING of the point; some modules give
    // the bare point.
    let raw = match OctetString::from_der(&point) {
        Ok(o) => o.into_bytes().into_vec(),
        Err(_) => point,
    };
    if raw.len() != 65 || raw[0] != 4 {
        return Err(key_error(
            "the public key's CKA_EC_POINT is not an uncompressed P-256 point",
        ));
    }
    encode_p256_spki(&raw)
}

/// The DER Ecdsa-Sig-Value (RFC 5480 / RFC 3279 2.2.3) X.509 and TLS carry.
#[derive(der::Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// A P-256 private key in a PKCS #11 token: signs with CKM_ECDSA over a SHA-256 digest computed
/// here, and converts the token's r||s to DER. `Debug` shows the URI, never the PIN.
pub struct TokenKey {
    session: Mutex<Session>,
    private: ObjectHandle,
    public: ObjectHandle,
    spki: Vec<u8>,
    uri: Pkcs11Uri,
    label: String,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey")
            .field("uri", &self.uri.to_string())
            .finish_non_exhaustive()
    }
}

impl TokenKey {
    /// Opens the private key `uri` names (exactly one must match) in the token of module
    /// `module_path`, logging in with the PIN from `pin`.
    pub fn open(module_path: &Path, uri: &Pkcs11Uri, pin: &PinSource) -> Result<TokenKey> {
        Self::open_if_present(module_path, uri, pin)?
            .ok_or_else(|| key_error(format!("no private key in the token matches {uri}")))
    }

    /// [`TokenKey::open`], but `Ok(None)` when the token (found, logged in to) holds no
    /// private key that `uri` names: for a caller that was about to destroy it and may be
    /// re-running after an interruption. Every other failure is an error, as for `open`.
    pub fn open_if_present(
        module_path: &Path,
        uri: &Pkcs11Uri,
        pin: &PinSource,
    ) -> Result<Option<TokenKey>> {
        let pin = pin.read()?;
        let token = Token::find(module_path, uri)?;
        token.check_mechanisms(false)?;
        let session = token.session(&pin)?;
        Self::find(&token, session, uri)
    }

    fn find(token: &Token, session: Session, uri: &Pkcs11Uri) -> Result<Option<TokenKey>> {
        if uri.object.is_none() && uri.id.is_none() {
            return Err(crate::invalid_arg(
                "PKCS #11 URI",
                "it names no key: give object= (and/or id=)",
            ));
        }
        let mut template = Vec::new();
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let lookup = |class: ObjectClass| {
            let mut t = template.clone();
            t.push(Attribute::Class(class));
            session
                .find_objects(&t)
                .map_err(|e| token_error(&token.label, "C_FindObjects", e))
        };
        let privates = lookup(ObjectClass::PRIVATE_KEY)?;
        let private = match privates.as_slice() {
            [one] => *one,
            [] => return Ok(None),
            more => {
                return Err(key_error(format!(
                    "{} private keys in token {:?} match {uri}: add id= to the URI",
                    more.len(),
                    token.label
                )))
            }
        };
        // The public key object with the private key's CKA_ID (PKCS #11 3.0 4.4: "the CKA_ID of
        // a private key should match that of its public key").
        let id = match session
            .get_attributes(private, &[AttributeType::Id, AttributeType::KeyType])
            .map_err(|e| token_error(&token.label, "C_GetAttributeValue (private key)", e))?
            .into_iter()
            .fold((None, None), |(id, kt), a| match a {
                Attribute::Id(v) => (Some(v), kt),
                Attribute::KeyType(k) => (id, Some(k)),
                _ => (id, kt),
            }) {
            (_, Some(kt)) if kt != KeyType::EC => {
                return Err(Error::Unsupported {
                    what: format!("PKCS #11 keys of type {kt} (supported: EC P-256)"),
                })
            }
            (Some(id), _) => id,
            (None, _) => Vec::new(),
        };
        let publics = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(id.clone()),
            ])
            .map_err(|e| token_error(&token.label, "C_FindObjects", e))?;
        let [public] = publics.as_slice() else {
            return Err(key_error(format!(
                "token {:?}: no single public key object with the CKA_ID of {uri}",
                token.label
            )));
        };
        let spki = public_key_spki(&session, &token.label, *public)?;
        Ok(Some(TokenKey {
            private,
            public: *public,
            spki,
            uri: if uri.id.is_some() {
                uri.clone()
            } else {
                uri.with_id(&id)
            },
            label: token.label.clone(),
            session: Mutex::new(session),
        }))
    }

    /// Generates an EC P-256 key pair in the token of module `module_path` that `uri` names
    /// (CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, not CKA_EXTRACTABLE, `object` as CKA_LABEL, a
    /// fresh random CKA_ID): a device key of the client library's token store, or the MEF's
    /// next CA key. `uri` must give `object` and no `id`.
    pub fn generate(module_path: &Path, uri: &Pkcs11Uri, pin: &PinSource) -> Result<TokenKey> {
        uri.check_for_generation()?;
        let pin_text = pin.read()?;
        let token = Token::find(module_path, uri)?;
        token.check_mechanisms(true)?;
        generate_in(&token, uri, token.session(&pin_text)?)
    }

    /// The URI of this key (with its CKA_ID).
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// Destroys both objects of the pair in the token (a key no certificate needs any more).
    pub fn destroy(&self) -> Result<()> {
        let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        for object in [self.private, self.public] {
            session
                .destroy_object(object)
                .map_err(|e| token_error(&self.label, "C_DestroyObject", e))?;
        }
        Ok(())
    }
    /// The DER SubjectPublicKeyInfo of the pair's public key.
    pub fn public_key_info(&self) -> &[u8] {
        &self.spki
    }

    /// Signs `message`: SHA-256 here, CKM_ECDSA in the token (TS-0003 10.1.1.1), the token's
    /// r || s converted to the DER Ecdsa-Sig-Value X.509 and TLS carry.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        let raw = self
            .session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sign(&Mechanism::Ecdsa, self.private, digest.as_ref())
            .map_err(|e| token_error(&self.label, "C_Sign", e))?;
        // PKCS #11 3.0 2.3.1: the signature is r || s, each as long as the order (32 octets).
        if raw.len() != 64 {
            return Err(key_error(format!(
                "token {:?}: CKM_ECDSA returned {} octets, not 64",
                self.label,
                raw.len()
            )));
        }
        let (r, s) = raw.split_at(32);
        let sig = EcdsaSigValue {
            r: UintRef::new(r).map_err(|e| key_error(format!("bad signature r: {e}")))?,
            s: UintRef::new(s).map_err(|e| key_error(format!("bad signature s: {e}")))?,
        };
        sig.to_der()
            .map_err(|e| key_error(format!("cannot encode the signature: {e}")))
    }
}

/// id-ecPublicKey (RFC 5480 2.1.1).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

#[derive(der::Sequence)]
struct EcAlgorithm {
    algorithm: ObjectIdentifier,
    curve: ObjectIdentifier,
}

#[derive(der::Sequence)]
struct SubjectPublicKeyInfo<'a> {
    algorithm: EcAlgorithm,
    subject_public_key: BitStringRef<'a>,
}

/// The SubjectPublicKeyInfo of an uncompressed P-256 point (RFC 5480 2).
fn encode_p256_spki(point: &[u8]) -> Result<Vec<u8>> {
    SubjectPublicKeyInfo {
        algorithm: EcAlgorithm {
            algorithm: OID_EC_PUBLIC_KEY,
            curve: OID_SECP256R1,
        },
        subject_public_key: BitStringRef::from_bytes(point)
            .map_err(|e| key_error(format!("cannot encode the public key: {e}")))?,
    }
    .to_der()
    .map_err(|e| key_error(format!("cannot encode the public key: {e}")))
}

/// A P-256 key pair generated in `token` under `uri`'s label, in `session` (logged in).
fn generate_in(token: &Token, uri: &Pkcs11Uri, session: Session) -> Result<TokenKey> {
    let mut id = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
        .map_err(|_| key_error("no randomness for the key's CKA_ID"))?;
    let label = uri.object.clone().unwrap_or_default().into_bytes();
    let params = OID_SECP256R1
        .to_der()
        .map_err(|e| key_error(format!("cannot encode the curve: {e}")))?;
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(params),
        Attribute::Label(label.clone()),
        Attribute::Id(id.to_vec()),
    ];
    // The private key never leaves the token: sensitive, not extractable, persistent.
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
        Attribute::Id(id.to_vec()),
    ];
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &public_template,
            &private_template,
        )
        .map_err(|e| token_error(&token.label, "C_GenerateKeyPair", e))?;
    let destroy = |session: &Session| {
        let _ = session.destroy_object(private);
        let _ = session.destroy_object(public);
    };
    // A token may ignore a template attribute: read them back.
    let attrs = session
        .get_attributes(
            private,
            &[AttributeType::Sensitive, AttributeType::Extractable],
        )
        .map_err(|e| token_error(&token.label, "C_GetAttributeValue", e));
    let protected = attrs.as_ref().is_ok_and(|a| {
        a.contains(&Attribute::Sensitive(true)) && a.contains(&Attribute::Extractable(false))
    });
    if !protected {
        destroy(&session);
        return Err(attrs.err().unwrap_or_else(|| {
            key_error(format!(
                "token {:?} generated a key that is extractable or not sensitive; destroyed",
                token.label
            ))
        }));
    }
    let spki = match public_key_spki(&session, &token.label, public) {
        Ok(s) => s,
        Err(e) => {
            destroy(&session);
            return Err(e);
        }
    };
    Ok(TokenKey {
        session: Mutex::new(session),
        private,
        public,
        spki,
        uri: uri.with_id(&id),
        label: token.label.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_signature_converts_to_der() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r needs a leading zero octet in DER
        raw[63] = 1; // s is small: leading zeros dropped
        let (r, s) = raw.split_at(32);
        let der = EcdsaSigValue {
            r: UintRef::new(r).unwrap(),
            s: UintRef::new(s).unwrap(),
        }
        .to_der()
        .unwrap();
        assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x21, 0x00]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
    }
}
