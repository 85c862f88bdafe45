//! Device keys in a real PKCS #11 token (SoftHSM2, initialised with `softhsm2-util` in a scratch
//! folder through SOFTHSM2_CONF) against the reference MEF on 127.0.0.1, and inspected with
//! OpenSC's `pkcs11-tool`: provisioning with a key generated in the token, renew and rekey, no
//! key.pem on disk, the key sensitive and never extractable, the certificate's public key the
//! token's, a wrong PIN and a missing object refused as client-side errors, and the fault cases
//! of the file store (a failure after the key was generated destroys it; the old key stays).
//!
//! SoftHSM2 and pkcs11-tool are required: without them these tests fail (scripts/test.sh
//! installs `softhsm2` and `opensc`).

mod fixture;

use fixture::*;
use onem2m_est::client::{Config, InitialAuth, KeySource, MefClient, Reprovision};
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{KeyAlgorithm, SoftwareKey};
use onem2m_est::pkcs11::{PinSource, Pkcs11Key, Pkcs11Store, Pkcs11Uri};
use onem2m_est::store::{CredentialStore, FailPoint, Fault, FileStore};
use onem2m_est::tls::ClientIdentity;
use onem2m_est::transport::PollPolicy;
use onem2m_est::uri::EstUri;
use onem2m_est::{Error, ErrorClass};
use onem2m_est_testkit::server::test_transport;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

#[test]
fn provision_renew_and_rekey_with_the_key_in_the_token() {
    let _serial = one_at_a_time();
    let s = setup();
    let token = "provision";
    let done = s
        .client()
        .provision(&s.auth(), &mut s.store(token), KeySource::Generate)
        .unwrap();
    s.assert_no_key_pem();
    let first = s.key_uri();
    assert_eq!(first.object.as_deref(), Some("device"));
    let id = first
        .id
        .clone()
        .expect("the recorded URI has the key's CKA_ID");
    // The certificate holds the token's public key, as pkcs11-tool reads it.
    assert_eq!(
        spki_of(&done.chain[0]),
        token_public_key(token, &id, s.out.path())
    );
    // One private key, sensitive and never extractable, in the token.
    let keys = private_keys(token);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].contains("sensitive"), "{}", keys[0]);
    assert!(keys[0].contains("never extractable"), "{}", keys[0]);
    assert!(keys[0].contains("label:      device"), "{}", keys[0]);

    // A fresh store loads the set with the key from the token, and the key signs.
    let loaded = s.store(token).load().unwrap().unwrap();
    assert_eq!(loaded.chain, done.chain);
    assert_eq!(loaded.key.public_key_info(), spki_of(&done.chain[0]));
    assert_eq!(loaded.key.pkcs11_uri().unwrap(), first.to_string());
    // A plain FileStore cannot open the token, and says so.
    match FileStore::new(s.creds()).unwrap().load() {
        Err(Error::Store { reason, .. }) => assert!(reason.contains("PKCS #11 token"), "{reason}"),
        other => panic!("expected a Store error, got {other:?}"),
    }

    // Renew: the same key in the token, a new certificate (authenticated with the token key).
    let renewed = s
        .client()
        .reprovision(&mut s.store(token), Reprovision::Renew)
        .unwrap();
    assert_ne!(renewed.chain[0], done.chain[0]);
    assert_eq!(s.key_uri(), first);
    assert_eq!(spki_of(&renewed.chain[0]), spki_of(&done.chain[0]));
    assert_eq!(private_keys(token).len(), 1);
    s.assert_no_key_pem();

    // Rekey: a new key pair generated in the token; the old one destroyed once installed.
    let rekeyed = s
        .client()
        .reprovision(&mut s.store(token), Reprovision::Rekey)
        .unwrap();
    let second = s.key_uri();
    assert_ne!(second.id, first.id);
    let new_id = second.id.clone().unwrap();
    assert_eq!(
        spki_of(&rekeyed.chain[0]),
        token_public_key(token, &new_id, s.out.path())
    );
    assert_ne!(spki_of(&rekeyed.chain[0]), spki_of(&done.chain[0]));
    let keys = private_keys(token);
    assert_eq!(keys.len(), 1, "the old key is destroyed: {keys:?}");
    s.assert_no_key_pem();
    // And the rekeyed credentials authenticate a further renewal.
    s.client()
        .reprovision(&mut s.store(token), Reprovision::Renew)
        .unwrap();

    // A server-generated key would have to be written to disk: refused before any I/O
    // (what_the_token_store_cannot_hold_is_refused_before_any_connection), nothing changes.
    let before = s.key_uri();
    let err = s
        .client()
        .reprovision(&mut s.store(token), Reprovision::ServerKeygen)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert_eq!(s.key_uri(), before);
    assert_eq!(private_keys(token).len(), 1);
    s.assert_no_key_pem();
}

