//! The two procedures of TS-0003 8.3.6.2, end to end, against the reference MEF (`onem2m-mef`)
//! on 127.0.0.1: real TLS, real HTTP, real CA, real credential store on disk.

use onem2m_est::client::Channel;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use onem2m_est::certprov::CmdStatus;
use onem2m_est::client::{Config, InitialAuth, KeySource, MefClient, Provisioned, Reprovision};
use onem2m_est::csr::build_csr;
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
use onem2m_est::proto::csrattrs::{ChallengePassword, CsrRequirements};
use onem2m_est::store::{CredentialStore, FileStore};
use onem2m_est::tls::client_config;
use onem2m_est::transport::{EstConnection, TransportConfig};
use onem2m_est::uri::EstUri;
use onem2m_est::{Error, ErrorClass};
use onem2m_est_testkit::openssl::SServer;
use onem2m_est_testkit::server::cse_client;
use onem2m_est_testkit::{require_tool, Manufacturer, MefFixture, CSE_ID};
use onem2m_mef::{Mef, MefConfig, RunningMef, ServerEku};
use rustls_pki_types::CertificateDer;
use tempfile::TempDir;
use zeroize::Zeroizing;

struct Setup {
    _dir: TempDir,
    mef: RunningMef,
    maker: Manufacturer,
    out: TempDir,
}

impl Setup {
    fn auth(&self) -> InitialAuth {
        auth_by(&self.maker, self.mef.ca_cert_der())
    }

    fn client(&self, label: Option<&str>) -> MefClient {
        cse_client(&self.mef.base_uri(label), CSE_ID, quick_transport())
    }

    fn store(&self) -> FileStore {
        FileStore::new(self.out.path()).unwrap()
    }

    /// The initial provisioning of the device by `client`, with a generated key.
    fn provision_by(&self, client: &MefClient) -> onem2m_est::Result<Provisioned> {
        client.provision(&self.auth(), &mut self.store(), KeySource::Generate)
    }

    /// A device provisioned by `client(None)`: that client, and the credentials installed.
    fn provisioned(&self) -> (MefClient, onem2m_est::store::Credentials) {
        let client = self.client(None);
        self.provision_by(&client).unwrap();
        (client, assert_installed(self.out.path()))
    }

    /// A re-provisioning (`mode`) of the installed credentials by `client`.
    fn reprovision_by(
        &self,
        client: &MefClient,
        mode: Reprovision,
    ) -> onem2m_est::Result<Provisioned> {
        client.reprovision(&mut self.store(), mode)
    }
}

/// The device of `maker` authenticating with its third-party credential, trusting `anchor`.
fn auth_by(maker: &Manufacturer, anchor: CertificateDer<'static>) -> InitialAuth {
    InitialAuth::Certificate {
        trust_anchors: vec![anchor],
        client: maker.identity(),
    }
}

/// A client of `mef` with no identity configured (it comes from the CSR attributes or the
/// current certificate).
fn client_of(mef: &RunningMef) -> MefClient {
    MefClient::new(
        Config::new(EstUri::parse(&mef.base_uri(None)).unwrap()).transport(quick_transport()),
    )
}

/// An EST connection to `mef` without a client certificate, trusting `anchor`.
fn connection(mef: &RunningMef, anchor: &CertificateDer<'static>) -> EstConnection {
    let uri = EstUri::parse(&mef.base_uri(None)).unwrap();
    let tls = client_config(std::slice::from_ref(anchor), None, &uri).unwrap();
    EstConnection::new(&uri, tls, &quick_transport()).unwrap()
}

fn quick_transport() -> TransportConfig {
    let mut t = onem2m_est_testkit::mef::transport();
    t.poll.default_delay = Duration::from_millis(10);
    t.poll.max_total = Duration::from_secs(20);
    t
}

fn setup_with(tweak: impl FnOnce(&mut MefConfig)) -> Setup {
    let MefFixture { mef, maker, dir } = MefFixture::start_with("acme", tweak);
    Setup {
        _dir: dir,
        mef,
        maker,
        out: TempDir::new().unwrap(),
    }
}

fn setup() -> Setup {
    setup_with(|_| {})
}

