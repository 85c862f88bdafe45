//! Checking what the server returned before anything is installed: the issued certificate of
//! /simpleenroll, /simplereenroll and /serverkeygen (RFC 7030 4.2.3, 4.4.2; CR 8.3.Z.2.2
//! step 3f) and the CA certificates of /cacerts (RFC 7030 4.1.3).
//!
//! A certs-only response is a SET OF certificates (RFC 5652 5.1): order means nothing, so the
//! leaf is found by its public key and the chain is rebuilt by path building.

use crate::error::{Error, Operation, Result};
use crate::identity::{describe_general_name, describe_general_names, general_name_eq};
use crate::keys::PrivateKey;
use crate::proto::san::{self, GeneralName};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::time::Duration;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

/// A validated issued certificate with its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedChain {
    /// The certificate issued for our key.
    pub leaf: CertificateDer<'static>,
    /// The leaf first, then the CA certificates of the verified path in path order (issuer
    /// of the leaf next), up to but excluding the self-issued root (RFC 8446 4.4.2 allows
    /// omitting it). Subordinate CA certificates are included even when they are trust
    /// anchors themselves.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's notAfter.
    pub not_after: UnixTime,
}

fn rejected(reason: impl Into<String>) -> Error {
    Error::CertificateRejected {
        reason: reason.into(),
    }
}

fn parse_cert(der: &[u8], what: &str) -> Result<Certificate, String> {
    match crate::x509::parse_certificate(der) {
        Ok(cert) => Ok(cert),
        Err(e) if matches!(e.kind(), der::ErrorKind::TrailingData { .. }) => {
            Err(format!("{what} has trailing data after the certificate"))
        }
        Err(e) => Err(format!(
            "{what} does not parse as an X.509 certificate: {e}"
        )),
    }
}

/// Whether `cert` carries the public key of `spki_der` (same algorithm identifier and key).
fn has_public_key(cert: &Certificate, spki_der: &[u8]) -> bool {
    if crate::x509::has_spki(cert, spki_der) {
        return true;
    }
    // Tolerate a different but equivalent encoding of the same SubjectPublicKeyInfo.
    match SubjectPublicKeyInfoOwned::from_der(spki_der) {
        Ok(ours) => {
            let pki = cert.tbs_certificate().subject_public_key_info();
            ours.algorithm == pki.algorithm && ours.subject_public_key == pki.subject_public_key
        }
        Err(_) => false,
    }
}

/// The subjectAltName names of a certificate (empty when it has none).
pub fn certificate_san(cert: &Certificate) -> Result<Vec<GeneralName>, String> {
    let mut found = None;
    for ext in cert.tbs_certificate().extensions().into_iter().flatten() {
        if ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
            if found.is_some() {
                return Err("two subjectAltName extensions (RFC 5280 4.2)".into());
            }
            found = Some(
                san::decode(ext.extn_value.as_bytes())
                    .map_err(|e| format!("malformed subjectAltName: {e}"))?,
            );
        }
    }
    Ok(found.unwrap_or_default())
}

/// Whether basicConstraints says cA TRUE (absent: not a CA).
fn basic_constraints_ca(cert: &Certificate) -> Result<bool, der::Error> {
    Ok(cert
        .tbs_certificate()
        .get_extension::<BasicConstraints>()?
        .is_some_and(|(_, bc)| bc.ca))
}

