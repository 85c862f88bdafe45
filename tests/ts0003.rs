//! The TS-0003 TLS profile (TS-0003 10.2.1 / 10.2.3: TLS 1.2, ECDHE_ECDSA, the mandatory
//! TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256) against `openssl s_server`, an implementation we did
//! not write, on 127.0.0.1. The server authentication rules of RFC 7030 3.6 / 3.6.1 must hold
//! exactly as on the rustls path: same verifier, same errors. Needs the `openssl` CLI (these
//! tests fail without it) and, except the last test, the `psk` feature (OpenSSL).

use onem2m_est::client::Channel;
use std::net::TcpListener;
use std::sync::Arc;

use onem2m_est::client::{Config, MefClient};
use onem2m_est::tls::{ClientIdentity, TlsProfile};
use onem2m_est::transport::TransportConfig;
use onem2m_est::uri::EstUri;
use onem2m_est::{Error, ErrorClass};
use onem2m_est_testkit::pki::TestKey;

fn quick_transport() -> TransportConfig {
    {
        let mut v = TransportConfig::default();
        v.connect_timeout = std::time::Duration::from_secs(5);
        v.tls_timeout = std::time::Duration::from_secs(5);
        v.response_timeout = std::time::Duration::from_secs(10);
        v
    }
}

fn client(uri: &str, profile: TlsProfile) -> MefClient {
    MefClient::new(
        Config::new(EstUri::parse(uri).unwrap())
            .transport(quick_transport())
            .tls_profile(profile),
    )
}

/// A key that only signs through a callback (no PKCS #8): OpenSSL cannot hold it.
#[test]
fn a_callback_key_is_refused_before_any_io() {
    let ca = onem2m_est_testkit::TestCa::new("third-party CA");
    let (cert, key) = ca.client_identity("device");
    let key: Arc<TestKey> = key;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let uri = format!(
        "https://localhost:{}/.well-known/est",
        listener.local_addr().unwrap().port()
    );
    let identity = ClientIdentity {
        chain: vec![cert],
        key,
    };
    let e = client(&uri, TlsProfile::Ts0003)
        .cacerts(Channel::certificate(
            std::slice::from_ref(&ca.cert),
            Some(identity),
        ))
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::BadArguments, "{e:?}");
    let text = e.to_string();
    if cfg!(feature = "psk") {
        assert!(
            matches!(e, Error::InvalidArgument { .. }) && text.contains("callback"),
            "{text}"
        );
    } else {
        assert!(text.contains("needs OpenSSL"), "{text}");
    }
    // Nothing connected.
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

