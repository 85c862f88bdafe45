//! A host store behind the C ABI's credential and key callbacks, each callback failing in turn,
//! under a whole re-provisioning against the procedure server of the test kit: the host's set
//! stays complete, nothing is committed on failure and every generated key is discarded.
//! (Moved here from tests/faults.rs with the C ABI; the file store's faults stay there.)

use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::ptr;
use std::sync::Arc;

use super::super::*;
use est::keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
use est::store::{certs_to_pem, parse_certs_pem, Credentials};
use onem2m_est_testkit::server::*;
use rustls_pki_types::CertificateDer;

fn spki_of(cert: &CertificateDer<'_>) -> Vec<u8> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    c.public_key().raw.to_vec()
}

// ---------------------------------------------------------------------------------------------
// A host store behind the C ABI callbacks
// ---------------------------------------------------------------------------------------------

/// The callback that fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Load,
    Current,
    Generate,
    PublicKeyOfNewKey,
    SignWithNewKey,
    Store,
    Commit,
}

/// The host: its keys by handle, the stored set (chain and trust anchors PEM, key handle),
/// and what the library did.
#[derive(Default)]
struct Host {
    keys: HashMap<u64, SoftwareKey>,
    next_handle: u64,
    chain_pem: Vec<u8>,
    ta_pem: Vec<u8>,
    current: u64,
    fail: Option<Step>,
    generated: Vec<u64>,
    committed: Vec<u64>,
    discarded: Vec<u64>,
    stores: u32,
}

const FAILED: c_int = 7;

impl Host {
    fn new(creds: &Credentials) -> Host {
        let key = SoftwareKey::from_pkcs8_der(&creds.key.pkcs8_der().unwrap()).unwrap();
        let mut host = Host {
            next_handle: 2,
            chain_pem: certs_to_pem(&creds.chain).into_bytes(),
            ta_pem: certs_to_pem(&creds.trust_anchors).into_bytes(),
            current: 1,
            ..Host::default()
        };
        host.keys.insert(1, key);
        host
    }

    /// The stored set is complete and its key is the certificate's.
    fn assert_consistent(&self, context: &str) {
        let chain = parse_certs_pem(std::str::from_utf8(&self.chain_pem).unwrap()).unwrap();
        parse_certs_pem(std::str::from_utf8(&self.ta_pem).unwrap()).unwrap();
        let key = self
            .keys
            .get(&self.current)
            .expect("the current key exists");
        assert_eq!(key.public_key_info(), spki_of(&chain[0]), "{context}");
    }

    fn fails(&self, step: Step) -> bool {
        self.fail == Some(step)
    }
}

/// # Safety
/// `ud` is the `Host` the test registered, alive and not otherwise borrowed during the call.
unsafe fn host<'a>(ud: *mut c_void) -> &'a mut Host {
    // SAFETY: the caller's contract; the library calls back on the calling thread only.
    unsafe { &mut *(ud as *mut Host) }
}

unsafe extern "C" fn cb_generate(ud: *mut c_void, key_type: mef_key_type, out: *mut u64) -> c_int {
    // SAFETY: registered Host (see `host`).
    let h = unsafe { host(ud) };
    if h.fails(Step::Generate) || key_type != MEF_KEY_ECDSA_P256_SHA256 {
        return FAILED;
    }
    let handle = h.next_handle;
    h.next_handle += 1;
    h.keys.insert(
        handle,
        SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap(),
    );
    h.generated.push(handle);
    // SAFETY: a writable out-parameter (library contract).
    unsafe { out.write(handle) };
    MEF_CB_OK
}

unsafe extern "C" fn cb_current(
    ud: *mut c_void,
    out: *mut u64,
    out_type: *mut mef_key_type,
) -> c_int {
    // SAFETY: registered Host.
    let h = unsafe { host(ud) };
    if h.fails(Step::Current) {
        return FAILED;
    }
    // SAFETY: writable out-parameters (library contract).
    unsafe {
        out.write(h.current);
        out_type.write(MEF_KEY_ECDSA_P256_SHA256);
    }
    MEF_CB_OK
}

/// The key `handle`, or `None` (the callback fails) when it is unknown or the host is told to
/// fail `step` for a key other than the current one.
fn usable_key(h: &Host, handle: u64, step: Step) -> Option<&SoftwareKey> {
    if h.fails(step) && handle != h.current {
        return None;
    }
    h.keys.get(&handle)
}

