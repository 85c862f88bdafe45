//! The client side of CR 8.3.Z.2.2 steps 2 to 3f through the public API, without a network:
//! CSR attributes as a MEF encodes them → key choice → CSR → a CA issues from the CSR →
//! validation → atomic install → load; with the OpenSSL CLI as an independent check of the CSR
//! and of the installed files.

use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{key_algorithm_for, KeyAlgorithm};
use onem2m_est::proto::csrattrs::{
    self, ChallengePassword, CsrRequirements, Curve, HashAlg, KeyRequirement, RequestedExtension,
};
use onem2m_est::proto::oids;
use onem2m_est::proto::san::{self, GeneralName};
use onem2m_est::store::{CredentialStore, Credentials, FileStore};
use onem2m_est::validate::validate_issued;
use onem2m_est::{csr::build_csr, Error};
use onem2m_est_testkit::{process, require_tool, Eku, TestCa};
use rcgen::{DistinguishedName, IsCa, SanType};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

const AE: &str = "https://sp.example.com/cse01/CAE01";

/// A two-level CA (root → issuing CA), as a MEF's CA would be.
struct Ca {
    root: TestCa,
    issuing: TestCa,
}

impl Ca {
    fn new() -> Ca {
        let root = TestCa::new("Test MEF Root CA");
        let issuing = root.subordinate("Test MEF Issuing CA", &rcgen::PKCS_ECDSA_P256_SHA256);
        Ca { root, issuing }
    }

    /// Issues a certificate for the CSR's key and subjectAltName, as a CA behind the MEF would.
    fn issue_from_csr(&self, csr_der: &[u8]) -> CertificateDer<'static> {
        let (_, csr) = X509CertificationRequest::from_der(csr_der).unwrap();
        let info = &csr.certification_request_info;
        let alg = match info
            .subject_pki
            .algorithm
            .parameters
            .as_ref()
            .map(|p| p.as_bytes())
        {
            // secp384r1
            Some([0x2b, 0x81, 0x04, 0x00, 0x22]) => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => &rcgen::PKCS_ECDSA_P256_SHA256,
        };
        let public = CsrKey {
            bits: info.subject_pki.subject_public_key.data.to_vec(),
            alg,
        };
        let mut names = Vec::new();
        for ext in csr.requested_extensions().into_iter().flatten() {
            if let x509_parser::extensions::ParsedExtension::SubjectAlternativeName(s) = ext {
                for name in &s.general_names {
                    match name {
                        x509_parser::extensions::GeneralName::URI(u) => {
                            names.push(SanType::URI((*u).try_into().unwrap()))
                        }
                        x509_parser::extensions::GeneralName::DNSName(d) => {
                            names.push(SanType::DnsName((*d).try_into().unwrap()))
                        }
                        _ => {}
                    }
                }
            }
        }
        // The CSR's names and nothing else in the subject; digitalSignature, clientAuth.
        self.issuing.issue("", &[], Eku::ClientAuth, &public, |p| {
            p.distinguished_name = DistinguishedName::new();
            p.subject_alt_names = names;
            p.is_ca = IsCa::NoCa;
            p.use_authority_key_identifier_extension = true;
        })
    }
}

/// The public key of a CSR, for rcgen to certify.
struct CsrKey {
    bits: Vec<u8>,
    alg: &'static rcgen::SignatureAlgorithm,
}

impl rcgen::PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

fn now() -> UnixTime {
    UnixTime::now()
}

/// `openssl ARGS FILES`, which must succeed; its exit status, stdout and stderr.
fn openssl(args: &[&str], files: &[&Path]) -> String {
    let all: Vec<&OsStr> = args
        .iter()
        .map(OsStr::new)
        .chain(files.iter().map(|f| f.as_os_str()))
        .collect();
    let out = process::run("openssl", &all);
    let text = process::text(&out);
    assert!(out.status.success(), "openssl {args:?} failed: {text}");
    text
}

/// The attributes a MEF sends (CR 8.3.Z.2.2 step 2b), through the real CsrAttrs codec.
fn mef_requirements(key: Option<KeyRequirement>, hash: Option<HashAlg>) -> CsrRequirements {
    let identity = SubjectIdentity::new(SubjectType::Ae, AE).unwrap();
    let sent = CsrRequirements {
        challenge_password: ChallengePassword::Value(Zeroizing::new("Kx7-pw.42".into())),
        extensions: vec![
            RequestedExtension {
                oid: oids::SUBJECT_ALT_NAME.into(),
                critical: false,
                value: san::encode(&[identity.general_name()]).unwrap(),
            },
            RequestedExtension {
                oid: oids::EXT_KEY_USAGE.into(),
                critical: false,
                // SEQUENCE { id-kp-clientAuth }
                value: vec![
                    0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
                ],
            },
        ],
        key,
        hash,
        unrecognized: vec![],
    };
    let body = csrattrs::encode(&sent.to_items().unwrap()).unwrap();
    let received = CsrRequirements::from_items(&csrattrs::decode(&body).unwrap()).unwrap();
    assert_eq!(received, sent);
    received
}