/// Without the `psk` feature there is no OpenSSL: the profile is refused before any I/O.
#[cfg(not(feature = "psk"))]
#[test]
fn without_openssl_the_profile_is_refused_before_any_io() {
    let ca = onem2m_est_testkit::TestCa::new("MEF CA");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let uri = format!(
        "https://localhost:{}/.well-known/est",
        listener.local_addr().unwrap().port()
    );
    let e = client(&uri, TlsProfile::Ts0003)
        .cacerts(Channel::certificate(std::slice::from_ref(&ca.cert), None))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    assert_eq!(e.class(), ErrorClass::BadArguments);
    assert!(e.to_string().contains("needs OpenSSL"), "{e}");
    assert!(e.to_string().contains("`psk`"), "{e}");
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

#[cfg(feature = "psk")]
mod with_openssl {
    use super::*;
    use onem2m_est::keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
    use onem2m_est::transport::EstConnection;
    use onem2m_est::ts0003::OpenSslCertStack;
    use onem2m_est::Operation;
    use onem2m_est_testkit::pki::{Eku, ServerIdentity, TestCa};
    use rustls::pki_types::CertificateDer;
    use std::ffi::OsStr;
    use std::path::Path;
    use tempfile::TempDir;

    /// The mandatory suite of TS-0003 10.2.3 in OpenSSL's and IANA's names.
    const MANDATORY: &str = "ECDHE-ECDSA-AES128-SHA256";
    const MANDATORY_IANA: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256";

    fn write_pem(path: &Path, label: &str, der: &[u8]) {
        std::fs::write(path, pem::encode(&pem::Pem::new(label, der.to_vec()))).unwrap();
    }

    /// `openssl s_server -www` on 127.0.0.1 (TLS 1.2 only, the given suites, a client
    /// certificate from `client_ca` required), killed on drop. Its stderr is kept.
    struct SServer {
        server: onem2m_est_testkit::openssl::SServer,
        _dir: TempDir,
    }

    impl SServer {
        /// `None` (the test returns) when openssl is missing and not required.
        fn start(server: &ServerIdentity, client_ca: &TestCa, ciphers: &str) -> Option<SServer> {
            let dir = TempDir::new().unwrap();
            let cert = dir.path().join("cert.pem");
            let chain = dir.path().join("chain.pem");
            let key = dir.path().join("key.pem");
            let ca = dir.path().join("client-ca.pem");
            write_pem(&cert, "CERTIFICATE", &server.chain[0]);
            std::fs::write(
                &chain,
                server.chain[1..]
                    .iter()
                    .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())))
                    .collect::<String>(),
            )
            .unwrap();
            write_pem(&key, "PRIVATE KEY", server.key.secret_der());
            write_pem(&ca, "CERTIFICATE", &client_ca.cert);
            let mut args: Vec<&OsStr> = ["-naccept", "4", "-tls1_2", "-cipher", ciphers]
                .map(OsStr::new)
                .to_vec();
            args.extend(["-Verify", "2", "-verify_return_error"].map(OsStr::new));
            for (flag, path) in [
                ("-cert", &cert),
                ("-cert_chain", &chain),
                ("-key", &key),
                ("-CAfile", &ca),
            ] {
                args.extend([OsStr::new(flag), path.as_os_str()]);
            }
            args.push(OsStr::new("-www"));
            // s_server's verify callback logs each client certificate there ("depth=0 ...").
            let stderr = std::fs::File::create(dir.path().join("stderr.txt")).unwrap();
            Some(SServer {
                server: onem2m_est_testkit::openssl::SServer::start(&args, stderr.into())?,
                _dir: dir,
            })
        }

        /// What s_server logged on stderr so far.
        fn log(&self) -> String {
            std::fs::read_to_string(self._dir.path().join("stderr.txt")).unwrap_or_default()
        }

        fn uri(&self) -> String {
            self.server.uri()
        }
    }

    /// A client certificate from `ca` for a software key (OpenSSL can hold it).
    fn software_identity(ca: &TestCa) -> ClientIdentity {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let public = rcgen::KeyPair::try_from(key.pkcs8_der().unwrap().as_slice()).unwrap();
        let cert = ca.issue("device", &[], Eku::ClientAuth, &public, |_| {});
        ClientIdentity {
            chain: vec![cert],
            key: Arc::new(key),
        }
    }

    /// s_server -www answers any request with an HTML page: the handshake and one request
    /// completed, the error is about the response (not a certs-only body).
    fn assert_answered_after_handshake(e: &Error) {
        match e {
            Error::BadResponse {
                operation: Operation::CaCerts,
                reason,
            } => assert!(reason.contains("Content-Type"), "{reason}"),
            other => panic!("expected a response error after a good handshake, got {other:?}"),
        }
    }

    struct Pki {
        mef_ca: TestCa,
        third_party: TestCa,
    }

    fn pki() -> Pki {
        Pki {
            mef_ca: TestCa::new("MEF CA"),
            third_party: TestCa::new("third-party CA"),
        }
    }

    /// s_server on the mandatory suite with a `localhost` certificate from the MEF CA.
    fn start_localhost(pki: &Pki) -> Option<(ServerIdentity, SServer)> {
        let server = pki.mef_ca.server_identity(&["localhost"], Eku::ServerAuth);
        let s = SServer::start(&server, &pki.third_party, MANDATORY)?;
        Some((server, s))
    }

    /// /cacerts from `s` with `profile`, the MEF CA as anchor and, when `with_identity`, a
    /// client certificate from the third-party CA.
    fn cacerts(s: &SServer, pki: &Pki, profile: TlsProfile, with_identity: bool) -> Cacerts {
        client(&s.uri(), profile).cacerts(Channel::certificate(
            std::slice::from_ref(&pki.mef_ca.cert),
            with_identity.then(|| software_identity(&pki.third_party)),
        ))
    }

    /// The error of [`cacerts`] from a fresh [`start_localhost`].
    fn localhost_refusal(profile: TlsProfile, with_identity: bool) -> Option<Error> {
        let pki = pki();
        let (_, s) = start_localhost(&pki)?;
        Some(cacerts(&s, &pki, profile, with_identity).unwrap_err())
    }

    #[test]
    fn handshakes_on_the_mandatory_suite_with_a_client_certificate() {
        let pki = pki();
        let Some((server, s)) = start_localhost(&pki) else {
            return;
        };
        let base = EstUri::parse(&s.uri()).unwrap();
        let identity = software_identity(&pki.third_party);
        let stack = OpenSslCertStack::new(
            std::slice::from_ref(&pki.mef_ca.cert),
            Some(&identity),
            &base,
        )
        .unwrap();
        let conn = EstConnection::with_stack(&base, Arc::new(stack), &quick_transport()).unwrap();
        assert_answered_after_handshake(&conn.cacerts().unwrap_err());
        assert_eq!(conn.handshakes(), 1);
        assert_eq!(conn.cipher_suite(), Some(MANDATORY_IANA));
        // The chain kept for RFC 7030 4.1.3 is the one the server sent.
        assert_eq!(conn.server_certificates(), vec![server.chain.clone()]);

        // The same through MefClient with the profile selected.
        let e = cacerts(&s, &pki, TlsProfile::Ts0003, true).unwrap_err();
        assert_answered_after_handshake(&e);
        // s_server verified the client certificate it required (-Verify).
        let log = s.log();
        assert!(log.contains("depth=0 CN = device"), "{log}");
    }

    #[test]
    fn without_a_client_certificate_s_server_refuses() {
        // -Verify: the client certificate is required; the profile sends one only if it has one.
        let Some(e) = localhost_refusal(TlsProfile::Ts0003, false) else {
            return;
        };
        assert!(matches!(e, Error::Tls { .. }), "{e:?}");
        assert_eq!(e.class(), ErrorClass::Server);
    }

    #[test]
    fn the_modern_profile_finds_no_common_suite() {
        let Some(e) = localhost_refusal(TlsProfile::Modern, true) else {
            return;
        };
        match &e {
            Error::Tls { reason, .. } => {
                assert!(reason.contains("alert handshake_failure"), "{reason}");
                assert!(
                    reason.contains("no TLS version or cipher suite in common"),
                    "{reason}"
                );
                assert!(reason.contains("ts0003 TLS profile"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.class(), ErrorClass::Server);
    }

    type Cacerts = onem2m_est::Result<Vec<CertificateDer<'static>>>;

    /// Runs both profiles against one s_server offering the mandatory suite and an AEAD suite
    /// rustls has, so both reach the server certificate `server_of` makes from a fresh PKI;
    /// returns (ts0003, modern) results (`None` when openssl is missing and not required: the
    /// test returns).
    fn both_profiles(server_of: impl FnOnce(&Pki) -> ServerIdentity) -> Option<(Cacerts, Cacerts)> {
        let pki = pki();
        let s = SServer::start(
            &server_of(&pki),
            &pki.third_party,
            "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
        )?;
        let ts = cacerts(&s, &pki, TlsProfile::Ts0003, true);
        let modern = cacerts(&s, &pki, TlsProfile::Modern, true);
        Some((ts, modern))
    }

    /// Both profiles refuse the server certificate `server_of` makes, with the same reason.
    fn assert_refused_alike(server_of: impl FnOnce(&Pki) -> ServerIdentity, expected: &str) {
        let Some((ts, modern)) = both_profiles(server_of) else {
            return;
        };
        let (ts, modern) = (ts.unwrap_err(), modern.unwrap_err());
        match (&ts, &modern) {
            (
                Error::ServerNotAuthorized { reason: a },
                Error::ServerNotAuthorized { reason: b },
            ) => {
                assert_eq!(a, b, "the profiles must refuse with the same reason");
                assert!(a.contains(expected), "{a}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ts.class(), ErrorClass::Server);
    }

    #[test]
    fn a_server_certificate_not_chaining_to_the_anchors_is_refused() {
        assert_refused_alike(
            |_| TestCa::new("someone else's CA").server_identity(&["localhost"], Eku::ServerAuth),
            "does not chain to any configured trust anchor",
        );
    }

    #[test]
    fn a_name_mismatch_without_cmc_ra_is_refused() {
        assert_refused_alike(
            |pki| {
                pki.mef_ca
                    .server_identity(&["other.example.com"], Eku::ServerAuth)
            },
            "is not valid for localhost",
        );
    }

    #[test]
    fn a_client_eku_server_certificate_is_refused() {
        assert_refused_alike(
            |pki| pki.mef_ca.server_identity(&["localhost"], Eku::ClientAuth),
            "allows neither serverAuth nor id-kp-cmcRA",
        );
    }

    #[test]
    fn an_ra_certificate_with_another_name_is_accepted() {
        // RFC 7030 3.6.1: id-kp-cmcRA authorises the server whatever its names. OpenSSL's own
        // SSL-server purpose check would refuse this EKU; the EstServerVerifier decides.
        let Some((ts, modern)) = both_profiles(|pki| {
            pki.mef_ca
                .server_identity(&["ra.example.com"], Eku::CmcRaOnly)
        }) else {
            return;
        };
        assert_answered_after_handshake(&ts.unwrap_err());
        assert_answered_after_handshake(&modern.unwrap_err());
    }

    /// Both procedures, end to end, through the reference MEF's ts0003 listener (TLS 1.2 and
    /// the mandatory suite only): initial provisioning with the third-party certificate, then
    /// renew, rekey and server-side keygen authenticated with the MEF-issued certificate.
    #[test]
    fn both_procedures_through_the_mef_ts0003_listener() {
        use onem2m_est::client::{InitialAuth, KeySource, Reprovision};
        use onem2m_est::store::{CredentialStore, FileStore};
        use onem2m_mef::{Mef, MefConfig, SubjectType};
        const CSE_ID: &str = "cse01.sp.example.com";

        let dir = TempDir::new().unwrap();
        let maker = TestCa::new("manufacturer CA");
        let device = software_identity(&maker);
        let mut config = MefConfig::new(dir.path().join("mef"));
        config.client_trust = vec![maker.cert.clone()];
        config.ts0003_listen = Some("127.0.0.1:0".parse().unwrap());
        let mef = Mef::start(config).unwrap();
        mef.add_identity(device.chain[0].as_ref(), SubjectType::Cse, CSE_ID)
            .unwrap();
        let uri = EstUri::parse(&mef.ts0003_base_uri(None).unwrap()).unwrap();
        let client = MefClient::new(
            Config::new(uri.clone())
                .transport(quick_transport())
                .tls_profile(TlsProfile::Ts0003),
        );
        let out = TempDir::new().unwrap();
        let mut store = FileStore::new(out.path()).unwrap();
        let auth = InitialAuth::Certificate {
            trust_anchors: vec![mef.ca_cert_der()],
            client: device,
        };
        let first = client
            .provision(&auth, &mut store, KeySource::Generate)
            .unwrap();
        assert_eq!(first.connection.cipher_suite, Some(MANDATORY_IANA));
        assert_eq!(first.connection.handshakes, 1);
        assert_eq!(first.trust_anchors, vec![mef.ca_cert_der()]);
        assert_eq!(store.load().unwrap().unwrap().chain, first.chain);

        let mut previous = first.chain[0].clone();
        for mode in [
            Reprovision::Renew,
            Reprovision::Rekey,
            Reprovision::ServerKeygen,
        ] {
            let again = client.reprovision(&mut store, mode).unwrap();
            assert_eq!(
                again.connection.cipher_suite,
                Some(MANDATORY_IANA),
                "{mode:?}"
            );
            assert_ne!(again.chain[0], previous, "{mode:?}");
            assert_eq!(store.load().unwrap().unwrap().chain, again.chain);
            previous = again.chain[0].clone();
        }

        // The modern profile has no suite in common with this listener.
        let modern = MefClient::new(Config::new(uri).transport(quick_transport()));
        let e = modern
            .reprovision(&mut store, Reprovision::Renew)
            .unwrap_err();
        assert!(matches!(e, Error::Tls { .. }), "{e:?}");
        assert_eq!(store.load().unwrap().unwrap().chain[0], previous);
    }

    #[test]
    fn a_refused_server_never_sees_the_client_certificate() {
        // The check runs while the server's Certificate message is processed, before the
        // client's Certificate is sent (TLS 1.2): s_server logs no client certificate.
        let pki = pki();
        let stranger = TestCa::new("someone else's CA");
        let server = stranger.server_identity(&["localhost"], Eku::ServerAuth);
        let Some(s) = SServer::start(&server, &pki.third_party, MANDATORY) else {
            return;
        };
        let e = cacerts(&s, &pki, TlsProfile::Ts0003, true).unwrap_err();
        assert!(matches!(e, Error::ServerNotAuthorized { .. }), "{e:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let log = s.log();
        assert!(
            !log.contains("CN = device"),
            "s_server saw a client cert: {log}"
        );
    }
}
