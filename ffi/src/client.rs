//! `mef_client`: runs the procedures; `mef_buffer`: bytes the library hands out.

use std::ffi::{c_char, c_int, CString};
use std::sync::Arc;

use rustls_pki_types::CertificateDer;

use super::callbacks::{
    call_identity, is_callback_failure, CallbackKey, CallbackStore, KeyCallbacks,
};
use super::config::ThirdParty;
use super::logging::{LogSink, SinkScope};
use super::result::result_of;
use super::{
    check, free_box, guard, guard_value, mef_config, mef_identity_sink, mef_key_source,
    mef_reprovision, mef_result, UserData, MEF_ERR_CALLBACK, MEF_ERR_INVALID_ARGUMENT,
    MEF_ERR_NULL_ARGUMENT, MEF_ERR_PANIC, MEF_KEY_GENERATE, MEF_KEY_SERVER_GENERATED, MEF_OK,
    MEF_REPROVISION_REKEY, MEF_REPROVISION_RENEW, MEF_REPROVISION_SERVER_KEYGEN,
};
use est::client::{Channel, Config, InitialAuth, KeySource, MefClient, Provisioned, Reprovision};
use est::error::{Error, Result};
use est::keys::PrivateKey;
use est::psk::PskCredential;
use est::store::{certs_to_pem, CredentialStore, FileStore};
use est::tls::ClientIdentity;
use est::uri::EstUri;

/// The credential storage of a client.
#[derive(Debug)]
enum Storage {
    Files(FileStore),
    Callbacks(CallbackStore),
    /// A PKCS #11 token store (`mef_config_set_pkcs11_key`).
    Token(TokenStore),
}

/// The token store behind `Storage::Token` (`Debug` names it only).
struct TokenStore(Box<dyn CredentialStore>);

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenStore")
    }
}

impl Storage {
    fn as_dyn(&mut self) -> &mut dyn CredentialStore {
        match self {
            Storage::Files(s) => s,
            Storage::Callbacks(s) => s,
            Storage::Token(s) => s.0.as_mut(),
        }
    }
}

/// A MEF Client (opaque): runs the provisioning procedures against one MEF.
///
/// Thread model: one thread at a time. A client may be moved to another thread between calls,
/// but must not be used from two threads at once; its callbacks run on the calling thread,
/// during the call.
#[derive(Debug)]
pub struct mef_client {
    base_uri: EstUri,
    settings: mef_config,
    storage: Storage,
    last_error: CString,
    last_handshakes: u32,
    /// When renewal is due (`mef_client_set_renewal_*`; default two thirds, jitter 0.1).
    pub(super) renewal: est::renewal::RenewalPolicy,
    /// Whether the last failed call is worth retrying (`est::renewal::classify`).
    pub(super) last_failure: Option<est::renewal::FailureKind>,
}

type IdentityCallback = (
    unsafe extern "C" fn(*mut std::ffi::c_void, *mut mef_identity_sink) -> c_int,
    UserData,
);

/// What a failed call reports: its code and its detailed message.
struct Failure {
    code: mef_result,
    message: String,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Failure {
        Failure {
            code: MEF_ERR_INVALID_ARGUMENT,
            message: message.into(),
        }
    }
}

impl mef_client {
    fn new(config: &mef_config) -> std::result::Result<mef_client, Failure> {
        let base_uri = config
            .base_uri
            .clone()
            .ok_or_else(|| Failure::invalid("no base URI configured (mef_config_set_base_uri)"))?;
        let storage = match (&config.store_dir, &config.credential_callbacks) {
            (Some(_), Some(_)) => {
                return Err(Failure::invalid(
                    "both a store directory and credential callbacks are configured; choose one",
                ))
            }
            (None, None) => {
                return Err(Failure::invalid(
                    "no credential storage configured (mef_config_set_store_dir or \
                     mef_config_set_credential_callbacks)",
                ))
            }
            (Some(dir), None) => {
                if config.key_callbacks.is_some() {
                    return Err(Failure::invalid(
                        "key callbacks need credential callbacks: a store directory holds \
                         software keys only",
                    ));
                }
                let failure = |e: Error| Failure {
                    code: result_of(&e),
                    message: e.text_with_causes(),
                };
                match &config.pkcs11_key {
                    Some(token) => Storage::Token(TokenStore(token.open(dir).map_err(failure)?)),
                    None => Storage::Files(FileStore::new(dir).map_err(failure)?),
                }
            }
            (None, Some(_)) if config.pkcs11_key.is_some() => {
                return Err(Failure::invalid(
                    "a PKCS #11 key needs the store directory (mef_config_set_store_dir), not \
                         credential callbacks",
                ))
            }
            (None, Some(creds)) => {
                let keys = config.key_callbacks.ok_or_else(|| {
                    Failure::invalid("credential callbacks need key callbacks too")
                })?;
                Storage::Callbacks(CallbackStore::new(keys, *creds))
            }
        };
        if config.psk.is_some() && config.third_party.is_some() {
            return Err(Failure::invalid(
                "both a PSK (mef_config_set_psk) and a third-party client certificate are \
                 configured: the RSPF of Initial Certificate Provisioning is ambiguous; choose one",
            ));
        }
        if matches!(config.third_party, Some(ThirdParty::Handle { .. }))
            && config.key_callbacks.is_none()
        {
            return Err(Failure::invalid(
                "the client certificate's key is a key handle but no key callbacks are configured",
            ));
        }
        Ok(mef_client {
            base_uri,
            settings: config.clone(),
            storage,
            last_error: CString::default(),
            last_handshakes: 0,
            renewal: est::renewal::RenewalPolicy::default(),
            last_failure: None,
        })
    }

