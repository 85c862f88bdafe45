//! `mef_config`: what a client is created from.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use zeroize::Zeroizing;

use super::callbacks::{CredentialCallbacks, KeyCallbacks};
use super::logging::{level_filter, mef_log_cb, LogSink};
use super::{
    bytes_arg, check, free_box, guard, key_type_arg, mef_credential_callbacks, mef_identity_cb,
    mef_key_callbacks, mef_key_type, mef_log_level, mef_result, mef_subject_type, mef_tls_profile,
    str_arg, subject_type_arg, tls_profile_arg, UserData, MEF_ERR_INVALID_ARGUMENT,
    MEF_ERR_NULL_ARGUMENT, MEF_OK,
};
use est::identity::{SpId, SubjectIdentity};
use est::keys::{KeyAlgorithm, SoftwareKey};
use est::psk::PskCredential;
use est::transport::TransportConfig;
use est::uri::EstUri;

/// The third-party EST client certificate of Initial Certificate Provisioning (TS-0003
/// 8.3.6.2.2 pre-condition B.ii).
#[derive(Debug, Clone)]
pub(crate) enum ThirdParty {
    /// A software key given as PEM.
    Software {
        chain: Vec<CertificateDer<'static>>,
        key: Arc<SoftwareKey>,
    },
    /// A key behind the key callbacks.
    Handle {
        chain: Vec<CertificateDer<'static>>,
        handle: u64,
        algorithm: KeyAlgorithm,
    },
}

/// The configuration a client is created from (opaque). Create with `mef_config_new`, free
/// with `mef_config_free`; a client copies what it needs, so the configuration may be freed
/// or changed after `mef_client_new`.
#[derive(Debug, Clone, Default)]
pub struct mef_config {
    pub(crate) base_uri: Option<EstUri>,
    /// The estBaseURI of the MEF's TLS-PSK listener, when not `base_uri`.
    pub(crate) psk_base_uri: Option<EstUri>,
    pub(crate) trust_anchors: Option<Vec<CertificateDer<'static>>>,
    pub(crate) third_party: Option<ThirdParty>,
    /// The PPSK-based RSPF credential (KpmID, Kpm); `Debug` redacts the key.
    pub(crate) psk: Option<PskCredential>,
    pub(crate) identity: Option<SubjectIdentity>,
    /// The FQDN of the MEF issuing the CERT_PROV command (TS-0003 8.3.9.7).
    pub(crate) mef_fqdn: Option<String>,
    /// The M2M-SP-ID SP-relative subject IDs resolve against (TS-0001 7.2).
    pub(crate) sp_id: Option<SpId>,
    pub(crate) key_algorithm: KeyAlgorithm,
    pub(crate) transport: TransportConfig,
    pub(crate) tls_profile: est::tls::TlsProfile,
    pub(crate) store_dir: Option<PathBuf>,
    /// The device key in a PKCS #11 token (`mef_config_set_pkcs11_key`), with `store_dir`.
    pub(crate) pkcs11_key: Option<super::pkcs11::Pkcs11KeyConfig>,
    pub(crate) key_callbacks: Option<KeyCallbacks>,
    pub(crate) credential_callbacks: Option<CredentialCallbacks>,
    pub(crate) identity_callback: Option<(
        unsafe extern "C" fn(*mut c_void, *mut super::mef_identity_sink) -> c_int,
        UserData,
    )>,
    pub(crate) log: Option<LogSink>,
    /// Why the most recent failed call on this configuration failed (`mef_config_last_error`).
    pub(crate) last_error: LastError,
}

/// The reason of the most recent failed call on a configuration, as the core gave it (issue
/// #14: C callers get the same text as the CLI). Behind a mutex because `mef_client_new`
/// reports into a `const` configuration; a clone starts empty (a client has its own).
#[derive(Debug, Default)]
pub(crate) struct LastError(std::sync::Mutex<CString>);

impl Clone for LastError {
    fn clone(&self) -> LastError {
        LastError::default()
    }
}

impl LastError {
    pub(crate) fn set(&self, reason: &str) {
        let text = CString::new(reason.replace('\0', "\u{FFFD}")).unwrap_or_default();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }

