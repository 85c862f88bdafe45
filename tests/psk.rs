//! PPSK-based RSPF (TS-0003 8.3.2.1): Initial Certificate Provisioning over certificate-less
//! TLS-PSK (RFC 7030 3.3.3) through the Rust API, against the reference MEF's PSK listener and
//! against `openssl s_server`, all on 127.0.0.1. Needs the `psk` feature.
#![cfg(feature = "psk")]

use onem2m_est::client::Channel;
use std::process::{Command, Stdio};
use std::sync::Arc;

use onem2m_est::client::{Config, InitialAuth, KeySource, MefClient, Reprovision};
use onem2m_est::psk::{OpenSslPskStack, PskCredential};
use onem2m_est::store::{CredentialStore, FileStore};
use onem2m_est::transport::{EstConnection, TransportConfig};
use onem2m_est::uri::EstUri;
use onem2m_est::{Error, ErrorClass, Operation};
use onem2m_est_testkit::openssl::SServer;
use onem2m_est_testkit::require_tool;
use onem2m_mef::{Mef, MefConfig, RunningMef, SubjectType};
use tempfile::TempDir;

const CSE_ID: &str = "cse01.sp.example.com";
const KPM_ID: &str = "kpm-0001";
const KPM_HEX: &str = "00112233445566778899aabbccddeeff0123456789abcdef";

fn kpm() -> Vec<u8> {
    // Test data in hex (the library's hex reader is internal: PskCredential::from_hex).
    (0..KPM_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&KPM_HEX[i..i + 2], 16).unwrap())
        .collect()
}

fn quick_transport() -> TransportConfig {
    onem2m_est_testkit::mef::transport()
}

fn client(uri: &str) -> MefClient {
    // A device holding only (KpmID, Kpm) and the MEF URI: no identity configured, it comes from
    // the MEF's CSR attributes.
    MefClient::new(Config::new(EstUri::parse(uri).unwrap()).transport(quick_transport()))
}

struct Setup {
    _dir: TempDir,
    mef: RunningMef,
    out: TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = TempDir::new().unwrap();
        let mut config = MefConfig::new(dir.path().join("mef"));
        config.psk_listen = Some("127.0.0.1:0".parse().unwrap());
        let mef = Mef::start(config).unwrap();
        mef.add_psk(KPM_ID, &kpm(), SubjectType::Cse, CSE_ID)
            .unwrap();
        Setup {
            _dir: dir,
            mef,
            out: TempDir::new().unwrap(),
        }
    }

    fn psk_client(&self) -> MefClient {
        client(&self.mef.psk_base_uri(None).unwrap())
    }

    fn store(&self) -> FileStore {
        FileStore::new(self.out.path()).unwrap()
    }
}

fn credential() -> InitialAuth {
    InitialAuth::Psk(PskCredential::new(KPM_ID, kpm()).unwrap())
}

fn leaf_san(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    format!("{:?}", san.value.general_names)
}

#[test]
fn psk_provisioning_then_certificate_reprovisioning() {
    let s = Setup::new();
    let mut store = s.store();
    let done = s
        .psk_client()
        .provision(&credential(), &mut store, KeySource::Generate)
        .unwrap();
    assert_eq!(
        done.connection.handshakes, 1,
        "one PSK connection for the procedure"
    );
    // /cacerts over the PSK channel bootstrapped the explicit TA database (RFC 7030 4.1.1).
    assert_eq!(done.trust_anchors, vec![s.mef.ca_cert_der()]);
    assert!(leaf_san(done.chain[0].as_ref()).contains(CSE_ID));
    let installed = store.load().unwrap().expect("credentials installed");
    assert_eq!(installed.chain[0], done.chain[0]);
    assert_eq!(installed.trust_anchors, vec![s.mef.ca_cert_der()]);
    // The MEF recorded the certificate for the KpmID's identity.
    let issued = s.mef.store().list_issued().unwrap();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].identity.subject_id(), CSE_ID);

    // Re-provisioning: certificate-based, on the rustls listener, with what was installed.
    let cert_client = client(&s.mef.base_uri(None));
    let renewed = cert_client
        .reprovision(&mut store, Reprovision::Renew)
        .unwrap();
    assert_ne!(renewed.chain[0], done.chain[0]);
    assert!(leaf_san(renewed.chain[0].as_ref()).contains(CSE_ID));
    assert_eq!(s.mef.store().list_issued().unwrap().len(), 2);
}

