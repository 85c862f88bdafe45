//! The C API driven from Rust: per-handle log routing and level filtering, last errors.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use std::sync::Mutex;

use super::*;

// The callback fault tests and the hostile-MEF matrix's C ABI subset run against the test kit's
// procedure server (onem2m_est_testkit::server, ::hostile).
mod callback_faults;
mod hostile_c_abi;

// The PKCS #11 tests' SoftHSM2 fixture (tests/pkcs11/fixture.rs), for the C ABI with a token key.
#[cfg(feature = "pkcs11")]
mod pkcs11_c_abi;
#[cfg(feature = "pkcs11")]
#[path = "../../../tests/pkcs11/fixture.rs"]
mod pkcs11_fixture;

/// Messages received by [`record`], tagged with the user_data they came with.
static RECEIVED: Mutex<Vec<(usize, mef_log_level, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn record(user_data: *mut c_void, level: mef_log_level, message: *const c_char) {
    // SAFETY: the library passes a NUL-terminated string valid during the call.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    RECEIVED
        .lock()
        .unwrap()
        .push((user_data as usize, level, text));
}

fn received(tag: usize) -> Vec<(mef_log_level, String)> {
    RECEIVED
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _, _)| *t == tag)
        .map(|(_, l, m)| (*l, m.clone()))
        .collect()
}

/// The estBaseURI of a MEF that is not there (127.0.0.1:1 refuses).
pub(crate) const NO_MEF: &str = "https://127.0.0.1:1/.well-known/est";

/// Sets the estBaseURI `base` and the store directory `store`, asserting both are accepted.
///
/// # Safety
/// `config` must be a live configuration.
#[track_caller]
pub(crate) unsafe fn set_base_and_store(config: *mut mef_config, base: &str, store: &Path) {
    let base = CString::new(base).unwrap();
    let store = CString::new(store.to_str().unwrap()).unwrap();
    // SAFETY: a live configuration (caller's contract); strings alive for each call.
    unsafe {
        assert_eq!(mef_config_set_base_uri(config, base.as_ptr()), MEF_OK);
        assert_eq!(mef_config_set_store_dir(config, store.as_ptr()), MEF_OK);
    }
}

/// A new configuration (the caller frees it) with [`set_base_and_store`].
#[track_caller]
pub(crate) fn store_config(base: &str, store: &Path) -> *mut mef_config {
    let mut config = std::ptr::null_mut();
    // SAFETY: an out-parameter we own, then the configuration it received.
    unsafe {
        assert_eq!(mef_config_new(&mut config), MEF_OK);
        set_base_and_store(config, base, store);
    }
    config
}

/// A new configuration (the caller frees it) with the estBaseURI `base` and the subject CSE
/// `cse_id`, each asserted to be accepted.
#[track_caller]
pub(crate) fn cse_config(base: &str, cse_id: &str) -> *mut mef_config {
    let base = CString::new(base).unwrap();
    let id = CString::new(cse_id).unwrap();
    let mut config = std::ptr::null_mut();
    // SAFETY: an out-parameter we own, then the configuration it received; strings alive for
    // each call.
    unsafe {
        assert_eq!(mef_config_new(&mut config), MEF_OK);
        assert_eq!(mef_config_set_base_uri(config, base.as_ptr()), MEF_OK);
        assert_eq!(
            mef_config_set_subject(config, MEF_SUBJECT_CSE, id.as_ptr()),
            MEF_OK
        );
    }
    config
}

fn ca_pem() -> String {
    onem2m_est_testkit::TestCa::new("C API test CA").cert_pem()
}

/// A configuration (the caller frees it) of a MEF that is not there ([`NO_MEF`]) with the
/// store `dir` and a fresh test CA as trust anchors.
#[track_caller]
fn no_mef_config(dir: &Path) -> *mut mef_config {
    let ta = ca_pem();
    let config = store_config(NO_MEF, dir);
    // SAFETY: a live configuration; the PEM is alive for the call.
    unsafe {
        assert_eq!(
            mef_config_set_trust_anchors_pem(config, ta.as_ptr(), ta.len()),
            MEF_OK
        );
    }
    config
}