    /// The core client for one call; for a procedure (`ask_identity`), with the identity the
    /// identity callback gives, and the PSK it supplies, if any.
    fn core(&self, ask_identity: bool) -> Result<(MefClient, Option<PskCredential>)> {
        let mut config = Config::new(self.base_uri.clone())
            .key_algorithm(self.settings.key_algorithm)
            .transport(self.settings.transport.clone())
            .tls_profile(self.settings.tls_profile);
        config.identity = self.settings.identity.clone();
        config.mef_fqdn = self.settings.mef_fqdn.clone();
        config.psk_base_uri = self.settings.psk_base_uri.clone();
        let mut psk = None;
        let callback: Option<IdentityCallback> = self.settings.identity_callback;
        if let Some((cb, user_data)) = callback.filter(|_| ask_identity) {
            let answer = call_identity(cb, user_data, self.settings.sp_id.as_ref())?;
            if let Some(identity) = answer.identity {
                config.identity = Some(identity);
            }
            psk = answer.psk;
        }
        Ok((MefClient::new(config), psk))
    }

    fn key_callbacks(&self) -> Result<KeyCallbacks> {
        self.settings
            .key_callbacks
            .ok_or_else(|| Error::invalid("key callbacks", "not configured"))
    }

    /// The configured third-party client identity, its key fetched if it is a host key.
    fn third_party(&self) -> Result<Option<ClientIdentity>> {
        Ok(match &self.settings.third_party {
            None => None,
            Some(ThirdParty::Software { chain, key }) => Some(ClientIdentity {
                chain: chain.clone(),
                key: key.clone(),
            }),
            Some(ThirdParty::Handle {
                chain,
                handle,
                algorithm,
            }) => {
                let key = CallbackKey::new(self.key_callbacks()?, *handle, *algorithm)?;
                let key: Arc<dyn PrivateKey> = Arc::new(key);
                Some(ClientIdentity {
                    chain: chain.clone(),
                    key,
                })
            }
        })
    }

