//! Checking what the server returned before anything is installed: the issued certificate of
//! /simpleenroll, /simplereenroll and /serverkeygen (RFC 7030 4.2.3, 4.4.2; CR 8.3.Z.2.2
//! step 3f) and the CA certificates of /cacerts (RFC 7030 4.1.3).
//!
//! A certs-only response is a SET OF certificates (RFC 5652 5.1): order means nothing, so the
//! leaf is found by its public key and the chain is rebuilt by path building.

use crate::error::{Error, Operation, Result};
use crate::identity::{
    describe_general_name, describe_general_names, general_name_eq, wildcard_general_name,
};
use crate::keys::{KeyAlgorithm, PrivateKey};
use crate::proto::san::{self, GeneralName};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::time::Duration;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
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

/// Why a certificate's encoding is refused; the caller classifies it (a returned
/// certificate, a trust anchor, /cacerts).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CertificateProblem {
    /// DER after the certificate.
    #[error("{what} has trailing data after the certificate")]
    TrailingData { what: String },
    /// Not an X.509 certificate.
    #[error("{what} does not parse as an X.509 certificate: {source}")]
    NotACertificate {
        what: String,
        #[source]
        source: der::Error,
    },
    /// Two subjectAltName extensions (RFC 5280 4.2).
    #[error("two subjectAltName extensions (RFC 5280 4.2)")]
    TwoSubjectAltNames,
    /// The subjectAltName does not decode.
    #[error("malformed subjectAltName: {0}")]
    MalformedSubjectAltName(#[source] crate::proto::ProtoError),
}

fn parse_cert(der: &[u8], what: &str) -> Result<Certificate, CertificateProblem> {
    match crate::x509::parse_certificate(der) {
        Ok(cert) => Ok(cert),
        Err(e) if matches!(e.kind(), der::ErrorKind::TrailingData { .. }) => {
            Err(CertificateProblem::TrailingData { what: what.into() })
        }
        Err(source) => Err(CertificateProblem::NotACertificate {
            what: what.into(),
            source,
        }),
    }
}

