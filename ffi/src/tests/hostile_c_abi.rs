//! A representative subset of the matrix driven through the C ABI (`mef_*`, called from Rust
//! exactly as a C host calls them), with the built-in file store: the result code, its
//! CERT_PROV class (`mef_result_cmd_status`), a detailed `mef_client_last_error`, a
//! byte-identical store directory, and previous credentials that still authenticate.
//!
//! (Moved from the hostile matrix, tests/hostile, with the C ABI; the harness is the test kit's, onem2m_est_testkit::hostile.)
use super::super::*;
use onem2m_est::proto::csrattrs::{Curve, KeyRequirement};
use onem2m_est_testkit::hostile::*;
use onem2m_est_testkit::{pki::*, server::*};
use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

/// A `mef_client` freed on drop.
struct CClient(*mut mef_client);

impl Drop for CClient {
    fn drop(&mut self) {
        // SAFETY: from mef_client_new, freed once here.
        unsafe { mef_client_free(self.0) }
    }
}

fn c_client(base: &str, dir: &Path) -> CClient {
    let dir = CString::new(dir.to_str().unwrap()).unwrap();
    let cfg = super::cse_config(base, MEF_CSE_ID);
    let mut client = ptr::null_mut();
    // SAFETY: every pointer is either an out-parameter we own or a NUL-terminated string
    // alive for the call; `cfg` is freed once, after mef_client_new copied it.
    unsafe {
        assert_eq!(mef_config_set_store_dir(cfg, dir.as_ptr()), MEF_OK);
        assert_eq!(mef_config_set_timeouts(cfg, 2000, 2000, 1000), MEF_OK);
        assert_eq!(mef_config_set_polling(cfg, 3, 1000), MEF_OK);
        assert_eq!(mef_client_new(cfg, &mut client), MEF_OK);
        mef_config_free(cfg);
    }
    CClient(client)
}

fn c_case_with(
    options: impl FnOnce(&mut ServerOptions, &MefPki),
    hook: impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static,
    mode: mef_reprovision,
    expected: mef_result,
) {
    let pki = Arc::new(MefPki::new("Hostile MEF CA (C ABI)"));
    let device = Device::new(&pki);
    let server = ProcedureServer::start(pki.clone(), |o| options(o, &pki), hook);
    let before = snapshot(device.dir.path());
    let client = c_client(&server.base(), device.dir.path());
    // SAFETY: a live client from mef_client_new.
    let (code, message) = unsafe {
        let code = mef_client_reprovision(client.0, mode);
        let message = CStr::from_ptr(mef_client_last_error(client.0))
            .to_string_lossy()
            .into_owned();
        (code, message)
    };
    assert_eq!(code, expected, "{message}");
    let class = if expected >= MEF_ERR_UNSUPPORTED {
        MEF_CMD_CERT_PROV_CLIENT_ERROR
    } else {
        MEF_CMD_CERT_PROV_SERVER_ERROR
    };
    assert_eq!(mef_result_cmd_status(code), class, "{message}");
    assert!(!message.is_empty());
    assert_eq!(snapshot(device.dir.path()), before, "{message}");
    drop(client);
    drop(server);
    device.assert_intact_and_usable(&pki);
}

fn c_case(
    hook: impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static,
    expected: mef_result,
) {
    c_case_with(|_, _| {}, hook, MEF_REPROVISION_REKEY, expected)
}

#[test]
fn c_truncated_cacerts_body() {
    c_case(
        on("cacerts", |_, _, good| {
            Action::RawThenClose(head_and_part(&good, good.body.len() / 2))
        }),
        MEF_ERR_TRANSPORT,
    );
}

#[test]
fn c_server_never_answers_the_enrolment() {
    c_case(
        on("simplereenroll", |_, _, _| Action::Stall),
        MEF_ERR_TIMEOUT,
    );
}

#[test]
fn c_cacerts_with_a_wrong_content_type() {
    c_case(
        on("cacerts", |_, _, good| {
            with_content_type(good, Some("text/html"))
        }),
        MEF_ERR_BAD_RESPONSE,
    );
}

/// Trailing NULs alone are tolerated (RFC 8951 3); text resuming after them is not.
#[test]
fn c_nul_padded_base64_followed_by_more_text() {
    c_case(
        on("simplereenroll", |_, _, good| {
            let mut body = good.body.clone();
            body.extend_from_slice(&[0; 16]);
            body.extend_from_slice(b"AAAA\r\n");
            with_body(good, body)
        }),
        MEF_ERR_DECODE,
    );
}

#[test]
fn c_certificate_for_another_identity() {
    c_case(
        enroll_with(|pki, spki| vec![pki.issue_for(spki, &["cse02.sp.example.com"], |_| {})]),
        MEF_ERR_CERTIFICATE_REJECTED,
    );
}

#[test]
fn c_cacerts_from_a_different_ca() {
    c_case(
        cacerts_from_another_ca(Arc::new(MefPki::new("Stranger CA"))),
        MEF_ERR_BAD_RESPONSE,
    );
}

#[test]
fn c_csrattrs_demanding_an_unsupported_key_type() {
    c_case(
        demanding(KeyRequirement::Ec(Curve::P521)),
        MEF_ERR_UNSUPPORTED,
    );
}

#[test]
fn c_accepted_forever() {
    c_case(on("simplereenroll", accepted("0")), MEF_ERR_STILL_PENDING);
}

#[test]
fn c_accepted_with_a_retry_after_beyond_the_polling_time() {
    // mef_config_set_polling(cfg, 3, 1000): a 5 s Retry-After is not cut to 1 s.
    c_case(on("simplereenroll", accepted("5")), MEF_ERR_RETRY_LATER);
}

#[test]
fn c_accepted_with_a_negative_retry_after() {
    c_case(on("simplereenroll", accepted("-1")), MEF_ERR_BAD_RESPONSE);
}

#[test]
fn c_redirect_to_another_host() {
    c_case(
        on("cacerts", |_, _, _| {
            Response::new(302)
                .header(
                    "Location",
                    "https://evil.example.net/.well-known/est/cacerts",
                )
                .into()
        }),
        MEF_ERR_REDIRECT,
    );
}

#[test]
fn c_unauthorized_with_www_authenticate() {
    c_case(
        on("simplereenroll", |_, _, _| {
            Response::new(401)
                .header("WWW-Authenticate", "Basic realm=\"est\"")
                .into()
        }),
        MEF_ERR_HTTP_AUTH_REQUESTED,
    );
}

#[test]
fn c_internal_server_error() {
    c_case(
        on("simplereenroll", |_, _, _| Response::new(500).into()),
        MEF_ERR_SERVER_STATUS,
    );
}

#[test]
fn c_reset_mid_enrolment_body() {
    c_case(
        on("simplereenroll", |_, _, good| {
            Action::ResetAfter(head_and_part(&good, 50))
        }),
        MEF_ERR_TRANSPORT,
    );
}

#[test]
fn c_reset_during_the_tls_handshake() {
    c_case_with(
        |o, _| o.reset_handshakes = vec![0],
        |_, _, good| good.into(),
        MEF_REPROVISION_RENEW,
        MEF_ERR_TLS,
    );
}

#[test]
fn c_switch_to_a_certificate_from_an_untrusted_ca() {
    c_case_with(
        switching(|_| TestCa::new("Impostor CA").server_identity(&["localhost"], Eku::ServerAuth)),
        close_after_cacerts,
        MEF_REPROVISION_RENEW,
        MEF_ERR_SERVER_NOT_AUTHORIZED,
    );
}