    fn trust_anchors_for_initial(&self) -> Result<Vec<CertificateDer<'static>>> {
        self.settings.trust_anchors.clone().ok_or_else(|| {
            Error::invalid(
                "trust anchors",
                "not configured (mef_config_set_trust_anchors_pem)",
            )
        })
    }

    fn provision(&mut self, key_source: KeySource) -> Result<Provisioned> {
        let (core, supplied_psk) = self.core(true)?;
        // The CERT_PROV arguments first (TS-0003 8.3.9.7), before the key callbacks are asked
        // for anything; the procedure checks them again, with the same function.
        est::certprov::verify_config(core.config())?;
        let auth = self.initial_auth(supplied_psk)?;
        core.provision(&auth, self.storage.as_dyn(), key_source)
    }

    /// The RSPF of Initial Certificate Provisioning: the PSK (from the identity callback, else
    /// the configured one), else the configured third-party certificate.
    fn initial_auth(&self, supplied_psk: Option<PskCredential>) -> Result<InitialAuth> {
        // The identity callback's PSK takes precedence over the configured one (the host may
        // keep Kpm in its own secure storage).
        let psk = supplied_psk.or_else(|| self.settings.psk.clone());
        let auth = match psk {
            // mef_client_new refuses a configured PSK with a certificate; a PSK from the
            // identity callback is only known now.
            Some(_) if self.settings.third_party.is_some() => return Err(Error::invalid(
                "psk",
                "both a PSK (from the identity callback) and a third-party client certificate are \
                     configured: the RSPF is ambiguous",
            )),
            // PPSK-based RSPF (TS-0003 8.3.2.1): the PSK authenticates both ends; the MEF CA
            // certificates fetched on this channel become the trust anchors (RFC 7030 4.1.1).
            Some(psk) => InitialAuth::Psk(psk),
            None => {
                let trust_anchors = self.trust_anchors_for_initial()?;
                let client = self.third_party()?.ok_or_else(|| {
                    Error::invalid(
                        "client certificate",
                        "Initial Certificate Provisioning needs a third-party client certificate \
                         (mef_config_set_client_cert_pem or \
                         mef_config_set_client_cert_key_handle) or a PSK (mef_config_set_psk or \
                         mef_identity_set_psk)",
                    )
                })?;
                InitialAuth::Certificate {
                    trust_anchors,
                    client,
                }
            }
        };
        Ok(auth)
    }

    /// The installed credentials, if any.
    pub(super) fn installed(&mut self) -> Result<Option<est::store::Credentials>> {
        self.storage.as_dyn().load()
    }

    /// Renewal with re-bootstrap (`est::renewal`): the bootstrap credential is the
    /// configured third-party certificate or PSK, when there is one.
    pub(super) fn renew(
        &mut self,
        mode: Reprovision,
        now: std::time::SystemTime,
    ) -> Result<est::renewal::Renewal> {
        let (core, supplied_psk) = self.core(true)?;
        let has_bootstrap = supplied_psk.is_some()
            || self.settings.psk.is_some()
            || self.settings.third_party.is_some();
        let bootstrap = if has_bootstrap {
            Some(self.initial_auth(supplied_psk)?)
        } else {
            None
        };
        core.renew(self.storage.as_dyn(), mode, bootstrap.as_ref(), now)
    }

    fn reprovision(&mut self, mode: Reprovision) -> Result<Provisioned> {
        // Re-provisioning authenticates with the installed certificate (TS-0003 8.3.6.2.3
        // pre-condition B); a PSK from the identity callback is not used.
        let (core, _) = self.core(true)?;
        core.reprovision(self.storage.as_dyn(), mode)
    }

    /// Trust anchors for `/cacerts` and `/csrattrs`: the core's rule (configured, else
    /// installed).
    fn trust_anchors_any(&mut self) -> Result<Vec<CertificateDer<'static>>> {
        est::client::query_trust_anchors(
            self.settings.trust_anchors.as_deref(),
            self.storage.as_dyn(),
        )
    }

    fn cacerts(&mut self) -> Result<Vec<u8>> {
        let (core, _) = self.core(false)?;
        let certs = match &self.settings.psk {
            Some(psk) => core.cacerts(Channel::Psk(psk))?,
            None => {
                let trust_anchors = self.trust_anchors_any()?;
                core.cacerts(Channel::certificate(&trust_anchors, self.third_party()?))?
            }
        };
        Ok(certs_to_pem(&certs).into_bytes())
    }

    fn csrattrs(&mut self) -> Result<Vec<u8>> {
        let (core, _) = self.core(false)?;
        let items = match &self.settings.psk {
            Some(psk) => core.csrattrs_items(Channel::Psk(psk))?,
            None => {
                let trust_anchors = self.trust_anchors_any()?;
                core.csrattrs_items(Channel::certificate(&trust_anchors, self.third_party()?))?
            }
        };
        match items {
            None => Ok(Vec::new()),
            Some(items) => est::proto::csrattrs::encode(&items).map_err(|source| Error::Decode {
                operation: est::Operation::CsrAttrs,
                source,
            }),
        }
    }

    /// Runs one call with the handle's log sink current, and records its outcome.
    pub(super) fn call<T>(
        &mut self,
        f: impl FnOnce(&mut mef_client) -> Result<T>,
    ) -> std::result::Result<T, mef_result> {
        let sink: Option<LogSink> = self.settings.log;
        let _scope = SinkScope::enter(sink);
        let outcome = f(self);
        self.last_failure = outcome.as_ref().err().map(est::renewal::classify);
        match outcome {
            Ok(v) => {
                self.last_error = CString::default();
                Ok(v)
            }
            Err(e) => {
                let code = if is_callback_failure(&e) {
                    MEF_ERR_CALLBACK
                } else {
                    result_of(&e)
                };
                log::warn!("{}", e.text_with_causes());
                self.set_error(&e.text_with_causes());
                Err(code)
            }
        }
    }

    pub(super) fn set_error(&mut self, message: &str) {
        self.last_error = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    }
}