/// Validates the certificate(s) an enrolment returned (RFC 7030 4.2.3; CR 8.3.Z.2.2 step 3f)
/// before it is installed:
///
/// - the leaf is the certificate whose SubjectPublicKeyInfo is our key's (not the first one);
/// - the leaf is within its validity period at `now`;
/// - if it has keyUsage, digitalSignature is set (TS-0003 10.1.1.1; TLS client
///   authentication signs with it);
/// - its subjectAltName holds every name of `expected_san` (the names the CSR asked for, or
///   the subject identity's name alone; DNS names and URI hosts compare case-insensitively);
/// - it chains to `trust_anchors` (rustls-webpki path building, the other returned
///   certificates as intermediates; if extendedKeyUsage is present it must include
///   id-kp-clientAuth, the EST client certificate's use).
///
/// Every failure is [`Error::CertificateRejected`] with a reason naming which check failed.
pub fn validate_issued(
    certs: &[CertificateDer<'_>],
    key: &dyn PrivateKey,
    expected_san: &[GeneralName],
    trust_anchors: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<IssuedChain> {
    if certs.is_empty() {
        return Err(rejected("the response holds no certificate"));
    }
    let mut parsed = Vec::with_capacity(certs.len());
    for (i, der) in certs.iter().enumerate() {
        parsed
            .push(parse_cert(der, &format!("returned certificate #{}", i + 1)).map_err(rejected)?);
    }

    // The leaf: our public key. A CA certificate for the same key would be odd; prefer a
    // non-CA one.
    let spki = key.public_key_info();
    let is_ca = |c: &Certificate| matches!(basic_constraints_ca(c), Ok(true));
    let leaf_index = parsed
        .iter()
        .position(|c| has_public_key(c, spki) && !is_ca(c))
        .or_else(|| parsed.iter().position(|c| has_public_key(c, spki)))
        .ok_or_else(|| {
            rejected(format!(
                "wrong key: none of the {} returned certificate(s) carries the public key of \
                 the key the CSR was signed with",
                certs.len()
            ))
        })?;
    let leaf = &parsed[leaf_index];
    let subject = crate::x509::describe_name(leaf.tbs_certificate().subject());

    // Validity period (RFC 5280 4.1.2.5), checked here for a precise reason.
    let now_secs = now.as_secs();
    let validity = leaf.tbs_certificate().validity();
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    if now_secs < not_before {
        return Err(rejected(format!(
            "the issued certificate ({subject}) is not yet valid: notBefore {}, now {}",
            crate::x509::format_unix_time(not_before),
            crate::x509::format_unix_time(now_secs)
        )));
    }
    if now_secs > not_after {
        return Err(rejected(format!(
            "the issued certificate ({subject}) has expired: notAfter {}, now {}",
            crate::x509::format_unix_time(not_after),
            crate::x509::format_unix_time(now_secs)
        )));
    }

    // keyUsage (TS-0003 10.1.1.1: "shall indicate at least digitalSignature").
    match leaf.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(Some((_, ku))) if !ku.digital_signature() => {
            return Err(rejected(format!(
                "the issued certificate ({subject}) has keyUsage without digitalSignature \
                 (TS-0003 10.1.1.1)"
            )))
        }
        Ok(_) => {}
        Err(e) => {
            return Err(rejected(format!(
                "the issued certificate ({subject}) has a malformed keyUsage: {e}"
            )))
        }
    }

    // Identity (TS-0003 10.1.4, 8.3.9.7 step 5).
    let names = certificate_san(leaf)
        .map_err(|e| rejected(format!("the issued certificate ({subject}): {e}")))?;
    for expected in expected_san {
        if !names.iter().any(|n| general_name_eq(n, expected)) {
            return Err(rejected(format!(
                "wrong identity: the issued certificate's subjectAltName ({}) lacks {}",
                describe_general_names(&names),
                describe_general_name(expected)
            )));
        }
    }

    // Chain to the explicit trust anchors (RFC 7030 4.2.3: the client verifies the issued
    // certificate; CR 8.3.Z.2.2 step 1c: the anchors are those /cacerts installed).
    if trust_anchors.is_empty() {
        return Err(rejected(
            "untrusted issuer: there are no trust anchors to validate against",
        ));
    }
    let mut roots = Vec::new();
    let mut subordinates = Vec::new();
    for (i, ta) in trust_anchors.iter().enumerate() {
        let cert = parse_cert(ta, &format!("trust anchor #{}", i + 1)).map_err(rejected)?;
        if cert.tbs_certificate().subject() == cert.tbs_certificate().issuer() {
            roots.push(ta);
        } else {
            subordinates.push(ta);
        }
    }
    let leaf_der = CertificateDer::from(certs[leaf_index].as_ref());
    let returned: Vec<CertificateDer<'_>> = certs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leaf_index)
        .map(|(_, c)| CertificateDer::from(c.as_ref()))
        .collect();
    let ee = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| {
        rejected(format!(
            "the issued certificate ({subject}) is unusable: {e}"
        ))
    })?;
    // /cacerts carries subordinate CA certificates too (RFC 7030 4.1.3), and all of them are
    // trust anchors. Building to a self-issued root first, with the subordinate anchors as
    // intermediates, puts every CA below the root into the chain, so a peer that trusts only
    // the root can still validate our TLS client certificate. If no root is reachable, any
    // anchor will do.
    let mut result = Err(webpki::Error::UnknownIssuer);
    if !roots.is_empty() {
        let mut intermediates = returned.clone();
        intermediates.extend(
            subordinates
                .iter()
                .map(|c| CertificateDer::from(c.as_ref())),
        );
        result = verified_path(&ee, &roots, &intermediates, now);
    }
    if matches!(result, Err(webpki::Error::UnknownIssuer)) {
        let all: Vec<&CertificateDer<'_>> = trust_anchors.iter().collect();
        result = verified_path(&ee, &all, &returned, now);
    }
    let path = result.map_err(|e| rejected(chain_error_reason(&e, &subject)))?;

    let mut chain = vec![CertificateDer::from(leaf_der.as_ref().to_vec())];
    chain.extend(path);
    Ok(IssuedChain {
        leaf: chain[0].clone(),
        chain,
        not_after: UnixTime::since_unix_epoch(Duration::from_secs(not_after)),
    })
}

