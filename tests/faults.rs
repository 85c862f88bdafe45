//! Faults on the device side: the credential store failing at each step of an install.
//!
//! - [`FileStore`] with a fault injected at every step of its install
//!   ([`FileStore::inject_fault`]): a crash (the process killed there, no clean-up, e.g.
//!   between the writes and the rename), a full disk (ENOSPC) and a permission refusal
//!   (EACCES). The tests run as root, where `chmod` denies nothing, so ENOSPC and EACCES are
//!   injected as the I/O error of that step's system call.
//! - The same faults under a whole procedure (`MefClient::reprovision` against the procedure
//!   server of tests/support).
//! - A host store behind the C ABI's credential and key callbacks, each callback failing in
//!   turn.
//!
//! After each: a fresh load gives the old or the new complete set (never a mix), the key is
//! the one matching the certificate, and the credentials still authenticate to the MEF.
//! The unit tests in src/store.rs cover crashes at three points of a bare install; this file
//! covers every point, every fault, first installs and procedures.

mod support;

use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr, CString};
use std::path::Path;
use std::ptr;
use std::sync::Arc;
use std::time::Duration;

use onem2m_est::client::{Config, MefClient, Reprovision};
use onem2m_est::ffi::*;
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
use onem2m_est::store::{
    certs_to_pem, parse_certs_pem, CredentialStore, Credentials, FailPoint, Fault, FileStore,
};
use onem2m_est::transport::{PollPolicy, TransportConfig};
use onem2m_est::uri::EstUri;
use onem2m_est::{Error, ErrorClass};
use rustls::pki_types::CertificateDer;
use support::*;
use tempfile::TempDir;

const FAULTS: [Fault; 3] = [Fault::Crash, Fault::DiskFull, Fault::PermissionDenied];

fn client_for(base: &str) -> MefClient {
    MefClient::new(
        Config::new(EstUri::parse(base).unwrap())
            .identity(SubjectIdentity::new(SubjectType::Cse, MEF_CSE_ID).unwrap())
            .transport(TransportConfig {
                connect_timeout: Duration::from_secs(2),
                tls_timeout: Duration::from_secs(2),
                response_timeout: Duration::from_secs(2),
                poll: PollPolicy {
                    max_attempts: 2,
                    max_total: Duration::from_secs(1),
                    default_delay: Duration::from_millis(10),
                    max_delay: Duration::from_millis(10),
                    ..PollPolicy::default()
                },
                ..TransportConfig::default()
            }),
    )
}

fn spki_of(cert: &CertificateDer<'_>) -> Vec<u8> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    c.public_key().raw.to_vec()
}

/// Same chain, trust anchors and key.
fn same(a: &Credentials, b: &Credentials) -> bool {
    a.chain == b.chain
        && a.trust_anchors == b.trust_anchors
        && a.key.public_key_info() == b.key.public_key_info()
}

/// What a fresh `FileStore` on `dir` loads: one of `allowed`, complete, its key matching its
/// certificate. Returns the index of the one it is.
fn loads_one_of(dir: &Path, allowed: &[&Credentials], context: &str) -> usize {
    let loaded = FileStore::new(dir)
        .unwrap()
        .load()
        .unwrap_or_else(|e| panic!("{context}: the store does not load: {e}"))
        .unwrap_or_else(|| panic!("{context}: the store is empty"));
    assert_eq!(
        loaded.key.public_key_info(),
        spki_of(&loaded.chain[0]),
        "{context}: the key does not match the certificate"
    );
    allowed
        .iter()
        .position(|c| same(c, &loaded))
        .unwrap_or_else(|| panic!("{context}: a set that is neither the old nor the new one"))
}

/// Entries of the store directory besides the current generation and the top-level names.
fn debris(dir: &Path) -> Vec<String> {
    // `current` is a symlink on Unix, a pointer file naming the generation elsewhere.
    let current = if cfg!(unix) {
        std::fs::read_link(dir.join("current")).ok()
    } else {
        std::fs::read_to_string(dir.join("current"))
            .ok()
            .map(|name| name.trim_end().into())
    };
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !["current", "cert.pem", "key.pem", "trust-anchors.pem"].contains(&n.as_str()))
        .filter(|n| current.as_deref() != Some(Path::new(n)))
        .collect();
    out.sort();
    out
}