/// The subjectAltName names of a certificate (empty when it has none).
pub(crate) fn certificate_san(cert: &Certificate) -> Result<Vec<GeneralName>, CertificateProblem> {
    let mut found = None;
    for ext in cert.tbs_certificate().extensions().into_iter().flatten() {
        if ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
            if found.is_some() {
                return Err(CertificateProblem::TwoSubjectAltNames);
            }
            found = Some(
                san::decode(ext.extn_value.as_bytes())
                    .map_err(CertificateProblem::MalformedSubjectAltName)?,
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
/// - it has keyUsage with digitalSignature (TS-0003 10.1.1.1; TLS client authentication
///   signs with it);
/// - no name holds a wildcard (TS-0003 10.1.1.5-10.1.1.8): dNSNames, URI hosts, commonName;
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
        parsed.push(
            parse_cert(der, &format!("returned certificate #{}", i + 1))
                .map_err(|e| rejected(e.to_string()))?,
        );
    }

    // The leaf: our public key. A CA certificate for the same key would be odd; prefer a
    // non-CA one.
    let spki = key.public_key_info();
    let is_ca = |c: &Certificate| matches!(basic_constraints_ca(c), Ok(true));
    let leaf_index = parsed
        .iter()
        .position(|c| crate::x509::has_spki(c, spki) && !is_ca(c))
        .or_else(|| parsed.iter().position(|c| crate::x509::has_spki(c, spki)))
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

    // keyUsage (TS-0003 10.1.1.1: "The key usage extension shall be included and shall
    // indicate at least digitalSignature").
    match leaf.tbs_certificate().get_extension::<KeyUsage>() {
        Ok(Some((_, ku))) if !ku.digital_signature() => {
            return Err(rejected(format!(
                "the issued certificate ({subject}) has keyUsage without digitalSignature \
                 (TS-0003 10.1.1.1)"
            )))
        }
        Ok(None) => {
            return Err(rejected(format!(
                "the issued certificate ({subject}) has no keyUsage extension; TS-0003 10.1.1.1 \
                 requires one with digitalSignature"
            )))
        }
        Ok(Some(_)) => {}
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

    // TS-0003 10.1.1.5-10.1.1.8: AE-ID, FQDN, CSE-ID and Node-ID certificates "shall not
    // include wildcards".
    if let Some(name) = wildcard_name(leaf, &names) {
        return Err(rejected(format!(
            "the issued certificate ({subject}) names {name} with a wildcard; a MEF-issued \
             certificate shall not include wildcards (TS-0003 10.1.1.5-10.1.1.8)"
        )));
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
        let cert = parse_cert(ta, &format!("trust anchor #{}", i + 1))
            .map_err(|e| rejected(e.to_string()))?;
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

/// The first name of the certificate that holds a wildcard (`*`): a dNSName, the host of a
/// URI, or a subject commonName.
fn wildcard_name(cert: &Certificate, names: &[GeneralName]) -> Option<String> {
    if let Some(name) = wildcard_general_name(names) {
        return Some(name);
    }
    cert.tbs_certificate()
        .subject()
        .iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .filter(|atv| atv.oid == const_oid::db::rfc4519::CN)
        .find(|atv| atv.value.value().contains(&b'*'))
        .map(|atv| {
            format!(
                "commonName {:?}",
                String::from_utf8_lossy(atv.value.value())
            )
        })
}

/// TS-0003 10.1.1.3: "Certificates shall be signed with ECDSA using secp256r1, and the
/// signature shall use SHA-256" (for the certificate and every certificate of its chain,
/// 10.1.1.5-10.1.1.8). Checked on an issued chain ([`IssuedChain::chain`]: the leaf and the CA
/// certificates below the root) when the configured key algorithm is the TS-0003 one
/// ([`KeyAlgorithm::EcdsaP256Sha256`], the default): every signature is ecdsa-with-SHA256, and
/// every CA certificate of the chain carries a P-256 key. The self-signed root is a trust
/// anchor and its own signature is not part of path validation (RFC 5280 6.1). With another
/// configured key algorithm the caller has left the TS-0003 profile; the signatures must still
/// be of an algorithm this client offers (ECDSA with SHA-256 or SHA-384, Ed25519).
///
/// A failure is [`Error::CertificateRejected`].
pub fn check_chain_algorithms(
    chain: &[CertificateDer<'_>],
    configured: KeyAlgorithm,
) -> Result<()> {
    use crate::proto::oids::{self, EC_PUBLIC_KEY, ED25519, SECP256R1};
    let ts0003 = configured == KeyAlgorithm::EcdsaP256Sha256;
    let allowed: &[&str] = if ts0003 {
        &[oids::ECDSA_WITH_SHA256]
    } else {
        &[oids::ECDSA_WITH_SHA256, oids::ECDSA_WITH_SHA384, ED25519]
    };
    let profile = if ts0003 {
        "TS-0003 10.1.1.3: ECDSA with secp256r1 and SHA-256"
    } else {
        "the signature algorithms this client offers: ECDSA with SHA-256 or SHA-384, Ed25519"
    };
    for (i, der) in chain.iter().enumerate() {
        let what = if i == 0 {
            "the issued certificate".to_string()
        } else {
            format!("CA certificate #{i} of its chain")
        };
        let cert = parse_cert(der, &what).map_err(|e| rejected(e.to_string()))?;
        let subject = crate::x509::describe_name(cert.tbs_certificate().subject());
        let signature = cert.signature_algorithm().oid.to_string();
        if !allowed.contains(&signature.as_str()) {
            return Err(rejected(format!(
                "{what} ({subject}) is signed with {}, outside the configured certificate \
                 profile ({profile})",
                signature_name(&signature)
            )));
        }
        if ts0003 && i > 0 {
            let spki = cert.tbs_certificate().subject_public_key_info();
            let curve = named_curve(spki);
            if spki.algorithm.oid.to_string() != EC_PUBLIC_KEY
                || curve.as_deref() != Some(SECP256R1)
            {
                return Err(rejected(format!(
                    "{what} ({subject}) does not carry a secp256r1 key, outside the configured \
                     certificate profile ({profile})"
                )));
            }
        }
    }
    Ok(())
}

/// A signature algorithm OID for messages.
fn signature_name(oid: &str) -> String {
    use crate::proto::oids;
    match oid {
        oids::ECDSA_WITH_SHA256 => "ecdsa-with-SHA256".into(),
        oids::ECDSA_WITH_SHA384 => "ecdsa-with-SHA384".into(),
        oids::ECDSA_WITH_SHA512 => "ecdsa-with-SHA512".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption".into(),
        other => other.into(),
    }
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
/// database (RFC 7030 3.6.1; CR 8.3.Z.2.2 step 1c), with no trust anchors of the device to
/// compare with (see [`validate_ca_certs_for`]).
pub fn validate_ca_certs(certs: &[CertificateDer<'_>]) -> Result<Vec<CertificateDer<'static>>> {
    validate_ca_certs_for(certs, &[], &[], UnixTime::now())
}

/// Checks a /cacerts response (RFC 7030 4.1.3) before it becomes the explicit trust anchor
/// database (RFC 7030 3.6.1; CR 8.3.Z.2.2 step 1c). `current` are the trust anchors the device
/// holds now (those that authenticated this connection; empty when there are none, e.g. over
/// TLS-PSK); `server_chains` the certificate chains the server presented in this procedure.
///
/// Each certificate must parse and be a CA certificate (basicConstraints cA TRUE, RFC 5280
/// 4.2.1.9) usable as a trust anchor. Then the root key rollover rules of RFC 7030 4.1.3 (the
/// "Root CA Key Update" certificates of RFC 4210 4.4):
///
/// 1. The self-signed certificates (subject = issuer, and the signature verifies with the
///    certificate's own key) are the roots; there must be one ("the EST server MUST include
///    the current root CA certificate"). The newest root is the one with the latest notAfter
///    ("the EST CA's most recent self-signed certificate (e.g., NewWithNew) ... has the latest
///    NotAfter date").
/// 2. Every other certificate (subordinate CAs and the link certificates OldWithNew and
///    NewWithOld) must pass RFC 5280 path validation with the newest root as the trust anchor
///    and the other non-self-signed certificates of the response as intermediates: names
///    chain, signatures verify, every certificate on the path is within its validity period,
///    and each issuer is a CA allowed to sign certificates (keyUsage keyCertSign when
///    present). A NewWithOld (the newest root's name and key, signed by the old key) that
///    comes without its OldWithNew may instead verify directly under one of `current`.
/// 3. Every older root (OldWithOld) must be linked to the newest one: a validated
///    certificate in the response carries its name and key (OldWithNew). A self-signed CA
///    certificate that is not linked could be anybody's.
/// 4. When the device holds trust anchors (`current` not empty), the newest root must be one
///    of them (same name and key), or the issuer of one of them (the device trusts a
///    subordinate CA whose certificate, as the device holds it, the root signed), or be
///    vouched for by one of them: a certificate with the
///    newest root's name and key (a NewWithOld), in the response or in a chain the server
///    presented, issued by a current anchor. Otherwise an authorised server could hand the
///    device to another CA by certifying the device's old root under it (a forged
///    OldWithNew): only the old key can introduce the new one (RFC 4210 4.4).
///
/// A forged or unrelated certificate anywhere fails the whole response: nothing of it is
/// installed. The result is every certificate of the response (duplicates dropped, order of
/// first appearance kept): the roots, and the validated subordinate and link certificates.
/// A link certificate as a trust anchor is its subject and key, i.e. the root it links, so a
/// server whose TLS chain is still under the old root (rollover in progress) or already under
/// the new one is authenticated after the install as before it.
///
/// Failures are [`Error::BadResponse`] for [`Operation::CaCerts`].
pub fn validate_ca_certs_for(
    certs: &[CertificateDer<'_>],
    current: &[CertificateDer<'_>],
    server_chains: &[Vec<CertificateDer<'static>>],
    now: UnixTime,
) -> Result<Vec<CertificateDer<'static>>> {
    let bad = |reason: String| Error::BadResponse {
        operation: Operation::CaCerts,
        reason,
    };
    if certs.is_empty() {
        return Err(bad("the response holds no CA certificate".into()));
    }
    let mut out: Vec<CertificateDer<'static>> = Vec::with_capacity(certs.len());
    let mut parsed: Vec<CaCert> = Vec::with_capacity(certs.len());
    for (i, der) in certs.iter().enumerate() {
        let what = format!("certificate #{}", i + 1);
        let cert = parse_cert(der, &what).map_err(|e| bad(e.to_string()))?;
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
            parsed.push(CaCert::new(cert, what, subject));
        }
    }

    // 1. The roots, and the newest of them.
    let roots: Vec<usize> = (0..parsed.len())
        .filter(|&i| parsed[i].is_self_signed())
        .collect();
    let Some(&newest) = roots.iter().max_by_key(|&&i| parsed[i].not_after) else {
        return Err(bad(
            "the response holds no self-signed root CA certificate (RFC 7030 4.1.3: the \
             server MUST include the current root CA certificate)"
                .into(),
        ));
    };
    let others: Vec<usize> = (0..parsed.len()).filter(|i| !roots.contains(i)).collect();

    // 2. Everything else is validated against the newest root.
    let current_parsed: Vec<CaCert> = current
        .iter()
        .enumerate()
        .filter_map(|(i, der)| {
            let cert = crate::x509::parse_certificate(der).ok()?;
            let subject = crate::x509::describe_name(cert.tbs_certificate().subject());
            Some(CaCert::new(
                cert,
                format!("trust anchor #{}", i + 1),
                subject,
            ))
        })
        .collect();
    let now_secs = now.as_secs();
    for &i in &others {
        let cert = &parsed[i];
        let validated = chains_to(&parsed, i, newest, &others, now_secs, &mut vec![i])
            || (cert.same_key_and_name(&parsed[newest])
                && cert.within(now_secs)
                && current_parsed.iter().any(|ta| cert.issued_by(ta)));
        if !validated {
            return Err(bad(format!(
                "{} ({}) does not validate against the newest root CA certificate ({}): it is \
                 neither a subordinate CA of it nor a root key rollover certificate linked to \
                 it (RFC 7030 4.1.3)",
                cert.what, cert.subject, parsed[newest].subject
            )));
        }
    }

    // 3. Older roots are linked to the newest one.
    for &r in roots.iter().filter(|&&r| r != newest) {
        if !others
            .iter()
            .any(|&o| parsed[o].same_key_and_name(&parsed[r]))
        {
            return Err(bad(format!(
                "{} ({}) is a second self-signed root, not linked to the newest root ({}) by an \
                 OldWithNew certificate (RFC 7030 4.1.3)",
                parsed[r].what, parsed[r].subject, parsed[newest].subject
            )));
        }
    }

    // 4. The newest root is the device's, or introduced by the device's (NewWithOld).
    if !current_parsed.is_empty() {
        let root = &parsed[newest];
        let presented: Vec<CaCert> = server_chains
            .iter()
            .flatten()
            .filter_map(|der| {
                let cert = crate::x509::parse_certificate(der).ok()?;
                Some(CaCert::new(cert, String::new(), String::new()))
            })
            .collect();
        // Known: the root itself, or the issuer of an anchor the device holds (a device that
        // trusts a subordinate CA gets its root, which signed the device's own copy).
        let known = current_parsed
            .iter()
            .any(|ta| ta.same_key_and_name(root) || (ta.issued_by(root) && !ta.is_self_signed()));
        let introduced = parsed
            .iter()
            .chain(presented.iter())
            .filter(|c| c.same_key_and_name(root) && c.within(now_secs))
            .any(|c| current_parsed.iter().any(|ta| c.issued_by(ta)));
        if !known && !introduced {
            return Err(bad(format!(
                "the newest root CA certificate ({}) is not one of the device's trust anchors \
                 and no NewWithOld certificate signed by one of them introduces it (RFC 7030 \
                 4.1.3, RFC 4210 4.4)",
                root.subject
            )));
        }
    }
    Ok(out)
}

/// A parsed CA certificate of a /cacerts response, with what path validation needs.
struct CaCert {
    cert: Certificate,
    what: String,
    subject: String,
    not_before: u64,
    not_after: u64,
}

impl CaCert {
    fn new(cert: Certificate, what: String, subject: String) -> CaCert {
        let validity = cert.tbs_certificate().validity();
        let not_before = validity.not_before.to_unix_duration().as_secs();
        let not_after = validity.not_after.to_unix_duration().as_secs();
        CaCert {
            cert,
            what,
            subject,
            not_before,
            not_after,
        }
    }

    fn within(&self, now: u64) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    fn is_self_signed(&self) -> bool {
        self.issued_by(self)
    }

    /// Whether `self` carries the subject and the key of `other`.
    fn same_key_and_name(&self, other: &CaCert) -> bool {
        let (a, b) = (self.cert.tbs_certificate(), other.cert.tbs_certificate());
        a.subject() == b.subject() && a.subject_public_key_info() == b.subject_public_key_info()
    }

    /// RFC 5280 6.1.3 for one step: `issuer`'s subject is our issuer, `issuer` may sign
    /// certificates (basicConstraints cA, keyUsage keyCertSign when present), and our
    /// signature verifies with its key.
    fn issued_by(&self, issuer: &CaCert) -> bool {
        let tbs = self.cert.tbs_certificate();
        if tbs.issuer() != issuer.cert.tbs_certificate().subject() {
            return false;
        }
        if !matches!(basic_constraints_ca(&issuer.cert), Ok(true)) {
            return false;
        }
        match issuer.cert.tbs_certificate().get_extension::<KeyUsage>() {
            Ok(Some((_, ku))) if !ku.key_cert_sign() => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
        verify_certificate_signature(&self.cert, &issuer.cert)
    }
}

/// The named curve of an EC key (RFC 5480 2.1.1 ECParameters), as a dotted OID.
fn named_curve(spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Option<String> {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok())
        .map(|o| o.to_string())
}

/// Whether `target` has a path to the anchor `root` through the certificates `others` (each
/// used once), every certificate on it within its validity period (RFC 5280 6.1; the trust
/// anchor's own validity and signature are not part of path validation).
fn chains_to(
    parsed: &[CaCert],
    target: usize,
    root: usize,
    others: &[usize],
    now: u64,
    path: &mut Vec<usize>,
) -> bool {
    /// Far more than a rollover set needs; bounds the search on a hostile response.
    const MAX_DEPTH: usize = 8;
    if !parsed[target].within(now) {
        return false;
    }
    if parsed[target].issued_by(&parsed[root]) {
        return true;
    }
    if path.len() >= MAX_DEPTH {
        return false;
    }
    for &o in others {
        if path.contains(&o) || !parsed[target].issued_by(&parsed[o]) {
            continue;
        }
        path.push(o);
        let found = chains_to(parsed, o, root, others, now, path);
        path.pop();
        if found {
            return true;
        }
    }
    false
}

/// Verifies `cert`'s signature with `issuer`'s public key (ring). The algorithms: ECDSA
/// (P-256, P-384) with SHA-256 or SHA-384, Ed25519, RSA PKCS #1 v1.5 with SHA-256/384/512.
fn verify_certificate_signature(cert: &Certificate, issuer: &Certificate) -> bool {
    use crate::proto::oids::{
        ECDSA_WITH_SHA256, ECDSA_WITH_SHA384, EC_PUBLIC_KEY, ED25519, RSA_ENCRYPTION, SECP256R1,
        SECP384R1, SHA256_WITH_RSA, SHA384_WITH_RSA, SHA512_WITH_RSA,
    };
    use der::Encode;
    use ring::signature as sig;
    let spki = issuer.tbs_certificate().subject_public_key_info();
    let key_alg = spki.algorithm.oid.to_string();
    let curve = named_curve(spki);
    let signature_alg = cert.signature_algorithm().oid.to_string();
    let algorithm: &dyn sig::VerificationAlgorithm =
        match (key_alg.as_str(), curve.as_deref(), signature_alg.as_str()) {
            (EC_PUBLIC_KEY, Some(SECP256R1), ECDSA_WITH_SHA256) => &sig::ECDSA_P256_SHA256_ASN1,
            (EC_PUBLIC_KEY, Some(SECP256R1), ECDSA_WITH_SHA384) => &sig::ECDSA_P256_SHA384_ASN1,
            (EC_PUBLIC_KEY, Some(SECP384R1), ECDSA_WITH_SHA256) => &sig::ECDSA_P384_SHA256_ASN1,
            (EC_PUBLIC_KEY, Some(SECP384R1), ECDSA_WITH_SHA384) => &sig::ECDSA_P384_SHA384_ASN1,
            (ED25519, _, ED25519) => &sig::ED25519,
            (RSA_ENCRYPTION, _, SHA256_WITH_RSA) => &sig::RSA_PKCS1_2048_8192_SHA256,
            (RSA_ENCRYPTION, _, SHA384_WITH_RSA) => &sig::RSA_PKCS1_2048_8192_SHA384,
            (RSA_ENCRYPTION, _, SHA512_WITH_RSA) => &sig::RSA_PKCS1_2048_8192_SHA512,
            _ => return false,
        };
    let (Some(public), Some(signature)) = (
        spki.subject_public_key.as_bytes(),
        cert.signature().as_bytes(),
    ) else {
        return false;
    };
    let Ok(tbs) = cert.tbs_certificate().to_der() else {
        return false;
    };
    sig::UnparsedPublicKey::new(algorithm, public)
        .verify(&tbs, signature)
        .is_ok()
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

    fn reason<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::CertificateRejected { reason }) => reason,
            other => panic!("expected CertificateRejected, got {other:?}"),
        }
    }

    /// `leaf` with `pki`'s issuing CA, validated for `sans` against `pki`'s root.
    fn issued_by(
        pki: &TestPki,
        leaf: CertificateDer<'static>,
        key: &SoftwareKey,
        sans: &[GeneralName],
    ) -> Result<IssuedChain> {
        validate_issued(
            &[leaf, pki.intermediate_der()],
            key,
            sans,
            &[pki.root_der()],
            now(),
        )
    }

    /// [`issued_by`] for a fresh PKI's leaf for a fresh key, its spec the AE's changed by `tweak`.
    fn issued_with(tweak: impl FnOnce(&mut LeafSpec)) -> Result<IssuedChain> {
        let pki = TestPki::new("spec");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let mut spec = LeafSpec::uri(AE);
        tweak(&mut spec);
        issued_by(&pki, pki.leaf(&key, &spec), &key, &expected())
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
        let r = reason(issued_by(&pki, leaf, &key, &expected()));
        assert!(r.starts_with("wrong key"), "{r}");
    }

    #[test]
    fn wrong_identity() {
        let r = reason(issued_with(|s| {
            *s = LeafSpec::uri("https://sp.example.com/cse01/COTHER")
        }));
        assert!(r.starts_with("wrong identity"), "{r}");
        assert!(r.contains("COTHER") && r.contains("CAE01"), "{r}");
    }

    #[test]
    fn expired_and_not_yet_valid() {
        let r = reason(issued_with(|s| s.not_after = (2025, 1, 1)));
        assert!(r.contains("has expired"), "{r}");

        let r = reason(issued_with(|s| s.not_before = (2035, 1, 1)));
        assert!(r.contains("not yet valid"), "{r}");
    }

    #[test]
    fn untrusted_issuer() {
        let pki = TestPki::new("a");
        let other = TestPki::new("b");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let leaf = pki.leaf(&key, &LeafSpec::uri(AE));
        let untrusted = |chain: &[CertificateDer<'static>], anchor| {
            reason(validate_issued(chain, &key, &expected(), &[anchor], now()))
        };
        let r = untrusted(&[leaf.clone(), pki.intermediate_der()], other.root_der());
        assert!(r.contains("untrusted issuer"), "{r}");
        // Missing intermediate: the path cannot be built either.
        let r = untrusted(&[leaf], pki.root_der());
        assert!(r.contains("untrusted issuer"), "{r}");
    }

    #[test]
    fn key_usage_and_eku() {
        let r = reason(issued_with(|s| {
            s.key_usages = vec![KeyUsagePurpose::KeyEncipherment]
        }));
        assert!(r.contains("digitalSignature"), "{r}");

        let r = reason(issued_with(|s| {
            s.ekus = vec![ExtendedKeyUsagePurpose::ServerAuth]
        }));
        assert!(r.contains("clientAuth"), "{r}");

        // No EKU at all: accepted.
        issued_with(|s| s.ekus.clear()).unwrap();

        // No keyUsage: TS-0003 10.1.1.1 says it "shall be included".
        let r = reason(issued_with(|s| s.key_usages.clear()));
        assert!(r.contains("no keyUsage") && r.contains("10.1.1.1"), "{r}");
    }

    #[test]
    fn wildcards_are_refused() {
        let pki = TestPki::new("wild");
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let refuse = |sans: Vec<rcgen::SanType>, expected_san: &[GeneralName]| {
            let mut spec = LeafSpec::uri(AE);
            spec.sans = sans;
            reason(issued_by(&pki, pki.leaf(&key, &spec), &key, expected_san))
        };
        let r = refuse(
            vec![
                rcgen::SanType::URI(AE.try_into().unwrap()),
                rcgen::SanType::DnsName("*.sp.example.com".try_into().unwrap()),
            ],
            &expected(),
        );
        assert!(
            r.contains("wildcard") && r.contains("*.sp.example.com"),
            "{r}"
        );
        let wild_uri = "https://*.example.com/cse01/CAE01";
        let r = refuse(
            vec![rcgen::SanType::URI(wild_uri.try_into().unwrap())],
            &[GeneralName::Uri(wild_uri.into())],
        );
        assert!(r.contains("wildcard"), "{r}");
        // A `*` in a URI path is no wildcard (RFC 3986 sub-delims).
        let starred = "https://sp.example.com/cse01/CAE*01";
        let mut spec = LeafSpec::uri(starred);
        spec.sans = vec![rcgen::SanType::URI(starred.try_into().unwrap())];
        let leaf = pki.leaf(&key, &spec);
        issued_by(&pki, leaf, &key, &[GeneralName::Uri(starred.into())]).unwrap();
    }

    /// A leaf for `key` issued by an intermediate CA with a key of `alg`, under a P-256 root.
    fn chain_with_intermediate(
        key: &dyn PrivateKey,
        alg: &'static rcgen::SignatureAlgorithm,
    ) -> Vec<CertificateDer<'static>> {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let ca = |cn: &str| {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p
        };
        let root =
            CertifiedIssuer::self_signed(ca("alg root"), KeyPair::generate().unwrap()).unwrap();
        let issuing = CertifiedIssuer::signed_by(
            ca("alg issuing"),
            KeyPair::generate_for(alg).unwrap(),
            &root,
        )
        .unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let public = crate::csr::KeySigner::new(key).unwrap();
        let leaf = p.signed_by(&public, &issuing).unwrap().der().clone();
        vec![leaf, issuing.der().clone()]
    }

    #[test]
    fn chain_algorithms_follow_the_configured_profile() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        // All P-256 / SHA-256: the TS-0003 profile.
        let good = chain_with_intermediate(&key, &rcgen::PKCS_ECDSA_P256_SHA256);
        check_chain_algorithms(&good, KeyAlgorithm::EcdsaP256Sha256).unwrap();

        // A P-384 issuing CA signs the leaf with ecdsa-with-SHA384: outside TS-0003 10.1.1.3.
        let p384 = chain_with_intermediate(&key, &rcgen::PKCS_ECDSA_P384_SHA384);
        let r = reason(check_chain_algorithms(&p384, KeyAlgorithm::EcdsaP256Sha256));
        assert!(
            r.contains("the issued certificate") && r.contains("ecdsa-with-SHA384"),
            "{r}"
        );
        assert!(r.contains("TS-0003 10.1.1.3"), "{r}");
        // A device configured for P-384 has left the TS-0003 profile: accepted.
        check_chain_algorithms(&p384, KeyAlgorithm::EcdsaP384Sha384).unwrap();

        // The issuing CA's own certificate is signed with SHA-256 by the root, but its key is
        // P-384: checked too, whatever the leaf's signature says.
        let mut shifted = vec![good[0].clone()];
        shifted.push(p384[1].clone());
        let r = reason(check_chain_algorithms(
            &shifted,
            KeyAlgorithm::EcdsaP256Sha256,
        ));
        assert!(
            r.contains("CA certificate #1") && r.contains("secp256r1"),
            "{r}"
        );
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

    #[test]
    fn ca_certs_against_the_devices_anchors() {
        let pki = TestPki::new("dev");
        let set = [pki.root_der(), pki.intermediate_der()];
        // The device trusts the root, or only the issuing CA below it: both accept the set.
        validate_ca_certs_for(&set, &[pki.root_der()], &[], now()).unwrap();
        validate_ca_certs_for(&set, &[pki.intermediate_der()], &[], now()).unwrap();
        // A device that trusts another PKI does not take this root from an authorised server.
        let other = TestPki::new("other");
        match validate_ca_certs_for(&set, &[other.root_der()], &[], now()) {
            Err(Error::BadResponse { reason, .. }) => {
                assert!(
                    reason.contains("not one of the device's trust anchors"),
                    "{reason}"
                )
            }
            r => panic!("{r:?}"),
        }
        // The subordinate must chain to the root it comes with.
        match validate_ca_certs_for(
            &[pki.root_der(), other.intermediate_der()],
            &[pki.root_der()],
            &[],
            now(),
        ) {
            Err(Error::BadResponse { reason, .. }) => {
                assert!(
                    reason.contains("does not validate against the newest root"),
                    "{reason}"
                )
            }
            r => panic!("{r:?}"),
        }
        // An expired subordinate does not validate either (2045: after the test PKI's notAfter;
        // the root is a trust anchor, its own validity is not checked).
        let later = UnixTime::since_unix_epoch(Duration::from_secs(2_366_841_600));
        assert!(validate_ca_certs_for(&set, &[pki.root_der()], &[], later).is_err());
        validate_ca_certs_for(&[pki.root_der()], &[pki.root_der()], &[], later).unwrap();
    }
}
