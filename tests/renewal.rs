//! Renewal against the reference MEF on 127.0.0.1 (issue #12): the policy on real
//! certificates, re-provisioning when due, re-bootstrap to Initial Certificate Provisioning when
//! the MEF-provisioned certificate expired or was revoked (CR 8.3.Z.2.2 purpose), and the
//! classification of an unreachable MEF. `now` is passed in (the clock seam), so expiry is
//! tested without waiting for it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use onem2m_est::client::{InitialAuth, KeySource, MefClient, Reprovision};
use onem2m_est::renewal::{classify, FailureKind, Renewal, RenewalPath, RenewalPolicy};
use onem2m_est::store::{CredentialStore, Credentials, FileStore};
use onem2m_est::{Error, ErrorClass};
use onem2m_est_testkit::server::cse_client;
use onem2m_est_testkit::{Manufacturer, MefFixture, CSE_ID};
use onem2m_mef::RunningMef;
use rustls_pki_types::CertificateDer;
use tempfile::TempDir;

struct Setup {
    _dir: TempDir,
    mef: RunningMef,
    maker: Manufacturer,
    out: TempDir,
}

fn setup(lifetime: Duration) -> Setup {
    let MefFixture { mef, maker, dir } =
        MefFixture::start_with("renewal", |c| c.cert_lifetime = lifetime);
    Setup {
        _dir: dir,
        mef,
        maker,
        out: TempDir::new().unwrap(),
    }
}

impl Setup {
    fn bootstrap(&self) -> InitialAuth {
        InitialAuth::Certificate {
            trust_anchors: vec![self.mef.ca_cert_der()],
            client: self.maker.identity(),
        }
    }

    fn client(&self) -> MefClient {
        let mut t = onem2m_est_testkit::mef::transport();
        t.poll.max_total = Duration::from_secs(10);
        cse_client(&self.mef.base_uri(None), CSE_ID, t)
    }

    fn store(&self) -> FileStore {
        FileStore::new(self.out.path()).unwrap()
    }

    fn provision(&self) {
        self.client()
            .provision(&self.bootstrap(), &mut self.store(), KeySource::Generate)
            .unwrap();
    }

    /// A `Renew` of the stored credentials at `now`, with the bootstrap credential when
    /// `with_bootstrap`.
    fn renew(&self, with_bootstrap: bool, now: SystemTime) -> onem2m_est::Result<Renewal> {
        let bootstrap = with_bootstrap.then(|| self.bootstrap());
        self.client().renew(
            &mut self.store(),
            Reprovision::Renew,
            bootstrap.as_ref(),
            now,
        )
    }

    /// The installed files, byte for byte.
    fn snapshot(&self) -> Vec<Vec<u8>> {
        snapshot_of(self.out.path())
    }

    /// The credentials installed now.
    fn installed(&self) -> Credentials {
        self.store().load().unwrap().unwrap()
    }
}

