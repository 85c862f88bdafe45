//! Host callbacks: keys held by the host (an HSM, a TPM, a secure element), the host's
//! credential storage, and the identity of each procedure.
//!
//! Key callbacks back a [`PrivateKey`] ([`CallbackKey`]); credential callbacks together with
//! key callbacks back a [`CredentialStore`] ([`CallbackStore`]). The procedure's ordering is
//! [`MefClient`](est::client::MefClient)'s: generate → CSR → enrol → validate →
//! `store` → `commit`, and `discard` for a generated key whenever the procedure fails before
//! `store` succeeded.

use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, Mutex};

use rustls_pki_types::CertificateDer;
use zeroize::Zeroizing;

use super::{
    bytes_arg, check, guard, key_type_arg, key_type_of, mef_key_type, mef_result, mef_subject_type,
    str_arg, subject_type_arg, MEF_CB_NOT_FOUND, MEF_CB_OK, MEF_ERR_INVALID_ARGUMENT,
    MEF_ERR_NULL_ARGUMENT, MEF_OK,
};
use est::error::{Error, Result};
use est::identity::{SpId, SubjectIdentity};
use est::keys::{KeyAlgorithm, PrivateKey};
use est::psk::PskCredential;
use est::store::{certs_to_pem, parse_certs_pem, CredentialStore, Credentials};

/// Capacity of the buffers given to `public_key` and `sign`.
pub const MEF_CALLBACK_BUFFER_CAPACITY: usize = 1024;

/// The host's opaque context pointer, passed back to its callbacks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the pointer is only passed back to the host's callbacks, which the library calls
// only on the thread running a mef_client_* call, one call at a time per handle (the
// documented thread model); the host guarantees its context is usable from whichever thread
// it makes that call on.
unsafe impl Send for UserData {}
// SAFETY: as above: the library never dereferences the pointer, and never calls callbacks of
// one handle from two threads at once.
unsafe impl Sync for UserData {}

/// Callbacks through which the library uses keys held by the host. All members are required.
/// Keys are named by host-chosen 64-bit handles (0 is never used for a host key: it means
/// "software key" in `mef_credential_callbacks.store`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mef_key_callbacks {
    /// `sizeof(mef_key_callbacks)`. Later versions only append members, and read only as many
    /// bytes as this says; a size this library does not know is `MEF_ERR_INVALID_ARGUMENT`.
    pub struct_size: usize,
    /// Create a provisional key pair of `type`; write its handle to `*out_handle`.
    /// Return `MEF_CB_OK`, or any other value for failure.
    pub generate: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            r#type: mef_key_type,
            out_handle: *mut u64,
        ) -> c_int,
    >,
    /// The currently installed key (TLS client authentication when re-provisioning, and the
    /// key of a renewal): write its handle and type. `MEF_CB_NOT_FOUND` if there is none.
    pub current: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            out_handle: *mut u64,
            out_type: *mut mef_key_type,
        ) -> c_int,
    >,
    /// Write the key's DER SubjectPublicKeyInfo into `out` (capacity `cap`, 1024 bytes) and
    /// its length to `*out_len` (1 to `cap`).
    pub public_key: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            handle: u64,
            out: *mut u8,
            cap: usize,
            out_len: *mut usize,
        ) -> c_int,
    >,
    /// Sign `msg` with the key's algorithm, hashing included (ECDSA P-256 with SHA-256 over
    /// `msg`, P-384 with SHA-384, Ed25519 pure); write the signature (DER Ecdsa-Sig-Value for
    /// ECDSA, 64 bytes for Ed25519) into `out` (capacity `cap`, 1024 bytes) and its length to
    /// `*out_len`. Used for TLS client authentication and for the CSR.
    pub sign: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            handle: u64,
            msg: *const u8,
            msg_len: usize,
            out: *mut u8,
            cap: usize,
            out_len: *mut usize,
        ) -> c_int,
    >,
    /// The credentials with this generated key were stored: the provisional key is now
    /// permanent (the host may retire the previous key). The return value is only logged.
    pub commit: Option<unsafe extern "C" fn(user_data: *mut c_void, handle: u64) -> c_int>,
    /// The procedure failed after `generate`: drop this provisional key. The return value is
    /// only logged.
    pub discard: Option<unsafe extern "C" fn(user_data: *mut c_void, handle: u64) -> c_int>,
}