fn leaf_serial(chain: &[CertificateDer<'_>]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(chain[0].as_ref()).unwrap();
    cert.raw_serial_as_string()
}

fn assert_installed(out: &Path) -> onem2m_est::store::Credentials {
    let creds = FileStore::new(out)
        .unwrap()
        .load()
        .unwrap()
        .expect("credentials installed");
    assert!(!creds.trust_anchors.is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key.pem must be 0600");
    }
    creds
}

/// The public key (SPKI) of the key installed in `out`.
fn installed_key(out: &Path) -> Vec<u8> {
    assert_installed(out).key.public_key_info().to_vec()
}

/// Nothing was installed in `out`.
fn assert_nothing_installed(out: &Path) {
    assert!(FileStore::new(out).unwrap().load().unwrap().is_none());
}

#[test]
fn initial_provisioning_installs_certificate_key_and_trust_anchors_in_one_handshake() {
    let s = setup();
    let done = s.provision_by(&s.client(None)).unwrap();
    // One kept-alive connection: /cacerts, /csrattrs, /simpleenroll.
    assert_eq!(done.connection.handshakes, 1);
    assert_eq!(done.trust_anchors, vec![s.mef.ca_cert_der()]);
    let creds = assert_installed(s.out.path());
    assert_eq!(creds.chain[0], done.chain[0]);
    // The certificate carries the identity in subjectAltName (TS-0003 10.1.1.7).
    let (_, cert) = x509_parser::parse_x509_certificate(creds.chain[0].as_ref()).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(san.value.general_names.len(), 1);
    assert_eq!(
        san.value.general_names[0].to_string(),
        format!("DNSName({CSE_ID})")
    );
    // And holds the installed key.
    assert_eq!(
        cert.public_key().raw,
        creds.key.public_key_info(),
        "the installed key matches the certificate"
    );
}

#[test]
fn initial_provisioning_takes_the_identity_from_the_csr_attributes_when_none_is_configured() {
    let s = setup();
    let client = client_of(&s.mef);
    let done = s.provision_by(&client).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(done.chain[0].as_ref()).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        san.value.general_names[0].to_string(),
        format!("DNSName({CSE_ID})")
    );
}

#[test]
fn initial_provisioning_with_an_existing_key() {
    let s = setup();
    let key: Arc<dyn PrivateKey> =
        Arc::new(SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap());
    let done = s
        .client(None)
        .provision(&s.auth(), &mut s.store(), KeySource::Existing(key.clone()))
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(done.chain[0].as_ref()).unwrap();
    assert_eq!(cert.public_key().raw, key.public_key_info());
}

#[test]
fn initial_provisioning_under_a_label() {
    let s = setup();
    s.provision_by(&s.client(Some("cse"))).unwrap();
    assert_installed(s.out.path());
}

#[test]
fn server_side_key_generation_installs_the_servers_key() {
    let s = setup();
    let done = s
        .client(None)
        .provision(&s.auth(), &mut s.store(), KeySource::ServerGenerated)
        .unwrap();
    let creds = assert_installed(s.out.path());
    let (_, cert) = x509_parser::parse_x509_certificate(done.chain[0].as_ref()).unwrap();
    assert_eq!(cert.public_key().raw, creds.key.public_key_info());
}

#[test]
fn reprovisioning_renews_with_the_same_key_and_rekeys_with_a_new_one() {
    let s = setup();
    let client = s.client(None);
    let first = s.provision_by(&client).unwrap();
    let key0 = installed_key(s.out.path());

    let renewed = s.reprovision_by(&client, Reprovision::Renew).unwrap();
    assert_eq!(renewed.connection.handshakes, 1);
    assert_ne!(leaf_serial(&renewed.chain), leaf_serial(&first.chain));
    let key1 = installed_key(s.out.path());
    assert_eq!(key0, key1, "renew keeps the key");

    let rekeyed = s.reprovision_by(&client, Reprovision::Rekey).unwrap();
    assert_ne!(leaf_serial(&rekeyed.chain), leaf_serial(&renewed.chain));
    let key2 = installed_key(s.out.path());
    assert_ne!(key1, key2, "rekey replaces the key");

    let server_keyed = s
        .reprovision_by(&client, Reprovision::ServerKeygen)
        .unwrap();
    let key3 = installed_key(s.out.path());
    assert_ne!(key2, key3);
    assert_eq!(
        assert_installed(s.out.path()).chain[0],
        server_keyed.chain[0]
    );
}