#[test]
fn a_wrong_pin_is_refused_as_a_client_error_without_the_pin() {
    let _serial = one_at_a_time();
    softhsm();
    let tmp = TempDir::new().unwrap();
    let uri = Pkcs11Uri::parse("pkcs11:token=wrongpin;object=device").unwrap();
    let err = Pkcs11Store::open(
        tmp.path().join("creds"),
        module_path(),
        uri,
        pin_file(tmp.path(), "999999"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Key { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Client);
    let text = err.to_string();
    assert!(text.contains("PIN was refused"), "{text}");
    assert!(!text.contains("999999") && !text.contains(PIN), "{text}");
    // Nothing was created in the store directory.
    assert!(!tmp.path().join("creds").exists());
}

#[test]
fn a_missing_object_or_token_is_refused_as_a_client_error() {
    let _serial = one_at_a_time();
    softhsm();
    let tmp = TempDir::new().unwrap();
    let pin = pin_file(tmp.path(), PIN);
    let uri = Pkcs11Uri::parse("pkcs11:token=missing;object=absent").unwrap();
    let err = Pkcs11Key::open(&module_path(), &uri, &pin).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Client, "{err}");
    assert!(err.to_string().contains("no private key"), "{err}");
    assert!(err.to_string().contains("object=absent"), "{err}");

    let uri = Pkcs11Uri::parse("pkcs11:token=nosuchtoken;object=device").unwrap();
    let err = Pkcs11Key::open(&module_path(), &uri, &pin).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Client, "{err}");
    assert!(err.to_string().contains("no initialised token"), "{err}");

    // A module that is not there is a bad argument, before any I/O.
    let err = Pkcs11Key::open(Path::new("/nonexistent/libpkcs11.so"), &uri, &pin).unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadArguments, "{err}");
}

#[test]
fn a_failure_after_the_key_is_generated_destroys_it_and_keeps_the_old_one() {
    let _serial = one_at_a_time();
    let s = setup();
    let token = "faults";
    s.client()
        .provision(&s.auth(), &mut s.store(token), KeySource::Generate)
        .unwrap();
    let old_uri = s.key_uri();
    let old_cert = std::fs::read(s.creds().join("cert.pem")).unwrap();
    for (at, fault) in [
        (FailPoint::AfterKey, Fault::DiskFull),
        (FailPoint::BeforeSwap, Fault::PermissionDenied),
    ] {
        let mut store = s.store(token);
        store.inject_fault(Some((at, fault)));
        let err = s
            .client()
            .reprovision(&mut store, Reprovision::Rekey)
            .unwrap_err();
        assert!(matches!(err, Error::Store { .. }), "{at:?}: {err}");
        // The new key pair is gone from the token; the old one is the only key.
        let keys = private_keys(token);
        assert_eq!(keys.len(), 1, "{at:?}: {keys:?}");
        assert_eq!(s.key_uri(), old_uri);
        assert_eq!(std::fs::read(s.creds().join("cert.pem")).unwrap(), old_cert);
        s.assert_no_key_pem();
    }
    // The old credentials still work.
    s.client()
        .reprovision(&mut s.store(token), Reprovision::Renew)
        .unwrap();
    assert_eq!(s.key_uri(), old_uri);
}

#[test]
fn a_failed_first_provisioning_leaves_no_key_in_the_token() {
    let _serial = one_at_a_time();
    let s = setup();
    let token = "firstfail";
    let mut store = s.store(token);
    store.inject_fault(Some((FailPoint::AfterFiles, Fault::DiskFull)));
    s.client()
        .provision(&s.auth(), &mut store, KeySource::Generate)
        .unwrap_err();
    assert!(private_keys(token).is_empty());
    assert!(store.load().unwrap().is_none());
}