/// The credential files in `dir`, byte for byte.
fn snapshot_of(dir: &Path) -> Vec<Vec<u8>> {
    ["cert.pem", "key.pem", "trust-anchors.pem"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

/// Whether `a` and `b` hold the same key.
fn same_key(a: &Credentials, b: &Credentials) -> bool {
    a.key.public_key_info() == b.key.public_key_info()
}

/// `path` is a re-bootstrap whose reason contains `why`.
fn assert_rebootstrapped(path: &RenewalPath, why: &str) {
    match path {
        RenewalPath::Rebootstrapped { reason } => assert!(reason.contains(why), "{reason}"),
        other => panic!("expected a re-bootstrap, got {other:?}"),
    }
}

fn serial(cert: &CertificateDer<'_>) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    c.raw_serial_as_string()
}

#[test]
fn policy_on_an_issued_certificate_then_renewal_by_reprovisioning() {
    let s = setup(Duration::from_secs(3600));
    s.provision();
    let creds = s.installed();
    let policy = RenewalPolicy::default();
    let v = creds.validity().unwrap();
    assert_eq!(v.lifetime(), Duration::from_secs(3600));
    let due = creds.next_renewal_at(&policy).unwrap();
    // Two thirds of the lifetime, moved earlier by at most a tenth of it.
    assert!(due <= v.not_before + Duration::from_secs(2400), "{due:?}");
    assert!(due >= v.not_before + Duration::from_secs(2040), "{due:?}");
    assert!(!creds.renewal_due(&policy, SystemTime::now()).unwrap());
    assert!(creds.renewal_due(&policy, due).unwrap());
    assert!(!creds
        .renewal_due(&policy, due - Duration::from_secs(1))
        .unwrap());
    // Stable across restarts: a new store over the same directory gives the same time.
    let again = s.installed();
    assert_eq!(again.next_renewal_at(&policy).unwrap(), due);

    let renewal = s.renew(true, due).unwrap();
    assert_eq!(renewal.path, RenewalPath::Reprovisioned);
    let after = s.installed();
    assert_ne!(serial(&after.chain[0]), serial(&creds.chain[0]));
    assert!(same_key(&after, &creds), "renew keeps the key");
    // The schedule is the new certificate's: in its own window, not yet due. (Not "differs from
    // `due`": both certificates can carry the same notBefore second, and their jitters, whole
    // seconds in [0, 360), coincide about once in 360 runs.)
    let v = after.validity().unwrap();
    let next = after.next_renewal_at(&policy).unwrap();
    assert!(next <= v.not_before + Duration::from_secs(2400), "{next:?}");
    assert!(next >= v.not_before + Duration::from_secs(2040), "{next:?}");
    assert!(!after.renewal_due(&policy, SystemTime::now()).unwrap());
}

#[test]
fn expired_certificate_rebootstraps_with_the_third_party_certificate() {
    let s = setup(Duration::from_secs(3600));
    s.provision();
    let before = s.installed();
    let expired = before.validity().unwrap().not_after + Duration::from_secs(1);
    let renewal = s.renew(true, expired).unwrap();
    assert_rebootstrapped(&renewal.path, "expired");
    let after = s.installed();
    assert_ne!(serial(&after.chain[0]), serial(&before.chain[0]));
    assert!(
        !same_key(&after, &before),
        "the key of an expired certificate is retired"
    );
}

#[test]
fn expired_certificate_without_bootstrap_credential_is_a_client_error_and_changes_nothing() {
    let s = setup(Duration::from_secs(3600));
    s.provision();
    let snapshot = s.snapshot();
    let not_after = s.installed().validity().unwrap().not_after;
    let e = s
        .renew(false, not_after + Duration::from_secs(1))
        .unwrap_err();
    assert!(matches!(e, Error::NotProvisioned { .. }), "{e}");
    assert_eq!(e.class(), ErrorClass::Client);
    assert!(e.to_string().contains("no bootstrap credential"), "{e}");
    assert_eq!(classify(&e), FailureKind::Fatal);
    assert_eq!(s.snapshot(), snapshot);
}

#[test]
fn revoked_certificate_rebootstraps_and_without_bootstrap_is_refused() {
    let s = setup(Duration::from_secs(3600));
    s.provision();
    let creds = s.installed();
    assert!(s.mef.revoke(&serial(&creds.chain[0])).unwrap());
    let snapshot = s.snapshot();

    let e = s.renew(false, SystemTime::now()).unwrap_err();
    assert_eq!(classify(&e), FailureKind::IdentityRefused, "{e}");
    assert_eq!(e.class(), ErrorClass::Server);
    assert_eq!(s.snapshot(), snapshot, "nothing installed");

    let renewal = s.renew(true, SystemTime::now()).unwrap();
    assert_rebootstrapped(&renewal.path, "refused");
    let after = s.installed();
    assert_ne!(serial(&after.chain[0]), serial(&creds.chain[0]));
}

#[test]
fn unreachable_mef_is_retryable_and_changes_nothing() {
    let s = setup(Duration::from_secs(3600));
    s.provision();
    let snapshot = s.snapshot();
    let client = s.client();
    let bootstrap = s.bootstrap();
    let Setup { mef, out, _dir, .. } = s;
    let _hold = onem2m_est_testkit::net::shut_down_holding_port(mef);
    let mut store = FileStore::new(out.path()).unwrap();
    for bootstrap in [None, Some(&bootstrap)] {
        let e = client
            .renew(&mut store, Reprovision::Renew, bootstrap, SystemTime::now())
            .unwrap_err();
        assert_eq!(classify(&e), FailureKind::Retryable, "{e}");
        assert_eq!(e.class(), ErrorClass::Server);
        assert_eq!(snapshot_of(out.path()), snapshot);
    }
}

/// A device whose only bootstrap credential is a Kpm (PPSK-based RSPF, TS-0003 8.3.2.1) and a
/// MEF that serves TLS-PSK on its own listener: one client, with the PSK estBaseURI configured
/// beside the certificate one, provisions over TLS-PSK, re-provisions with its certificate, and
/// re-bootstraps over TLS-PSK once the certificate has expired.
#[cfg(feature = "psk")]
#[test]
fn expired_certificate_rebootstraps_with_the_kpm_on_the_psk_listener() {
    use onem2m_est::client::Config;
    use onem2m_est::identity::{SubjectIdentity, SubjectType};
    use onem2m_est::psk::PskCredential;
    use onem2m_est::uri::EstUri;
    use onem2m_mef::{Mef, MefConfig};
    use zeroize::Zeroizing;
    const KPM_ID: &str = "kpm-renewal-0001";
    let kpm = || Zeroizing::new((0u8..32).collect::<Vec<u8>>());
    let dir = TempDir::new().unwrap();
    let mut config = MefConfig::new(dir.path());
    config.cert_lifetime = Duration::from_secs(3600);
    config.psk_listen = Some("127.0.0.1:0".parse().unwrap());
    let mef = Mef::start(config).unwrap();
    mef.add_psk(KPM_ID, &kpm(), onem2m_mef::SubjectType::Cse, CSE_ID)
        .unwrap();
    let client = MefClient::new(
        Config::new(EstUri::parse(&mef.base_uri(None)).unwrap())
            .psk_base_uri(EstUri::parse(&mef.psk_base_uri(None).unwrap()).unwrap())
            .identity(SubjectIdentity::new(SubjectType::Cse, CSE_ID).unwrap()),
    );
    let bootstrap = InitialAuth::Psk(PskCredential::new(KPM_ID, kpm()).unwrap());
    let out = TempDir::new().unwrap();
    let mut store = FileStore::new(out.path()).unwrap();
    client
        .provision(&bootstrap, &mut store, KeySource::Generate)
        .unwrap();
    let first = store.load().unwrap().unwrap();

    // Valid: re-provisioning with the certificate, on the certificate listener.
    let renewal = client
        .renew(
            &mut store,
            Reprovision::Renew,
            Some(&bootstrap),
            SystemTime::now(),
        )
        .unwrap();
    assert!(
        matches!(renewal.path, RenewalPath::Reprovisioned),
        "{renewal:?}"
    );
    let second = store.load().unwrap().unwrap();

    // Expired: Initial Certificate Provisioning again, over TLS-PSK.
    let expired = second.validity().unwrap().not_after + Duration::from_secs(1);
    let renewal = client
        .renew(&mut store, Reprovision::Renew, Some(&bootstrap), expired)
        .unwrap();
    assert_rebootstrapped(&renewal.path, "expired");
    let third = store.load().unwrap().unwrap();
    let serials: Vec<String> = [&first, &second, &third]
        .iter()
        .map(|c| serial(&c.chain[0]))
        .collect();
    assert!(
        serials[0] != serials[1] && serials[1] != serials[2],
        "{serials:?}"
    );
    mef.shutdown();
}