/// A client of a MEF that is not there (127.0.0.1:1 refuses), logging to `record` with `tag`.
fn client(tag: usize, max_level: mef_log_level, dir: &Path) -> *mut mef_client {
    let config = no_mef_config(dir);
    let mut client = std::ptr::null_mut();
    // SAFETY: valid pointers and lengths throughout; the config is freed once.
    unsafe {
        assert_eq!(
            mef_config_set_log_callback(config, Some(record), tag as *mut c_void, max_level),
            MEF_OK
        );
        assert_eq!(mef_client_new(config, &mut client), MEF_OK);
        mef_config_free(config);
    }
    client
}

fn last_error(client: *const mef_client) -> String {
    // SAFETY: a live client; the string is valid until the next call on it.
    unsafe { CStr::from_ptr(mef_client_last_error(client)) }
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn each_handle_logs_to_its_own_callback_within_its_level() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (0xA11CE, 0xB0B);
    let client_a = client(a, MEF_LOG_WARN, &dir.path().join("a"));
    let client_b = client(b, MEF_LOG_ERROR, &dir.path().join("b"));
    let mut buffer = std::ptr::null_mut();
    // SAFETY: live clients, a valid out-pointer.
    unsafe {
        assert_eq!(mef_client_cacerts(client_a, &mut buffer), MEF_ERR_CONNECT);
        assert!(buffer.is_null());
        assert_eq!(mef_client_cacerts(client_b, &mut buffer), MEF_ERR_CONNECT);
    }
    // The failure is logged as a warning: A (up to WARN) gets it, B (ERROR only) does not.
    let got_a = received(a);
    assert!(
        got_a
            .iter()
            .any(|(l, m)| *l == MEF_LOG_WARN && m.contains("127.0.0.1")),
        "{got_a:?}"
    );
    assert!(got_a.iter().all(|(l, _)| *l <= MEF_LOG_WARN), "{got_a:?}");
    assert!(received(b).is_empty(), "{:?}", received(b));
    // The detailed message stays on the handle, with its cause.
    let error = last_error(client_a);
    assert!(
        error.starts_with("cannot connect to 127.0.0.1:1"),
        "{error}"
    );
    assert_eq!(
        mef_result_cmd_status(MEF_ERR_CONNECT),
        MEF_CMD_CERT_PROV_SERVER_ERROR
    );
    // Outside a client call nothing is forwarded (no current sink on this thread).
    log::warn!("not inside a mef_client call");
    assert!(!received(a).iter().any(|(_, m)| m.contains("not inside")));
    // SAFETY: live clients, freed once.
    unsafe {
        // A failed argument check also leaves its message; a success clears it.
        assert_eq!(
            mef_client_reprovision(client_b, 99),
            MEF_ERR_INVALID_ARGUMENT
        );
        assert!(last_error(client_b).contains("99"));
        mef_client_free(client_a);
        mef_client_free(client_b);
    }
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(mef_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// A Kpm whose bytes are recognisable in any text that would leak it.
const KPM: [u8; 32] = [0x5A; 32];

#[test]
fn psk_arguments_are_validated_and_exclusive_with_a_client_certificate() {
    let id = CString::new("kpm-0001").unwrap();
    let empty = CString::new("").unwrap();
    let mut config = std::ptr::null_mut();
    // SAFETY: valid pointers and lengths (or NULL on purpose); the config is freed once.
    unsafe {
        assert_eq!(mef_config_new(&mut config), MEF_OK);
        assert_eq!(
            mef_config_set_psk(std::ptr::null_mut(), id.as_ptr(), KPM.as_ptr(), 32),
            MEF_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            mef_config_set_psk(config, std::ptr::null(), KPM.as_ptr(), 32),
            MEF_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            mef_config_set_psk(config, id.as_ptr(), std::ptr::null(), 32),
            MEF_ERR_NULL_ARGUMENT
        );
        // RFC 4279 7.2 / 5.3: 16 to 64 bytes; a non-empty KpmID.
        for (kpm_id, len) in [(id.as_ptr(), 15), (id.as_ptr(), 0), (empty.as_ptr(), 32)] {
            assert_eq!(
                mef_config_set_psk(config, kpm_id, KPM.as_ptr(), len),
                MEF_ERR_INVALID_ARGUMENT
            );
        }
        let long = [0x5Au8; 65];
        assert_eq!(
            mef_config_set_psk(config, id.as_ptr(), long.as_ptr(), 65),
            MEF_ERR_INVALID_ARGUMENT
        );
        assert!((*config).psk.is_none(), "a refused PSK is not kept");
        assert_eq!(
            mef_config_set_psk(config, id.as_ptr(), KPM.as_ptr(), 16),
            MEF_OK
        );
        // Debug output never shows the key.
        let debug = format!("{:?}", *config);
        assert!(
            debug.contains("kpm-0001") && !debug.contains("90, 90"),
            "{debug}"
        );

        // A PSK and a client certificate: ambiguous RSPF.
        let device = onem2m_est_testkit::pki::ClientCreds::self_signed();
        let (cert, key) = (device.cert_pem(), device.key.serialize_pem());
        let dir = tempfile::tempdir().unwrap();
        set_base_and_store(config, NO_MEF, dir.path());
        assert_eq!(
            mef_config_set_client_cert_pem(
                config,
                cert.as_ptr(),
                cert.len(),
                key.as_ptr(),
                key.len()
            ),
            MEF_OK
        );
        let mut client = std::ptr::null_mut();
        assert_eq!(
            mef_client_new(config, &mut client),
            MEF_ERR_INVALID_ARGUMENT
        );
        assert!(client.is_null());
        mef_config_free(config);
    }
}

/// The result `r` (with its last error `error`) of a call to [`NO_MEF`] that needs an optional
/// feature: where the build has it (`supported`), the call got as far as connecting (127.0.0.1:1
/// refuses); where not, the core refused it before any I/O as an InvalidArgument (class
/// BadArguments) whose reason contains `refusal`.
#[track_caller]
fn assert_connects_if_supported(supported: bool, r: mef_result, error: &str, refusal: &str) {
    if supported {
        assert_eq!(r, MEF_ERR_CONNECT, "{error}");
    } else {
        assert_eq!(r, MEF_ERR_INVALID_ARGUMENT, "{error}");
        assert!(error.contains(refusal), "{error}");
    }
}

#[test]
fn psk_provisioning_needs_no_trust_anchors_and_reports_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let id = CString::new("kpm-0001").unwrap();
    let config = store_config(NO_MEF, &dir.path().join("s"));
    let mut client = std::ptr::null_mut();
    // SAFETY: valid pointers and lengths; config and client are freed once.
    unsafe {
        assert_eq!(
            mef_config_set_psk(config, id.as_ptr(), KPM.as_ptr(), KPM.len()),
            MEF_OK
        );
        assert_eq!(mef_client_new(config, &mut client), MEF_OK);
        mef_config_free(config);
        let r = mef_client_provision(client, MEF_KEY_GENERATE);
        let error = last_error(client);
        // With the feature it got as far as connecting: no trust anchor was asked for.
        assert_connects_if_supported(est::psk::SUPPORTED, r, &error, "TLS-PSK");
        assert!(
            !error.contains("5a5a") && !error.contains("5A5A"),
            "{error}"
        );
        let mut buffer = std::ptr::null_mut();
        let expected = if est::psk::SUPPORTED {
            MEF_ERR_CONNECT
        } else {
            MEF_ERR_INVALID_ARGUMENT
        };
        assert_eq!(mef_client_cacerts(client, &mut buffer), expected);
        assert_eq!(mef_client_csrattrs(client, &mut buffer), expected);
        assert!(buffer.is_null());
        mef_client_free(client);
    }
}

#[test]
fn the_ts0003_profile_is_handed_to_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let config = no_mef_config(dir.path());
    let mut client = std::ptr::null_mut();
    // SAFETY: valid pointers and lengths throughout; config and client are freed once.
    unsafe {
        assert_eq!(
            mef_config_set_tls_profile(config, MEF_TLS_PROFILE_TS0003),
            MEF_OK
        );
        assert_eq!(
            mef_config_set_tls_profile(config, 7),
            MEF_ERR_INVALID_ARGUMENT
        );
        assert_eq!(mef_client_new(config, &mut client), MEF_OK);
        mef_config_free(config);
        let mut buffer = std::ptr::null_mut();
        let r = mef_client_cacerts(client, &mut buffer);
        let error = last_error(client);
        // With the feature the OpenSSL stack was built and tried to connect.
        assert_connects_if_supported(est::ts0003::SUPPORTED, r, &error, "needs OpenSSL");
        assert!(buffer.is_null());
        mef_client_free(client);
    }
}