#[test]
fn every_fault_at_every_install_step_leaves_one_complete_set() {
    let pki = MefPki::new("Faults CA");
    for &at in FailPoint::ALL {
        for fault in FAULTS {
            let context = format!("{fault:?} at {at:?}");
            let tmp = TempDir::new().unwrap();
            let dir = tmp.path().join("creds");
            let (old, new, newer) = (
                pki.device_credentials(),
                pki.device_credentials(),
                pki.device_credentials(),
            );
            let mut store = FileStore::new(&dir).unwrap();
            store.install(&old).unwrap();

            store.inject_fault(Some((at, fault)));
            let result = store.install(&new);
            let took_effect = at == FailPoint::AfterSwap;
            match (&result, took_effect, fault) {
                // The rename made the new set current; only a crash there reports failure.
                (Ok(()), true, Fault::DiskFull | Fault::PermissionDenied) => {}
                (Err(Error::Store { .. }), true, Fault::Crash) => {}
                (Err(e @ Error::Store { reason, .. }), false, _) => {
                    assert_eq!(e.class(), ErrorClass::Client);
                    match fault {
                        Fault::DiskFull => assert!(reason.contains("no space"), "{reason}"),
                        Fault::PermissionDenied => {
                            assert!(reason.contains("permission denied"), "{reason}")
                        }
                        Fault::Crash => assert!(reason.contains("crash"), "{reason}"),
                    }
                }
                other => panic!("{context}: unexpected outcome {other:?}"),
            }
            let which = loads_one_of(&dir, &[&old, &new], &context);
            assert_eq!(which, usize::from(took_effect), "{context}");
            if fault != Fault::Crash {
                // A failing system call is cleaned up after at once.
                assert_eq!(debris(&dir), Vec::<String>::new(), "{context}");
            }

            // The next install works, and clears whatever a crash left.
            store.inject_fault(None);
            store.install(&newer).unwrap();
            assert_eq!(loads_one_of(&dir, &[&newer], &context), 0);
            assert_eq!(debris(&dir), Vec::<String>::new(), "{context}");
        }
    }
}

#[test]
fn faults_during_a_first_install_leave_nothing_or_everything() {
    let pki = MefPki::new("First install CA");
    for &at in FailPoint::ALL {
        for fault in FAULTS {
            let context = format!("{fault:?} at {at:?}");
            let tmp = TempDir::new().unwrap();
            let dir = tmp.path().join("creds");
            let new = pki.device_credentials();
            let mut store = FileStore::new(&dir).unwrap();
            store.inject_fault(Some((at, fault)));
            let result = store.install(&new);
            if at == FailPoint::AfterSwap {
                assert_eq!(result.is_ok(), fault != Fault::Crash, "{context}");
                assert_eq!(loads_one_of(&dir, &[&new], &context), 0);
            } else {
                assert!(matches!(result, Err(Error::Store { .. })), "{context}");
                let loaded = FileStore::new(&dir).unwrap().load().unwrap();
                assert!(loaded.is_none(), "{context}: something loads");
            }
        }
    }
}