#[test]
fn reprovisioning_without_credentials_is_a_client_error() {
    let s = setup();
    let err = s
        .reprovision_by(&s.client(None), Reprovision::Renew)
        .unwrap_err();
    assert!(matches!(err, Error::NotProvisioned { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Client);
}

/// After any failed re-provisioning the previous certificate and key are still current, still
/// match, and still authenticate to the MEF.
fn assert_old_credentials_intact(s: &Setup, before: &onem2m_est::store::Credentials) {
    let after = assert_installed(s.out.path());
    assert_eq!(after.chain, before.chain);
    assert_eq!(after.trust_anchors, before.trust_anchors);
    assert_eq!(after.key.public_key_info(), before.key.public_key_info());
}

#[test]
fn failed_reprovisioning_leaves_the_previous_credentials_intact() {
    let s = setup();
    let (client, before) = s.provisioned();

    // The MEF revokes the certificate: re-enrolment is refused (server-side).
    let fingerprint = onem2m_mef::fingerprint(before.chain[0].as_ref());
    assert!(s.mef.revoke(&fingerprint).unwrap());
    for mode in [
        Reprovision::Renew,
        Reprovision::Rekey,
        Reprovision::ServerKeygen,
    ] {
        let err = s.reprovision_by(&client, mode).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Server, "{err}");
        assert!(
            matches!(err, Error::ServerStatus { status, .. } if (400..500).contains(&status)),
            "{err}"
        );
        assert_old_credentials_intact(&s, &before);
    }
}

#[test]
fn failed_reprovisioning_when_the_mef_is_down_leaves_the_previous_credentials_intact() {
    let s = setup();
    let (client, before) = s.provisioned();
    let Setup {
        mef,
        out,
        _dir,
        maker,
    } = s;
    mef.shutdown();
    let err = client
        .reprovision(&mut FileStore::new(out.path()).unwrap(), Reprovision::Rekey)
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Server);
    let after = FileStore::new(out.path()).unwrap().load().unwrap().unwrap();
    assert_eq!(after.chain, before.chain);
    assert_eq!(after.key.public_key_info(), before.key.public_key_info());
    drop(maker);
}

#[test]
fn reprovisioning_works_after_the_mef_restarts() {
    let dir = TempDir::new().unwrap();
    let maker = Manufacturer::new("acme");
    let start = |dir: &Path| Mef::start(maker.mef_config(dir)).unwrap();
    let out = TempDir::new().unwrap();
    {
        let mef = maker.start_mef(maker.mef_config(dir.path()));
        client_of(&mef)
            .provision(
                &auth_by(&maker, mef.ca_cert_der()),
                &mut FileStore::new(out.path()).unwrap(),
                KeySource::Generate,
            )
            .unwrap();
        mef.shutdown();
    }
    let mef = start(dir.path());
    client_of(&mef)
        .reprovision(&mut FileStore::new(out.path()).unwrap(), Reprovision::Rekey)
        .unwrap();
}