/// Path building with rustls-webpki; returns the path's intermediate certificates in order
/// (the leaf's issuer first). The leaf must be usable for TLS client authentication: if it
/// has extendedKeyUsage, id-kp-clientAuth must be among them.
fn verified_path(
    ee: &webpki::EndEntityCert<'_>,
    anchors: &[&CertificateDer<'_>],
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<Vec<CertificateDer<'static>>, webpki::Error> {
    let anchors = anchors
        .iter()
        .map(|ta| webpki::anchor_from_trusted_cert(ta))
        .collect::<Result<Vec<_>, _>>()?;
    let path = ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        now,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )?;
    Ok(path
        .intermediate_certificates()
        .map(|c| CertificateDer::from(c.der().as_ref().to_vec()))
        .collect())
}

/// A reason for a failed path validation, naming the likely cause.
fn chain_error_reason(e: &webpki::Error, subject: &str) -> String {
    use webpki::Error as E;
    let what = match e {
        E::UnknownIssuer => {
            "untrusted issuer: it does not chain to the trust anchors (its issuer is neither a \
             trust anchor nor among the returned certificates)"
                .to_string()
        }
        E::CertExpired { .. } => "a CA certificate on its path has expired".to_string(),
        E::CertNotValidYet { .. } => "a CA certificate on its path is not yet valid".to_string(),
        E::InvalidSignatureForPublicKey => {
            "a signature on its path does not verify with the issuer's key".to_string()
        }
        E::RequiredEkuNotFoundContext(_) => {
            "its extendedKeyUsage does not allow TLS client authentication (id-kp-clientAuth)"
                .to_string()
        }
        E::CaUsedAsEndEntity => "it is a CA certificate, not an end-entity certificate".to_string(),
        E::NameConstraintViolation => {
            "its names are outside the nameConstraints of a CA on its path (RFC 5280 4.2.1.10, \
             TS-0003 10.1.1.5; rustls-webpki also refuses every uniformResourceIdentifier name \
             under a URI constraint, which it does not implement)"
                .to_string()
        }
        other => format!("path validation failed: {other}"),
    };
    format!("the issued certificate ({subject}): {what}")
}