/// Borrows a client behind a non-NULL pointer.
///
/// # Safety
/// `client` must be NULL or a live pointer from `mef_client_new`, used by this thread only.
unsafe fn client_mut<'a>(
    client: *mut mef_client,
) -> std::result::Result<&'a mut mef_client, mef_result> {
    // SAFETY: NULL or a live Box pointer used by one thread at a time (caller's contract).
    unsafe { client.as_mut() }.ok_or(MEF_ERR_NULL_ARGUMENT)
}

/// Runs a client export behind the panic boundary; a panic is recorded as the handle's last
/// error.
///
/// # Safety
/// As for [`client_mut`].
pub(super) unsafe fn with_client(
    client: *mut mef_client,
    what: &str,
    f: impl FnOnce(&mut mef_client) -> mef_result,
) -> mef_result {
    let code = guard(|| {
        // SAFETY: caller's contract.
        let c = check!(unsafe { client_mut(client) });
        f(c)
    });
    if code == MEF_ERR_PANIC && !client.is_null() {
        // SAFETY: non-NULL and live (caller's contract); the borrow inside `guard` ended with
        // the unwind.
        let c = unsafe { &mut *client };
        c.set_error(&format!("internal error: {what} panicked"));
    }
    code
}

/// Creates a client from `config` (copied: the configuration may be freed afterwards).
/// Needs a base URI and exactly one credential storage (store directory, or credential
/// callbacks plus key callbacks), and at most one of a PSK and a third-party client
/// certificate; `MEF_ERR_INVALID_ARGUMENT` otherwise.
///
/// # Safety
/// `config` must be NULL or a live configuration; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mef_client_new(
    config: *const mef_config,
    out: *mut *mut mef_client,
) -> mef_result {
    guard(|| {
        // SAFETY: NULL or a live configuration (caller's contract).
        let Some(config) = (unsafe { config.as_ref() }) else {
            return MEF_ERR_NULL_ARGUMENT;
        };
        if out.is_null() {
            return MEF_ERR_NULL_ARGUMENT;
        }
        let _scope = SinkScope::enter(config.log);
        match mef_client::new(config) {
            Ok(client) => {
                // SAFETY: non-NULL and writable (caller's contract).
                unsafe { out.write(Box::into_raw(Box::new(client))) };
                MEF_OK
            }
            Err(f) => {
                log::warn!("mef_client_new: {}", f.message);
                config.last_error.set(&f.message);
                f.code
            }
        }
    })
}

/// Frees a client. NULL is ignored.
///
/// # Safety
/// `client` must be NULL or a pointer from `mef_client_new` not freed before.
#[no_mangle]
pub unsafe extern "C" fn mef_client_free(client: *mut mef_client) {
    // SAFETY: NULL or Box::into_raw in mef_client_new, freed once (caller's contract).
    unsafe { free_box(client) }
}

/// Initial Certificate Provisioning (TS-0003 8.3.6.2.2): authenticates with the configured
/// third-party client certificate against the configured trust anchors (certificate-based
/// RSPF), or, when a PSK is configured (`mef_config_set_psk`) or supplied by the identity
/// callback (`mef_identity_set_psk`), over TLS-PSK with (KpmID, Kpm) alone (PPSK-based RSPF,
/// TS-0003 8.3.2.1; no trust anchors needed). On success the new certificate, its key and the
/// MEF CA trust anchors are installed together. A failed PSK handshake (wrong Kpm, unknown
/// KpmID, a server without TLS-PSK) is `MEF_ERR_TLS`; a build without the `psk` feature gives
/// `MEF_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `client` as for `mef_client_free` (non-NULL), used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn mef_client_provision(
    client: *mut mef_client,
    key_source: mef_key_source,
) -> mef_result {
    let body = |c: &mut mef_client| {
        let source = match key_source {
            MEF_KEY_GENERATE => KeySource::Generate,
            MEF_KEY_SERVER_GENERATED => KeySource::ServerGenerated,
            _ => {
                c.set_error(&format!("invalid key source {key_source}"));
                return MEF_ERR_INVALID_ARGUMENT;
            }
        };
        c.last_handshakes = 0;
        let p = check!(c.call(|c| c.provision(source)));
        c.last_handshakes = p.connection.handshakes;
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_client(client, "mef_client_provision", body) }
}

