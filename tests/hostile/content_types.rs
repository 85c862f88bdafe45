//! Content types.

use super::*;

#[test]
fn cacerts_with_a_wrong_content_type() {
    let err = case(on("cacerts", |_, _, good| {
        with_content_type(good, Some("text/html"))
    }));
    assert!(
        bad_response_saying(&err, Operation::CaCerts, "Content-Type"),
        "{err:?}"
    );
}

#[test]
fn cacerts_without_a_content_type() {
    let err = case(on("cacerts", |_, _, good| with_content_type(good, None)));
    assert!(
        bad_response_saying(&err, Operation::CaCerts, "no Content-Type"),
        "{err:?}"
    );
}

#[test]
fn csrattrs_with_a_wrong_content_type() {
    let err = case(on("csrattrs", |_, _, good| {
        with_content_type(good, Some(media::CERTS_ONLY_CONTENT_TYPE))
    }));
    assert!(
        matches!(
            err,
            Error::BadResponse {
                operation: Operation::CsrAttrs,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn enrolment_with_a_wrong_content_type() {
    let err = case(on("simplereenroll", |_, _, good| {
        with_content_type(good, Some(media::PKCS10))
    }));
    assert!(
        matches!(
            err,
            Error::BadResponse {
                operation: Operation::SimpleReenroll,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn enrolment_with_certs_only_smime_type_mismatch() {
    let err = case(on("simplereenroll", |_, _, good| {
        with_content_type(
            good,
            Some("application/pkcs7-mime; smime-type=enveloped-data"),
        )
    }));
    assert!(
        bad_response_saying(&err, Operation::SimpleReenroll, "smime-type"),
        "{err:?}"
    );
}