/// Callbacks through which the host stores the provisioned credentials. All members are
/// required, and key callbacks must be configured too.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mef_credential_callbacks {
    /// `sizeof(mef_credential_callbacks)`, as for `mef_key_callbacks.struct_size`.
    pub struct_size: usize,
    /// Make the chain (PEM, leaf first), the trust anchors (PEM) and the key current,
    /// atomically from the host's point of view. `key_handle` is a key-callback handle; for a
    /// server-generated key it is 0 and `key_pkcs8_pem`/`key_len` carry the key as PKCS #8 PEM
    /// (the library zeroizes it after the call), otherwise they are NULL/0. Return `MEF_CB_OK`
    /// or a failure (the procedure then fails with `MEF_ERR_STORE`; the host must have changed
    /// nothing).
    pub store: Option<
        unsafe extern "C" fn(
            user_data: *mut c_void,
            chain_pem: *const u8,
            chain_len: usize,
            ta_pem: *const u8,
            ta_len: usize,
            key_handle: u64,
            key_pkcs8_pem: *const u8,
            key_len: usize,
        ) -> c_int,
    >,
    /// Load the current chain and trust anchors: call `mef_credentials_set(sink, ...)` once
    /// and return `MEF_CB_OK`; return `MEF_CB_NOT_FOUND` if nothing is stored. Any other
    /// value, or `MEF_CB_OK` without a successful `mef_credentials_set`, fails the call with
    /// `MEF_ERR_STORE`.
    pub load: Option<
        unsafe extern "C" fn(user_data: *mut c_void, sink: *mut mef_credentials_sink) -> c_int,
    >,
}

/// The identity callback, called at the start of each procedure: it may call
/// `mef_identity_set_subject(sink, ...)` to fix the subject identity of this procedure
/// (otherwise the configured one, or the one the MEF asks for, is used), and
/// `mef_identity_set_psk(sink, ...)` to supply the (KpmID, Kpm) of a PPSK-based Initial
/// Certificate Provisioning. Return `MEF_CB_OK`;
/// any other value fails the procedure with `MEF_ERR_CALLBACK`.
pub type mef_identity_cb =
    Option<unsafe extern "C" fn(user_data: *mut c_void, sink: *mut mef_identity_sink) -> c_int>;

/// Where the `load` credential callback puts the credentials (valid only during `load`).
#[derive(Debug, Default)]
pub struct mef_credentials_sink {
    loaded: Option<(Vec<CertificateDer<'static>>, Vec<CertificateDer<'static>>)>,
}

/// Where the identity callback puts the subject identity and, for Initial Certificate
/// Provisioning with the PPSK-based RSPF, the (KpmID, Kpm) pair (valid only during the
/// callback).
#[derive(Debug, Default)]
pub struct mef_identity_sink {
    identity: Option<SubjectIdentity>,
    /// The configured SP-ID, for SP-relative subject IDs.
    sp_id: Option<SpId>,
    /// `Debug` redacts the key; dropped (and wiped) after the procedure.
    psk: Option<PskCredential>,
}

/// What the identity callback supplied for one procedure.
#[derive(Debug, Default)]
pub(crate) struct IdentityAnswer {
    pub(crate) identity: Option<SubjectIdentity>,
    pub(crate) psk: Option<PskCredential>,
}

/// The body of a sink export: behind the panic boundary, a NULL `sink` is
/// `MEF_ERR_NULL_ARGUMENT`, else `set` fills it (and leaves it unchanged when it fails).
///
/// # Safety
/// `sink` must be NULL or the live sink the library passed to the running callback.
unsafe fn with_sink<S>(sink: *mut S, set: impl FnOnce(&mut S) -> mef_result) -> mef_result {
    guard(|| {
        // SAFETY: NULL or the library's sink, alive during the callback (caller's contract).
        let sink = check!(unsafe { sink.as_mut() }.ok_or(MEF_ERR_NULL_ARGUMENT));
        set(sink)
    })
}