/// Checks a /cacerts response (RFC 7030 4.1.3) before it becomes the explicit trust anchor
/// database (RFC 7030 3.6.1; CR 8.3.Z.2.2 step 1c): at least one certificate, each parses,
/// each is a CA certificate (basicConstraints cA TRUE, RFC 5280 4.2.1.9) usable as a trust
/// anchor. Duplicates are dropped; the order of first appearance is kept.
///
/// Failures are [`Error::BadResponse`] for [`Operation::CaCerts`].
pub fn validate_ca_certs(certs: &[CertificateDer<'_>]) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |reason: String| Error::BadResponse {
        operation: Operation::CaCerts,
        reason,
    };
    if certs.is_empty() {
        return Err(bad("the response holds no CA certificate".into()));
    }
    let mut out: Vec<CertificateDer<'static>> = Vec::with_capacity(certs.len());
    for (i, der) in certs.iter().enumerate() {
        let what = format!("certificate #{}", i + 1);
        let cert = parse_cert(der, &what).map_err(bad)?;
        let subject = crate::x509::describe_name(cert.tbs_certificate().subject());
        match basic_constraints_ca(&cert) {
            Ok(true) => {}
            Ok(false) => {
                return Err(bad(format!(
                    "{what} ({subject}) is not a CA certificate (basicConstraints cA is not TRUE)"
                )))
            }
            Err(e) => {
                return Err(bad(format!(
                    "{what} ({subject}) has a malformed basicConstraints: {e}"
                )))
            }
        }
        webpki::anchor_from_trusted_cert(der)
            .map_err(|e| bad(format!("{what} ({subject}) cannot be a trust anchor: {e}")))?;
        if !out.iter().any(|c| c.as_ref() == der.as_ref()) {
            out.push(CertificateDer::from(der.as_ref().to_vec()));
        }
    }
    Ok(out)
}

/// A small PKI for tests: a root CA, an intermediate CA, and leaves issued for any
/// [`PrivateKey`].
#[cfg(test)]
pub(crate) mod test_pki {
    use crate::csr::KeySigner;
    use crate::keys::PrivateKey;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    use rustls_pki_types::CertificateDer;

    pub(crate) struct TestPki {
        pub root: CertifiedIssuer<'static, KeyPair>,
        pub intermediate: CertifiedIssuer<'static, KeyPair>,
    }

    /// How a test leaf should look.
    pub(crate) struct LeafSpec {
        pub sans: Vec<SanType>,
        pub not_before: (i32, u8, u8),
        pub not_after: (i32, u8, u8),
        pub key_usages: Vec<KeyUsagePurpose>,
        pub ekus: Vec<ExtendedKeyUsagePurpose>,
    }

    impl LeafSpec {
        pub(crate) fn uri(uri: &str) -> LeafSpec {
            LeafSpec {
                sans: vec![SanType::URI(uri.try_into().unwrap())],
                not_before: (2020, 1, 1),
                not_after: (2040, 1, 1),
                key_usages: vec![KeyUsagePurpose::DigitalSignature],
                ekus: vec![ExtendedKeyUsagePurpose::ClientAuth],
            }
        }
    }

