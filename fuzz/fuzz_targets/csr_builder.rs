//! The client's CSR builder (`csr::build_csr`, RFC 2986, TS-0003 10.1.4) fed requirements it
//! did not choose: never panics, and a CSR it builds parses (x509-parser), carries nothing after
//! the DER, verifies with its own key (proof of possession, RFC 7030 3.4), echoes the
//! challengePassword the server supplied, and carries exactly the subjectAltName it reports.
//!
//! Input: a control byte, then either CsrAttrs DER (bit 0 clear: requirements as a server's
//! /csrattrs response yields them, `csrattrs::decode` + `CsrRequirements::from_items`) or bytes
//! that `arbitrary` turns into `CsrRequirements` directly (bit 0 set: values no real decoder
//! would produce). Bits 1-2 pick the key (P-256, P-384, Ed25519), bit 3 a configured identity,
//! bit 4 a channel binding value.
#![no_main]

use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use onem2m_est::csr::build_csr;
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
use onem2m_est_proto::csrattrs::{
    self, ChallengePassword, CsrRequirements, Curve, HashAlg, KeyRequirement, RequestedExtension,
};
use onem2m_est_proto::{oids, san};
use std::sync::OnceLock;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

fn key(i: u8) -> &'static SoftwareKey {
    static KEYS: OnceLock<[SoftwareKey; 3]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [
            KeyAlgorithm::EcdsaP256Sha256,
            KeyAlgorithm::EcdsaP384Sha384,
            KeyAlgorithm::Ed25519,
        ]
        .map(|a| SoftwareKey::generate(a).expect("key generation"))
    });
    &keys[usize::from(i % 3)]
}

const EXTENSION_OIDS: &[&str] = &[
    oids::SUBJECT_ALT_NAME,
    oids::KEY_USAGE,
    oids::EXT_KEY_USAGE,
    "2.5.29.19",
    oids::CHALLENGE_PASSWORD,
];

fn arbitrary_names(u: &mut Unstructured<'_>) -> ArbResult<Vec<san::GeneralName>> {
    let n = u.int_in_range(0..=3)?;
    (0..n)
        .map(|_| {
            Ok(match u.int_in_range(0..=2)? {
                0 => san::GeneralName::Dns(u.arbitrary()?),
                1 => san::GeneralName::Uri(u.arbitrary()?),
                _ => san::GeneralName::Other(u.arbitrary()?),
            })
        })
        .collect()
}

fn arbitrary_requirements(u: &mut Unstructured<'_>) -> ArbResult<CsrRequirements> {
    let challenge_password = match u.int_in_range(0..=2)? {
        0 => ChallengePassword::NotRequested,
        1 => ChallengePassword::ChannelBinding,
        _ => ChallengePassword::Value(u.arbitrary::<String>()?.into()),
    };
    let mut extensions = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let oid = match u.int_in_range(0..=EXTENSION_OIDS.len())? {
            i if i < EXTENSION_OIDS.len() => EXTENSION_OIDS[i].to_string(),
            _ => u.arbitrary()?,
        };
        let value = if oid == oids::SUBJECT_ALT_NAME && u.arbitrary()? {
            san::encode(&arbitrary_names(u)?).unwrap_or_default()
        } else {
            u.arbitrary()?
        };
        extensions.push(RequestedExtension {
            oid,
            critical: u.arbitrary()?,
            value,
        });
    }
    let key = match u.int_in_range(0..=5)? {
        0 => None,
        1 => Some(KeyRequirement::Ec(Curve::P256)),
        2 => Some(KeyRequirement::Ec(Curve::P384)),
        3 => Some(KeyRequirement::Ec(Curve::P521)),
        4 => Some(KeyRequirement::Rsa {
            bits: u.arbitrary()?,
        }),
        _ => Some(KeyRequirement::Ed25519),
    };
    let hash = match u.int_in_range(0..=3)? {
        0 => None,
        1 => Some(HashAlg::Sha256),
        2 => Some(HashAlg::Sha384),
        _ => Some(HashAlg::Sha512),
    };
    Ok(CsrRequirements {
        challenge_password,
        extensions,
        key,
        hash,
        unrecognized: u.arbitrary()?,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let reqs = if control & 1 == 0 {
        let Ok(items) = csrattrs::decode(rest) else {
            return;
        };
        let Ok(reqs) = CsrRequirements::from_items(&items) else {
            return;
        };
        reqs
    } else {
        let Ok(reqs) = arbitrary_requirements(&mut Unstructured::new(rest)) else {
            return;
        };
        reqs
    };
    let key = key(control >> 1 & 3);
    let identity = (control & 8 != 0)
        .then(|| SubjectIdentity::new(SubjectType::Cse, "cse01.sp.example.com").unwrap());
    let binding: Option<&[u8]> = (control & 16 != 0).then_some(&b"tls-exporter value"[..]);

    let Ok(built) = build_csr(key, identity.as_ref(), &reqs, binding) else {
        return;
    };

    let (rest, csr) = X509CertificationRequest::from_der(&built.der).expect("built CSR parses");
    assert!(rest.is_empty(), "trailing bytes after the built CSR");
    if key.algorithm() == KeyAlgorithm::EcdsaP256Sha256 {
        csr.verify_signature().expect("built CSR verifies");
    }
    assert_eq!(
        csr.certification_request_info.subject_pki.raw,
        key.public_key_info(),
        "CSR carries another key"
    );
    let password = csr
        .certification_request_info
        .iter_attributes()
        .find_map(|a| match a.parsed_attribute() {
            ParsedCriAttribute::ChallengePassword(p) => Some(p.0.clone()),
            _ => None,
        });
    match &reqs.challenge_password {
        ChallengePassword::Value(v) => {
            assert_eq!(password.as_deref(), Some(v.as_str()), "password not echoed")
        }
        ChallengePassword::ChannelBinding => assert!(password.is_some()),
        ChallengePassword::NotRequested => assert!(password.is_none(), "unasked password"),
    }
    let san_ext = csr
        .requested_extensions()
        .into_iter()
        .flatten()
        .filter(|e| matches!(e, ParsedExtension::SubjectAlternativeName(_)))
        .count();
    assert_eq!(san_ext, 1, "exactly one subjectAltName extension");
    let raw_san = csr
        .certification_request_info
        .iter_attributes()
        .flat_map(|a| match a.parsed_attribute() {
            ParsedCriAttribute::ExtensionRequest(er) => er.extensions.clone(),
            _ => Vec::new(),
        })
        .find(|e| e.oid.to_id_string() == oids::SUBJECT_ALT_NAME)
        .expect("subjectAltName extension");
    assert_eq!(
        san::decode(raw_san.value).expect("built subjectAltName decodes"),
        built.san,
        "CSR subjectAltName differs from the reported one"
    );
});