/// The MEF with its CA key in a token (`MefConfig::ca_key`, `onem2m-mef --ca-key pkcs11:...`):
/// the CA certificate holds the token's public key, no mef-ca.key is written, and the client
/// (its own key in a token too) provisions and rekeys against it, validating the chain the
/// token signed. Needs the MEF built with its `pkcs11` feature too (scripts/test.sh passes
/// `onem2m-mef/pkcs11`): without it the MEF refuses the token CA key and this test fails.
#[test]
fn the_mef_issues_with_its_ca_key_in_the_token() {
    let _serial = one_at_a_time();
    softhsm();
    let scratch = TempDir::new().unwrap();
    // An existing P-256 key pair in the token, as an operator makes it.
    pkcs11_tool(
        "mef-ca",
        &[
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "ca",
            "--id",
            "01",
        ],
    );
    let PinSource::File(pin) = pin_file(scratch.path(), PIN) else {
        unreachable!()
    };
    let s = setup_with(|config| {
        config.ca_key = Some(onem2m_mef::CaKeyInToken {
            module: module_path(),
            uri: "pkcs11:token=mef-ca;object=ca".into(),
            pin_file: Some(pin.clone()),
            pin_env: None,
        })
    });
    let ca = s.mef.ca_cert_der();
    assert_eq!(
        spki_of(&ca),
        token_public_key("mef-ca", &[1], scratch.path())
    );
    let data_dir = s.mef.ca_cert_pem_path().parent().unwrap().to_path_buf();
    assert!(!data_dir.join("mef-ca.key").exists(), "no CA key on disk");

    let token = "device-of-mef-ca";
    let done = s
        .client()
        .provision(&s.auth(), &mut s.store(token), KeySource::Generate)
        .unwrap();
    assert_eq!(done.trust_anchors, vec![ca.clone()]);
    // The issued certificate verifies under the token's CA key (checked independently).
    let (_, leaf) = x509_parser::parse_x509_certificate(done.chain[0].as_ref()).unwrap();
    let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.as_ref()).unwrap();
    leaf.verify_signature(Some(ca_cert.public_key())).unwrap();
    s.client()
        .reprovision(&mut s.store(token), Reprovision::Rekey)
        .unwrap();
}