    fn ca_params(cn: &str) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2040, 1, 1);
        p
    }

    impl TestPki {
        pub(crate) fn new(name: &str) -> TestPki {
            let root = CertifiedIssuer::self_signed(
                ca_params(&format!("{name} Root CA")),
                KeyPair::generate().unwrap(),
            )
            .unwrap();
            let intermediate = CertifiedIssuer::signed_by(
                ca_params(&format!("{name} Issuing CA")),
                KeyPair::generate().unwrap(),
                &root,
            )
            .unwrap();
            TestPki { root, intermediate }
        }

        pub(crate) fn root_der(&self) -> CertificateDer<'static> {
            self.root.der().clone()
        }

        pub(crate) fn intermediate_der(&self) -> CertificateDer<'static> {
            self.intermediate.der().clone()
        }

        /// A leaf for `key`, issued by the intermediate CA.
        pub(crate) fn leaf(
            &self,
            key: &dyn PrivateKey,
            spec: &LeafSpec,
        ) -> CertificateDer<'static> {
            let mut p = CertificateParams::default();
            p.distinguished_name = DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, "test leaf");
            p.subject_alt_names = spec.sans.clone();
            p.not_before =
                rcgen::date_time_ymd(spec.not_before.0, spec.not_before.1, spec.not_before.2);
            p.not_after =
                rcgen::date_time_ymd(spec.not_after.0, spec.not_after.1, spec.not_after.2);
            p.key_usages = spec.key_usages.clone();
            p.extended_key_usages = spec.ekus.clone();
            p.use_authority_key_identifier_extension = true;
            let public = KeySigner::new(key).unwrap();
            p.signed_by(&public, &self.intermediate)
                .unwrap()
                .der()
                .clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_pki::{LeafSpec, TestPki};
    use super::*;
    use crate::keys::{KeyAlgorithm, SoftwareKey};
    use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};

    const AE: &str = "https://sp.example.com/cse01/CAE01";

    fn now() -> UnixTime {
        // 2030-01-01T00:00:00Z: inside the test PKI's validity, independent of the clock.
        UnixTime::since_unix_epoch(Duration::from_secs(1_893_456_000))
    }

    fn expected() -> Vec<GeneralName> {
        vec![GeneralName::Uri(AE.into())]
    }

    fn reason(r: Result<IssuedChain>) -> String {
        match r {
            Err(Error::CertificateRejected { reason }) => reason,
            other => panic!("expected CertificateRejected, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_good_chain_in_any_order() {
        let pki = TestPki::new("ok");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let leaf = pki.leaf(&key, &LeafSpec::uri(AE));
        // SET OF: intermediate first, the root included too.
        let returned = vec![pki.intermediate_der(), pki.root_der(), leaf.clone()];
        let issued =
            validate_issued(&returned, &key, &expected(), &[pki.root_der()], now()).unwrap();
        assert_eq!(issued.leaf, leaf);
        assert_eq!(issued.chain, vec![leaf, pki.intermediate_der()]);
        assert_eq!(issued.not_after.as_secs(), 2_208_988_800); // 2040-01-01
                                                               // Host case differs: still the identity.
        validate_issued(
            &returned,
            &key,
            &[GeneralName::Uri(
                "https://SP.example.com/cse01/CAE01".into(),
            )],
            &[pki.root_der()],
            now(),
        )
        .unwrap();
    }

    #[test]
    fn subordinate_anchors_stay_in_the_chain() {
        let pki = TestPki::new("sub");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let leaf = pki.leaf(&key, &LeafSpec::uri(AE));
        // /cacerts gave root and issuing CA; the enrolment returned the leaf alone.
        let tas = [pki.intermediate_der(), pki.root_der()];
        let issued =
            validate_issued(std::slice::from_ref(&leaf), &key, &expected(), &tas, now()).unwrap();
        assert_eq!(issued.chain, vec![leaf.clone(), pki.intermediate_der()]);
        // Only the issuing CA is trusted: it is the anchor, the chain is the leaf.
        let issued = validate_issued(
            std::slice::from_ref(&leaf),
            &key,
            &expected(),
            &[pki.intermediate_der()],
            now(),
        )
        .unwrap();
        assert_eq!(issued.chain, vec![leaf]);
    }

    #[test]
    fn wrong_key() {
        let pki = TestPki::new("wk");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let other = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let leaf = pki.leaf(&other, &LeafSpec::uri(AE));
        let r = reason(validate_issued(
            &[leaf, pki.intermediate_der()],
            &key,
            &expected(),
            &[pki.root_der()],
            now(),
        ));
        assert!(r.starts_with("wrong key"), "{r}");
    }

    #[test]
    fn wrong_identity() {
        let pki = TestPki::new("wi");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let leaf = pki.leaf(&key, &LeafSpec::uri("https://sp.example.com/cse01/COTHER"));
        let r = reason(validate_issued(
            &[leaf, pki.intermediate_der()],
            &key,
            &expected(),
            &[pki.root_der()],
            now(),
        ));
        assert!(r.starts_with("wrong identity"), "{r}");
        assert!(r.contains("COTHER") && r.contains("CAE01"), "{r}");
    }

    #[test]
    fn expired_and_not_yet_valid() {
        let pki = TestPki::new("time");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let mut spec = LeafSpec::uri(AE);
        spec.not_after = (2025, 1, 1);
        let leaf = pki.leaf(&key, &spec);
        let r = reason(validate_issued(
            &[leaf, pki.intermediate_der()],
            &key,
            &expected(),
            &[pki.root_der()],
            now(),
        ));
        assert!(r.contains("has expired"), "{r}");

        let mut spec = LeafSpec::uri(AE);
        spec.not_before = (2035, 1, 1);
        let leaf = pki.leaf(&key, &spec);
        let r = reason(validate_issued(
            &[leaf, pki.intermediate_der()],
            &key,
            &expected(),
            &[pki.root_der()],
            now(),
        ));
        assert!(r.contains("not yet valid"), "{r}");
    }

    #[test]
    fn untrusted_issuer() {
        let pki = TestPki::new("a");
        let other = TestPki::new("b");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let leaf = pki.leaf(&key, &LeafSpec::uri(AE));
        let r = reason(validate_issued(
            &[leaf.clone(), pki.intermediate_der()],
            &key,
            &expected(),
            &[other.root_der()],
            now(),
        ));
        assert!(r.contains("untrusted issuer"), "{r}");
        // Missing intermediate: the path cannot be built either.
        let r = reason(validate_issued(
            &[leaf],
            &key,
            &expected(),
            &[pki.root_der()],
            now(),
        ));
        assert!(r.contains("untrusted issuer"), "{r}");
    }

    #[test]
    fn key_usage_and_eku() {
        let pki = TestPki::new("ku");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let mut spec = LeafSpec::uri(AE);
        spec.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        let leaf = pki.leaf(&key, &spec);
        let r = reason(validate_issued(
            &[leaf, pki.intermediate_der()],
            &key,
            &expected(),
            &[pki.root_der()],
            now(),
        ));
        assert!(r.contains("digitalSignature"), "{r}");

        let mut spec = LeafSpec::uri(AE);
        spec.ekus = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = pki.leaf(&key, &spec);
        let r = reason(validate_issued(
            &[leaf, pki.intermediate_der()],
            &key,
            &expected(),
            &[pki.root_der()],
            now(),
        ));
        assert!(r.contains("clientAuth"), "{r}");

        // No keyUsage and no EKU at all: accepted.
        let mut spec = LeafSpec::uri(AE);
        spec.key_usages.clear();
        spec.ekus.clear();
        let leaf = pki.leaf(&key, &spec);
        validate_issued(
            &[leaf, pki.intermediate_der()],
            &key,
            &expected(),
            &[pki.root_der()],
            now(),
        )
        .unwrap();
    }

    /// The trust anchor's nameConstraints (TS-0003 10.1.1.5, RFC 5280 4.2.1.10) are honoured:
    /// rustls-webpki applies dNSName subtrees to dNSName SANs (inside accepted, outside
    /// refused), leaves URI SANs alone under dNSName-only constraints, and fails closed on a
    /// uniformResourceIdentifier subtree (it does not implement URI constraints: every URI name
    /// under one is refused, inside or not).
    #[test]
    fn name_constraints_of_the_anchor_are_honoured() {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, GeneralSubtree,
            IsCa, KeyPair, NameConstraints, SanType,
        };
        let constrained_root = |uri_subtree: bool| {
            let mut p = CertificateParams::default();
            p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2040, 1, 1);
            if uri_subtree {
                // NameConstraints { permittedSubtrees [0] { GeneralSubtree { [6] "sp.example.com" } } }
                // (rcgen has no URI subtree form).
                let host = b"sp.example.com";
                let mut der = vec![0x30, (host.len() + 6) as u8, 0xa0, (host.len() + 4) as u8];
                der.extend([0x30, (host.len() + 2) as u8, 0x86, host.len() as u8]);
                der.extend(host);
                let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], der);
                ext.set_criticality(true);
                p.custom_extensions = vec![ext];
            } else {
                p.name_constraints = Some(NameConstraints {
                    permitted_subtrees: vec![GeneralSubtree::DnsName("sp.example.com".into())],
                    excluded_subtrees: vec![],
                });
            }
            CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
        };
        let leaf = |ca: &CertifiedIssuer<'static, KeyPair>, key: &SoftwareKey, san: SanType| {
            let mut p = CertificateParams::default();
            p.subject_alt_names = vec![san];
            p.not_before = rcgen::date_time_ymd(2021, 1, 1);
            p.not_after = rcgen::date_time_ymd(2039, 1, 1);
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let public = crate::csr::KeySigner::new(key).unwrap();
            p.signed_by(&public, ca).unwrap().der().clone()
        };
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let dns_ca = constrained_root(false);
        let check = |ca: &CertifiedIssuer<'static, KeyPair>, name: GeneralName| {
            let san = match &name {
                GeneralName::Dns(d) => SanType::DnsName(d.as_str().try_into().unwrap()),
                GeneralName::Uri(u) => SanType::URI(u.as_str().try_into().unwrap()),
                GeneralName::Other(_) => unreachable!(),
            };
            let cert = leaf(ca, &key, san);
            validate_issued(&[cert], &key, &[name], &[ca.der().clone()], now())
        };
        check(&dns_ca, GeneralName::Dns("cse01.sp.example.com".into())).unwrap();
        let r = reason(check(
            &dns_ca,
            GeneralName::Dns("cse01.other.example".into()),
        ));
        assert!(r.contains("nameConstraints"), "{r}");
        // dNSName subtrees do not apply to URI names.
        check(&dns_ca, GeneralName::Uri(AE.into())).unwrap();
        // A URI subtree: refused even for a name inside it.
        let uri_ca = constrained_root(true);
        let r = reason(check(&uri_ca, GeneralName::Uri(AE.into())));
        assert!(r.contains("nameConstraints"), "{r}");
    }

    #[test]
    fn empty_and_garbage() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let r = reason(validate_issued(&[], &key, &expected(), &[], now()));
        assert!(r.contains("no certificate"), "{r}");
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let r = reason(validate_issued(&[junk], &key, &expected(), &[], now()));
        assert!(r.contains("does not parse"), "{r}");
    }

    #[test]
    fn ca_certs() {
        let pki = TestPki::new("ca");
        let out =
            validate_ca_certs(&[pki.root_der(), pki.intermediate_der(), pki.root_der()]).unwrap();
        assert_eq!(out, vec![pki.root_der(), pki.intermediate_der()]);

        assert!(matches!(
            validate_ca_certs(&[]),
            Err(Error::BadResponse {
                operation: Operation::CaCerts,
                ..
            })
        ));
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let leaf = pki.leaf(&key, &LeafSpec::uri(AE));
        match validate_ca_certs(&[pki.root_der(), leaf]) {
            Err(Error::BadResponse { reason, .. }) => {
                assert!(reason.contains("not a CA certificate"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let junk = CertificateDer::from(vec![0x30, 0x00]);
        assert!(validate_ca_certs(&[junk]).is_err());
    }
}
