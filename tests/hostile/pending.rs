//! 202 loops: Accepted forever, and Retry-After values a client must not obey (RFC 7030 4.2.3).

use super::*;

fn still_pending(err: &Error) -> bool {
    matches!(
        err,
        Error::StillPending {
            operation: Operation::SimpleReenroll,
            attempts: 3,
            ..
        }
    )
}

#[test]
fn accepted_forever_with_retry_after_zero() {
    let err = case(on("simplereenroll", accepted("0")));
    assert!(still_pending(&err), "{err:?}");
}

#[test]
fn accepted_with_a_huge_retry_after() {
    // RFC 7030 4.2.3: the client must wait at least Retry-After, so it neither sleeps for 584
    // billion years nor resends early: it stops and says what the server asked for.
    let err = case(on("simplereenroll", accepted("18446744073709551615")));
    assert!(
        matches!(&err, Error::RetryAfterTooLong { operation: Operation::SimpleReenroll,
            retry_after, attempts: 1, .. } if retry_after.as_secs() == u64::MAX),
        "{err:?}"
    );
    assert!(err.to_string().contains("18446744073709551615 s"), "{err}");
}

#[test]
fn accepted_with_a_retry_after_beyond_max_delay() {
    // One second is more than this harness's max_delay (50 ms): not resent after 50 ms.
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let err = case(on("simplereenroll", move |_, _, _| {
        seen.fetch_add(1, Ordering::SeqCst);
        Response::new(202).header("Retry-After", "1").into()
    }));
    assert!(
        matches!(&err, Error::RetryAfterTooLong { operation: Operation::SimpleReenroll,
            retry_after, limit, .. }
            if *retry_after == Duration::from_secs(1) && *limit == Duration::from_millis(50)),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn accepted_with_retry_after_in_the_past() {
    let err = case(on(
        "simplereenroll",
        accepted("Sun, 06 Nov 1994 08:49:37 GMT"),
    ));
    assert!(still_pending(&err), "{err:?}");
}

#[test]
fn accepted_with_a_negative_retry_after() {
    let err = case(on("simplereenroll", accepted("-5")));
    assert!(
        bad_response_saying(&err, Operation::SimpleReenroll, "Retry-After"),
        "{err:?}"
    );
}
