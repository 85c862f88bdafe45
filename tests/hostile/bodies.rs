//! Bodies: truncated, oversized, never ending; servers that never answer.

use super::*;

#[test]
fn truncated_and_oversized_bodies() {
    run(vec![
        row(
            "truncated cacerts body",
            on("cacerts", |_, _, good| {
                Action::RawThenClose(head_and_part(&good, good.body.len() / 2))
            }),
            |err| transport_error_in(err, Operation::CaCerts),
        ),
        row(
            "truncated enrolment body",
            on("simplereenroll", |_, _, good| {
                Action::RawThenClose(head_and_part(&good, 40))
            }),
            |err| transport_error_in(err, Operation::SimpleReenroll),
        ),
        row(
            "oversized cacerts body",
            on("cacerts", |_, _, good| {
                with_body(good, vec![b'A'; 100 * 1024])
            }),
            |err| bad_response_saying(err, Operation::CaCerts, "exceeds the limit"),
        ),
    ]);
}

/// Each times out (1 s per response in the harness's transport).
#[test]
fn bodies_and_answers_that_never_come() {
    run(vec![
        row(
            "slowloris body that never ends",
            on("cacerts", |_, _, good| {
                let mut head = head_and_part(&good, 0);
                // Announce far more than will ever come, then trickle.
                let text = String::from_utf8(head.clone()).unwrap().replace(
                    &format!("Content-Length: {}", good.body.len()),
                    "Content-Length: 100000",
                );
                head = text.into_bytes();
                Action::Trickle(head)
            }),
            |err| matches!(err, Error::Timeout { .. }),
        ),
        row(
            "slowloris response head that never ends",
            on("csrattrs", |_, _, _| {
                Action::Trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ".to_vec())
            }),
            |err| matches!(err, Error::Timeout { .. }),
        ),
        row(
            "server never answers the enrolment",
            on("simplereenroll", |_, _, _| Action::Stall),
            |err| matches!(err, Error::Timeout { .. }),
        ),
        row(
            "server never answers cacerts",
            on("cacerts", |_, _, _| Action::Stall),
            |err| matches!(err, Error::Timeout { .. }),
        ),
    ]);
}
