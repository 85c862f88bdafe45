//! HTTP: redirects, authentication, errors.

use super::*;

#[test]
fn redirects_refusals_and_errors() {
    run(vec![
        row(
            "oversized response head",
            on("cacerts", |_, _, good| {
                good.header("X-Padding", &"p".repeat(128 * 1024)).into()
            }),
            |err| bad_response_saying(err, Operation::CaCerts, "header is too large"),
        ),
        // 202 belongs to enrolment (RFC 7030 4.2.3); /cacerts answers 200 or fails.
        row(
            "accepted for cacerts",
            on("cacerts", |_, _, _| {
                Response::new(202).header("Retry-After", "0").into()
            }),
            |err| bad_response_saying(err, Operation::CaCerts, "202"),
        ),
        row(
            "redirect to another host",
            on(
                "cacerts",
                redirect(302, "https://evil.example.net/.well-known/est/cacerts"),
            ),
            |err| {
                matches!(err, Error::Redirect { operation: Operation::CaCerts, location }
                    if location.contains("evil.example.net"))
            },
        ),
        row(
            "redirect to another port of the same host",
            on(
                "simplereenroll",
                redirect(307, "https://localhost:1/.well-known/est/simplereenroll"),
            ),
            |err| {
                matches!(
                    err,
                    Error::Redirect {
                        operation: Operation::SimpleReenroll,
                        ..
                    }
                )
            },
        ),
        row(
            "unauthorized with WWW-Authenticate",
            on("simplereenroll", |_, _, _| {
                Response::new(401)
                    .header("WWW-Authenticate", "Basic realm=\"est\"")
                    .into()
            }),
            |err| {
                matches!(err, Error::HttpAuthenticationRequested { operation: Operation::SimpleReenroll, challenge }
                    if challenge.contains("Basic"))
            },
        ),
        row(
            "internal server error",
            on("simplereenroll", |_, _, _| {
                Response::new(500).body("database on fire").into()
            }),
            |err| {
                matches!(err, Error::ServerStatus { operation: Operation::SimpleReenroll, status: 500, message }
                    if message.contains("database on fire"))
            },
        ),
    ]);
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
