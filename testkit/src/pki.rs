//! The test PKI: CAs that issue server, client and CA certificates ([`TestCa`]), a
//! [`PrivateKey`] that can be told to fail ([`TestKey`]), the manufacturer PKI of
//! TS-0003 8.3.6.2 pre-condition B.ii.2 ([`Manufacturer`]), a CA of third-party client
//! certificates in a PEM file for a MEF process ([`ThirdPartyCa`], [`ClientCreds`]), and CSRs
//! built field by field ([`make_csr`], [`fresh_csr`]) for tests of what a server accepts.

use onem2m_est::keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
use onem2m_est::tls::ClientIdentity;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use zeroize::Zeroizing;

/// id-kp-cmcRA (RFC 6402 2.10).
pub const CMC_RA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 28];

/// Which extended key usage a test certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eku {
    /// id-kp-serverAuth.
    ServerAuth,
    /// Only id-kp-cmcRA (an RA certificate, RFC 7030 3.6.1).
    CmcRaOnly,
    /// Only id-kp-clientAuth.
    ClientAuth,
    /// No EKU extension.
    None,
}

/// A test CA: a self-signed P-256 root that issues leaf certificates.
pub struct TestCa {
    pub cert: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    cn: String,
}

/// A server's certificate chain and key, for [`TestServer`](crate::server::TestServer).
#[derive(Debug)]
pub struct ServerIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        ServerIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl TestCa {
    /// A new root CA named `cn`.
    pub fn new(cn: &str) -> TestCa {
        Self::with_algorithm(cn, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// A new root CA named `cn` with a key of `alg` (it signs with that algorithm).
    pub fn with_algorithm(cn: &str, alg: &'static rcgen::SignatureAlgorithm) -> TestCa {
        Self::root(
            cn,
            Self::ca_params(cn),
            KeyPair::generate_for(alg).expect("CA key"),
        )
    }

    /// A new root CA named `cn` whose notAfter is later than any [`TestCa::new`] root's (rcgen's
    /// default, 4096-01-01): the newest root of a key rollover (RFC 7030 4.1.3).
    pub fn successor(cn: &str) -> TestCa {
        let mut params = Self::ca_params(cn);
        params.not_after = rcgen::date_time_ymd(4097, 1, 1);
        Self::root(cn, params, KeyPair::generate().expect("CA key"))
    }

    /// A self-signed root named `cn` from `params` and `key`.
    fn root(cn: &str, params: CertificateParams, key: KeyPair) -> TestCa {
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
            cn: cn.into(),
        }
    }

    /// A CA named `cn` from `params` and `key`, certified by this CA.
    fn issue_ca(&self, cn: &str, params: CertificateParams, key: KeyPair) -> TestCa {
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("subordinate CA certificate");
        TestCa {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
            cn: cn.into(),
        }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        onem2m_est::store::certs_to_pem(std::slice::from_ref(&self.cert))
    }

    /// Writes `name.pem` (the CA certificate) and `name.key` (its PKCS #8 key) into `dir`, for
    /// tools that sign with the CA themselves (`openssl x509 -req -CA ... -CAkey ...`); returns
    /// their paths.
    pub fn write_pem(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, self.cert_pem()).expect("CA certificate file");
        std::fs::write(
            &key,
            Zeroizing::new(self.issuer.key().serialize_pem()).as_bytes(),
        )
        .expect("CA key file");
        (cert, key)
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
    }

    /// A subordinate CA named `cn` with a key of `alg`, certified by this CA: leaves it issues
    /// chain through its `cert` to this CA.
    pub fn subordinate(&self, cn: &str, alg: &'static rcgen::SignatureAlgorithm) -> TestCa {
        self.issue_ca(
            cn,
            Self::ca_params(cn),
            KeyPair::generate_for(alg).expect("CA key"),
        )
    }