fn config_error(config: *const mef_config) -> String {
    // SAFETY: a live configuration; the text is copied before the next call.
    unsafe { CStr::from_ptr(mef_config_last_error(config)) }
        .to_string_lossy()
        .into_owned()
}

/// The core's reason reaches the C caller of a setter and of `mef_client_new` (issue #14), in
/// words, without Rust Debug forms, and never with key material.
#[test]
fn config_setters_say_why_they_failed() {
    // ring cannot generate RSA keys: the openssl CLI makes one.
    if !onem2m_est_testkit::require_tool("openssl", "Debian package openssl") {
        return;
    }
    let rsa = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ])
        .output()
        .expect("the openssl CLI runs");
    assert!(rsa.status.success());
    let rsa_key = String::from_utf8(rsa.stdout).unwrap();
    let mut config = std::ptr::null_mut();
    // SAFETY: valid pointers and lengths throughout; the config is freed once.
    unsafe {
        assert_eq!(mef_config_new(&mut config), MEF_OK);
        assert_eq!(config_error(config), "");
        assert_eq!(config_error(std::ptr::null()), "");

        let uri = CString::new("ftp://mef.example.com/.well-known/est").unwrap();
        assert_eq!(
            mef_config_set_base_uri(config, uri.as_ptr()),
            MEF_ERR_INVALID_ARGUMENT
        );
        let text = config_error(config);
        assert!(
            text.contains("EST base URI") && text.contains("ftp://"),
            "{text}"
        );

        let id = CString::new("*.sp.example.com").unwrap();
        assert_eq!(
            mef_config_set_subject(config, MEF_SUBJECT_CSE, id.as_ptr()),
            MEF_ERR_INVALID_ARGUMENT
        );
        let text = config_error(config);
        assert!(
            text.contains("*.sp.example.com") && text.contains("wildcard"),
            "{text}"
        );

        assert_eq!(
            mef_config_set_subject(config, 99, id.as_ptr()),
            MEF_ERR_INVALID_ARGUMENT
        );
        assert_eq!(config_error(config), "unknown subject type 99");

        let garbage = b"not PEM";
        assert_eq!(
            mef_config_set_trust_anchors_pem(config, garbage.as_ptr(), garbage.len()),
            MEF_ERR_INVALID_ARGUMENT
        );
        assert!(
            config_error(config).starts_with("trust anchors: "),
            "{}",
            config_error(config)
        );

        assert_eq!(
            mef_config_set_store_dir(config, std::ptr::null()),
            MEF_ERR_NULL_ARGUMENT
        );
        assert_eq!(config_error(config), "dir is NULL");

        // An RSA key is refused with a message that blames the key, not the server.
        let cert = ca_pem();
        assert_eq!(
            mef_config_set_client_cert_pem(
                config,
                cert.as_ptr(),
                cert.len(),
                rsa_key.as_ptr(),
                rsa_key.len()
            ),
            MEF_ERR_INVALID_ARGUMENT
        );
        let text = config_error(config);
        assert!(
            text.contains("client key: ") && text.contains("RSA key"),
            "{text}"
        );
        assert!(!text.contains("server"), "{text}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");

        // mef_client_new reports into the (const) configuration too.
        let mut client = std::ptr::null_mut();
        assert_eq!(
            mef_client_new(config, &mut client),
            MEF_ERR_INVALID_ARGUMENT
        );
        assert!(client.is_null());
        assert!(
            config_error(config).contains("no base URI configured"),
            "{}",
            config_error(config)
        );
        let text = config_error(config);
        assert!(!text.contains("Some(") && !text.contains("Ec(") && !text.contains("DNSName("));
        mef_config_free(config);
    }
}