#[test]
fn psk_provisioning_with_server_keygen_and_lone_operations() {
    let s = Setup::new();
    let c = s.psk_client();
    let InitialAuth::Psk(cred) = credential() else {
        unreachable!()
    };
    let cas = c.cacerts(Channel::Psk(&cred)).unwrap();
    assert_eq!(cas, vec![s.mef.ca_cert_der()]);
    let reqs = c
        .csrattrs(Channel::Psk(&cred))
        .unwrap()
        .expect("the MEF sends attributes");
    assert!(reqs.subject_alt_name().is_some());
    let mut store = s.store();
    let done = c
        .provision(&credential(), &mut store, KeySource::ServerGenerated)
        .unwrap();
    assert!(leaf_san(done.chain[0].as_ref()).contains(CSE_ID));
    assert!(store.load().unwrap().is_some());
}

fn assert_handshake_refused(e: &Error) {
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    // TS-0003 8.3.9.7: a failed handshake is a failure communicating with the server.
    assert_eq!(e.class(), ErrorClass::Server);
    let text = e.to_string();
    assert!(text.contains("PSK"), "{text}");
    assert!(!text.contains(KPM_HEX), "{text}");
}

#[test]
fn wrong_kpm_fails_the_handshake_and_installs_nothing() {
    let s = Setup::new();
    let mut wrong = kpm();
    wrong[0] ^= 1;
    let auth = InitialAuth::Psk(PskCredential::new(KPM_ID, wrong).unwrap());
    let mut store = s.store();
    let e = s
        .psk_client()
        .provision(&auth, &mut store, KeySource::Generate)
        .unwrap_err();
    assert_handshake_refused(&e);
    assert!(store.load().unwrap().is_none());
    assert!(s.mef.store().list_issued().unwrap().is_empty());
}

#[test]
fn unknown_kpm_id_fails_the_handshake() {
    let s = Setup::new();
    let auth = InitialAuth::Psk(PskCredential::new("kpm-unknown", kpm()).unwrap());
    let e = s
        .psk_client()
        .provision(&auth, &mut s.store(), KeySource::Generate)
        .unwrap_err();
    assert_handshake_refused(&e);
    // A KpmID removed from the registry is refused from then on.
    s.mef.store().remove_psk(KPM_ID).unwrap();
    let e = s
        .psk_client()
        .provision(&credential(), &mut s.store(), KeySource::Generate)
        .unwrap_err();
    assert_handshake_refused(&e);
}

#[test]
fn a_certificate_server_is_not_accepted_in_place_of_the_psk() {
    // The MEF's rustls listener speaks TLS 1.3 with a certificate: it ignores the external PSK
    // and authenticates with its certificate, which the PSK client must refuse.
    let s = Setup::new();
    let e = client(&s.mef.base_uri(None))
        .provision(&credential(), &mut s.store(), KeySource::Generate)
        .unwrap_err();
    assert!(matches!(e, Error::ServerNotAuthorized { .. }), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Server);
    assert!(s.store().load().unwrap().is_none());
}