/// Copies `bytes` to `out` and their length to `*out_len`; `FAILED` when they exceed `cap`.
///
/// # Safety
/// `out` must hold `cap` writable bytes and `out_len` be writable.
unsafe fn write_out(bytes: &[u8], out: *mut u8, cap: usize, out_len: *mut usize) -> c_int {
    if bytes.len() > cap {
        return FAILED;
    }
    // SAFETY: `bytes` fit in `out`; both out-parameters are writable (caller's contract).
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len());
        out_len.write(bytes.len());
    }
    MEF_CB_OK
}

unsafe extern "C" fn cb_public_key(
    ud: *mut c_void,
    handle: u64,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> c_int {
    // SAFETY: registered Host.
    let h = unsafe { host(ud) };
    let Some(key) = usable_key(h, handle, Step::PublicKeyOfNewKey) else {
        return FAILED;
    };
    // SAFETY: `out` holds `cap` writable bytes, `out_len` is writable (library contract).
    unsafe { write_out(key.public_key_info(), out, cap, out_len) }
}

unsafe extern "C" fn cb_sign(
    ud: *mut c_void,
    handle: u64,
    msg: *const u8,
    msg_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> c_int {
    // SAFETY: registered Host.
    let h = unsafe { host(ud) };
    let Some(key) = usable_key(h, handle, Step::SignWithNewKey) else {
        return FAILED;
    };
    // SAFETY: `msg` holds `msg_len` readable bytes (library contract).
    let message = unsafe { std::slice::from_raw_parts(msg, msg_len) };
    let Ok(signature) = key.sign(message) else {
        return FAILED;
    };
    // SAFETY: `out` holds `cap` writable bytes, `out_len` is writable (library contract).
    unsafe { write_out(&signature, out, cap, out_len) }
}

unsafe extern "C" fn cb_commit(ud: *mut c_void, handle: u64) -> c_int {
    // SAFETY: registered Host.
    let h = unsafe { host(ud) };
    h.committed.push(handle);
    if h.fails(Step::Commit) {
        FAILED
    } else {
        MEF_CB_OK
    }
}

unsafe extern "C" fn cb_discard(ud: *mut c_void, handle: u64) -> c_int {
    // SAFETY: registered Host.
    let h = unsafe { host(ud) };
    h.discarded.push(handle);
    if handle != h.current {
        h.keys.remove(&handle);
    }
    MEF_CB_OK
}

#[allow(clippy::too_many_arguments)] // the C signature
unsafe extern "C" fn cb_store(
    ud: *mut c_void,
    chain: *const u8,
    chain_len: usize,
    ta: *const u8,
    ta_len: usize,
    key_handle: u64,
    _key_pem: *const u8,
    _key_len: usize,
) -> c_int {
    // SAFETY: registered Host.
    let h = unsafe { host(ud) };
    h.stores += 1;
    if h.fails(Step::Store) || key_handle == 0 {
        // Atomic from the host's side: a refused store changes nothing.
        return FAILED;
    }
    // SAFETY: the buffers hold the given lengths during the call (library contract).
    unsafe {
        h.chain_pem = std::slice::from_raw_parts(chain, chain_len).to_vec();
        h.ta_pem = std::slice::from_raw_parts(ta, ta_len).to_vec();
    }
    h.current = key_handle;
    MEF_CB_OK
}

unsafe extern "C" fn cb_load(ud: *mut c_void, sink: *mut mef_credentials_sink) -> c_int {
    // SAFETY: registered Host.
    let h = unsafe { host(ud) };
    if h.fails(Step::Load) {
        return FAILED;
    }
    // SAFETY: the sink given to `load`, buffers of the given lengths.
    let r = unsafe {
        mef_credentials_set(
            sink,
            h.chain_pem.as_ptr(),
            h.chain_pem.len(),
            h.ta_pem.as_ptr(),
            h.ta_pem.len(),
        )
    };
    if r == MEF_OK {
        MEF_CB_OK
    } else {
        FAILED
    }
}

/// Runs one C ABI re-provisioning with `host` as the store; returns the result and the last
/// error text.
fn c_reprovision(base: &str, host: &mut Host, mode: mef_reprovision) -> (mef_result, String) {
    let keys = mef_key_callbacks {
        struct_size: std::mem::size_of::<mef_key_callbacks>(),
        generate: Some(cb_generate),
        current: Some(cb_current),
        public_key: Some(cb_public_key),
        sign: Some(cb_sign),
        commit: Some(cb_commit),
        discard: Some(cb_discard),
    };
    let creds = mef_credential_callbacks {
        struct_size: std::mem::size_of::<mef_credential_callbacks>(),
        store: Some(cb_store),
        load: Some(cb_load),
    };
    let ud = host as *mut Host as *mut c_void;
    let cfg = super::cse_config(base, MEF_CSE_ID);
    let mut client = ptr::null_mut();
    // SAFETY: out-parameters we own, callback tables alive for each call, `ud` a Host that
    // outlives the client (freed below) and is not touched while the call runs.
    unsafe {
        assert_eq!(mef_config_set_key_callbacks(cfg, &keys, ud), MEF_OK);
        assert_eq!(mef_config_set_credential_callbacks(cfg, &creds, ud), MEF_OK);
        assert_eq!(mef_config_set_timeouts(cfg, 2000, 2000, 2000), MEF_OK);
        assert_eq!(mef_client_new(cfg, &mut client), MEF_OK);
        mef_config_free(cfg);
        let code = mef_client_reprovision(client, mode);
        let text = CStr::from_ptr(mef_client_last_error(client))
            .to_string_lossy()
            .into_owned();
        mef_client_free(client);
        (code, text)
    }
}

#[test]
fn callback_store_failing_at_each_step() {
    let pki = Arc::new(MefPki::new("Callback store CA"));
    let server = ProcedureServer::start(pki.clone(), |_| {}, |_, _, good| good.into());
    let cases = [
        (Step::Load, MEF_REPROVISION_REKEY, MEF_ERR_STORE),
        (Step::Current, MEF_REPROVISION_REKEY, MEF_ERR_CALLBACK),
        (Step::Current, MEF_REPROVISION_RENEW, MEF_ERR_CALLBACK),
        (Step::Generate, MEF_REPROVISION_REKEY, MEF_ERR_CALLBACK),
        (
            Step::PublicKeyOfNewKey,
            MEF_REPROVISION_REKEY,
            MEF_ERR_CALLBACK,
        ),
        (
            Step::SignWithNewKey,
            MEF_REPROVISION_REKEY,
            MEF_ERR_CALLBACK,
        ),
        (Step::Store, MEF_REPROVISION_REKEY, MEF_ERR_STORE),
        (Step::Store, MEF_REPROVISION_RENEW, MEF_ERR_STORE),
        // commit's return value is only logged: the new set is current.
        (Step::Commit, MEF_REPROVISION_REKEY, MEF_OK),
    ];
    for (step, mode, expected) in cases {
        let context = format!("{step:?} failing, mode {mode}");
        let old = pki.device_credentials();
        let mut host = Host::new(&old);
        host.fail = Some(step);
        let (old_chain, old_ta, old_key) =
            (host.chain_pem.clone(), host.ta_pem.clone(), host.current);

        let (code, text) = c_reprovision(&server.base(), &mut host, mode);
        assert_eq!(code, expected, "{context}: {text}");
        host.assert_consistent(&context);
        if expected == MEF_OK {
            assert_ne!(host.chain_pem, old_chain, "{context}");
            assert_eq!(host.committed, vec![host.current], "{context}");
            assert!(host.discarded.is_empty(), "{context}");
        } else {
            assert_eq!(
                mef_result_cmd_status(code),
                MEF_CMD_CERT_PROV_CLIENT_ERROR,
                "{context}"
            );
            // Nothing changed, nothing committed, every generated key handed back.
            assert_eq!(host.chain_pem, old_chain, "{context}");
            assert_eq!(host.ta_pem, old_ta, "{context}");
            assert_eq!(host.current, old_key, "{context}");
            assert!(host.committed.is_empty(), "{context}");
            let mut discarded = host.discarded.clone();
            discarded.sort();
            assert_eq!(discarded, host.generated, "{context}");
        }

        // What the host holds still authenticates: a renewal with no failure succeeds.
        host.fail = None;
        let (code, text) = c_reprovision(&server.base(), &mut host, MEF_REPROVISION_RENEW);
        assert_eq!(code, MEF_OK, "{context}: {text}");
        host.assert_consistent(&context);
    }
}
