//! EST transport against the scripted HTTPS server of the test kit (onem2m_est_testkit::server), over 127.0.0.1.

use onem2m_est::error::{Error, Operation};
use onem2m_est::proto::{base64body, csrattrs, media};
use onem2m_est::tls::{client_config, ClientIdentity};
use onem2m_est::transport::{Clock, EstConnection, PollClock, TransportConfig};
use onem2m_est::uri::EstUri;
use onem2m_est_testkit::{pki::*, require_tool, server::*};
use rustls::pki_types::CertificateDer;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CSR: &[u8] = b"\x30\x03\x02\x01\x00 stand-in CSR bytes";

/// A CA, a server certificate for localhost and 127.0.0.1 (serverAuth), and a server answering
/// with `handler`.
fn setup(handler: impl Fn(&Request) -> Action + Send + Sync + 'static) -> (TestCa, TestServer) {
    let ca = TestCa::new("Test MEF CA");
    let id = ca.server_identity(&["localhost", "127.0.0.1"], Eku::ServerAuth);
    let server = TestServer::start(ServerOptions::new(id), handler);
    (ca, server)
}

fn quick_config() -> TransportConfig {
    test_transport(
        Duration::from_secs(5),
        Duration::from_secs(10),
        quick_poll(3, Duration::from_secs(5), Duration::from_millis(50)),
    )
}

/// A connection to `base` trusting `ca` alone.
fn connect_with(
    base: &str,
    ca: &TestCa,
    identity: Option<ClientIdentity>,
    cfg: &TransportConfig,
) -> EstConnection {
    let base = EstUri::parse(base).expect("base URI");
    let tls = client_config(std::slice::from_ref(&ca.cert), identity, &base).expect("TLS config");
    EstConnection::new(&base, tls, cfg).expect("connection")
}

/// A connection to `server` over localhost, trusting `ca`, with `cfg`.
fn connect_by(server: &TestServer, ca: &TestCa, cfg: &TransportConfig) -> EstConnection {
    connect_with(&server.base_localhost(), ca, None, cfg)
}

fn connect(server: &TestServer, ca: &TestCa) -> EstConnection {
    connect_by(server, ca, &quick_config())
}

/// `result` is a bad response to `op`.
fn assert_bad_response<T: std::fmt::Debug>(result: onem2m_est::Result<T>, op: Operation) {
    assert!(
        matches!(&result, Err(Error::BadResponse { operation, .. }) if *operation == op),
        "{result:?}"
    );
}

/// `result` is a body of `op` that does not decode.
fn assert_decode_error<T: std::fmt::Debug>(result: onem2m_est::Result<T>, op: Operation) {
    assert!(
        matches!(&result, Err(Error::Decode { operation, .. }) if *operation == op),
        "{result:?}"
    );
}

fn sorted(mut v: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    v.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
    v
}

/// /cacerts over `conn` is `expected`, in any order (certs-only is a SET OF).
fn assert_cacerts_are(conn: &EstConnection, expected: Vec<CertificateDer<'static>>) {
    assert_eq!(sorted(conn.cacerts().unwrap()), sorted(expected));
}

/// What the scripted server hands out: an end-entity certificate and its CA's certificate.
fn payload() -> Vec<CertificateDer<'static>> {
    let ca = TestCa::new("payload CA");
    let ee = ca
        .server_identity(&["device.example"], Eku::ClientAuth)
        .chain;
    vec![ee[0].clone(), ca.cert.clone()]
}

/// A /serverkeygen answer for `cert`: a fresh key (PKCS #8), the content type and the
/// multipart body.
fn serverkeygen_parts(cert: &CertificateDer<'_>) -> (Vec<u8>, String, Vec<u8>) {
    let pkcs8 = TestKey::generate().rcgen_public().serialize_der();
    let (content_type, body) =
        onem2m_est::proto::multipart::encode_serverkeygen(&pkcs8, &[cert.as_ref()]).unwrap();
    (pkcs8, content_type, body)
}

/// challengePassword and ecdsa-with-SHA256, as the OIDs of a CSR attributes body.
fn two_csr_attributes() -> Vec<csrattrs::AttrOrOid> {
    vec![
        csrattrs::AttrOrOid::Oid("1.2.840.113549.1.9.7".into()),
        csrattrs::AttrOrOid::Oid("1.2.840.10045.4.3.2".into()),
    ]
}