/// Hands the current credentials to the library from inside the `load` callback: the chain
/// (PEM CERTIFICATE blocks, leaf first) and the trust anchors (PEM). The PEM is copied.
/// `MEF_ERR_INVALID_ARGUMENT` for empty, non-UTF-8 or unparsable PEM (the sink is then
/// unchanged).
///
/// # Safety
/// `sink` must be the pointer given to `load`; the buffers must hold `*_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn mef_credentials_set(
    sink: *mut mef_credentials_sink,
    chain_pem: *const u8,
    chain_len: usize,
    ta_pem: *const u8,
    ta_len: usize,
) -> mef_result {
    let set = |sink: &mut mef_credentials_sink| {
        // SAFETY: the caller passes buffers of the given lengths (contract above).
        let chain = check!(unsafe { bytes_arg(chain_pem, chain_len) });
        // SAFETY: as above.
        let ta = check!(unsafe { bytes_arg(ta_pem, ta_len) });
        let chain = check!(pem_certs_arg(chain));
        let ta = check!(pem_certs_arg(ta));
        sink.loaded = Some((chain, ta));
        MEF_OK
    };
    // SAFETY: the sink is the library's, alive for the `load` call (contract above).
    unsafe { with_sink(sink, set) }
}

/// Fixes the subject identity of the procedure from inside the identity callback.
/// `MEF_ERR_INVALID_ARGUMENT` for an unknown type or an identifier that is not valid for it
/// (the forms of `mef_config_set_subject`, SP-relative ones with `mef_config_set_sp_id`).
///
/// # Safety
/// `sink` must be the pointer given to the identity callback; `id` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mef_identity_set_subject(
    sink: *mut mef_identity_sink,
    r#type: mef_subject_type,
    id: *const c_char,
) -> mef_result {
    let set = |sink: &mut mef_identity_sink| {
        // SAFETY: NUL-terminated string valid for this call (contract above).
        let id = check!(unsafe { str_arg(id) });
        let subject_type = check!(subject_type_arg(r#type));
        let identity = match &sink.sp_id {
            None => SubjectIdentity::new(subject_type, id),
            Some(sp) => SubjectIdentity::with_sp_id(subject_type, id, sp),
        };
        sink.identity = Some(check!(identity.map_err(|_| MEF_ERR_INVALID_ARGUMENT)));
        MEF_OK
    };
    // SAFETY: the sink is the library's, alive during the callback (contract above).
    unsafe { with_sink(sink, set) }
}

/// Supplies the pre-provisioned symmetric key of the PPSK-based RSPF (TS-0003 8.3.2.1) from
/// inside the identity callback, for a host that keeps (KpmID, Kpm) in its own secure storage
/// rather than in the configuration: the KpmID (TLS `psk_identity`, UTF-8) and the Kpm
/// (`kpm_len` bytes, 16 to 64), copied into memory that is wiped after the procedure and never
/// logged. Used by `mef_client_provision` (it takes precedence over `mef_config_set_psk`; with
/// a third-party client certificate configured the provisioning fails with
/// `MEF_ERR_INVALID_ARGUMENT`: ambiguous RSPF); ignored by `mef_client_reprovision`, which
/// authenticates with the installed certificate. The host may wipe its buffer once this
/// returns. `MEF_ERR_INVALID_ARGUMENT` as for `mef_config_set_psk` (the sink is then
/// unchanged).
///
/// # Safety
/// `sink` must be the pointer given to the identity callback; `kpm_id` a NUL-terminated
/// string; `kpm` readable for `kpm_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn mef_identity_set_psk(
    sink: *mut mef_identity_sink,
    kpm_id: *const c_char,
    kpm: *const u8,
    kpm_len: usize,
) -> mef_result {
    let set = |sink: &mut mef_identity_sink| {
        // SAFETY: the caller's contract above.
        sink.psk = Some(check!(unsafe { super::psk_arg(kpm_id, kpm, kpm_len) }));
        MEF_OK
    };
    // SAFETY: the sink is the library's, alive during the callback (contract above).
    unsafe { with_sink(sink, set) }
}

/// PEM text → certificates, for C arguments.
pub(crate) fn pem_certs_arg(
    pem: &[u8],
) -> std::result::Result<Vec<CertificateDer<'static>>, mef_result> {
    let text = std::str::from_utf8(pem).map_err(|_| MEF_ERR_INVALID_ARGUMENT)?;
    parse_certs_pem(text).map_err(|_| MEF_ERR_INVALID_ARGUMENT)
}

/// Checked key callbacks: every member present.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyCallbacks {
    generate: unsafe extern "C" fn(*mut c_void, mef_key_type, *mut u64) -> c_int,
    current: unsafe extern "C" fn(*mut c_void, *mut u64, *mut mef_key_type) -> c_int,
    public_key: unsafe extern "C" fn(*mut c_void, u64, *mut u8, usize, *mut usize) -> c_int,
    sign: unsafe extern "C" fn(
        *mut c_void,
        u64,
        *const u8,
        usize,
        *mut u8,
        usize,
        *mut usize,
    ) -> c_int,
    commit: unsafe extern "C" fn(*mut c_void, u64) -> c_int,
    discard: unsafe extern "C" fn(*mut c_void, u64) -> c_int,
    user_data: UserData,
}

