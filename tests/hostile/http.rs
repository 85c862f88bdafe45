//! HTTP: redirects, authentication, errors.

use super::*;

#[test]
fn oversized_response_head() {
    let err = case(on("cacerts", |_, _, good| {
        good.header("X-Padding", &"p".repeat(128 * 1024)).into()
    }));
    assert!(
        bad_response_saying(&err, Operation::CaCerts, "header is too large"),
        "{err:?}"
    );
}

#[test]
fn accepted_for_cacerts() {
    // 202 belongs to enrolment (RFC 7030 4.2.3); /cacerts answers 200 or fails.
    let err = case(on("cacerts", |_, _, _| {
        Response::new(202).header("Retry-After", "0").into()
    }));
    assert!(
        bad_response_saying(&err, Operation::CaCerts, "202"),
        "{err:?}"
    );
}

#[test]
fn redirect_to_another_host() {
    let err = case(on("cacerts", |_, _, _| {
        Response::new(302)
            .header(
                "Location",
                "https://evil.example.net/.well-known/est/cacerts",
            )
            .into()
    }));
    assert!(
        matches!(&err, Error::Redirect { operation: Operation::CaCerts, location }
            if location.contains("evil.example.net")),
        "{err:?}"
    );
}

#[test]
fn redirect_to_another_port_of_the_same_host() {
    let err = case(on("simplereenroll", |_, _, _| {
        Response::new(307)
            .header(
                "Location",
                "https://localhost:1/.well-known/est/simplereenroll",
            )
            .into()
    }));
    assert!(
        matches!(
            err,
            Error::Redirect {
                operation: Operation::SimpleReenroll,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unauthorized_with_www_authenticate() {
    let err = case(on("simplereenroll", |_, _, _| {
        Response::new(401)
            .header("WWW-Authenticate", "Basic realm=\"est\"")
            .into()
    }));
    assert!(
        matches!(&err, Error::HttpAuthenticationRequested { operation: Operation::SimpleReenroll, challenge }
            if challenge.contains("Basic")),
        "{err:?}"
    );
}

#[test]
fn internal_server_error() {
    let err = case(on("simplereenroll", |_, _, _| {
        Response::new(500).body("database on fire").into()
    }));
    assert!(
        matches!(&err, Error::ServerStatus { operation: Operation::SimpleReenroll, status: 500, message }
            if message.contains("database on fire")),
        "{err:?}"
    );
}

#[test]
fn server_keygen_not_offered() {
    let err = case_with(
        |_, _| {},
        |_, _, good| good.into(),
        Proc::Reprovision(Reprovision::ServerKeygen),
        ErrorClass::Server,
        false,
    );
    assert!(
        matches!(
            err,
            Error::ServerStatus {
                operation: Operation::ServerKeygen,
                status: 404,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A 400 refusal is a ServerStatus, and no error text repeats the challengePassword.
#[test]
fn error_texts_never_carry_the_challenge_password() {
    let err = case(on("simplereenroll", |_, _, _| {
        Response::new(400).body("bad CSR").into()
    }));
    let pki_challenge = format!("challenge-{}", std::process::id());
    assert!(!reason_of(&err).contains(&pki_challenge), "{err}");
    assert!(
        matches!(err, Error::ServerStatus { status: 400, .. }),
        "{err:?}"
    );
}