fn certs_only_der(certs: &[CertificateDer<'static>]) -> Vec<u8> {
    let refs: Vec<&[u8]> = certs.iter().map(|c| c.as_ref()).collect();
    onem2m_est::proto::certs_only::encode(&refs).unwrap()
}

fn assert_no_authorization(server: &TestServer) {
    for r in server.requests() {
        assert!(
            r.header("authorization").is_none(),
            "an Authorization header was sent to {}",
            r.path
        );
    }
}

// --- A minimal DER walker to rewrite the outer CMS layers with indefinite lengths (BER) -------

/// Splits a DER TLV into (header length, content length).
fn tlv_lengths(tlv: &[u8]) -> (usize, usize) {
    let first = tlv[1];
    if first < 0x80 {
        (2, first as usize)
    } else {
        let n = (first & 0x7f) as usize;
        let len = tlv[2..2 + n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (2 + n, len)
    }
}

fn children(tlv: &[u8]) -> Vec<&[u8]> {
    let (h, l) = tlv_lengths(tlv);
    let mut rest = &tlv[h..h + l];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (ch, cl) = tlv_lengths(rest);
        out.push(&rest[..ch + cl]);
        rest = &rest[ch + cl..];
    }
    out
}

fn indefinite(tag: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![tag, 0x80];
    for p in parts {
        out.extend_from_slice(p);
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// ContentInfo, its [0], SignedData, encapContentInfo and the certificates field become
/// indefinite-length (what Java-based CAs send); certificates themselves stay DER.
fn to_ber(der: &[u8]) -> Vec<u8> {
    let ci = children(der);
    let explicit = children(ci[1]);
    let sd = explicit[0];
    let parts: Vec<Vec<u8>> = children(sd)
        .into_iter()
        .map(|p| match p[0] {
            0x30 | 0xa0 => indefinite(
                p[0],
                &children(p).iter().map(|c| c.to_vec()).collect::<Vec<_>>(),
            ),
            _ => p.to_vec(),
        })
        .collect();
    let sd_ber = indefinite(sd[0], &parts);
    indefinite(der[0], &[ci[0].to_vec(), indefinite(ci[1][0], &[sd_ber])])
}

// --- /cacerts ---------------------------------------------------------------------------------

#[test]
fn cacerts_der() {
    let payload = payload();
    let p = payload.clone();
    let (ca, server) = setup(move |req| {
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/.well-known/est/cacerts");
        certs_only_response(&p).into()
    });
    let conn = connect(&server, &ca);
    assert_cacerts_are(&conn, payload);
    assert!(conn.bytes_written() > 0 && conn.bytes_read() > 0);
}

#[test]
fn cacerts_ber_indefinite_lengths() {
    let payload = payload();
    let ber = to_ber(&certs_only_der(&payload));
    assert_eq!(
        &ber[..2],
        &[0x30, 0x80],
        "the fixture is BER with indefinite lengths"
    );
    let (ca, server) = setup(move |_| {
        Response::ok(
            "application/pkcs7-mime; smime-type=certs-only",
            base64body::encode(&ber),
        )
        .into()
    });
    assert_cacerts_are(&connect(&server, &ca), payload);
}

#[test]
fn cacerts_wrapped_base64_with_content_transfer_encoding_and_bare_media_type() {
    let payload = payload();
    let b64 = base64body::encode(&certs_only_der(&payload));
    let wrapped: String = b64
        .trim_end()
        .as_bytes()
        .chunks(64)
        .map(|c| format!("{}\r\n", std::str::from_utf8(c).unwrap()))
        .collect();
    let (ca, server) = setup(move |_| {
        Response::ok("Application/PKCS7-MIME", wrapped.clone())
            .header("Content-Transfer-Encoding", "base64")
            .into()
    });
    assert_cacerts_are(&connect(&server, &ca), payload);
}

#[test]
fn cacerts_wrong_content_type_refused() {
    let payload = payload();
    let (ca, server) = setup(move |_| {
        let mut r = certs_only_response(&payload);
        r.headers = vec![("Content-Type".into(), "text/html; charset=utf-8".into())];
        r.into()
    });
    match connect(&server, &ca).cacerts() {
        Err(Error::BadResponse {
            operation: Operation::CaCerts,
            reason,
        }) => assert!(reason.contains("text/html"), "{reason}"),
        other => panic!("expected BadResponse, got {other:?}"),
    }
}

#[test]
fn cacerts_garbage_body_is_a_decode_error() {
    let (ca, server) = setup(|_| Response::ok(media::CERTS_ONLY_CONTENT_TYPE, "AAAA\r\n").into());
    assert_decode_error(connect(&server, &ca).cacerts(), Operation::CaCerts);
}

/// Cisco libest's framing: the base64 text, a line break, and the C string's NUL terminator,
/// counted in Content-Length (RFC 8951 section 3: receivers are liberal about it).
fn nul_terminated(der: &[u8]) -> Vec<u8> {
    let mut body = base64body::encode(der).trim_end().as_bytes().to_vec();
    body.extend_from_slice(b"\n\0");
    body
}

#[test]
fn every_body_with_a_trailing_nul_is_decoded() {
    let items = two_csr_attributes();
    let attrs_der = csrattrs::encode(&items).unwrap();
    let payload = payload();
    let certs_der = certs_only_der(&payload);
    let ee_der = certs_only_der(&payload[..1]);
    let (pkcs8, keygen_type, keygen_body) = serverkeygen_parts(&payload[0]);
    // Each part's base64 text followed by a NUL, inside the part, before the delimiter.
    let keygen_body = String::from_utf8(keygen_body)
        .unwrap()
        .replace("\r\n--", "\n\0\r\n--")
        .into_bytes();
    assert_eq!(keygen_body.iter().filter(|b| **b == 0).count(), 2);
    let (ca, server) = setup(move |req| {
        let (ct, body) = match req.path.as_str() {
            "/.well-known/est/cacerts" => {
                (media::CERTS_ONLY_CONTENT_TYPE, nul_terminated(&certs_der))
            }
            "/.well-known/est/csrattrs" => ("application/csrattrs", nul_terminated(&attrs_der)),
            "/.well-known/est/simpleenroll" | "/.well-known/est/simplereenroll" => {
                (media::CERTS_ONLY_CONTENT_TYPE, nul_terminated(&ee_der))
            }
            "/.well-known/est/serverkeygen" => (keygen_type.as_str(), keygen_body.clone()),
            other => panic!("unexpected {other}"),
        };
        Response::ok(ct, body).into()
    });
    let conn = connect(&server, &ca);
    assert_eq!(conn.csrattrs().unwrap(), Some(items));
    assert_cacerts_are(&conn, payload.clone());
    assert_eq!(conn.simple_enroll(CSR).unwrap(), payload[..1].to_vec());
    assert_eq!(conn.simple_reenroll(CSR).unwrap(), payload[..1].to_vec());
    let got = conn.server_keygen(CSR).unwrap();
    assert_eq!(got.private_key_pkcs8.as_slice(), pkcs8.as_slice());
    assert_eq!(got.certificates, vec![payload[0].to_vec()]);
}

#[test]
fn a_nul_inside_the_base64_text_stays_a_decode_error() {
    let attrs_der =
        csrattrs::encode(&[csrattrs::AttrOrOid::Oid("1.2.840.10045.4.3.2".into())]).unwrap();
    let (ca, server) = setup(move |_| {
        let mut body = base64body::encode(&attrs_der).into_bytes();
        body.insert(4, 0);
        Response::ok("application/csrattrs", body).into()
    });
    assert_decode_error(connect(&server, &ca).csrattrs(), Operation::CsrAttrs);
}

// --- /csrattrs --------------------------------------------------------------------------------

#[test]
fn csrattrs_200_204_404() {
    let items = two_csr_attributes();
    let der = csrattrs::encode(&items).unwrap();
    let status = Arc::new(AtomicU32::new(200));
    let s = status.clone();
    let (ca, server) = setup(move |req| {
        assert_eq!(req.path, "/.well-known/est/csrattrs");
        match s.load(Ordering::SeqCst) {
            200 => Response::ok("application/csrattrs", base64body::encode(&der)).into(),
            code => Response::new(code as u16).into(),
        }
    });
    let conn = connect(&server, &ca);
    assert_eq!(conn.csrattrs().unwrap(), Some(items));
    status.store(204, Ordering::SeqCst);
    assert_eq!(conn.csrattrs().unwrap(), None);
    status.store(404, Ordering::SeqCst);
    assert_eq!(conn.csrattrs().unwrap(), None);
    status.store(500, Ordering::SeqCst);
    assert!(matches!(
        conn.csrattrs(),
        Err(Error::ServerStatus { status: 500, .. })
    ));
}

// --- enrollment and polling -------------------------------------------------------------------

fn enroll_after_202(retry_after: &'static str) {
    let payload = payload();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let (ca, server) = setup(move |req| {
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/.well-known/est/simpleenroll");
        assert!(req
            .header("content-type")
            .unwrap()
            .starts_with(media::PKCS10));
        assert_eq!(base64body::decode(&req.body).unwrap(), CSR);
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Response::new(202).header("Retry-After", retry_after).into()
        } else {
            certs_only_response(&payload[..1]).into()
        }
    });
    // Without a usable Retry-After the wait would be 10 s, beyond max_total: only a parsed
    // Retry-After lets the second attempt happen.
    let mut cfg = quick_config();
    cfg.poll.default_delay = Duration::from_secs(10);
    cfg.poll.max_delay = Duration::from_secs(10);
    let conn = connect_by(&server, &ca, &cfg);
    let certs = conn.simple_enroll(CSR).unwrap();
    assert_eq!(certs.len(), 1);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body, "the same request is sent again");
}

#[test]
fn enroll_202_retry_after_zero_then_200() {
    enroll_after_202("0");
}

#[test]
fn enroll_202_retry_after_past_http_date_then_200() {
    enroll_after_202("Sun, 06 Nov 1994 08:49:37 GMT");
}

#[test]
fn enroll_202_forever_is_still_pending_within_bounds() {
    let (ca, server) = setup(|_| Response::new(202).header("Retry-After", "0").into());
    let conn = connect(&server, &ca);
    match conn.simple_reenroll(CSR) {
        Err(Error::StillPending {
            operation: Operation::SimpleReenroll,
            attempts,
            ..
        }) => assert_eq!(attempts, 3),
        other => panic!("expected StillPending, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 3);
    assert!(server
        .requests()
        .iter()
        .all(|r| r.path == "/.well-known/est/simplereenroll"));
}

// RFC 7030 4.2.3: "the client MUST wait at least the specified retry-after time". A clock that
// records the waits and advances by them, so nothing sleeps for real.
#[derive(Debug)]
struct FakeClock {
    now: std::sync::Mutex<std::time::SystemTime>,
    slept: std::sync::Mutex<Vec<Duration>>,
}

impl FakeClock {
    fn at(now: std::time::SystemTime) -> Arc<FakeClock> {
        Arc::new(FakeClock {
            now: std::sync::Mutex::new(now),
            slept: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn slept(&self) -> Vec<Duration> {
        self.slept.lock().unwrap().clone()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> std::time::SystemTime {
        *self.now.lock().unwrap()
    }

    fn sleep(&self, delay: Duration) {
        *self.now.lock().unwrap() += delay;
        self.slept.lock().unwrap().push(delay);
    }
}

/// A server that answers `op` with 202 and `retry_after` the first `pending` times, then 200.
fn pending_then_issued(
    pending: u32,
    retry_after: impl Fn() -> String + Send + Sync + 'static,
) -> (TestCa, TestServer) {
    let payload = payload();
    let calls = Arc::new(AtomicU32::new(0));
    setup(move |req| {
        if calls.fetch_add(1, Ordering::SeqCst) < pending {
            Response::new(202)
                .header("Retry-After", &retry_after())
                .into()
        } else if req.path.ends_with("/serverkeygen") {
            let (_, content_type, body) = serverkeygen_parts(&payload[0]);
            Response::ok(&content_type, body).into()
        } else {
            certs_only_response(&payload[..1]).into()
        }
    })
}

fn config_with_clock(clock: Arc<FakeClock>, max_delay: u64, max_total: u64) -> TransportConfig {
    let mut cfg = quick_config();
    cfg.poll.clock = PollClock(clock);
    cfg.poll.max_delay = Duration::from_secs(max_delay);
    cfg.poll.max_total = Duration::from_secs(max_total);
    cfg.poll.max_attempts = 5;
    cfg
}

#[test]
fn enroll_202_waits_the_whole_retry_after() {
    let clock = FakeClock::at(std::time::SystemTime::now());
    let (ca, server) = pending_then_issued(2, || "7".into());
    let conn = connect_by(&server, &ca, &config_with_clock(clock.clone(), 10, 60));
    assert_eq!(conn.simple_enroll(CSR).unwrap().len(), 1);
    assert_eq!(clock.slept(), [Duration::from_secs(7); 2]);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn enroll_202_waits_until_a_retry_after_date() {
    // An HTTP-date is relative to the clock: 30 s after "now", whatever the real time is.
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_900_000_000 - 30);
    let clock = FakeClock::at(now);
    // 1 900 000 000 s after the epoch.
    let (ca, server) = pending_then_issued(1, || "Sun, 17 Mar 2030 17:46:40 GMT".into());
    let conn = connect_by(&server, &ca, &config_with_clock(clock.clone(), 60, 600));
    assert_eq!(conn.simple_reenroll(CSR).unwrap().len(), 1);
    assert_eq!(clock.slept(), [Duration::from_secs(30)]);
}

/// A Retry-After beyond `max_delay` (50 ms in [`quick_config`]) is neither shortened nor
/// waited for: one request, then [`Error::RetryAfterTooLong`] naming what the server asked.
fn retry_after_beyond_max_delay(op: Operation) {
    let (ca, server) = pending_then_issued(u32::MAX, || "1".into());
    let conn = connect(&server, &ca);
    let started = std::time::Instant::now();
    let err = match op {
        Operation::SimpleEnroll => conn.simple_enroll(CSR).map(|_| ()),
        Operation::SimpleReenroll => conn.simple_reenroll(CSR).map(|_| ()),
        Operation::ServerKeygen => conn.server_keygen(CSR).map(|_| ()),
        other => unreachable!("{other}"),
    }
    .unwrap_err();
    match &err {
        Error::RetryAfterTooLong {
            operation,
            retry_after,
            limit,
            attempts: 1,
            ..
        } => {
            assert_eq!(*operation, op);
            assert_eq!(*retry_after, Duration::from_secs(1));
            assert_eq!(*limit, Duration::from_millis(50));
        }
        other => panic!("expected RetryAfterTooLong, got {other:?}"),
    }
    assert_eq!(err.class(), onem2m_est::ErrorClass::Server);
    let text = err.to_string();
    assert!(
        text.contains("in 1 s") && text.contains("RFC 7030 4.2.3"),
        "{text}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "nothing is resent before Retry-After"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn simpleenroll_retry_after_beyond_max_delay_is_not_resent_early() {
    retry_after_beyond_max_delay(Operation::SimpleEnroll);
}

#[test]
fn simplereenroll_retry_after_beyond_max_delay_is_not_resent_early() {
    retry_after_beyond_max_delay(Operation::SimpleReenroll);
}

#[test]
fn serverkeygen_retry_after_beyond_max_delay_is_not_resent_early() {
    retry_after_beyond_max_delay(Operation::ServerKeygen);
}

#[test]
fn retry_after_beyond_the_polling_time_left_is_not_resent_early() {
    // max_total 10 s: after waiting 7 s, a second "7" would overrun it.
    let clock = FakeClock::at(std::time::SystemTime::now());
    let (ca, server) = pending_then_issued(u32::MAX, || "7".into());
    let conn = connect_by(&server, &ca, &config_with_clock(clock.clone(), 60, 10));
    match conn.simple_enroll(CSR) {
        Err(Error::RetryAfterTooLong {
            retry_after,
            limit,
            attempts: 2,
            ..
        }) => {
            assert_eq!(retry_after, Duration::from_secs(7));
            assert_eq!(limit, Duration::from_secs(3));
        }
        other => panic!("expected RetryAfterTooLong, got {other:?}"),
    }
    assert_eq!(clock.slept(), [Duration::from_secs(7)]);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn enroll_with_zero_certificates_is_a_bad_response() {
    let (ca, server) = setup(|_| certs_only_response(&[]).into());
    assert_bad_response(
        connect(&server, &ca).simple_enroll(CSR),
        Operation::SimpleEnroll,
    );
}

// --- HTTP status handling ---------------------------------------------------------------------

#[test]
fn status_401_is_http_authentication_requested_and_nothing_is_sent() {
    let (ca, server) = setup(|_| {
        Response::new(401)
            .header("WWW-Authenticate", "Basic realm=\"estrealm\"")
            .body("authenticate")
            .into()
    });
    let conn = connect(&server, &ca);
    match conn.simple_enroll(CSR) {
        Err(e @ Error::HttpAuthenticationRequested { .. }) => {
            let Error::HttpAuthenticationRequested { challenge, .. } = &e else {
                unreachable!()
            };
            assert!(
                challenge.contains("Basic realm=\"estrealm\""),
                "{challenge}"
            );
        }
        other => panic!("expected HttpAuthenticationRequested, got {other:?}"),
    }
    let _ = conn.cacerts();
    assert!(server.requests().len() >= 2);
    assert_no_authorization(&server);
}

#[test]
fn status_400_surfaces_the_text_body() {
    let (ca, server) = setup(|_| {
        Response::new(400)
            .header("Content-Type", "text/plain")
            .body("CSR rejected: subjectAltName missing\r\n")
            .into()
    });
    match connect(&server, &ca).simple_enroll(CSR) {
        Err(Error::ServerStatus {
            operation: Operation::SimpleEnroll,
            status: 400,
            message,
        }) => assert_eq!(message, "CSR rejected: subjectAltName missing"),
        other => panic!("expected ServerStatus, got {other:?}"),
    }
}

#[test]
fn redirect_to_another_host_refused() {
    let (ca, server) = setup(|_| {
        Response::new(302)
            .header(
                "Location",
                "https://evil.example.com/.well-known/est/cacerts",
            )
            .into()
    });
    match connect(&server, &ca).cacerts() {
        Err(Error::Redirect { location, .. }) => assert!(location.contains("evil.example.com")),
        other => panic!("expected Redirect, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn redirect_to_the_same_authority_followed() {
    let payload = payload();
    let p = payload.clone();
    let (ca, server) = setup(move |req| {
        if req.path == "/.well-known/est/cacerts" {
            Response::new(307)
                .header("Location", "/.well-known/est/other/cacerts")
                .into()
        } else {
            assert_eq!(req.path, "/.well-known/est/other/cacerts");
            certs_only_response(&p).into()
        }
    });
    assert_cacerts_are(&connect(&server, &ca), payload);
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn redirect_loop_is_bounded() {
    let (ca, server) = setup(|_| {
        Response::new(302)
            .header("Location", "/.well-known/est/cacerts")
            .into()
    });
    assert!(matches!(
        connect(&server, &ca).cacerts(),
        Err(Error::BadResponse { .. })
    ));
    assert_eq!(server.requests().len(), 4);
}

// --- broken bodies ----------------------------------------------------------------------------

#[test]
fn server_closing_mid_body_is_a_transport_error() {
    let (ca, server) = setup(|_| {
        Action::RawThenClose(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/pkcs7-mime\r\nContent-Length: 1000\r\n\r\nMIIB"
                .to_vec(),
        )
    });
    match connect(&server, &ca).cacerts() {
        Err(Error::Transport {
            operation: Operation::CaCerts,
            ..
        }) => {}
        other => panic!("expected Transport, got {other:?}"),
    }
}

#[test]
fn oversized_body_refused() {
    let (ca, server) =
        setup(|_| Response::ok(media::CERTS_ONLY_CONTENT_TYPE, vec![b'A'; 4096]).into());
    let cfg = {
        let mut v = quick_config();
        v.max_body_bytes = 1024;
        v
    };
    let conn = connect_by(&server, &ca, &cfg);
    match conn.cacerts() {
        Err(Error::BadResponse { reason, .. }) => assert!(reason.contains("limit"), "{reason}"),
        other => panic!("expected BadResponse (limit), got {other:?}"),
    }
}

// --- server authorisation (RFC 7030 3.6.1) ----------------------------------------------------

fn server_with(id: ServerIdentity) -> TestServer {
    let payload = vec![id.chain[1].clone()];
    TestServer::start(ServerOptions::new(id), move |_| {
        certs_only_response(&payload).into()
    })
}

/// /cacerts, over localhost, from a server whose certificate `ca` issued for `names` with
/// `eku`.
fn cacerts_from_a_server_for(
    ca: &TestCa,
    names: &[&str],
    eku: Eku,
) -> onem2m_est::Result<Vec<CertificateDer<'static>>> {
    let server = server_with(ca.server_identity(names, eku));
    // The connection is a local, so it closes before the server is dropped. (As a temporary of
    // the tail expression it would outlive `server`, whose drop then waits for the connection's
    // thread: a hang where shutdown(2) does not wake a blocked read, as under Wine.)
    let conn = connect(&server, ca);
    conn.cacerts()
}

/// A server whose certificate `ca` issued for `names` with `eku` is authorised: /cacerts (the
/// CA's certificate) comes through.
fn assert_authorised(ca: &TestCa, names: &[&str], eku: Eku) {
    assert_eq!(
        cacerts_from_a_server_for(ca, names, eku).unwrap(),
        vec![ca.cert.clone()]
    );
}

fn not_authorized_reason(r: onem2m_est::Result<Vec<CertificateDer<'static>>>) -> String {
    match r {
        Err(Error::ServerNotAuthorized { reason }) => reason,
        other => panic!("expected ServerNotAuthorized, got {other:?}"),
    }
}

#[test]
fn server_cert_for_the_wrong_host_refused() {
    let ca = TestCa::new("Test MEF CA");
    let server = server_with(ca.server_identity(&["mef.example.com"], Eku::ServerAuth));
    let reason = not_authorized_reason(connect(&server, &ca).cacerts());
    assert!(
        reason.contains("localhost") && reason.contains("mef.example.com"),
        "{reason}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn cmc_ra_only_cert_for_another_name_accepted() {
    let ca = TestCa::new("Test MEF CA");
    assert_authorised(&ca, &["ra.example.com"], Eku::CmcRaOnly);
}

#[test]
fn server_auth_cert_for_the_right_name_accepted() {
    let ca = TestCa::new("Test MEF CA");
    assert_authorised(&ca, &["localhost"], Eku::ServerAuth);
    // No EKU extension at all is acceptable too.
    assert_authorised(&ca, &["localhost"], Eku::None);
}

#[test]
fn client_auth_only_eku_refused() {
    let ca = TestCa::new("Test MEF CA");
    let reason = not_authorized_reason(cacerts_from_a_server_for(
        &ca,
        &["localhost"],
        Eku::ClientAuth,
    ));
    assert!(reason.contains("extended key usage"), "{reason}");
}

#[test]
fn ip_literal_base_uri_matches_ip_san() {
    let ca = TestCa::new("Test MEF CA");
    let server = server_with(ca.server_identity(&["127.0.0.1"], Eku::ServerAuth));
    let conn = connect_with(&server.base_ip(), &ca, None, &quick_config());
    assert_eq!(conn.cacerts().unwrap(), vec![ca.cert.clone()]);
    // A certificate naming only localhost does not match the IP literal.
    let server = server_with(ca.server_identity(&["localhost"], Eku::ServerAuth));
    let conn = connect_with(&server.base_ip(), &ca, None, &quick_config());
    let reason = not_authorized_reason(conn.cacerts());
    assert!(reason.contains("127.0.0.1"), "{reason}");
}

#[test]
fn cert_from_an_untrusted_ca_refused() {
    let ca = TestCa::new("Test MEF CA");
    let other = TestCa::new("Some other CA");
    let server = server_with(other.server_identity(&["localhost"], Eku::ServerAuth));
    let reason = not_authorized_reason(connect(&server, &ca).cacerts());
    assert!(reason.contains("unknown issuer"), "{reason}");
}

/// A CA of the trusted CA's name but with another key (another MEF's CA, a forgery): the
/// issuer name matches, the signature does not, and the reason says so.
#[test]
fn cert_from_a_ca_of_the_same_name_with_another_key_refused() {
    let ca = TestCa::new("Test MEF CA");
    let namesake = TestCa::new("Test MEF CA");
    let server = server_with(namesake.server_identity(&["localhost"], Eku::ServerAuth));
    let reason = not_authorized_reason(connect(&server, &ca).cacerts());
    assert!(
        reason.contains("signature") && reason.contains("another CA of the same name"),
        "{reason}"
    );
}

#[test]
fn expired_server_cert_refused() {
    let ca = TestCa::new("Test MEF CA");
    let server = server_with(
        ca.server_identity_with(&["localhost"], Eku::ServerAuth, |p| {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }),
    );
    let reason = not_authorized_reason(connect(&server, &ca).cacerts());
    assert!(
        reason.contains("expired") && reason.contains("2001-01-01"),
        "{reason}"
    );
}

/// `openssl verify` of `chain` (leaf first, then intermediates) against `root`: the reference
/// verdict. The test checks for openssl first (`require_tool`).
fn openssl_verifies(root: &CertificateDer<'_>, chain: &[CertificateDer<'static>]) -> bool {
    let dir = std::env::temp_dir().join(format!(
        "onem2m-est-ku-{}-{}",
        std::process::id(),
        onem2m_est::proto::base64body::encode(&chain[0][chain[0].len() - 9..])
            .replace(['/', '+', '='], "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, certs: &[CertificateDer<'_>]| {
        let text: String = certs
            .iter()
            .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.to_vec())))
            .collect();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let root_pem = write("root.pem", std::slice::from_ref(root));
    let untrusted = write("untrusted.pem", &chain[1..]);
    let leaf = write("leaf.pem", &chain[..1]);
    let out = std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root_pem)
        .arg("-untrusted")
        .arg(&untrusted)
        .arg(&leaf)
        .output()
        .expect("the openssl CLI runs");
    let _ = std::fs::remove_dir_all(&dir);
    out.status.success()
}

#[test]
fn intermediate_ca_without_key_cert_sign_refused_as_openssl_does() {
    if !require_tool("openssl", "Debian package openssl") {
        return;
    }
    // RFC 5280 6.1.4 (n): an intermediate CA whose keyUsage lacks keyCertSign cannot issue the
    // server certificate. webpki checks basicConstraints only; openssl refuses such a chain.
    let root = TestCa::new("Test root CA");
    let good = root.intermediate(
        "Intermediate with keyCertSign",
        vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ],
    );
    let bad = root.intermediate(
        "Intermediate without keyCertSign",
        vec![rcgen::KeyUsagePurpose::DigitalSignature],
    );
    let unrestricted = root.intermediate("Intermediate without keyUsage", vec![]);
    for (ca, accepted) in [(&good, true), (&unrestricted, true), (&bad, false)] {
        let id = ca.server_identity(&["localhost"], Eku::ServerAuth);
        assert_eq!(openssl_verifies(&root.cert, &id.chain), accepted);
        let server = server_with(id);
        let result = connect(&server, &root).cacerts();
        if accepted {
            result.unwrap();
        } else {
            let reason = not_authorized_reason(result);
            assert!(reason.contains("keyCertSign"), "{reason}");
        }
    }
}

// --- client authentication --------------------------------------------------------------------

fn client_auth_server(ca: &TestCa, required: bool, tls12_only: bool) -> TestServer {
    let mut opts = ServerOptions::new(ca.server_identity(&["localhost"], Eku::ServerAuth));
    opts.client_auth = if required {
        ClientAuth::Required(vec![ca.cert.clone()])
    } else {
        ClientAuth::Optional(vec![ca.cert.clone()])
    };
    opts.tls12_only = tls12_only;
    let payload = vec![ca.cert.clone()];
    TestServer::start(opts, move |_| certs_only_response(&payload).into())
}

/// A connection to `server` over localhost, trusting `ca`, with the client certificate `cert`
/// and its `key`.
fn connect_as(
    server: &TestServer,
    ca: &TestCa,
    cert: CertificateDer<'static>,
    key: Arc<TestKey>,
) -> EstConnection {
    let identity = ClientIdentity {
        chain: vec![cert],
        key,
    };
    connect_with(
        &server.base_localhost(),
        ca,
        Some(identity),
        &quick_config(),
    )
}

fn client_cert_seen(tls12_only: bool) {
    let ca = TestCa::new("Test MEF CA");
    let server = client_auth_server(&ca, true, tls12_only);
    let (cert, key) = ca.client_identity("CAE-test-device");
    let conn = connect_as(&server, &ca, cert.clone(), key);
    conn.cacerts().unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].client_cert.as_ref(), Some(&cert));
}

#[test]
fn client_cert_presented_and_seen_tls13() {
    client_cert_seen(false);
}

#[test]
fn client_cert_presented_and_seen_tls12() {
    client_cert_seen(true);
}

#[test]
fn no_client_cert_when_the_server_requires_one_is_a_tls_error() {
    let ca = TestCa::new("Test MEF CA");
    let server = client_auth_server(&ca, true, false);
    match connect(&server, &ca).cacerts() {
        Err(Error::Tls { reason, .. }) => assert!(reason.contains("alert"), "{reason}"),
        other => panic!("expected Tls, got {other:?}"),
    }
}

#[test]
fn signing_failure_is_a_key_error() {
    let ca = TestCa::new("Test MEF CA");
    let server = client_auth_server(&ca, false, false);
    let (cert, key) = ca.client_identity("CAE-test-device");
    key.fail.store(true, Ordering::SeqCst);
    let conn = connect_as(&server, &ca, cert, key);
    match conn.cacerts() {
        Err(e @ Error::Key { .. }) => {
            assert_eq!(e.class(), onem2m_est::ErrorClass::Client);
            assert!(e.to_string().contains("told to fail"), "{e}");
        }
        other => panic!("expected Key, got {other:?}"),
    }
}

#[test]
fn identity_whose_key_does_not_match_the_certificate_refused() {
    let ca = TestCa::new("Test MEF CA");
    let (cert, _) = ca.client_identity("a");
    let (_, other_key) = ca.client_identity("b");
    let base = EstUri::parse("https://localhost/").unwrap();
    let identity = ClientIdentity {
        chain: vec![cert],
        key: other_key,
    };
    assert!(matches!(
        client_config(std::slice::from_ref(&ca.cert), Some(identity), &base),
        Err(Error::InvalidArgument { .. })
    ));
}

// --- connections ------------------------------------------------------------------------------

#[test]
fn one_handshake_for_cacerts_csrattrs_and_enroll() {
    let payload = payload();
    let (ca, server) = setup(move |req| match req.path.as_str() {
        "/.well-known/est/csrattrs" => Response::new(204).into(),
        _ => certs_only_response(&payload).into(),
    });
    let conn = connect(&server, &ca);
    conn.cacerts().unwrap();
    assert_eq!(conn.csrattrs().unwrap(), None);
    conn.simple_enroll(CSR).unwrap();
    assert_eq!(conn.handshakes(), 1);
    assert_eq!(server.handshakes(), 1);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert!(reqs.iter().all(|r| r.connection == 0));
    assert_no_authorization(&server);
}

#[test]
fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let ca = TestCa::new("Test MEF CA");
    let conn = connect_with(
        &format!("https://127.0.0.1:{port}/"),
        &ca,
        None,
        &quick_config(),
    );
    match conn.cacerts() {
        Err(e @ Error::Connect { .. }) => assert_eq!(e.class(), onem2m_est::ErrorClass::Server),
        other => panic!("expected Connect, got {other:?}"),
    }
    assert_eq!(conn.handshakes(), 0);
}

#[test]
fn sni_sent_for_a_dns_name_and_not_for_an_ip_literal() {
    let ca = TestCa::new("Test MEF CA");
    let server = server_with(ca.server_identity(&["localhost", "127.0.0.1"], Eku::ServerAuth));
    connect(&server, &ca).cacerts().unwrap();
    let conn = connect_with(&server.base_ip(), &ca, None, &quick_config());
    conn.cacerts().unwrap();
    let reqs = server.requests();
    assert_eq!(reqs[0].sni.as_deref(), Some("localhost"));
    // RFC 6066 section 3: no literal IP addresses in SNI.
    assert_eq!(reqs[1].sni, None);
}

// --- /serverkeygen ----------------------------------------------------------------------------

#[test]
fn server_keygen_multipart() {
    let payload = payload();
    let (pkcs8, content_type, body) = serverkeygen_parts(&payload[0]);
    let (ca, server) = setup(move |req| {
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/.well-known/est/serverkeygen");
        Response::ok(&content_type, body.clone()).into()
    });
    let got = connect(&server, &ca).server_keygen(CSR).unwrap();
    assert_eq!(got.private_key_pkcs8.as_slice(), pkcs8.as_slice());
    assert_eq!(got.certificates, vec![payload[0].to_vec()]);
}

#[test]
fn server_keygen_wrong_content_type_refused() {
    let payload = payload();
    let (ca, server) = setup(move |_| certs_only_response(&payload).into());
    assert_bad_response(
        connect(&server, &ca).server_keygen(CSR),
        Operation::ServerKeygen,
    );
}

// --- timeouts ---------------------------------------------------------------------------------

#[test]
fn silent_server_is_a_handshake_timeout() {
    // Accepts TCP and never speaks TLS.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        // Hold the connection until the client gives up and closes it.
        let mut buf = [0u8; 1024];
        let mut s = stream;
        while std::io::Read::read(&mut s, &mut buf).is_ok_and(|n| n > 0) {}
    });
    let ca = TestCa::new("Test MEF CA");
    let cfg = {
        let mut v = quick_config();
        v.tls_timeout = Duration::from_millis(300);
        v
    };
    let conn = connect_with(&format!("https://localhost:{port}/"), &ca, None, &cfg);
    match conn.cacerts() {
        Err(Error::Timeout { phase }) => assert!(phase.contains("TLS handshake"), "{phase}"),
        other => panic!("expected Timeout, got {other:?}"),
    }
    drop(conn);
    holder.join().unwrap();
}

#[test]
fn slow_response_is_a_response_timeout() {
    let (ca, server) = setup(|_| {
        std::thread::sleep(Duration::from_millis(1500));
        Response::new(204).into()
    });
    let cfg = {
        let mut v = quick_config();
        v.response_timeout = Duration::from_millis(300);
        v
    };
    let conn = connect_by(&server, &ca, &cfg);
    match conn.csrattrs() {
        Err(Error::Timeout { phase }) => assert!(phase.contains("response"), "{phase}"),
        other => panic!("expected Timeout, got {other:?}"),
    }
}