#[test]
fn simplereenroll_over_psk_is_refused_by_the_mef() {
    // CR 8.3.Z.2.3 pre-condition C: re-provisioning is certificate-based. The MEF refuses before
    // looking at the body, so any body will do.
    let s = Setup::new();
    let cred = PskCredential::new(KPM_ID, kpm()).unwrap();
    let uri = EstUri::parse(&s.mef.psk_base_uri(None).unwrap()).unwrap();
    let conn = EstConnection::with_stack(
        &uri,
        Arc::new(OpenSslPskStack::new(&cred).unwrap()),
        &quick_transport(),
    )
    .unwrap();
    match conn.simple_reenroll(b"not a CSR").unwrap_err() {
        Error::ServerStatus {
            operation: Operation::SimpleReenroll,
            status: 403,
            message,
        } => assert!(message.contains("TLS-PSK"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn short_and_empty_keys_are_rejected() {
    for (id, key) in [
        (KPM_ID, vec![]),
        (KPM_ID, vec![1u8; 15]),
        ("", vec![1u8; 16]),
    ] {
        let e = PskCredential::new(id, key).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadArguments, "{e}");
    }
}

// ------------------------------------------------------------------------------------------
// Interop with OpenSSL's own s_server
// ------------------------------------------------------------------------------------------

/// `openssl s_server` on 127.0.0.1 (the test kit's) for up to four connections, its stderr
/// discarded; `None` (the test returns) when openssl is missing and not required.
fn s_server(args: &[&str]) -> Option<SServer> {
    let mut all = vec!["-naccept", "4"];
    all.extend_from_slice(args);
    SServer::start(&all, Stdio::null())
}

/// Against `s_server -www` the handshake completes and one request is answered, with an HTML
/// status page that is not a certs-only body: the error is about the response, not TLS.
fn psk_against_s_server_www(version: &str, cipher_args: &[&str]) {
    let mut args = vec![
        "-psk",
        KPM_HEX,
        "-psk_identity",
        KPM_ID,
        "-nocert",
        version,
        "-www",
    ];
    args.extend_from_slice(cipher_args);
    let Some(server) = s_server(&args) else {
        return;
    };
    let cred = PskCredential::new(KPM_ID, kpm()).unwrap();
    let e = client(&server.uri())
        .cacerts(Channel::Psk(&cred))
        .unwrap_err();
    match &e {
        Error::BadResponse {
            operation: Operation::CaCerts,
            reason,
        } => assert!(reason.contains("Content-Type"), "{reason}"),
        other => panic!("expected a response error after a good handshake, got {other:?}"),
    }
}

#[test]
fn handshakes_with_s_server_on_the_mandatory_tls12_suite() {
    // TS-0003 10.2.2: TLS_PSK_WITH_AES_128_CBC_SHA256 (RFC 5487).
    psk_against_s_server_www("-tls1_2", &["-cipher", "PSK-AES128-CBC-SHA256"]);
}

#[test]
fn handshakes_with_s_server_over_tls13_external_psk() {
    psk_against_s_server_www("-tls1_3", &[]);
}

#[test]
fn a_wrong_key_fails_against_s_server() {
    let Some(server) = s_server(&[
        "-psk",
        "ffeeddccbbaa99887766554433221100",
        "-psk_identity",
        KPM_ID,
        "-nocert",
        "-tls1_2",
        "-cipher",
        "PSK-AES128-CBC-SHA256",
        "-www",
    ]) else {
        return;
    };
    let cred = PskCredential::new(KPM_ID, kpm()).unwrap();
    let e = client(&server.uri())
        .cacerts(Channel::Psk(&cred))
        .unwrap_err();
    assert_handshake_refused(&e);
}

#[test]
fn a_certificate_only_s_server_fails_cleanly() {
    // TLS 1.2 with certificate suites only: no suite in common with a PSK-only client.
    if !require_tool("openssl", "Debian package openssl") {
        return;
    }
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("key.pem");
    let cert = dir.path().join("cert.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let key = key.display().to_string();
    let cert = cert.display().to_string();
    let cred = PskCredential::new(KPM_ID, kpm()).unwrap();
    let server = s_server(&["-key", &key, "-cert", &cert, "-tls1_2", "-www"]).unwrap();
    let e = client(&server.uri())
        .cacerts(Channel::Psk(&cred))
        .unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Server);
    drop(server);
    // TLS 1.3 with a certificate: the server falls back to certificate authentication, which
    // the PSK client refuses.
    let server = s_server(&["-key", &key, "-cert", &cert, "-tls1_3", "-www"]).unwrap();
    let e = client(&server.uri())
        .cacerts(Channel::Psk(&cred))
        .unwrap_err();
    assert!(matches!(e, Error::ServerNotAuthorized { .. }), "{e:?}");
}