#[test]
fn a_server_certificate_for_another_host_is_refused() {
    let s = setup_with(|c| c.hostnames = vec!["mef.example.org".into()]);
    let err = s.provision_by(&s.client(None)).unwrap_err();
    assert!(matches!(err, Error::ServerNotAuthorized { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Server);
    assert_nothing_installed(s.out.path());
}

#[test]
fn a_cmc_ra_server_certificate_is_accepted_for_the_configured_uri() {
    // RFC 7030 3.6.1: with an explicit TA database, a server certificate carrying id-kp-cmcRA
    // authorises the server even when its names do not match the URI.
    let s = setup_with(|c| {
        c.hostnames = vec!["ra.example.org".into()];
        c.server_eku = ServerEku::CmcRa;
    });
    s.provision_by(&s.client(None)).unwrap();
    assert_installed(s.out.path());
}

#[test]
fn a_cert_prov_command_for_another_mef_is_refused_before_any_io() {
    // TS-0003 8.3.9.7: the URI's FQDN must be the FQDN of the MEF issuing the command. The MEF
    // is running and would enrol us: the refusal is the argument check, not the server.
    let s = setup();
    let mut config = s.client(None).config().clone();
    config.mef_fqdn = Some("mef.example.org".into());
    let err = s.provision_by(&MefClient::new(config)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                argument: "URI",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        CmdStatus::from(err.class()),
        CmdStatus::UnacceptableArguments
    );
    assert!(s.mef.store().list_issued().unwrap().is_empty());
    assert_nothing_installed(s.out.path());
}

#[test]
fn a_cert_prov_command_from_this_mef_runs_and_so_does_re_provisioning() {
    let s = setup();
    let client = MefClient::new(s.client(None).config().clone().mef_fqdn("LOCALHOST."));
    s.provision_by(&client).unwrap();
    assert_installed(s.out.path());
    s.reprovision_by(&client, Reprovision::Renew).unwrap();
    let mut other = client.config().clone();
    other.mef_fqdn = Some("mef.example.org".into());
    let err = s
        .reprovision_by(&MefClient::new(other), Reprovision::Renew)
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadArguments, "{err}");
}

#[test]
fn a_cmc_ra_server_certificate_named_otherwise_than_the_mef_fqdn_is_accepted() {
    // The mefFQDN check is of the command's URI (TS-0003 8.3.9.7); who may answer at that URI
    // is RFC 7030 3.6.1, which lets an RA certificate (id-kp-cmcRA) chaining to the explicit
    // TAs stand in for a name match. A MEF delegating EST to an RA keeps working.
    let s = setup_with(|c| {
        c.hostnames = vec!["ra.example.org".into()];
        c.server_eku = ServerEku::CmcRa;
    });
    let client = MefClient::new(s.client(None).config().clone().mef_fqdn("localhost"));
    s.provision_by(&client).unwrap();
    assert_installed(s.out.path());
}

#[test]
fn a_trust_anchor_that_does_not_match_the_mef_is_refused() {
    let s = setup();
    let stranger = Manufacturer::new("stranger");
    let auth = auth_by(&s.maker, stranger.ca_cert.clone());
    let err = s
        .client(None)
        .provision(&auth, &mut s.store(), KeySource::Generate)
        .unwrap_err();
    assert!(matches!(err, Error::ServerNotAuthorized { .. }), "{err}");
    assert_nothing_installed(s.out.path());
}

#[test]
fn an_identity_the_mef_does_not_associate_with_the_client_is_refused_before_enrolment() {
    let s = setup();
    let uri = EstUri::parse(&s.mef.base_uri(None)).unwrap();
    let client = MefClient::new(
        Config::new(uri)
            .identity(SubjectIdentity::new(SubjectType::Cse, "cse99.sp.example.com").unwrap())
            .transport(quick_transport()),
    );
    let err = s.provision_by(&client).unwrap_err();
    assert!(matches!(err, Error::IdentityConflict { .. }), "{err}");
    assert_nothing_installed(s.out.path());
}

/// Drives the layers by hand to send what a correct client never sends, so that the MEF's
/// refusal and its classification are observed.
fn enrol_with(s: &Setup, tweak: impl FnOnce(&mut CsrRequirements)) -> Error {
    let uri = EstUri::parse(&s.mef.base_uri(None)).unwrap();
    let tls = client_config(&[s.mef.ca_cert_der()], Some(s.maker.identity()), &uri).unwrap();
    let conn = EstConnection::new(&uri, tls, &quick_transport()).unwrap();
    let items = conn
        .csrattrs()
        .unwrap()
        .expect("the MEF sends CSR attributes");
    let mut reqs = CsrRequirements::from_items(&items).unwrap();
    tweak(&mut reqs);
    let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let csr = build_csr(&key, None, &reqs, None).unwrap();
    conn.simple_enroll(&csr.der).unwrap_err()
}

/// `err` is the MEF's refusal (a 4xx) with a message that `says`, and is server-side.
fn assert_refused(err: &Error, says: impl Fn(&str) -> bool) {
    match err {
        Error::ServerStatus {
            status, message, ..
        } => {
            assert!((400..500).contains(status), "{err}");
            assert!(says(message), "{err}");
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert_eq!(err.class(), ErrorClass::Server);
}

#[test]
fn the_mef_refuses_a_wrong_challenge_password_and_the_error_is_server_side() {
    let s = setup();
    let err = enrol_with(&s, |r| {
        r.challenge_password = ChallengePassword::Value(Zeroizing::new("not-the-password".into()))
    });
    assert_refused(&err, |m| m.to_lowercase().contains("challengepassword"));
}

#[test]
fn the_mef_refuses_a_wrong_identity_and_the_error_is_server_side() {
    let s = setup();
    let err = enrol_with(&s, |r| {
        let san = onem2m_est::proto::san::encode(&[onem2m_est::proto::san::GeneralName::Dns(
            "cse99.sp.example.com".into(),
        )])
        .unwrap();
        for e in &mut r.extensions {
            if e.oid == onem2m_est::proto::oids::SUBJECT_ALT_NAME {
                e.value = san.clone();
            }
        }
    });
    assert_refused(&err, |m| {
        m.to_lowercase().contains("identity") || m.contains("subjectAltName")
    });
}

/// A MEF that answers an enrolment 202 (Retry-After `retry_after_secs`) `polls` times before
/// it issues.
fn pending_mef(polls: u32, retry_after_secs: u64) -> Setup {
    setup_with(|c| {
        c.approval_polls = polls;
        c.retry_after_secs = retry_after_secs;
    })
}

#[test]
fn pending_enrolment_is_polled_until_the_certificate_is_issued() {
    // RFC 7030 4.2.3: 202 Accepted with Retry-After, then the certificate.
    let s = pending_mef(2, 0);
    let done = s.provision_by(&s.client(None)).unwrap();
    assert_eq!(done.connection.handshakes, 1);
    assert_installed(s.out.path());
}

#[test]
fn pending_enrolment_beyond_the_polling_bound_fails_and_installs_nothing() {
    let s = pending_mef(50, 0);
    let uri = EstUri::parse(&s.mef.base_uri(None)).unwrap();
    let mut transport = quick_transport();
    transport.poll.max_attempts = 3;
    let client = MefClient::new(Config::new(uri).transport(transport));
    let err = s.provision_by(&client).unwrap_err();
    assert!(matches!(err, Error::StillPending { .. }), "{err}");
    assert_nothing_installed(s.out.path());
}

#[test]
fn a_retry_after_beyond_the_polling_bounds_is_not_cut_short() {
    // RFC 7030 4.2.3: the MEF asks to be polled again in an hour; the client does not resend
    // early (the old behaviour: a 120 s wait, then StillPending), it stops and says so.
    let s = pending_mef(1, 3600);
    let started = std::time::Instant::now();
    let err = s.provision_by(&s.client(None)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    match &err {
        Error::RetryAfterTooLong {
            operation: onem2m_est::Operation::SimpleEnroll,
            retry_after,
            attempts: 1,
            ..
        } => assert_eq!(*retry_after, Duration::from_secs(3600)),
        other => panic!("expected RetryAfterTooLong, got {other:?}"),
    }
    assert_eq!(err.class(), ErrorClass::Server);
    assert!(err.to_string().contains("3600 s"), "{err}");
    assert_nothing_installed(s.out.path());
}

/// Subject, subjectAltName and extendedKeyUsage of a certificate (DER), as x509-parser reads
/// them.
fn names_of(der: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<String>) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let san = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.17")
        .map(|e| e.value.to_vec())
        .unwrap_or_default();
    let eku = cert
        .extended_key_usage()
        .unwrap()
        .map(|e| format!("{:?}", e.value))
        .into_iter()
        .collect();
    (cert.subject().as_raw().to_vec(), san, eku)
}

#[test]
fn reprovisioning_keeps_subject_and_subject_alt_name() {
    // RFC 7030 4.2.2 against the reference MEF, which refuses a re-enrolment CSR whose
    // subject differs from the certificate being renewed: renew, rekey and server-side key
    // generation each keep the names, with the identity taken from the current certificate
    // (no identity configured).
    let s = setup();
    let client = client_of(&s.mef);
    let first = s.provision_by(&s.client(None)).unwrap();
    let names = names_of(first.chain[0].as_ref());
    for mode in [
        Reprovision::Renew,
        Reprovision::Rekey,
        Reprovision::ServerKeygen,
    ] {
        let done = s.reprovision_by(&client, mode).unwrap();
        assert_eq!(names_of(done.chain[0].as_ref()), names, "{mode:?}");
    }
}

#[test]
fn cacerts_and_csrattrs_on_their_own() {
    let s = setup();
    let client = s.client(None);
    let cas = client
        .cacerts(Channel::certificate(&[s.mef.ca_cert_der()], None))
        .unwrap();
    assert_eq!(cas, vec![s.mef.ca_cert_der()]);
    let reqs = client
        .csrattrs(Channel::certificate(
            &[s.mef.ca_cert_der()],
            Some(s.maker.identity()),
        ))
        .unwrap()
        .unwrap();
    assert!(matches!(
        reqs.challenge_password,
        ChallengePassword::Value(_)
    ));
    assert!(reqs.subject_alt_name().is_some());
}

// --- the issued certificates in other security protocols (CR 8.3.Z.2.2 step 3f) ------------

/// `openssl s_server` on 127.0.0.1 answering one HTTP request (`-www`): the test kit's. The
/// tests check for openssl first.
fn openssl_server(args: &[&std::ffi::OsStr]) -> SServer {
    let mut all: Vec<&std::ffi::OsStr> = ["-www", "-naccept", "1"].map(AsRef::as_ref).to_vec();
    all.extend_from_slice(args);
    SServer::start(&all, std::process::Stdio::null()).expect("openssl was checked for")
}

/// Runs `openssl s_client` against 127.0.0.1:port with an HTTP request on stdin; returns
/// (success, stdout + stderr).
fn s_client(port: u16, args: &[&std::ffi::OsStr]) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .arg("s_client")
        .args(["-connect", &format!("127.0.0.1:{port}"), "-ign_eof"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the openssl CLI runs (scripts/test.sh installs it)");
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.0\r\n\r\n");
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains("200 ok"), text)
}

/// A certificate the MEF issued to a CSE, provisioned through this library, serves HTTPS to
/// standard TLS clients verifying against the MEF CA and the CSE-ID host name (TS-0003 8.2: a
/// CSE is a TLS server; CR 8.3.Z.2.3 step 3d: the policy's serverAuth is requested, checked and
/// issued). The control: a CSE certificate issued with clientAuth only (what this MEF used to
/// issue) is refused by the same client.
#[test]
fn a_cse_certificate_from_the_mef_serves_https_to_openssl_and_curl() {
    if !require_tool("openssl", "Debian package openssl")
        || !require_tool("curl", "Debian package curl")
    {
        return;
    }
    let serve = |s: &Setup| {
        s.provision_by(&s.client(None)).unwrap();
        openssl_server(&[
            "-cert".as_ref(),
            s.out.path().join("cert.pem").as_os_str(),
            "-key".as_ref(),
            s.out.path().join("key.pem").as_os_str(),
        ])
    };
    let verify = |s: &Setup, port: u16| {
        s_client(
            port,
            &[
                "-verify_return_error".as_ref(),
                "-CAfile".as_ref(),
                s.mef.ca_cert_pem_path().as_os_str(),
                "-verify_hostname".as_ref(),
                CSE_ID.as_ref(),
                "-servername".as_ref(),
                CSE_ID.as_ref(),
            ],
        )
    };

    let s = setup();
    let server = serve(&s);
    let (ok, out) = verify(&s, server.port());
    assert!(ok, "openssl s_client refused the CSE certificate:\n{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    drop(server);

    // curl, resolving the CSE-ID to 127.0.0.1.
    let server = serve(&s);
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--cacert"])
        .arg(s.mef.ca_cert_pem_path())
        .arg("--resolve")
        .arg(format!("{CSE_ID}:{}:127.0.0.1", server.port()))
        .arg(format!("https://{CSE_ID}:{}/", server.port()))
        .output()
        .expect("curl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "curl refused the CSE certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);

    // Control: clientAuth alone is not a server certificate to openssl.
    let s = setup_with(|c| c.eku_policy.cse = vec![onem2m_mef::KeyPurpose::ClientAuth]);
    let server = serve(&s);
    let (ok, out) = verify(&s, server.port());
    assert!(
        !ok,
        "a clientAuth-only certificate must not serve TLS:\n{out}"
    );
    assert!(out.contains("unsuitable certificate purpose"), "{out}");
}

/// A certificate the MEF issued to an AE, provisioned through this library, is accepted as a
/// TLS client certificate by `openssl s_server -Verify` trusting the MEF CA (TS-0003 8.2); the
/// control: without a certificate the same server refuses the client.
#[test]
fn an_ae_certificate_from_the_mef_is_a_tls_client_certificate_for_openssl() {
    if !require_tool("openssl", "Debian package openssl") {
        return;
    }
    const AE_ID: &str = "https://sp.example.com/cse01/CAE01";
    let dir = TempDir::new().unwrap();
    let maker = Manufacturer::new("acme");
    let mef = Mef::start(maker.mef_config(dir.path())).unwrap();
    mef.add_identity(
        maker.device_cert.as_ref(),
        onem2m_mef::SubjectType::Ae,
        AE_ID,
    )
    .unwrap();
    let out = TempDir::new().unwrap();
    let uri = EstUri::parse(&mef.base_uri(None)).unwrap();
    MefClient::new(
        Config::new(uri)
            .identity(SubjectIdentity::new(SubjectType::Ae, AE_ID).unwrap())
            .transport(quick_transport()),
    )
    .provision(
        &auth_by(&maker, mef.ca_cert_der()),
        &mut FileStore::new(out.path()).unwrap(),
        KeySource::Generate,
    )
    .unwrap();

    // The TLS server's own certificate: the MEF's server certificate will do.
    let data = dir.path();
    let server_args = |data: &Path| -> Vec<std::ffi::OsString> {
        vec![
            "-cert".into(),
            data.join(onem2m_mef::ca::SERVER_CERT_FILE).into(),
            "-key".into(),
            data.join(onem2m_mef::ca::SERVER_KEY_FILE).into(),
            "-Verify".into(),
            "1".into(),
            "-verify_return_error".into(),
            "-CAfile".into(),
            mef.ca_cert_pem_path().into(),
        ]
    };
    let args = server_args(data);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let server = openssl_server(&args);
    let (ok, text) = s_client(
        server.port(),
        &[
            "-cert".as_ref(),
            out.path().join("cert.pem").as_os_str(),
            "-key".as_ref(),
            out.path().join("key.pem").as_os_str(),
        ],
    );
    assert!(ok, "openssl s_server refused the AE certificate:\n{text}");
    drop(server);

    let server = openssl_server(&args);
    let (ok, text) = s_client(server.port(), &[]);
    assert!(
        !ok,
        "openssl s_server -Verify must refuse a client without a certificate:\n{text}"
    );
}

/// TS-0003 10.1.1.5 end to end: a MEF configured with SP domains has a CA with permitted
/// dNSName nameConstraints; this library provisions a CSE inside them (its validation applies
/// the anchor's constraints, `validate::tests::name_constraints_of_the_anchor_are_honoured`),
/// and the MEF refuses a CSE-ID outside them before enrolment.
#[test]
fn provisioning_under_a_name_constrained_mef_ca() {
    let s = setup_with(|c| {
        c.sp_domains = vec!["sp.example.com".into()];
        // localhost is outside the SP domains; the server certificate names 127.0.0.1 only.
        c.hostnames = vec!["127.0.0.1".into()];
    });
    let ca_der = s.mef.ca_cert_der();
    let (_, ca) = x509_parser::parse_x509_certificate(ca_der.as_ref()).unwrap();
    assert!(ca.name_constraints().unwrap().is_some());
    let port = s.mef.local_addr().port();
    let client = |id: &str| {
        MefClient::new(
            Config::new(
                EstUri::parse(&format!("https://127.0.0.1:{port}/.well-known/est")).unwrap(),
            )
            .identity(SubjectIdentity::new(SubjectType::Cse, id).unwrap())
            .transport(quick_transport()),
        )
    };
    let done = s.provision_by(&client(CSE_ID)).unwrap();
    assert_eq!(done.trust_anchors, vec![s.mef.ca_cert_der()]);

    // A device registered for a CSE-ID outside the SP domains.
    let outsider = Manufacturer::new("outsider");
    let dir = TempDir::new().unwrap();
    let mut config = outsider.mef_config(dir.path());
    config.sp_domains = vec!["sp.example.com".into()];
    config.hostnames = vec!["127.0.0.1".into()];
    let mef = Mef::start(config).unwrap();
    mef.add_identity(
        outsider.device_cert.as_ref(),
        onem2m_mef::SubjectType::Cse,
        "cse01.elsewhere.example",
    )
    .unwrap();
    let port = mef.local_addr().port();
    let err = MefClient::new(
        Config::new(EstUri::parse(&format!("https://127.0.0.1:{port}/.well-known/est")).unwrap())
            .transport(quick_transport()),
    )
    .provision(
        &auth_by(&outsider, mef.ca_cert_der()),
        &mut FileStore::new(TempDir::new().unwrap().path()).unwrap(),
        KeySource::Generate,
    )
    .unwrap_err();
    assert!(err.to_string().contains("outside the SP domains"), "{err}");
    assert_eq!(err.class(), ErrorClass::Server);
}

fn issuer_of(cert: &CertificateDer<'_>) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    c.issuer().to_string()
}

/// RFC 7030 4.1.3 CA rollover end to end with this library: a device provisioned under the old
/// MEF CA re-provisions during the overlap (reaching the MEF through NewWithOld, installing the
/// new anchors, getting a certificate under the new CA), and again after the old CA is retired;
/// a device that missed the overlap gets an error naming the untrusted server certificate, and
/// is re-bootstrapped with its third-party credential and the new CA as anchor.
#[test]
fn ca_rollover_with_link_certificates_end_to_end() {
    let dir = TempDir::new().unwrap();
    let maker = Manufacturer::new("acme");
    let start = || Mef::start(maker.mef_config(dir.path())).unwrap();
    let (a_out, b_out) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let store = |d: &TempDir| FileStore::new(d.path()).unwrap();

    // Both devices provisioned under the old CA.
    let mef = maker.start_mef(maker.mef_config(dir.path()));
    let old_ca = mef.ca_cert_der();
    for out in [&a_out, &b_out] {
        client_of(&mef)
            .provision(
                &auth_by(&maker, old_ca.clone()),
                &mut store(out),
                KeySource::Generate,
            )
            .unwrap();
    }
    mef.shutdown();

    // Overlap: /cacerts serves NewWithNew, OldWithOld, OldWithNew, NewWithOld.
    onem2m_mef::ca::rollover(dir.path()).unwrap();
    let mef = start();
    let new_ca = mef.ca_cert_der();
    assert_ne!(new_ca, old_ca);
    let served = connection(&mef, &old_ca).cacerts().unwrap();
    assert_eq!(served.len(), 4, "NewWithNew, OldWithOld and the two links");
    // (certs-only is a SET OF: DER order, not the server's.)
    assert!(served.contains(&new_ca) && served.contains(&old_ca));

    // Device A re-provisions with its old-CA certificate and old anchor only.
    let renewed = client_of(&mef)
        .reprovision(&mut store(&a_out), Reprovision::Rekey)
        .unwrap();
    assert_eq!(issuer_of(&renewed.chain[0]), issuer_of(&new_ca));
    let creds = assert_installed(a_out.path());
    assert!(
        creds.trust_anchors.contains(&new_ca),
        "the new anchor is installed"
    );
    mef.shutdown();

    // Old CA retired: /cacerts serves the new CA alone; A re-provisions again.
    onem2m_mef::ca::retire_old(dir.path()).unwrap();
    let mef = start();
    assert_eq!(
        connection(&mef, &new_ca).cacerts().unwrap(),
        vec![new_ca.clone()]
    );
    client_of(&mef)
        .reprovision(&mut store(&a_out), Reprovision::Renew)
        .unwrap();
    assert_eq!(
        assert_installed(a_out.path()).trust_anchors,
        vec![new_ca.clone()]
    );

    // Device B missed the overlap: it trusts only the old CA, which the MEF no longer uses.
    let before = assert_installed(b_out.path());
    let err = client_of(&mef)
        .reprovision(&mut store(&b_out), Reprovision::Renew)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("certificate") && (text.contains("trust") || text.contains("issuer")),
        "{text}"
    );
    assert_eq!(assert_installed(b_out.path()).chain, before.chain);
    // Re-bootstrap with the third-party credential and the new CA.
    client_of(&mef)
        .provision(
            &auth_by(&maker, new_ca.clone()),
            &mut store(&b_out),
            KeySource::Generate,
        )
        .unwrap();
    assert_eq!(
        issuer_of(&assert_installed(b_out.path()).chain[0]),
        issuer_of(&new_ca)
    );
}