/// The re-provisioning mode of a `MEF_REPROVISION_*` value (`mef_client_reprovision`,
/// `mef_client_renew`); another value is refused with its reason set on the client.
pub(super) fn reprovision_mode(
    c: &mut mef_client,
    mode: mef_reprovision,
) -> Result<Reprovision, mef_result> {
    match mode {
        MEF_REPROVISION_RENEW => Ok(Reprovision::Renew),
        MEF_REPROVISION_REKEY => Ok(Reprovision::Rekey),
        MEF_REPROVISION_SERVER_KEYGEN => Ok(Reprovision::ServerKeygen),
        _ => {
            c.set_error(&format!("invalid re-provisioning mode {mode}"));
            Err(MEF_ERR_INVALID_ARGUMENT)
        }
    }
}

/// Certificate Re-Provisioning (TS-0003 8.3.6.2.3): authenticates with the installed
/// credentials and replaces them only on success.
///
/// # Safety
/// `client` as for `mef_client_free` (non-NULL), used by one thread at a time.
#[no_mangle]
pub unsafe extern "C" fn mef_client_reprovision(
    client: *mut mef_client,
    mode: mef_reprovision,
) -> mef_result {
    let body = |c: &mut mef_client| {
        let mode = match reprovision_mode(c, mode) {
            Ok(m) => m,
            Err(code) => return code,
        };
        c.last_handshakes = 0;
        let p = check!(c.call(|c| c.reprovision(mode)));
        c.last_handshakes = p.connection.handshakes;
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_client(client, "mef_client_reprovision", body) }
}

/// `data` as a new buffer, for the caller to free with `mef_buffer_free`.
fn new_buffer(data: Vec<u8>) -> *mut mef_buffer {
    Box::into_raw(Box::new(mef_buffer { data }))
}

/// A call on the client with one out-parameter: `out` is checked first (NULL is
/// `MEF_ERR_NULL_ARGUMENT`), then `op` runs as [`mef_client::call`], and `*out` is written
/// only on success.
///
/// # Safety
/// As for [`with_client`]; `out` NULL or writable.
pub(super) unsafe fn out_call<T>(
    client: *mut mef_client,
    what: &str,
    out: *mut T,
    op: impl FnOnce(&mut mef_client) -> Result<T>,
) -> mef_result {
    if out.is_null() {
        return MEF_ERR_NULL_ARGUMENT;
    }
    let body = |c: &mut mef_client| {
        let value = check!(c.call(op));
        // SAFETY: non-NULL (checked above) and writable (caller's contract).
        unsafe { out.write(value) };
        MEF_OK
    };
    // SAFETY: caller's contract.
    unsafe { with_client(client, what, body) }
}

/// `/cacerts` (RFC 7030 4.1): writes the validated MEF CA certificates as PEM to `*out_pem`
/// (free with `mef_buffer_free`); nothing is installed. The MEF is authenticated with the
/// configured trust anchors, else the installed ones; the client with the configured
/// third-party certificate if any, else anonymously. With a PSK configured
/// (`mef_config_set_psk`), over TLS-PSK instead (the PSK authenticates both ends).
///
/// # Safety
/// `client` as for `mef_client_free` (non-NULL); `out_pem` writable.
#[no_mangle]
pub unsafe extern "C" fn mef_client_cacerts(
    client: *mut mef_client,
    out_pem: *mut *mut mef_buffer,
) -> mef_result {
    // SAFETY: caller's contract above.
    unsafe {
        out_call(client, "mef_client_cacerts", out_pem, |c| {
            c.cacerts().map(new_buffer)
        })
    }
}

/// `/csrattrs` (RFC 7030 4.5): writes the CSR attributes as DER (the server's CsrAttrs,
/// re-encoded after decoding) to `*out_der`; an empty buffer when the server has none (204 or
/// 404). Authentication as for `mef_client_cacerts` (a oneM2M MEF requires a client
/// certificate or the PSK here).
///
/// # Safety
/// `client` as for `mef_client_free` (non-NULL); `out_der` writable.
#[no_mangle]
pub unsafe extern "C" fn mef_client_csrattrs(
    client: *mut mef_client,
    out_der: *mut *mut mef_buffer,
) -> mef_result {
    // SAFETY: caller's contract above.
    unsafe {
        out_call(client, "mef_client_csrattrs", out_der, |c| {
            c.csrattrs().map(new_buffer)
        })
    }
}