impl KeyCallbacks {
    /// `None` when a member is NULL.
    pub(crate) fn new(cbs: &mef_key_callbacks, user_data: *mut c_void) -> Option<KeyCallbacks> {
        Some(KeyCallbacks {
            generate: cbs.generate?,
            current: cbs.current?,
            public_key: cbs.public_key?,
            sign: cbs.sign?,
            commit: cbs.commit?,
            discard: cbs.discard?,
            user_data: UserData(user_data),
        })
    }
}

/// Checked credential callbacks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CredentialCallbacks {
    store: unsafe extern "C" fn(
        *mut c_void,
        *const u8,
        usize,
        *const u8,
        usize,
        u64,
        *const u8,
        usize,
    ) -> c_int,
    load: unsafe extern "C" fn(*mut c_void, *mut mef_credentials_sink) -> c_int,
    user_data: UserData,
}

impl CredentialCallbacks {
    /// `None` when a member is NULL.
    pub(crate) fn new(
        cbs: &mef_credential_callbacks,
        user_data: *mut c_void,
    ) -> Option<CredentialCallbacks> {
        Some(CredentialCallbacks {
            store: cbs.store?,
            load: cbs.load?,
            user_data: UserData(user_data),
        })
    }
}

/// Calls the identity callback; `Err` (a [`CallbackError`] in its chain) when it fails.
pub(crate) fn call_identity(
    cb: unsafe extern "C" fn(*mut c_void, *mut mef_identity_sink) -> c_int,
    user_data: UserData,
    sp_id: Option<&SpId>,
) -> Result<IdentityAnswer> {
    let mut sink = mef_identity_sink {
        sp_id: sp_id.cloned(),
        ..mef_identity_sink::default()
    };
    // SAFETY: the host registered `cb` and `user_data` together; the sink outlives the call.
    let rc = unsafe { cb(user_data.0, &mut sink) };
    if rc != MEF_CB_OK {
        return Err(callback_failed(format!(
            "the identity callback returned {rc}"
        )));
    }
    Ok(IdentityAnswer {
        identity: sink.identity,
        psk: sink.psk,
    })
}

/// A key or identity callback failed or returned garbage: the source of the core error it
/// surfaces as (a key error, also when it happened inside the TLS handshake), so the call
/// reports `MEF_ERR_CALLBACK` ([`is_callback_failure`] reads the error chain).
#[derive(Debug)]
pub(crate) struct CallbackError {
    reason: String,
    /// The core's check the callback's output failed, if that is what happened.
    check: Option<est::keys::KeyCheckError>,
}

impl std::fmt::Display for CallbackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for CallbackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.check.as_ref().map(|c| c as _)
    }
}

/// A callback's failure as a core key error, with the [`CallbackError`] as its source.
fn callback_failed(reason: String) -> Error {
    callback_check_failed(reason, None)
}

/// A callback's output that failed the core's check (`check`).
fn callback_check_failed(reason: String, check: Option<est::keys::KeyCheckError>) -> Error {
    Error::key(
        reason.clone(),
        Some(Box::new(CallbackError { reason, check })),
    )
}

/// Whether a host callback's failure is in `e`'s chain of sources.
pub(crate) fn is_callback_failure(e: &Error) -> bool {
    let mut link: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(current) = link {
        if current.downcast_ref::<CallbackError>().is_some() {
            return true;
        }
        link = current.source();
    }
    false
}

/// A key held by the host behind the key callbacks.
#[derive(Debug)]
pub(crate) struct CallbackKey {
    cbs: KeyCallbacks,
    handle: u64,
    algorithm: KeyAlgorithm,
    spki: Vec<u8>,
}