/// A TCP listener on 127.0.0.1 (port chosen by the OS) that counts the connections made to it:
/// where "refused before any I/O" is observable.
struct ConnectionCounter {
    port: u16,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConnectionCounter {
    fn start() -> ConnectionCounter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (count, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (c, st) = (count.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok(_) => {
                        c.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        ConnectionCounter {
            port,
            count,
            stop,
            thread: Some(thread),
        }
    }

    fn connections(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for ConnectionCounter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a token store cannot hold (a /serverkeygen key, a key from outside the token, a
/// configured algorithm other than P-256) is refused as a bad argument before the first
/// network byte: the MEF address is a listener that counts connections, and it sees none.
#[test]
fn what_the_token_store_cannot_hold_is_refused_before_any_connection() {
    let _serial = one_at_a_time();
    let s = setup();
    let token = "upfront";
    // Installed credentials with the key in the token, for the re-provisioning cases.
    let done = s
        .client()
        .provision(&s.auth(), &mut s.store(token), KeySource::Generate)
        .unwrap();
    let counter = ConnectionCounter::start();
    let client = |algorithm: KeyAlgorithm| {
        MefClient::new(
            Config::new(
                EstUri::parse(&format!(
                    "https://127.0.0.1:{}/.well-known/est",
                    counter.port
                ))
                .unwrap(),
            )
            .identity(SubjectIdentity::new(SubjectType::Cse, CSE_ID).unwrap())
            .key_algorithm(algorithm)
            .transport(test_transport(
                Duration::from_secs(2),
                Duration::from_secs(2),
                PollPolicy::default(),
            )),
        )
    };
    let p256 = client(KeyAlgorithm::EcdsaP256Sha256);
    let p384 = client(KeyAlgorithm::EcdsaP384Sha384);
    let software = Arc::new(SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap());
    let now = std::time::SystemTime::now();
    let mut store = s.store(token);
    let cases: Vec<(&str, Result<_, Error>, &str)> = vec![
        (
            "provision /serverkeygen",
            p256.provision(&s.auth(), &mut store, KeySource::ServerGenerated),
            "/serverkeygen",
        ),
        (
            "reprovision /serverkeygen",
            p256.reprovision(&mut store, Reprovision::ServerKeygen),
            "/serverkeygen",
        ),
        (
            "renew /serverkeygen",
            p256.renew(&mut store, Reprovision::ServerKeygen, Some(&s.auth()), now)
                .map(|r| r.provisioned),
            "/serverkeygen",
        ),
        (
            "provision P-384",
            p384.provision(&s.auth(), &mut store, KeySource::Generate),
            "P-384",
        ),
        (
            "reprovision rekey P-384",
            p384.reprovision(&mut store, Reprovision::Rekey),
            "P-384",
        ),
        (
            "provision with a software key",
            p256.provision(&s.auth(), &mut store, KeySource::Existing(software)),
            "outside the PKCS #11 token",
        ),
    ];
    for (what, result, says) in cases {
        let err = result.expect_err(what);
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{what}: {err:?}"
        );
        assert_eq!(err.class(), ErrorClass::BadArguments, "{what}");
        assert!(err.to_string().contains(says), "{what}: {err}");
    }
    assert_eq!(counter.connections(), 0, "no connection may be made");
    // Nothing changed: the installed set and its one key in the token.
    assert_eq!(s.store(token).load().unwrap().unwrap().chain, done.chain);
    assert_eq!(private_keys(token).len(), 1);
    // The same listener does count a procedure that is not refused up front (the check above
    // can fail): re-provisioning with the token key connects, and fails there.
    assert!(p256.reprovision(&mut store, Reprovision::Renew).is_err());
    assert!(counter.connections() > 0);
}

/// The key type the MEF requires is known only from /csrattrs (RFC 7030 4.5.2): a requirement
/// the token cannot meet (P-384) is refused then, as a client-side Unsupported, before any key
/// is generated and before /simpleenroll.
#[test]
fn a_key_type_the_token_cannot_make_is_refused_after_csrattrs_before_simpleenroll() {
    let _serial = one_at_a_time();
    use onem2m_est::proto::csrattrs::{Curve, KeyRequirement};
    use onem2m_est_testkit::server::{Action, MefPki, ProcedureServer, MEF_CSE_ID};
    softhsm();
    let token = "p384-required";
    let pki = Arc::new(MefPki::new("p384 MEF CA"));
    let server = ProcedureServer::start(
        pki.clone(),
        |_| {},
        |pki, req, good| {
            if req.path.ends_with("/csrattrs") {
                let mut reqs = pki.requirements();
                reqs.key = Some(KeyRequirement::Ec(Curve::P384));
                Action::Respond(MefPki::csrattrs_response(&reqs))
            } else {
                Action::Respond(good)
            }
        },
    );
    let device = pki.device_credentials();
    let auth = InitialAuth::Certificate {
        trust_anchors: vec![pki.ca.cert.clone()],
        client: ClientIdentity {
            chain: device.chain.clone(),
            key: device.key.clone(),
        },
    };
    let dir = TempDir::new().unwrap();
    let mut store = Pkcs11Store::open(
        dir.path().join("creds"),
        module_path(),
        Pkcs11Uri::parse(&format!("pkcs11:token={token};object=device")).unwrap(),
        pin_file(dir.path(), PIN),
    )
    .unwrap();
    let client = MefClient::new(
        Config::new(EstUri::parse(&server.base()).unwrap())
            .identity(SubjectIdentity::new(SubjectType::Cse, MEF_CSE_ID).unwrap()),
    );
    let err = client
        .provision(&auth, &mut store, KeySource::Generate)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Client);
    assert!(err.to_string().contains("P-384"), "{err}");
    let paths: Vec<String> = server
        .server
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(paths.iter().any(|p| p.ends_with("/csrattrs")), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains("enroll")), "{paths:?}");
    assert!(private_keys(token).is_empty(), "no key was generated");
    assert!(store.load().unwrap().is_none());
}