/// Decodes CSR attributes (the DER `mef_client_csrattrs` gives) into text, one `field: value`
/// line each, as the CLI shows them: `challenge_password: supplied`, `subject_alt_name:
/// DNS:cse01.sp.example.com`, `extension: OID[ critical] N bytes`, `key_type: EC P-256`,
/// `signature_hash: SHA-256`, `unrecognised: OID` (the fields the CLI and Python show too; never
/// the challengePassword's value). An empty input (no CSR attributes) gives an empty buffer;
/// malformed DER is `MEF_ERR_DECODE`.
///
/// # Safety
/// `der` readable for `len` bytes; `out_text` writable.
#[no_mangle]
pub unsafe extern "C" fn mef_csrattrs_describe(
    der: *const u8,
    len: usize,
    out_text: *mut *mut mef_buffer,
) -> mef_result {
    super::guard(|| {
        if out_text.is_null() {
            return MEF_ERR_NULL_ARGUMENT;
        }
        // SAFETY: caller's contract above.
        let der = check!(unsafe { super::bytes_arg(der, len) });
        let mut data = Vec::new();
        if !der.is_empty() {
            let reqs = match est::proto::csrattrs::decode(der)
                .and_then(|items| est::proto::csrattrs::CsrRequirements::from_items(&items))
            {
                Ok(r) => r,
                Err(_) => return super::MEF_ERR_DECODE,
            };
            for (field, value) in est::describe::csr_attributes(&reqs) {
                data.extend_from_slice(format!("{field}: {value}\n").as_bytes());
            }
        }
        // SAFETY: non-NULL (checked above) and writable (caller's contract).
        unsafe { out_text.write(new_buffer(data)) };
        MEF_OK
    })
}

/// The detailed message of the last failed call on this client (the error and its causes),
/// "" if the last call succeeded or none failed yet. Owned by the client, valid until the
/// next call on it; "" for NULL. Never contains secrets.
///
/// # Safety
/// `client` must be NULL or a live client.
#[no_mangle]
pub unsafe extern "C" fn mef_client_last_error(client: *const mef_client) -> *const c_char {
    guard_value(c"".as_ptr(), || {
        // SAFETY: NULL or a live client (caller's contract).
        match unsafe { client.as_ref() } {
            Some(c) => c.last_error.as_ptr(),
            None => c"".as_ptr(),
        }
    })
}

/// The TLS handshakes made by the last successful procedure (`mef_client_provision` or
/// `mef_client_reprovision`) on this client: 1 when the MEF kept the connection alive; 0
/// after a failure, before any procedure, or for NULL.
///
/// # Safety
/// `client` must be NULL or a live client.
#[no_mangle]
pub unsafe extern "C" fn mef_client_last_handshakes(client: *const mef_client) -> u32 {
    guard_value(0, || {
        // SAFETY: NULL or a live client (caller's contract).
        unsafe { client.as_ref() }.map_or(0, |c| c.last_handshakes)
    })
}

/// Bytes the library hands out (opaque): read with `mef_buffer_data`/`mef_buffer_len`, free
/// with `mef_buffer_free`.
#[derive(Debug)]
pub struct mef_buffer {
    data: Vec<u8>,
}

/// The bytes of a buffer (valid until it is freed; not NUL-terminated); NULL for NULL.
///
/// # Safety
/// `buffer` must be NULL or a live buffer.
#[no_mangle]
pub unsafe extern "C" fn mef_buffer_data(buffer: *const mef_buffer) -> *const u8 {
    guard_value(std::ptr::null(), || {
        // SAFETY: NULL or a live buffer (caller's contract).
        unsafe { buffer.as_ref() }.map_or(std::ptr::null(), |b| b.data.as_ptr())
    })
}

/// The length of a buffer in bytes; 0 for NULL.
///
/// # Safety
/// `buffer` must be NULL or a live buffer.
#[no_mangle]
pub unsafe extern "C" fn mef_buffer_len(buffer: *const mef_buffer) -> usize {
    guard_value(0, || {
        // SAFETY: NULL or a live buffer (caller's contract).
        unsafe { buffer.as_ref() }.map_or(0, |b| b.data.len())
    })
}

/// Frees a buffer. NULL is ignored.
///
/// # Safety
/// `buffer` must be NULL or a buffer from this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn mef_buffer_free(buffer: *mut mef_buffer) {
    // SAFETY: NULL or Box::into_raw in this module, freed once (caller's contract).
    unsafe { free_box(buffer) }
}