    /// A CA certificate for `subject`'s name and public key, signed by this CA's key: a link
    /// certificate of a root key rollover (RFC 7030 4.1.3). `new.certify(&old)` is OldWithNew
    /// (the old public key signed with the new private key), `old.certify(&new)` NewWithOld.
    pub fn certify(&self, subject: &TestCa) -> CertificateDer<'static> {
        Self::ca_params(&subject.cn)
            .signed_by(subject.issuer.key(), &self.issuer)
            .expect("link certificate")
            .der()
            .clone()
    }

    /// An intermediate CA (basicConstraints CA:TRUE) named `cn` issued by this CA, with these
    /// keyUsage bits (none: no keyUsage extension).
    pub fn intermediate(&self, cn: &str, key_usages: Vec<KeyUsagePurpose>) -> TestCa {
        let mut params = Self::ca_params(cn);
        params.key_usages = key_usages;
        self.issue_ca(cn, params, KeyPair::generate().expect("intermediate key"))
    }

    /// Issues a leaf certificate for `public_key` with subjectAltNames `names` (DNS names or IP
    /// addresses) and the given EKU; `customize` may change anything else (validity, ...).
    pub fn issue(
        &self,
        cn: &str,
        names: &[&str],
        eku: Eku,
        public_key: &impl PublicKeyData,
        customize: impl FnOnce(&mut CertificateParams),
    ) -> CertificateDer<'static> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match eku {
            Eku::ServerAuth => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Eku::CmcRaOnly => vec![ExtendedKeyUsagePurpose::Other(CMC_RA.to_vec())],
            Eku::ClientAuth => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Eku::None => vec![],
        };
        customize(&mut params);
        params
            .signed_by(public_key, &self.issuer)
            .expect("leaf certificate")
            .der()
            .clone()
    }

    /// A server certificate (chain: leaf, then this CA) and its key.
    pub fn server_identity(&self, names: &[&str], eku: Eku) -> ServerIdentity {
        self.server_identity_with(names, eku, |_| {})
    }

    /// Like [`Self::server_identity`], with a hook on the certificate parameters.
    pub fn server_identity_with(
        &self,
        names: &[&str],
        eku: Eku,
        customize: impl FnOnce(&mut CertificateParams),
    ) -> ServerIdentity {
        let key = KeyPair::generate().expect("server key");
        let leaf = self.issue("test EST server", names, eku, &key, customize);
        ServerIdentity {
            chain: vec![leaf, self.cert.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A leaf certificate named `cn` for a fresh P-256 key ([`Self::issue`]), and that key:
    /// both PEM (PKCS #8), for tools that read files (openssl, the CLI).
    pub fn issue_pem(&self, cn: &str, names: &[&str], eku: Eku) -> (String, Zeroizing<String>) {
        let key = KeyPair::generate().expect("leaf key");
        let cert = self.issue(cn, names, eku, &key, |_| {});
        (
            onem2m_est::store::certs_to_pem(&[cert]),
            Zeroizing::new(key.serialize_pem()),
        )
    }

    /// A client certificate named `cn` (EKU clientAuth) and its [`TestKey`].
    pub fn client_identity(&self, cn: &str) -> (CertificateDer<'static>, Arc<TestKey>) {
        let key = TestKey::generate();
        let rc = key.rcgen_public();
        let cert = self.issue(cn, &[], Eku::ClientAuth, &rc, |_| {});
        (cert, Arc::new(key))
    }

    /// A client certificate named `cn` (EKU clientAuth, no subjectAltName) for a fresh P-256
    /// key, with that key as rcgen holds it.
    pub fn issue_client(&self, cn: &str) -> ClientCreds {
        let key = KeyPair::generate().expect("client key");
        let cert = self.issue(cn, &[], Eku::ClientAuth, &key, |_| {});
        ClientCreds {
            cert_der: cert.to_vec(),
            key,
        }
    }
}

/// A client certificate and its key, for clients that take the key as PEM or PKCS #8 DER
/// (ureq, rustls, the files a MEF's CLI reads).
pub struct ClientCreds {
    pub cert_der: Vec<u8>,
    pub key: KeyPair,
}

impl ClientCreds {
    /// A self-signed client certificate (EKU clientAuth, rcgen's default name) that no CA
    /// vouches for.
    pub fn self_signed() -> ClientCreds {
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::default();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.self_signed(&key).expect("self-signed certificate");
        ClientCreds {
            cert_der: cert.der().to_vec(),
            key,
        }
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> String {
        onem2m_est::store::certs_to_pem(&[CertificateDer::from(self.cert_der.clone())])
    }

    /// Writes `name.pem` (certificate) and `name.key` (PKCS #8 key) into `dir`; returns their
    /// paths.
    pub fn write_pem(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, self.cert_pem()).expect("certificate file");
        std::fs::write(&key, Zeroizing::new(self.key.serialize_pem()).as_bytes())
            .expect("key file");
        (cert, key)
    }

    /// The certificate's fingerprint as the MEF names its client certificates.
    pub fn fingerprint(&self) -> String {
        onem2m_mef::fingerprint(&self.cert_der)
    }
}

/// The issuer of "third-party EST client certificates" (TS-0003 8.3.6.2 B.ii.2) for a MEF
/// process: its certificate is also written as a PEM file, for `--client-trust`.
pub struct ThirdPartyCa {
    pub ca: TestCa,
    pub pem_path: PathBuf,
}

impl ThirdPartyCa {
    /// A CA named "Third-party CA `name`", its certificate written to `dir/name-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> ThirdPartyCa {
        let ca = TestCa::new(&format!("Third-party CA {name}"));
        let pem_path = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem_path, ca.cert_pem()).expect("CA certificate file");
        ThirdPartyCa { ca, pem_path }
    }

    /// [`TestCa::issue_client`].
    pub fn issue_client(&self, cn: &str) -> ClientCreds {
        self.ca.issue_client(cn)
    }
}

/// pkcs-9-at-challengePassword (RFC 2985 5.4.1), as rcgen takes attribute types.
pub const CHALLENGE_PASSWORD: &[u64] = &[1, 2, 840, 113549, 1, 9, 7];

/// A challengePassword attribute holding `pw` (one UTF8String), for rcgen's CSRs.
pub fn challenge_password(pw: &str) -> rcgen::Attribute {
    // DER of SET { UTF8String pw }, short-form lengths only.
    assert!(pw.len() < 120);
    let mut values = vec![0x31, (pw.len() + 2) as u8, 0x0c, pw.len() as u8];
    values.extend_from_slice(pw.as_bytes());
    rcgen::Attribute {
        oid: CHALLENGE_PASSWORD,
        values,
    }
}