/// A whole re-provisioning whose store fails at each step of the install: the procedure
/// reports a Client error (or succeeds when the install took effect), the previous
/// credentials (or the new ones) are complete and matching, and they authenticate.
#[test]
fn reprovisioning_with_a_failing_store() {
    let pki = Arc::new(MefPki::new("Procedure faults CA"));
    let server = ProcedureServer::start(pki.clone(), |_| {}, |_, _, good| good.into());
    let client = client_for(&server.base());
    for mode in [Reprovision::Rekey, Reprovision::Renew] {
        for &at in FailPoint::ALL {
            for fault in FAULTS {
                let context = format!("{mode:?}, {fault:?} at {at:?}");
                let tmp = TempDir::new().unwrap();
                let old = pki.device_credentials();
                FileStore::new(tmp.path()).unwrap().install(&old).unwrap();

                let mut store = FileStore::new(tmp.path()).unwrap();
                store.inject_fault(Some((at, fault)));
                let result = client.reprovision(&mut store, mode);
                let took_effect = at == FailPoint::AfterSwap;
                match &result {
                    Ok(done) => {
                        assert!(took_effect && fault != Fault::Crash, "{context}");
                        let now = FileStore::new(tmp.path()).unwrap().load().unwrap().unwrap();
                        assert_eq!(now.chain, done.chain, "{context}");
                    }
                    Err(e) => {
                        assert!(matches!(e, Error::Store { .. }), "{context}: {e}");
                        assert_eq!(e.class(), ErrorClass::Client, "{context}");
                    }
                }
                let loaded = FileStore::new(tmp.path()).unwrap().load().unwrap().unwrap();
                assert_eq!(
                    loaded.key.public_key_info(),
                    spki_of(&loaded.chain[0]),
                    "{context}"
                );
                if took_effect {
                    assert_ne!(loaded.chain, old.chain, "{context}");
                } else {
                    assert!(same(&loaded, &old), "{context}: not the old set");
                }
                if mode == Reprovision::Renew {
                    assert_eq!(loaded.key.public_key_info(), old.key.public_key_info());
                }
                // Whatever is current authenticates: the next renewal succeeds.
                let mut store = FileStore::new(tmp.path()).unwrap();
                client
                    .reprovision(&mut store, Reprovision::Renew)
                    .unwrap_or_else(|e| panic!("{context}: the current set is unusable: {e}"));
            }
        }
    }
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

unsafe extern "C" fn cb_public_key(
    ud: *mut c_void,
    handle: u64,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> c_int {
    // SAFETY: registered Host.
    let h = unsafe { host(ud) };
    if h.fails(Step::PublicKeyOfNewKey) && handle != h.current {
        return FAILED;
    }
    let Some(key) = h.keys.get(&handle) else {
        return FAILED;
    };
    let spki = key.public_key_info();
    if spki.len() > cap {
        return FAILED;
    }
    // SAFETY: `out` holds `cap` writable bytes, `out_len` is writable (library contract).
    unsafe {
        ptr::copy_nonoverlapping(spki.as_ptr(), out, spki.len());
        out_len.write(spki.len());
    }
    MEF_CB_OK
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
    if h.fails(Step::SignWithNewKey) && handle != h.current {
        return FAILED;
    }
    let Some(key) = h.keys.get(&handle) else {
        return FAILED;
    };
    // SAFETY: `msg` holds `msg_len` readable bytes (library contract).
    let message = unsafe { std::slice::from_raw_parts(msg, msg_len) };
    let Ok(signature) = key.sign(message) else {
        return FAILED;
    };
    if signature.len() > cap {
        return FAILED;
    }
    // SAFETY: `out` holds `cap` writable bytes, `out_len` is writable.
    unsafe {
        ptr::copy_nonoverlapping(signature.as_ptr(), out, signature.len());
        out_len.write(signature.len());
    }
    MEF_CB_OK
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
        generate: Some(cb_generate),
        current: Some(cb_current),
        public_key: Some(cb_public_key),
        sign: Some(cb_sign),
        commit: Some(cb_commit),
        discard: Some(cb_discard),
    };
    let creds = mef_credential_callbacks {
        store: Some(cb_store),
        load: Some(cb_load),
    };
    let base = CString::new(base).unwrap();
    let id = CString::new(MEF_CSE_ID).unwrap();
    let ud = host as *mut Host as *mut c_void;
    let (mut cfg, mut client) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: out-parameters we own, strings and callback tables alive for each call, `ud` a
    // Host that outlives the client (freed below) and is not touched while the call runs.
    unsafe {
        assert_eq!(mef_config_new(&mut cfg), MEF_OK);
        assert_eq!(mef_config_set_base_uri(cfg, base.as_ptr()), MEF_OK);
        assert_eq!(
            mef_config_set_subject(cfg, MEF_SUBJECT_CSE, id.as_ptr()),
            MEF_OK
        );
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