/// Every refusal of a configuration setter and of `mef_client_new` says why in
/// `mef_config_last_error` (each on a fresh configuration, so an earlier reason cannot stand in
/// for a missing one).
#[test]
fn every_config_refusal_sets_the_last_error() {
    type Call = Box<dyn Fn(*mut mef_config) -> mef_result>;
    let s = |t: &str| CString::new(t).unwrap();
    let (bad_uri, id, empty) = (s("ftp://x/"), s("*.sp.example.com"), s(""));
    let uri = s("https://127.0.0.1:1/.well-known/est");
    let dir = s("/nonexistent-dir-for-a-test");
    let pem = b"not PEM".to_vec();
    let kpm = [7u8; 8];
    let device = onem2m_est_testkit::pki::ClientCreds::self_signed();
    let (cert, key) = (device.cert_pem(), device.key.serialize_pem());
    let kc_short = mef_key_callbacks {
        struct_size: 3,
        generate: None,
        current: None,
        public_key: None,
        sign: None,
        commit: None,
        discard: None,
    };
    let cc_null = mef_credential_callbacks {
        struct_size: std::mem::size_of::<mef_credential_callbacks>(),
        store: None,
        load: None,
    };
    // SAFETY (all calls): a live configuration from mef_config_new, valid strings and
    // buffers, callback structs alive during the call.
    let calls: Vec<(&str, Call)> = vec![
        (
            "base_uri",
            Box::new(move |c| unsafe { mef_config_set_base_uri(c, bad_uri.as_ptr()) }),
        ),
        (
            "base_uri NULL",
            Box::new(|c| unsafe { mef_config_set_base_uri(c, std::ptr::null()) }),
        ),
        (
            "psk_base_uri",
            Box::new({
                let e = empty.clone();
                move |c| unsafe { mef_config_set_psk_base_uri(c, e.as_ptr()) }
            }),
        ),
        (
            "trust_anchors",
            Box::new({
                let p = pem.clone();
                move |c| unsafe { mef_config_set_trust_anchors_pem(c, p.as_ptr(), p.len()) }
            }),
        ),
        (
            "client_cert_pem",
            Box::new({
                let p = pem.clone();
                move |c| unsafe {
                    mef_config_set_client_cert_pem(c, p.as_ptr(), p.len(), p.as_ptr(), p.len())
                }
            }),
        ),
        (
            "client_cert_key_handle",
            Box::new({
                let p = pem.clone();
                move |c| unsafe {
                    mef_config_set_client_cert_key_handle(
                        c,
                        p.as_ptr(),
                        p.len(),
                        1,
                        MEF_KEY_ECDSA_P256_SHA256,
                    )
                }
            }),
        ),
        (
            "psk",
            Box::new(move |c| unsafe {
                mef_config_set_psk(c, c"kpm".as_ptr(), kpm.as_ptr(), kpm.len())
            }),
        ),
        (
            "subject",
            Box::new(move |c| unsafe { mef_config_set_subject(c, MEF_SUBJECT_CSE, id.as_ptr()) }),
        ),
        (
            "subject type",
            Box::new(|c| unsafe { mef_config_set_subject(c, 99, c"/cse".as_ptr()) }),
        ),
        (
            "sp_id",
            Box::new(|c| unsafe { mef_config_set_sp_id(c, c"not an sp id".as_ptr()) }),
        ),
        (
            "mef_fqdn",
            Box::new(|c| unsafe { mef_config_set_mef_fqdn(c, c"".as_ptr()) }),
        ),
        (
            "key_type",
            Box::new(|c| unsafe { mef_config_set_key_type(c, 99) }),
        ),
        (
            "tls_profile",
            Box::new(|c| unsafe { mef_config_set_tls_profile(c, 99) }),
        ),
        (
            "timeouts",
            Box::new(|c| unsafe { mef_config_set_timeouts(c, 0, 1, 1) }),
        ),
        (
            "polling",
            Box::new(|c| unsafe { mef_config_set_polling(c, 0, 1) }),
        ),
        (
            "store_dir",
            Box::new(|c| unsafe { mef_config_set_store_dir(c, std::ptr::null()) }),
        ),
        (
            "key_callbacks NULL",
            Box::new(|c| unsafe {
                mef_config_set_key_callbacks(c, std::ptr::null(), std::ptr::null_mut())
            }),
        ),
        (
            "key_callbacks size",
            Box::new(move |c| unsafe {
                mef_config_set_key_callbacks(c, &kc_short, std::ptr::null_mut())
            }),
        ),
        (
            "credential_callbacks member",
            Box::new(move |c| unsafe {
                mef_config_set_credential_callbacks(c, &cc_null, std::ptr::null_mut())
            }),
        ),
        (
            "identity_callback",
            Box::new(|c| unsafe {
                mef_config_set_identity_callback(c, None, std::ptr::null_mut())
            }),
        ),
        (
            "log_callback",
            Box::new(|c| unsafe {
                mef_config_set_log_callback(c, None, std::ptr::null_mut(), MEF_LOG_INFO)
            }),
        ),
        (
            "pkcs11_key",
            Box::new(|c| unsafe {
                mef_config_set_pkcs11_key(
                    c,
                    c"".as_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    std::ptr::null(),
                )
            }),
        ),
        // mef_client_new's refusals, on configurations that each setter accepted.
        (
            "client_new: no base URI",
            Box::new(|c| unsafe { client_new(c) }),
        ),
        (
            "client_new: no storage",
            Box::new({
                let u = uri.clone();
                move |c| unsafe {
                    mef_config_set_base_uri(c, u.as_ptr());
                    client_new(c)
                }
            }),
        ),
        (
            "client_new: PSK and certificate",
            Box::new({
                let u = uri.clone();
                let d = dir.clone();
                let (cert, key) = (cert.clone(), key.clone());
                move |c| unsafe {
                    mef_config_set_base_uri(c, u.as_ptr());
                    mef_config_set_store_dir(c, d.as_ptr());
                    let k = [7u8; 16];
                    assert_eq!(
                        mef_config_set_psk(c, c"kpm".as_ptr(), k.as_ptr(), k.len()),
                        MEF_OK
                    );
                    assert_eq!(
                        mef_config_set_client_cert_pem(
                            c,
                            cert.as_ptr(),
                            cert.len(),
                            key.as_ptr(),
                            key.len()
                        ),
                        MEF_OK
                    );
                    client_new(c)
                }
            }),
        ),
        (
            "client_new: a key handle without key callbacks",
            Box::new({
                let u = uri.clone();
                let d = dir.clone();
                move |c| unsafe {
                    mef_config_set_base_uri(c, u.as_ptr());
                    mef_config_set_store_dir(c, d.as_ptr());
                    assert_eq!(
                        mef_config_set_client_cert_key_handle(
                            c,
                            cert.as_ptr(),
                            cert.len(),
                            1,
                            MEF_KEY_ECDSA_P256_SHA256
                        ),
                        MEF_OK
                    );
                    client_new(c)
                }
            }),
        ),
    ];
    for (what, call) in calls {
        let mut config = std::ptr::null_mut();
        // SAFETY: out-pointer we own; freed below.
        unsafe { assert_eq!(mef_config_new(&mut config), MEF_OK) };
        let code = call(config);
        assert_ne!(code, MEF_OK, "{what}");
        assert!(
            !config_error(config).is_empty(),
            "{what}: refused ({code}) without a reason"
        );
        // SAFETY: created above, freed once.
        unsafe { mef_config_free(config) };
    }
}

/// `mef_client_new` on `config`; a client it makes is freed.
unsafe fn client_new(config: *mut mef_config) -> mef_result {
    let mut client = std::ptr::null_mut();
    // SAFETY: a live configuration (caller), an out-pointer we own.
    let r = unsafe { mef_client_new(config, &mut client) };
    // SAFETY: NULL or the client just made.
    unsafe { mef_client_free(client) };
    r
}