    fn as_ptr(&self) -> *const c_char {
        // The CString's buffer outlives the guard: it is only replaced by the next `set`.
        self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ptr()
    }
}

impl mef_config {
    /// Records why a setter failed and returns its code.
    pub(crate) fn fail(&self, code: mef_result, reason: impl std::fmt::Display) -> mef_result {
        self.last_error.set(&reason.to_string());
        code
    }
}

/// Like `check!` in a setter, keeping the reason for `mef_config_last_error`: `$e` is a
/// `Result<T, E: Display>` whose error becomes `MEF_ERR_INVALID_ARGUMENT`.
macro_rules! reason {
    ($config:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $config.fail(MEF_ERR_INVALID_ARGUMENT, e),
        }
    };
}

/// A string or byte argument of a setter: NULL or non-UTF-8 text is refused with a reason
/// naming the argument.
macro_rules! arg {
    ($config:expr, $name:literal, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(MEF_ERR_NULL_ARGUMENT) => {
                return $config.fail(MEF_ERR_NULL_ARGUMENT, concat!($name, " is NULL"))
            }
            Err(code) => return $config.fail(code, concat!($name, " is not UTF-8 text")),
        }
    };
}
pub(crate) use arg;

/// Why a PEM argument holds no certificates: the argument, and the core's reason.
#[derive(Debug)]
enum PemArgError {
    NotUtf8(&'static str),
    Certificates(&'static str, est::Error),
}

impl std::fmt::Display for PemArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemArgError::NotUtf8(what) => write!(f, "{what}: not PEM text (not UTF-8)"),
            PemArgError::Certificates(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

/// PEM CERTIFICATE blocks, with the parser's reason on failure.
fn pem_certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, PemArgError> {
    let text = std::str::from_utf8(pem).map_err(|_| PemArgError::NotUtf8(what))?;
    est::store::parse_certs_pem(text).map_err(|e| PemArgError::Certificates(what, e))
}

/// A callback struct whose first member is its `struct_size` (the ABI's way to grow): copied
/// when the size is this library's, else the reason it is refused. Only `struct_size` is read
/// before the size is checked.
///
/// # Safety
/// `p` must be NULL or point to a readable `size_t` and, if that is `size_of::<T>()`, to a
/// readable `T`.
unsafe fn versioned<T: Copy>(
    p: *const T,
    name: &str,
) -> std::result::Result<T, (mef_result, String)> {
    if p.is_null() {
        return Err((MEF_ERR_NULL_ARGUMENT, format!("the {name} pointer is NULL")));
    }
    // SAFETY: non-NULL; its first member is a size_t (caller's contract).
    let size = unsafe { p.cast::<usize>().read_unaligned() };
    if size != std::mem::size_of::<T>() {
        return Err((
            MEF_ERR_INVALID_ARGUMENT,
            format!(
                "{name}.struct_size is {size}, not sizeof({name}) ({}) of this library version: \
                 set it to sizeof({name})",
                std::mem::size_of::<T>()
            ),
        ));
    }
    // SAFETY: the caller says it is a `T` of this size.
    Ok(unsafe { p.read_unaligned() })
}

/// A callback struct argument: [`versioned`], then converted by `new`, which gives `None`
/// when a member is NULL (`MEF_ERR_NULL_ARGUMENT`, saying which members are `required`). A
/// refusal is recorded on `config`.
///
/// # Safety
/// As for [`versioned`].
unsafe fn callbacks_arg<T: Copy, C>(
    config: &mef_config,
    p: *const T,
    name: &str,
    required: &str,
    new: impl FnOnce(&T) -> Option<C>,
) -> Result<C, mef_result> {
    // SAFETY: NULL or readable for its `struct_size` (caller's contract); copied out at once.
    let cbs = unsafe { versioned(p, name) }.map_err(|(code, reason)| config.fail(code, reason))?;
    new(&cbs).ok_or_else(|| {
        config.fail(
            MEF_ERR_NULL_ARGUMENT,
            format!("a member of {name} is NULL ({required})"),
        )
    })
}

/// Returns why the most recent failed call on `config` failed (the setters, and
/// `mef_client_new` with this configuration), e.g. `invalid argument EST base URI: "ftp://x":
/// ...`, or "" if none failed. A successful call does not clear it. The text never holds a
/// key or a PSK. The pointer is owned by the configuration and valid until its next failing
/// call or `mef_config_free`; NULL `config` gives "".
///
/// # Safety
/// `config` must be NULL or a live pointer from `mef_config_new`.
#[no_mangle]
pub unsafe extern "C" fn mef_config_last_error(config: *const mef_config) -> *const c_char {
    // SAFETY: NULL or a live configuration (caller's contract).
    match unsafe { config.as_ref() } {
        Some(config) => config.last_error.as_ptr(),
        None => c"".as_ptr(),
    }
}

/// The body of a setter: behind the panic boundary, a NULL `config` is
/// `MEF_ERR_NULL_ARGUMENT`, else `set` runs on the configuration (recording its reasons with
/// [`mef_config::fail`]).
///
/// # Safety
/// As for [`config_mut`].
pub(crate) unsafe fn with_config(
    config: *mut mef_config,
    set: impl FnOnce(&mut mef_config) -> mef_result,
) -> mef_result {
    guard(|| {
        // SAFETY: caller's contract.
        let config = check!(unsafe { config_mut(config) });
        set(config)
    })
}

/// Borrows the configuration behind a non-NULL pointer.
///
/// # Safety
/// `config` must be NULL or a live pointer from `mef_config_new`, not used elsewhere during
/// the call.
pub(crate) unsafe fn config_mut<'a>(
    config: *mut mef_config,
) -> Result<&'a mut mef_config, mef_result> {
    // SAFETY: NULL or a live, exclusively used Box pointer (caller's contract).
    unsafe { config.as_mut() }.ok_or(MEF_ERR_NULL_ARGUMENT)
}

/// Creates an empty configuration (P-256 keys, default timeouts: connect 10 s, TLS 15 s,
/// response 60 s; polling: 10 attempts, 600 s) and writes it to `*out`.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mef_config_new(out: *mut *mut mef_config) -> mef_result {
    guard(|| {
        if out.is_null() {
            return MEF_ERR_NULL_ARGUMENT;
        }
        let config = Box::into_raw(Box::default());
        // SAFETY: `out` is non-NULL and writable (contract above).
        unsafe { out.write(config) };
        MEF_OK
    })
}

