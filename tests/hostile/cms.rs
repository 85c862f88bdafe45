//! CMS contents and the issued certificate.

use super::*;

fn zero_certs_response() -> Response {
    let der = certs_only::encode(&[]).expect("an empty certs-only SignedData");
    Response::new(200)
        .header("Content-Type", media::CERTS_ONLY_CONTENT_TYPE)
        .body(base64body::encode(&der))
}

#[test]
fn cms_with_zero_certificates_from_the_enrolment() {
    let err = case(on("simplereenroll", |_, _, _| zero_certs_response().into()));
    assert!(
        bad_response_saying(&err, Operation::SimpleReenroll, "no certificate"),
        "{err:?}"
    );
}

#[test]
fn cms_with_zero_certificates_from_cacerts() {
    let err = case(on("cacerts", |_, _, _| zero_certs_response().into()));
    assert!(
        matches!(
            err,
            Error::BadResponse {
                operation: Operation::CaCerts,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn cacerts_with_an_end_entity_certificate() {
    let err = case(on("cacerts", |pki, _, _| {
        let ee = pki.server_identity().chain[0].clone();
        certs_only_response(&[pki.ca.cert.clone(), ee]).into()
    }));
    assert!(
        bad_response_saying(&err, Operation::CaCerts, "not a CA certificate"),
        "{err:?}"
    );
}

fn rejected_because(err: &Error, why: &str) -> bool {
    matches!(err, Error::CertificateRejected { reason } if reason.contains(why))
}

#[test]
fn cms_with_unrelated_certificates() {
    let stranger = Arc::new(MefPki::new("Unrelated CA"));
    let err = case(enroll_with(move |_, _| {
        let creds = stranger.device_credentials();
        vec![creds.chain[0].clone(), stranger.ca.cert.clone()]
    }));
    assert!(rejected_because(&err, "wrong key"), "{err:?}");
}

#[test]
fn certificate_for_another_key() {
    let err = case(enroll_with(|pki, _| {
        vec![pki.device_credentials().chain[0].clone()]
    }));
    assert!(rejected_because(&err, "wrong key"), "{err:?}");
}

#[test]
fn certificate_for_another_identity() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &["cse02.sp.example.com"], |_| {})]
    }));
    assert!(rejected_because(&err, "wrong identity"), "{err:?}");
}

/// The enrolment answers a certificate valid from 1 January `from` to 1 January `until`.
fn valid_between(
    from: i32,
    until: i32,
) -> impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static {
    enroll_with(move |pki, spki| {
        vec![pki.issue_for(spki, &[&pki.identity], |p| {
            p.not_before = rcgen::date_time_ymd(from, 1, 1);
            p.not_after = rcgen::date_time_ymd(until, 1, 1);
        })]
    })
}

#[test]
fn expired_certificate() {
    let err = case(valid_between(2020, 2021));
    assert!(rejected_because(&err, "has expired"), "{err:?}");
}

#[test]
fn not_yet_valid_certificate() {
    let err = case(valid_between(2100, 2101));
    assert!(rejected_because(&err, "not yet valid"), "{err:?}");
}

#[test]
fn certificate_not_chaining_to_the_trust_anchors() {
    let stranger = Arc::new(MefPki::new("Unrelated CA"));
    let err = case(enroll_with(move |pki, spki| {
        vec![stranger.issue_for(spki, &[&pki.identity], |_| {})]
    }));
    assert!(rejected_because(&err, "untrusted issuer"), "{err:?}");
}

// TS-0003 10.1.1.1 / 10.1.1.3 / 10.1.1.5-10.1.1.8: what is installed meets the certificate
// profile the client claims.

#[test]
fn certificate_without_key_usage() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &[&pki.identity], |p| p.key_usages.clear())]
    }));
    assert!(rejected_because(&err, "no keyUsage"), "{err:?}");
}

#[test]
fn certificate_with_a_wildcard_name() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &[&pki.identity, "*.sp.example.com"], |_| {})]
    }));
    assert!(rejected_because(&err, "wildcard"), "{err:?}");
}

#[test]
fn certificate_with_a_wildcard_common_name() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &[&pki.identity], |p| {
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "*.sp.example.com");
        })]
    }));
    assert!(rejected_because(&err, "wildcard"), "{err:?}");
}

#[test]
fn certificate_signed_outside_the_ts0003_algorithms() {
    // The MEF CA delegates to a P-384 issuing CA: the leaf is signed with ecdsa-with-SHA384,
    // which TS-0003 10.1.1.3 (ECDSA P-256, SHA-256) does not allow. The chain is otherwise
    // valid (it reaches the MEF CA, which authorises the server).
    let err = case(enroll_with(|pki, spki| {
        let issuing = pki
            .ca
            .subordinate("P-384 issuing CA", &rcgen::PKCS_ECDSA_P384_SHA384);
        let public = rcgen::SubjectPublicKeyInfo::from_der(spki).expect("SPKI");
        let leaf = issuing.issue("device", &[&pki.identity], Eku::ClientAuth, &public, |_| {});
        vec![leaf, issuing.cert.clone()]
    }));
    assert!(
        rejected_because(&err, "ecdsa-with-SHA384") && rejected_because(&err, "10.1.1.3"),
        "{err:?}"
    );
}

pub(crate) fn refused_cacerts_not_authenticating_the_server(err: &Error) -> bool {
    matches!(err, Error::BadResponse { operation: Operation::CaCerts, reason }
        if reason.contains("RFC 7030 4.1.3"))
}

#[test]
fn cacerts_from_a_different_ca_than_the_one_that_authenticated_the_server() {
    let stranger = Arc::new(MefPki::new("Stranger CA"));
    let err = case(cacerts_from_another_ca(stranger));
    assert!(
        refused_cacerts_not_authenticating_the_server(&err),
        "{err:?}"
    );
}

#[test]
fn initial_provisioning_cacerts_from_a_different_ca() {
    let stranger = Arc::new(MefPki::new("Stranger CA"));
    let err = case_with(
        |_, _| {},
        cacerts_from_another_ca(stranger),
        Proc::Provision,
        ErrorClass::Server,
        true,
    );
    assert!(
        refused_cacerts_not_authenticating_the_server(&err),
        "{err:?}"
    );
}

#[test]
fn initial_provisioning_certificate_for_another_identity() {
    let err = case_with(
        |_, _| {},
        on("simpleenroll", |pki, req, _| {
            let spki = pki.check_csr(req).expect("valid CSR");
            certs_only_response(&[pki.issue_for(&spki, &["cse99.sp.example.com"], |_| {})]).into()
        }),
        Proc::Provision,
        ErrorClass::Server,
        true,
    );
    assert!(rejected_because(&err, "wrong identity"), "{err:?}");
}