fn provision_once(key: Option<KeyRequirement>, hash: Option<HashAlg>, expect: KeyAlgorithm) {
    if !require_tool("openssl", "Debian package openssl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let identity = SubjectIdentity::new(SubjectType::Ae, AE).unwrap();
    let reqs = mef_requirements(key, hash);

    // Step 3a: a key of the kind the MEF asked for.
    let algorithm = key_algorithm_for(reqs.key, reqs.hash, KeyAlgorithm::default()).unwrap();
    assert_eq!(algorithm, expect);
    let mut store = FileStore::new(tmp.path().join("creds")).unwrap();
    let key = store.create_key(algorithm).unwrap();

    // Step 3b: the CSR, checked by OpenSSL.
    let built = build_csr(key.as_ref(), Some(&identity), &reqs, None).unwrap();
    assert_eq!(built.san, vec![GeneralName::Uri(AE.into())]);
    let csr_path = tmp.path().join("req.der");
    std::fs::write(&csr_path, &built.der).unwrap();
    let text = openssl(
        &["req", "-verify", "-noout", "-text", "-inform", "DER", "-in"],
        &[&csr_path],
    );
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("challengePassword"), "{text}");
    assert!(text.contains("Kx7-pw.42"), "{text}");
    assert!(text.contains(&format!("URI:{AE}")), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");

    // Steps 3c-3e happen at the MEF; the certs-only SET OF arrives in any order.
    let leaf = ca.issue_from_csr(&built.der);
    let returned = vec![ca.issuing.cert.clone(), leaf.clone()];

    // Step 3f: validate, install, load.
    let issued = validate_issued(
        &returned,
        key.as_ref(),
        &built.san,
        std::slice::from_ref(&ca.root.cert),
        now(),
    )
    .unwrap();
    assert_eq!(issued.chain, vec![leaf.clone(), ca.issuing.cert.clone()]);
    store
        .install(&Credentials {
            trust_anchors: vec![ca.root.cert.clone()],
            chain: issued.chain.clone(),
            key: key.clone(),
        })
        .unwrap();
    let loaded = store.load().unwrap().unwrap();
    assert_eq!(loaded.chain, issued.chain);
    assert_eq!(loaded.trust_anchors, vec![ca.root.cert.clone()]);
    assert_eq!(loaded.key.public_key_info(), key.public_key_info());

    // The installed files are usable by other tools.
    let dir = store.dir();
    let text = openssl(
        &["verify", "-purpose", "sslclient", "-CAfile"],
        &[
            &dir.join("trust-anchors.pem"),
            Path::new("-untrusted"),
            &dir.join("cert.pem"),
            &dir.join("cert.pem"),
        ],
    );
    assert!(text.contains(": OK"), "{text}");
    let key_path = dir.join("key.pem");
    let spki = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key_path)
        .output()
        .unwrap();
    assert!(spki.status.success());
    assert_eq!(spki.stdout, key.public_key_info());
}

/// The key is of the kind the MEF asks for: the default profile (P-256, SHA-256), P-384 with
/// SHA-384, and TS-0003's default when nothing is asked.
#[test]
fn the_key_is_the_kind_the_mef_asks_for() {
    for (name, key, hash, expect) in [
        (
            "default profile P-256 SHA-256",
            Some(KeyRequirement::Ec(Curve::P256)),
            Some(HashAlg::Sha256),
            KeyAlgorithm::EcdsaP256Sha256,
        ),
        (
            "the server asks for P-384",
            Some(KeyRequirement::Ec(Curve::P384)),
            Some(HashAlg::Sha384),
            KeyAlgorithm::EcdsaP384Sha384,
        ),
        (
            "no key demand: the TS-0003 default",
            None,
            None,
            KeyAlgorithm::EcdsaP256Sha256,
        ),
    ] {
        // Printed first, so that a failure anywhere in the case names it.
        println!("case: {name}");
        provision_once(key, hash, expect);
    }
}

#[test]
fn rsa_demand_is_a_client_side_unsupported_error() {
    let reqs = mef_requirements(Some(KeyRequirement::Rsa { bits: Some(2048) }), None);
    let err = key_algorithm_for(reqs.key, reqs.hash, KeyAlgorithm::default()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert_eq!(err.class(), onem2m_est::ErrorClass::Client);
}

#[test]
fn csr_for_another_identity_is_refused_before_anything_is_sent() {
    let reqs = mef_requirements(None, None);
    let other =
        SubjectIdentity::new(SubjectType::Ae, "https://sp.example.com/cse01/COTHER").unwrap();
    let key = onem2m_est::keys::SoftwareKey::generate(KeyAlgorithm::default()).unwrap();
    let err = build_csr(&key, Some(&other), &reqs, None).unwrap_err();
    assert!(matches!(err, Error::IdentityConflict { .. }), "{err}");
}