/// Frees a configuration. NULL is ignored.
///
/// # Safety
/// `config` must be NULL or a pointer from `mef_config_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn mef_config_free(config: *mut mef_config) {
    // SAFETY: NULL or a pointer from Box::into_raw in mef_config_new, freed once (contract).
    unsafe { free_box(config) }
}

/// Sets the estBaseURI (`https://host[:port]/.well-known/est[/label]`), validated now
/// (`MEF_ERR_INVALID_ARGUMENT` when malformed).
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `uri` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_base_uri(
    config: *mut mef_config,
    uri: *const c_char,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let uri = arg!(config, "uri", unsafe { str_arg(uri) });
        let uri = reason!(config, EstUri::parse(uri));
        config.base_uri = Some(uri);
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the estBaseURI of the MEF's TLS-PSK listener, for a MEF that serves TLS-PSK on another
/// authority than its certificate listener (the reference MEF's `--psk-listen`): Initial
/// Certificate Provisioning with a PSK (`mef_config_set_psk`, `mef_identity_set_psk`) goes
/// there, everything certificate-authenticated to `mef_config_set_base_uri`'s. So one client
/// can re-provision and, with `mef_client_renew`, re-bootstrap with its Kpm. When
/// `mef_config_set_mef_fqdn` is set, this URI's host is held to it too. A URI that does not
/// parse is `MEF_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `uri` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_psk_base_uri(
    config: *mut mef_config,
    uri: *const c_char,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let uri = arg!(config, "uri", unsafe { str_arg(uri) });
        let uri = reason!(config, EstUri::parse(uri));
        config.psk_base_uri = Some(uri);
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the EST client explicit trust anchor database that authenticates the MEF during
/// Initial Certificate Provisioning (RFC 7030 3.6.1): PEM CERTIFICATE blocks.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `pem` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_trust_anchors_pem(
    config: *mut mef_config,
    pem: *const u8,
    len: usize,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let pem = arg!(config, "pem", unsafe { bytes_arg(pem, len) });
        config.trust_anchors = Some(reason!(config, pem_certs(pem, "trust anchors")));
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the third-party EST client certificate (PEM chain, leaf first) and its software key
/// (PEM: PKCS #8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY") for Initial Certificate Provisioning.
/// The key must match the certificate. Replaces `mef_config_set_client_cert_key_handle`.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); buffers readable for their lengths.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_client_cert_pem(
    config: *mut mef_config,
    chain_pem: *const u8,
    chain_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let chain = arg!(config, "chain_pem", unsafe {
            bytes_arg(chain_pem, chain_len)
        });
        // SAFETY: caller's contract above.
        let key = arg!(config, "key_pem", unsafe { bytes_arg(key_pem, key_len) });
        let chain = reason!(config, pem_certs(chain, "client certificate"));
        let key_text = Zeroizing::new(
            reason!(
                config,
                std::str::from_utf8(key).map_err(|_| "client key: not PEM text")
            )
            .to_owned(),
        );
        // The key's error names the problem (RSA, encrypted, malformed), never key bytes.
        let key = reason!(
            config,
            SoftwareKey::from_pem(&key_text).map_err(|e| format!("client key: {e}"))
        );
        if !check!(est::keys::is_key_of(&key, &chain[0]).map_err(|_| MEF_ERR_INVALID_ARGUMENT)) {
            return config.fail(
                MEF_ERR_INVALID_ARGUMENT,
                "client key: it is not the key of the client certificate (the first \
             certificate of the chain)",
            );
        }
        config.third_party = Some(ThirdParty::Software {
            chain,
            key: Arc::new(key),
        });
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the third-party EST client certificate (PEM chain, leaf first) whose key is the
/// key-callback key `key_handle` of type `key_type`. Needs key callbacks (checked by
/// `mef_client_new`); the key's match with the certificate is checked when it is used.
/// Replaces `mef_config_set_client_cert_pem`.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `chain_pem` readable for `chain_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_client_cert_key_handle(
    config: *mut mef_config,
    chain_pem: *const u8,
    chain_len: usize,
    key_handle: u64,
    key_type: mef_key_type,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let chain = arg!(config, "chain_pem", unsafe {
            bytes_arg(chain_pem, chain_len)
        });
        let chain = reason!(config, pem_certs(chain, "client certificate"));
        let algorithm = reason!(
            config,
            key_type_arg(key_type).map_err(|_| format!("unknown key type {key_type}"))
        );
        config.third_party = Some(ThirdParty::Handle {
            chain,
            handle: key_handle,
            algorithm,
        });
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the pre-provisioned symmetric key of the PPSK-based RSPF (TS-0003 8.3.2.1): the KpmID
/// (sent as the TLS `psk_identity`, UTF-8) and the key Kpm (`kpm_len` bytes, 16 to 64). Initial
/// Certificate Provisioning then runs over TLS-PSK (RFC 7030 3.3.3): the PSK authenticates both
/// ends, so no trust anchors are needed, and the MEF CA certificates fetched on that channel
/// become the installed trust anchors. `mef_client_cacerts` and `mef_client_csrattrs` use it
/// too. Exclusive with a third-party client certificate (`mef_client_new` refuses both:
/// the RSPF would be ambiguous). The key is copied into memory wiped when the configuration
/// (and any client made from it) is freed, and never logged.
///
/// `MEF_ERR_INVALID_ARGUMENT`: an empty KpmID, one longer than 128 bytes or holding control
/// characters, a Kpm shorter than 16 or longer than 64 bytes (RFC 4279 5.3, 7.2). A library
/// built without the cargo feature `psk` accepts the credential here and fails the TLS-PSK
/// operations with `MEF_ERR_INVALID_ARGUMENT` ("no TLS-PSK support"); the scripts/install.sh
/// build has it.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `kpm_id` a NUL-terminated string; `kpm`
/// readable for `kpm_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_psk(
    config: *mut mef_config,
    kpm_id: *const c_char,
    kpm: *const u8,
    kpm_len: usize,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let kpm_id = arg!(config, "kpm_id", unsafe { str_arg(kpm_id) });
        // SAFETY: caller's contract above.
        let kpm = arg!(config, "kpm", unsafe { bytes_arg(kpm, kpm_len) });
        // The error names the rule broken (length, characters), never the key.
        let psk = reason!(
            config,
            PskCredential::new(kpm_id, Zeroizing::new(kpm.to_vec()))
        );
        config.psk = Some(psk);
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Fixes the subject identity (certSubjectType and certSubjectID of TS-0003 8.3.9.7): an AE-ID
/// as its full URI or absolute (`//SP-ID/CSE-ID/AE-ID`), a CSE-ID as its public domain name or
/// absolute (`//SP-ID/CSE-ID`), a Node-ID as a URI or a dotted OID (TS-0001 7.2; the
/// subjectAltName each maps to is in docs/C-API.md). After `mef_config_set_sp_id`, also the
/// SP-relative forms (`/CSE-ID/AE-ID`, `/CSE-ID`, a bare CSE-ID). Without it the identity the
/// MEF asks for in its CSR attributes is used.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `id` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_subject(
    config: *mut mef_config,
    r#type: mef_subject_type,
    id: *const c_char,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let id = arg!(config, "id", unsafe { str_arg(id) });
        let subject_type = reason!(
            config,
            subject_type_arg(r#type).map_err(|_| format!("unknown subject type {}", r#type))
        );
        let identity = match &config.sp_id {
            None => SubjectIdentity::new(subject_type, id),
            Some(sp) => SubjectIdentity::with_sp_id(subject_type, id, sp),
        };
        config.identity = Some(reason!(config, identity));
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the M2M-SP-ID (`//example.net` or `example.net`, TS-0001 7.2) that SP-relative
/// subject IDs belong to: those given to `mef_config_set_subject` after this call and to
/// `mef_identity_set_subject` in the identity callback. `MEF_ERR_INVALID_ARGUMENT` unless the
/// domain is a DNS name of at least two labels.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `sp_id` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_sp_id(
    config: *mut mef_config,
    sp_id: *const c_char,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let sp_id = arg!(config, "sp_id", unsafe { str_arg(sp_id) });
        config.sp_id = Some(reason!(config, SpId::parse(sp_id)));
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the FQDN of the MEF that issued the CERT_PROV command (TS-0003 8.3.9.7). Each
/// procedure (`mef_client_provision`, `mef_client_reprovision`) then starts by verifying the
/// command's arguments, before any I/O: the base URI's host must be this FQDN (ASCII case and
/// one trailing dot ignored) and a subject identity must be set (`mef_config_set_subject` or
/// the identity callback). A failure is `MEF_ERR_INVALID_ARGUMENT`, i.e.
/// `MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS`, with the reason in `mef_client_last_error`. A
/// server certificate carrying id-kp-cmcRA may still be named otherwise (RFC 7030 3.6.1).
/// An empty string, or one with white space or non-ASCII characters, is
/// `MEF_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `fqdn` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_mef_fqdn(
    config: *mut mef_config,
    fqdn: *const c_char,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let fqdn = arg!(config, "fqdn", unsafe { str_arg(fqdn) });
        if fqdn.is_empty() || !fqdn.bytes().all(|b| b.is_ascii_graphic()) {
            return config.fail(
                MEF_ERR_INVALID_ARGUMENT,
                format!("MEF FQDN {fqdn:?}: empty, or holds white space or non-ASCII characters"),
            );
        }
        config.mef_fqdn = Some(fqdn.to_owned());
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the key type generated when the MEF does not ask for one (default
/// `MEF_KEY_ECDSA_P256_SHA256`, TS-0003 10.1.1.1). With the default, the issued chain must
/// also meet TS-0003 10.1.1.3 (every signature ecdsa-with-SHA256, P-256 CA keys); with another
/// type, any signature algorithm the library offers is accepted.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL).
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_key_type(
    config: *mut mef_config,
    r#type: mef_key_type,
) -> mef_result {
    let set = |config: &mut mef_config| {
        config.key_algorithm = reason!(
            config,
            key_type_arg(r#type).map_err(|_| format!("unknown key type {}", r#type))
        );
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the TLS profile of certificate-authenticated connections (default
/// `MEF_TLS_PROFILE_MODERN`; `MEF_TLS_PROFILE_TS0003` for TS-0003 10.2.1/10.2.3). An unknown
/// value is `MEF_ERR_INVALID_ARGUMENT`. The PSK path (`mef_config_set_psk`) is not affected.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL).
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_tls_profile(
    config: *mut mef_config,
    profile: mef_tls_profile,
) -> mef_result {
    let set = |config: &mut mef_config| {
        config.tls_profile = reason!(
            config,
            tls_profile_arg(profile).map_err(|_| format!("unknown TLS profile {profile}"))
        );
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the timeouts in milliseconds: TCP connect, TLS handshake, and each request's response.
/// Zero is `MEF_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL).
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_timeouts(
    config: *mut mef_config,
    connect_ms: u32,
    tls_ms: u32,
    response_ms: u32,
) -> mef_result {
    let set = |config: &mut mef_config| {
        config.transport = reason!(
            config,
            config.transport.clone().with_timeouts(
                Duration::from_millis(connect_ms.into()),
                Duration::from_millis(tls_ms.into()),
                Duration::from_millis(response_ms.into()),
            )
        );
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Bounds the polling of 202 Accepted answers (RFC 7030 4.2.3): at most `max_attempts`
/// requests in all (at least 1) and `max_total_ms` of waiting between them. Each wait is at
/// least the server's Retry-After; a Retry-After longer than what is left of `max_total_ms` is
/// not shortened: the call ends with `MEF_ERR_RETRY_LATER` and a message saying how long the
/// MEF asked for.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL).
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_polling(
    config: *mut mef_config,
    max_attempts: u32,
    max_total_ms: u32,
) -> mef_result {
    let set = |config: &mut mef_config| {
        config.transport = reason!(
            config,
            config
                .transport
                .clone()
                .with_polling(max_attempts, Duration::from_millis(max_total_ms.into()))
        );
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Milliseconds of a configured bound; the setters take `u32`, so only a default could be
/// larger, and it is shown as `u32::MAX`.
fn ms_u32(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The body of a getter: `config` and the outputs (`null_output`: one of them is NULL)
/// checked, then `write` under the panic boundary; nothing is written on a failure.
///
/// # Safety
/// `config` NULL or a live configuration.
unsafe fn read_config(
    config: *const mef_config,
    null_output: bool,
    write: impl FnOnce(&mef_config),
) -> mef_result {
    guard(|| {
        // SAFETY: NULL or a live configuration (caller's contract).
        match unsafe { config.as_ref() } {
            Some(config) if !null_output => {
                write(config);
                MEF_OK
            }
            _ => MEF_ERR_NULL_ARGUMENT,
        }
    })
}

/// Reads the timeouts in milliseconds (`mef_config_new`'s defaults until
/// `mef_config_set_timeouts`): for a binding that sets one and keeps the library's others, so
/// the defaults live in the library alone. The outputs are written only on `MEF_OK`; a NULL
/// argument is `MEF_ERR_NULL_ARGUMENT` (a reader leaves `mef_config_last_error` as it is).
///
/// # Safety
/// `config` NULL or a live configuration; each output NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mef_config_get_timeouts(
    config: *const mef_config,
    connect_ms: *mut u32,
    tls_ms: *mut u32,
    response_ms: *mut u32,
) -> mef_result {
    let null_output = connect_ms.is_null() || tls_ms.is_null() || response_ms.is_null();
    let write = |config: &mef_config| {
        let t = &config.transport;
        // SAFETY: non-NULL (checked by read_config) and writable (caller's contract).
        unsafe {
            connect_ms.write(ms_u32(t.connect_timeout));
            tls_ms.write(ms_u32(t.tls_timeout));
            response_ms.write(ms_u32(t.response_timeout));
        }
    };
    // SAFETY: caller's contract above.
    unsafe { read_config(config, null_output, write) }
}

/// Reads the polling bounds (`mef_config_new`'s defaults until `mef_config_set_polling`), as
/// `mef_config_get_timeouts` reads the timeouts. The outputs are written only on `MEF_OK`.
///
/// # Safety
/// `config` NULL or a live configuration; each output NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mef_config_get_polling(
    config: *const mef_config,
    max_attempts: *mut u32,
    max_total_ms: *mut u32,
) -> mef_result {
    let null_output = max_attempts.is_null() || max_total_ms.is_null();
    let write = |config: &mef_config| {
        let poll = &config.transport.poll;
        // SAFETY: non-NULL (checked by read_config) and writable (caller's contract).
        unsafe {
            max_attempts.write(poll.max_attempts);
            max_total_ms.write(ms_u32(poll.max_total));
        }
    };
    // SAFETY: caller's contract above.
    unsafe { read_config(config, null_output, write) }
}

/// Uses the built-in file store in `dir` (created on the first install, mode 0700):
/// `cert.pem`, `key.pem` (PKCS #8, 0600) and `trust-anchors.pem`, installed atomically as a
/// set. Keys are software keys. Exclusive with credential and key callbacks.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `dir` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_store_dir(
    config: *mut mef_config,
    dir: *const c_char,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let dir = arg!(config, "dir", unsafe { str_arg(dir) });
        if dir.is_empty() {
            return config.fail(MEF_ERR_INVALID_ARGUMENT, "the store directory is empty");
        }
        config.store_dir = Some(PathBuf::from(dir));
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the key callbacks (the struct is copied; every member is required, a NULL member is
/// `MEF_ERR_NULL_ARGUMENT`). `user_data` is passed back to each of them and must stay valid
/// while a client created from this configuration exists.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `cbs` readable.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_key_callbacks(
    config: *mut mef_config,
    cbs: *const mef_key_callbacks,
    user_data: *mut c_void,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let cbs = check!(unsafe {
            callbacks_arg(
                config,
                cbs,
                "mef_key_callbacks",
                "all six are required",
                |cbs| KeyCallbacks::new(cbs, user_data),
            )
        });
        config.key_callbacks = Some(cbs);
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the credential callbacks (copied; every member required, a NULL member is
/// `MEF_ERR_NULL_ARGUMENT`). Needs key callbacks; exclusive with a store directory (both
/// checked by `mef_client_new`). `user_data` must stay valid while a client created from this
/// configuration exists.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `cbs` readable.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_credential_callbacks(
    config: *mut mef_config,
    cbs: *const mef_credential_callbacks,
    user_data: *mut c_void,
) -> mef_result {
    let set = |config: &mut mef_config| {
        // SAFETY: caller's contract above.
        let cbs = check!(unsafe {
            callbacks_arg(
                config,
                cbs,
                "mef_credential_callbacks",
                "both are required",
                |cbs| CredentialCallbacks::new(cbs, user_data),
            )
        });
        config.credential_callbacks = Some(cbs);
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the identity callback, called at the start of each procedure.
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `user_data` valid while a client created from
/// this configuration exists.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_identity_callback(
    config: *mut mef_config,
    cb: mef_identity_cb,
    user_data: *mut c_void,
) -> mef_result {
    let set = |config: &mut mef_config| {
        let Some(cb) = cb else {
            return config.fail(MEF_ERR_NULL_ARGUMENT, "cb is NULL");
        };
        config.identity_callback = Some((cb, UserData(user_data)));
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}

/// Sets the log callback and the most detailed level it receives. The library installs its
/// logger once, at the first call of this function; messages are forwarded unless the process
/// installed another one for the library's logging facade before (only a program that also
/// links Rust code can).
///
/// # Safety
/// `config` as for `mef_config_free` (non-NULL); `user_data` valid while a client created from
/// this configuration exists.
#[no_mangle]
pub unsafe extern "C" fn mef_config_set_log_callback(
    config: *mut mef_config,
    cb: mef_log_cb,
    user_data: *mut c_void,
    max_level: mef_log_level,
) -> mef_result {
    let set = |config: &mut mef_config| {
        let Some(cb) = cb else {
            return config.fail(MEF_ERR_NULL_ARGUMENT, "cb is NULL");
        };
        let Some(max) = level_filter(max_level) else {
            return config.fail(
                MEF_ERR_INVALID_ARGUMENT,
                format!("unknown log level {max_level}"),
            );
        };
        super::logging::install(max);
        config.log = Some(LogSink {
            cb,
            user_data: UserData(user_data),
            max,
        });
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_config(config, set) }
}