/// A CSR signed by `key` with these subjectAltNames, an optional challengePassword and an
/// optional CN (no other name), built directly with rcgen rather than by the client library.
pub fn make_csr(
    key: &KeyPair,
    sans: &[SanType],
    password: Option<&str>,
    cn: Option<&str>,
) -> Vec<u8> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(cn) = cn {
        dn.push(DnType::CommonName, cn);
    }
    params.distinguished_name = dn;
    params.subject_alt_names = sans.to_vec();
    let attrs = password.map(challenge_password).into_iter().collect();
    params
        .serialize_request_with_attributes(key, attrs)
        .expect("CSR")
        .der()
        .to_vec()
}

/// A test-only [`PrivateKey`]: P-256 on ring, with a switch that makes signing fail (to test
/// how a failing HSM or callback surfaces).
pub struct TestKey {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    spki: Vec<u8>,
    rng: SystemRandom,
    /// When set, [`PrivateKey::sign`] fails.
    pub fail: AtomicBool,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").finish_non_exhaustive()
    }
}

impl TestKey {
    /// A fresh P-256 key.
    pub fn generate() -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("P-256 key")
            .as_ref()
            .to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng)
            .expect("P-256 key from PKCS#8");
        let spki = KeyPair::try_from(pkcs8.as_slice())
            .expect("rcgen reads the PKCS#8")
            .subject_public_key_info();
        TestKey {
            pair,
            pkcs8,
            spki,
            rng,
            fail: AtomicBool::new(false),
        }
    }

    /// The same key as rcgen sees it (to put its public key in a certificate).
    pub fn rcgen_public(&self) -> KeyPair {
        KeyPair::try_from(self.pkcs8.as_slice()).expect("rcgen reads the PKCS#8")
    }
}

impl PrivateKey for TestKey {
    fn algorithm(&self) -> KeyAlgorithm {
        KeyAlgorithm::EcdsaP256Sha256
    }

    fn public_key_info(&self) -> &[u8] {
        &self.spki
    }

    fn sign(&self, message: &[u8]) -> onem2m_est::Result<Vec<u8>> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(onem2m_est::Error::Key {
                reason: "the test key was told to fail".into(),
                source: None,
            });
        }
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| onem2m_est::Error::Key {
                reason: "ring signing failed".into(),
                source: None,
            })
    }
}

/// The manufacturer PKI of TS-0003 8.3.6.2 pre-condition B.ii.2: a CA and a device certificate
/// it issued (the third-party EST client certificate), with the device's P-256 key.
pub struct Manufacturer {
    pub ca_cert: CertificateDer<'static>,
    pub ca_pem: String,
    pub device_cert: CertificateDer<'static>,
    pub device_pem: String,
    /// The device key, PKCS #8 PEM.
    pub device_key_pem: Zeroizing<String>,
    pub device_key: Arc<SoftwareKey>,
}

impl Manufacturer {
    /// A CA named "`name` manufacturer CA" and its device "`name` device 0001".
    pub fn new(name: &str) -> Manufacturer {
        let ca = TestCa::new(&format!("{name} manufacturer CA"));
        let device_key = KeyPair::generate().expect("device key");
        // A plain device certificate, as manufacturers issue them: no subjectAltName, no
        // extensions a MEF would have to accept.
        let device = ca.issue(
            &format!("{name} device 0001"),
            &[],
            Eku::None,
            &device_key,
            |p| {
                p.is_ca = IsCa::NoCa;
                p.key_usages = vec![];
            },
        );
        let key = SoftwareKey::from_pkcs8_der(&Zeroizing::new(device_key.serialize_der()))
            .expect("the device key loads");
        Manufacturer {
            ca_pem: ca.cert_pem(),
            ca_cert: ca.cert,
            device_pem: onem2m_est::store::certs_to_pem(std::slice::from_ref(&device)),
            device_cert: device,
            device_key_pem: Zeroizing::new(device_key.serialize_pem()),
            device_key: Arc::new(key),
        }
    }

    /// The device's TLS client identity (certificate and key).
    pub fn identity(&self) -> ClientIdentity {
        ClientIdentity {
            chain: vec![self.device_cert.clone()],
            key: self.device_key.clone(),
        }
    }

    /// Writes `device.pem` (certificate) and `device.key` (PKCS #8 key) into `dir`.
    pub fn write_device_files(&self, dir: &Path) {
        std::fs::write(dir.join("device.pem"), &self.device_pem).expect("device.pem");
        std::fs::write(dir.join("device.key"), self.device_key_pem.as_bytes()).expect("device.key");
    }
}

/// [`make_csr`] for a fresh P-256 key, without a CN: the CSR of a test that needs no key
/// afterwards.
pub fn fresh_csr(sans: &[SanType], password: Option<&str>) -> Vec<u8> {
    make_csr(&KeyPair::generate().expect("CSR key"), sans, password, None)
}
