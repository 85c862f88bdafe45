//! TLS alerts and connection resets at every phase.

use super::*;

/// A fatal alert record injected mid-body (in the clear, as a middlebox or a broken stack sends
/// it): the record does not authenticate, the TLS session fails.
#[test]
fn tls_alert_mid_response() {
    let err = case(on("cacerts", |_, _, good| {
        Action::AlertAfter(head_and_part(&good, 20))
    }));
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

/// A genuine close_notify alert in the middle of a body announced longer: a truncation, not
/// an end of message.
#[test]
fn close_notify_alert_mid_response() {
    let err = case(on("simplereenroll", |_, _, good| {
        let mut part = good.clone();
        part.body.truncate(good.body.len() / 2);
        Action::RespondThenClose(part.header("Content-Length", &good.body.len().to_string()))
    }));
    assert!(
        transport_error_in(&err, Operation::SimpleReenroll),
        "{err:?}"
    );
}

/// A server that accepts the connection and never answers the ClientHello.
#[test]
fn server_never_answers_the_tls_handshake() {
    let err = case_with(
        |o, _| o.stall_handshakes = vec![0],
        |_, _, good| good.into(),
        Proc::Reprovision(Reprovision::Renew),
        ErrorClass::Server,
        false,
    );
    assert!(
        matches!(&err, Error::Timeout { phase } if phase.contains("handshake")),
        "{err:?}"
    );
}

#[test]
fn reset_during_the_tls_handshake() {
    let err = case_with(
        |o, _| o.reset_handshakes = vec![0],
        |_, _, good| good.into(),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Server,
        false,
    );
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

fn reset_at(op: &'static str, body_bytes: Option<usize>) -> Error {
    case(on(op, move |_, _, good| {
        Action::ResetAfter(match body_bytes {
            None => Vec::new(),
            Some(n) => head_and_part(&good, n),
        })
    }))
}

#[test]
fn reset_before_the_cacerts_response() {
    let err = reset_at("cacerts", None);
    assert!(transport_error_in(&err, Operation::CaCerts), "{err:?}");
}

#[test]
fn reset_mid_cacerts_body() {
    let err = reset_at("cacerts", Some(30));
    assert!(transport_error_in(&err, Operation::CaCerts), "{err:?}");
}

#[test]
fn reset_before_the_csrattrs_response() {
    let err = reset_at("csrattrs", None);
    assert!(transport_error_in(&err, Operation::CsrAttrs), "{err:?}");
}

#[test]
fn reset_mid_csrattrs_body() {
    let err = reset_at("csrattrs", Some(12));
    assert!(transport_error_in(&err, Operation::CsrAttrs), "{err:?}");
}

#[test]
fn reset_before_the_enrolment_response() {
    let err = reset_at("simplereenroll", None);
    assert!(
        transport_error_in(&err, Operation::SimpleReenroll),
        "{err:?}"
    );
}

#[test]
fn reset_mid_enrolment_body() {
    let err = reset_at("simplereenroll", Some(50));
    assert!(
        transport_error_in(&err, Operation::SimpleReenroll),
        "{err:?}"
    );
}