impl CallbackKey {
    /// The key `handle`, with its public key fetched (and checked) through `public_key`.
    pub(crate) fn new(
        cbs: KeyCallbacks,
        handle: u64,
        algorithm: KeyAlgorithm,
    ) -> Result<CallbackKey> {
        let mut out = Zeroizing::new(vec![0u8; MEF_CALLBACK_BUFFER_CAPACITY]);
        let mut len = 0usize;
        // SAFETY: `out` has `MEF_CALLBACK_BUFFER_CAPACITY` writable bytes, `len` is a valid
        // usize; the host registered the callback with this user_data.
        let rc = unsafe {
            (cbs.public_key)(
                cbs.user_data.0,
                handle,
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        if rc != MEF_CB_OK {
            return Err(callback_failed(format!(
                "public_key callback returned {rc} for key {handle}"
            )));
        }
        if len == 0 || len > out.len() {
            return Err(callback_failed(format!(
                "public_key callback returned length {len} (capacity {MEF_CALLBACK_BUFFER_CAPACITY})"
            )));
        }
        let spki = out[..len].to_vec();
        // The check is the core's, for every key held outside the library.
        if let Err(check) = est::keys::check_public_key(&spki, algorithm) {
            return Err(callback_check_failed(
                format!("public_key callback for key {handle}: {check}"),
                Some(check),
            ));
        }
        Ok(CallbackKey {
            cbs,
            handle,
            algorithm,
            spki,
        })
    }
}

impl PrivateKey for CallbackKey {
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    fn public_key_info(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; MEF_CALLBACK_BUFFER_CAPACITY];
        let mut len = 0usize;
        // SAFETY: `message` is readable for its length, `out` writable for its length, `len`
        // a valid usize; the host registered the callback with this user_data.
        let rc = unsafe {
            (self.cbs.sign)(
                self.cbs.user_data.0,
                self.handle,
                message.as_ptr(),
                message.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            )
        };
        if rc != MEF_CB_OK {
            return Err(callback_failed(format!(
                "sign callback returned {rc} for key {}",
                self.handle
            )));
        }
        if len == 0 || len > out.len() {
            return Err(callback_failed(format!(
                "sign callback returned length {len} (capacity {MEF_CALLBACK_BUFFER_CAPACITY})"
            )));
        }
        out.truncate(len);
        // The core checks every signature (keys::sign_checked); checked here too so that a
        // callback's bad signature is reported as the callback's failure.
        est::keys::check_signature(self, message, &out).map_err(|check| {
            callback_check_failed(
                format!(
                    "sign callback for key {} returned a signature that does not verify",
                    self.handle
                ),
                Some(check),
            )
        })?;
        Ok(out)
    }
}

/// A host key the store knows: its handle and public key (how an installed key is matched to
/// its handle).
#[derive(Debug, Clone)]
struct KnownKey {
    handle: u64,
    spki: Vec<u8>,
}

/// A [`CredentialStore`] over the credential and key callbacks.
#[derive(Debug)]
pub(crate) struct CallbackStore {
    keys: KeyCallbacks,
    creds: CredentialCallbacks,
    /// Keys from `generate` not yet committed or discarded.
    provisional: Vec<KnownKey>,
    /// The key `load` returned (through `current`), for renewals.
    current: Mutex<Option<KnownKey>>,
}

fn store_error(operation: &'static str, reason: String) -> Error {
    Error::store(operation, reason)
}

impl CallbackStore {
    pub(crate) fn new(keys: KeyCallbacks, creds: CredentialCallbacks) -> CallbackStore {
        CallbackStore {
            keys,
            creds,
            provisional: Vec::new(),
            current: Mutex::new(None),
        }
    }

    /// The handle of `key` if it is one of the host's keys this store handed out.
    fn handle_of(&self, key: &dyn PrivateKey) -> Option<(u64, bool)> {
        let spki = key.public_key_info();
        if let Some(k) = self.provisional.iter().find(|k| k.spki == spki) {
            return Some((k.handle, true));
        }
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|k| k.spki == spki)
            .map(|k| (k.handle, false))
    }
}

