//! TLS alerts and connection resets at every phase.

use super::*;

#[test]
fn alerts_and_failed_handshakes() {
    run(vec![
        // A fatal alert record injected mid-body (in the clear, as a middlebox or a broken
        // stack sends it): the record does not authenticate, the TLS session fails.
        row(
            "TLS alert mid response",
            on("cacerts", |_, _, good| {
                Action::AlertAfter(head_and_part(&good, 20))
            }),
            |err| matches!(err, Error::Tls { .. }),
        ),
        // A genuine close_notify alert in the middle of a body announced longer: a truncation,
        // not an end of message.
        row(
            "close_notify alert mid response",
            on("simplereenroll", |_, _, good| {
                let mut part = good.clone();
                part.body.truncate(good.body.len() / 2);
                Action::RespondThenClose(
                    part.header("Content-Length", &good.body.len().to_string()),
                )
            }),
            |err| transport_error_in(err, Operation::SimpleReenroll),
        ),
        // A server that accepts the connection and never answers the ClientHello.
        Row {
            options: |o, _| o.stall_handshakes = vec![0],
            proc: Proc::Reprovision(Reprovision::Renew),
            may_create_key: false,
            ..row(
                "server never answers the TLS handshake",
                |_, _, good| good.into(),
                |err| matches!(err, Error::Timeout { phase } if phase.contains("handshake")),
            )
        },
        Row {
            options: |o, _| o.reset_handshakes = vec![0],
            may_create_key: false,
            ..row(
                "reset during the TLS handshake",
                |_, _, good| good.into(),
                |err| matches!(err, Error::Tls { .. }),
            )
        },
    ]);
}

/// Resets the connection of `op`'s request: before any of the response, or after `body_bytes`
/// of its body.
fn reset_at(
    op: &'static str,
    body_bytes: Option<usize>,
) -> impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static {
    on(op, move |_, _, good| {
        Action::ResetAfter(match body_bytes {
            None => Vec::new(),
            Some(n) => head_and_part(&good, n),
        })
    })
}

/// A reset before each response, and in the middle of each body: a transport error of that
/// operation.
#[test]
fn resets_at_every_phase() {
    for (op, body_bytes, operation) in [
        ("cacerts", None, Operation::CaCerts),
        ("cacerts", Some(30), Operation::CaCerts),
        ("csrattrs", None, Operation::CsrAttrs),
        ("csrattrs", Some(12), Operation::CsrAttrs),
        ("simplereenroll", None, Operation::SimpleReenroll),
        ("simplereenroll", Some(50), Operation::SimpleReenroll),
    ] {
        // Printed first, so that a failure anywhere in the case names it.
        println!("case: reset at {op} after {body_bytes:?} body bytes");
        let err = case(reset_at(op, body_bytes));
        assert!(
            transport_error_in(&err, operation),
            "{op} {body_bytes:?}: {err:?}"
        );
    }
}
