//! Bodies: truncated, oversized, never ending; servers that never answer.

use super::*;

#[test]
fn truncated_cacerts_body() {
    let err = case(on("cacerts", |_, _, good| {
        Action::RawThenClose(head_and_part(&good, good.body.len() / 2))
    }));
    assert!(transport_error_in(&err, Operation::CaCerts), "{err:?}");
}

#[test]
fn truncated_enrolment_body() {
    let err = case(on("simplereenroll", |_, _, good| {
        Action::RawThenClose(head_and_part(&good, 40))
    }));
    assert!(
        transport_error_in(&err, Operation::SimpleReenroll),
        "{err:?}"
    );
}

#[test]
fn oversized_cacerts_body() {
    let err = case(on("cacerts", |_, _, good| {
        with_body(good, vec![b'A'; 100 * 1024])
    }));
    assert!(
        bad_response_saying(&err, Operation::CaCerts, "exceeds the limit"),
        "{err:?}"
    );
}

#[test]
fn slowloris_body_that_never_ends() {
    let err = case(on("cacerts", |_, _, good| {
        let mut head = head_and_part(&good, 0);
        // Announce far more than will ever come, then trickle.
        let text = String::from_utf8(head.clone()).unwrap().replace(
            &format!("Content-Length: {}", good.body.len()),
            "Content-Length: 100000",
        );
        head = text.into_bytes();
        Action::Trickle(head)
    }));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[test]
fn slowloris_response_head_that_never_ends() {
    let err = case(on("csrattrs", |_, _, _| {
        Action::Trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ".to_vec())
    }));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[test]
fn server_never_answers_the_enrolment() {
    let err = case(on("simplereenroll", |_, _, _| Action::Stall));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[test]
fn server_never_answers_cacerts() {
    let err = case(on("cacerts", |_, _, _| Action::Stall));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}