impl CredentialStore for CallbackStore {
    fn load(&self) -> Result<Option<Credentials>> {
        let mut sink = mef_credentials_sink::default();
        // SAFETY: registered together with its user_data; the sink outlives the call.
        let rc = unsafe { (self.creds.load)(self.creds.user_data.0, &mut sink) };
        if rc == MEF_CB_NOT_FOUND {
            return Ok(None);
        }
        if rc != MEF_CB_OK {
            return Err(store_error(
                "load",
                format!("the load callback returned {rc}"),
            ));
        }
        let Some((chain, trust_anchors)) = sink.loaded.take() else {
            return Err(store_error(
                "load",
                "the load callback returned MEF_CB_OK without calling mef_credentials_set".into(),
            ));
        };
        let mut handle = 0u64;
        let mut key_type: mef_key_type = 0;
        // SAFETY: registered with this user_data; both out-pointers are valid locals.
        let rc = unsafe { (self.keys.current)(self.keys.user_data.0, &mut handle, &mut key_type) };
        if rc == MEF_CB_NOT_FOUND {
            return Err(store_error(
                "load",
                "credentials are stored but the current key callback found no key".into(),
            ));
        }
        if rc != MEF_CB_OK {
            return Err(callback_failed(format!(
                "current key callback returned {rc}"
            )));
        }
        let algorithm = key_type_arg(key_type).map_err(|_| {
            callback_failed(format!("current key callback returned key type {key_type}"))
        })?;
        let key = CallbackKey::new(self.keys, handle, algorithm)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(KnownKey {
            handle,
            spki: key.spki.clone(),
        });
        Ok(Some(Credentials {
            trust_anchors,
            chain,
            key: Arc::new(key),
        }))
    }

    fn create_key(&mut self, algorithm: KeyAlgorithm) -> Result<Arc<dyn PrivateKey>> {
        let mut handle = 0u64;
        // SAFETY: registered with this user_data; `handle` is a valid local.
        let rc = unsafe {
            (self.keys.generate)(self.keys.user_data.0, key_type_of(algorithm), &mut handle)
        };
        if rc != MEF_CB_OK {
            return Err(callback_failed(format!("generate callback returned {rc}")));
        }
        match CallbackKey::new(self.keys, handle, algorithm) {
            Ok(key) => {
                self.provisional.push(KnownKey {
                    handle,
                    spki: key.spki.clone(),
                });
                Ok(Arc::new(key))
            }
            Err(e) => {
                // The procedure never sees this key, so it cannot hand it back: drop it here.
                self.discard_handle(handle);
                Err(e)
            }
        }
    }

    fn install(&mut self, credentials: &Credentials) -> Result<()> {
        let chain_pem = certs_to_pem(&credentials.chain);
        let ta_pem = certs_to_pem(&credentials.trust_anchors);
        let (handle, provisional, key_pem) = match self.handle_of(credentials.key.as_ref()) {
            Some((handle, provisional)) => (handle, provisional, None),
            None => {
                // A server-generated key (RFC 7030 4.4): software, handed over as PKCS #8.
                let pkcs8 = credentials.key.pkcs8_der().ok_or_else(|| {
                    store_error(
                        "install",
                        "the key is neither a host key nor a software key".into(),
                    )
                })?;
                let pem = Zeroizing::new(
                    der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &pkcs8)
                        .map_err(|e| {
                            store_error("install", format!("cannot encode the key: {e}"))
                        })?,
                );
                (0, false, Some(pem))
            }
        };
        let (key_ptr, key_len) = key_pem
            .as_ref()
            .map_or((std::ptr::null(), 0), |p| (p.as_ptr(), p.len()));
        // SAFETY: every buffer is valid for its length during the call; registered with this
        // user_data.
        let rc = unsafe {
            (self.creds.store)(
                self.creds.user_data.0,
                chain_pem.as_ptr(),
                chain_pem.len(),
                ta_pem.as_ptr(),
                ta_pem.len(),
                handle,
                key_ptr,
                key_len,
            )
        };
        drop(key_pem); // zeroized
        if rc != MEF_CB_OK {
            return Err(store_error(
                "install",
                format!("the store callback returned {rc}"),
            ));
        }
        if provisional {
            self.provisional.retain(|k| k.handle != handle);
            // SAFETY: registered with this user_data.
            let rc = unsafe { (self.keys.commit)(self.keys.user_data.0, handle) };
            if rc != MEF_CB_OK {
                log::warn!("commit callback returned {rc} for key {handle}");
            }
        }
        Ok(())
    }

    fn discard_key(&mut self, key: &Arc<dyn PrivateKey>) {
        if let Some((handle, true)) = self.handle_of(key.as_ref()) {
            self.discard_handle(handle);
        }
    }
}

impl CallbackStore {
    fn discard_handle(&mut self, handle: u64) {
        self.provisional.retain(|k| k.handle != handle);
        // SAFETY: registered with this user_data.
        let rc = unsafe { (self.keys.discard)(self.keys.user_data.0, handle) };
        if rc != MEF_CB_OK {
            log::warn!("discard callback returned {rc} for key {handle}");
        }
    }
}
