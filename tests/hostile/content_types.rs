//! Content types.

use super::*;

#[test]
fn wrong_and_missing_content_types() {
    run(vec![
        row(
            "cacerts with a wrong content type",
            on("cacerts", |_, _, good| {
                with_content_type(good, Some("text/html"))
            }),
            |err| bad_response_saying(err, Operation::CaCerts, "Content-Type"),
        ),
        row(
            "cacerts without a content type",
            on("cacerts", |_, _, good| with_content_type(good, None)),
            |err| bad_response_saying(err, Operation::CaCerts, "no Content-Type"),
        ),
        row(
            "csrattrs with a wrong content type",
            on("csrattrs", |_, _, good| {
                with_content_type(good, Some(media::CERTS_ONLY_CONTENT_TYPE))
            }),
            |err| bad_response_in(err, Operation::CsrAttrs),
        ),
        row(
            "enrolment with a wrong content type",
            on("simplereenroll", |_, _, good| {
                with_content_type(good, Some(media::PKCS10))
            }),
            |err| bad_response_in(err, Operation::SimpleReenroll),
        ),
        row(
            "enrolment with a certs-only smime-type mismatch",
            on("simplereenroll", |_, _, good| {
                with_content_type(
                    good,
                    Some("application/pkcs7-mime; smime-type=enveloped-data"),
                )
            }),
            |err| bad_response_saying(err, Operation::SimpleReenroll, "smime-type"),
        ),
    ]);
}
