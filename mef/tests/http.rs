//! HTTP/1.1 and TLS framing rules of the MEF, over raw TLS connections.

mod common;

use common::*;

fn mef(name: &str) -> MefProc {
    MefProc::start(&temp_dir(name), &[])
}

/// One request on a new connection without a client certificate, and its response.
fn exchange(m: &MefProc, req: Vec<u8>) -> Resp {
    raw_exchange(&m.ca_der, None, m.addr.port(), &[req]).remove(0)
}

fn host(m: &MefProc) -> String {
    format!("Host: localhost:{}\r\n", m.addr.port())
}

#[test]
fn tls12_and_tls13_both_work() {
    let m = mef("tls-versions");
    let req = format!("GET /.well-known/est/cacerts HTTP/1.1\r\n{}\r\n", host(&m)).into_bytes();
    for v in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let r = raw_exchange_versions(
            &m.ca_der,
            None,
            m.addr.port(),
            std::slice::from_ref(&req),
            &[v],
        );
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].certs(), vec![m.ca_der.clone()]);
    }
}

#[test]
fn chunked_requests_get_411() {
    let m = mef("chunked");
    let req = format!(
        "POST /.well-known/est/simpleenroll HTTP/1.1\r\n{}Content-Type: application/pkcs10\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nAAAA\r\n0\r\n\r\n",
        host(&m)
    )
    .into_bytes();
    let r = exchange(&m, req);
    r.assert_error(411, "Content-Length");
    assert_eq!(r.header("connection"), Some("close"));
}

#[test]
fn oversized_request_head_gets_431() {
    let m = mef("bighead");
    let filler = "a".repeat(20 * 1024);
    let req = format!(
        "GET /.well-known/est/cacerts HTTP/1.1\r\n{}X-Filler: {filler}\r\n\r\n",
        host(&m)
    )
    .into_bytes();
    let r = exchange(&m, req);
    r.assert_error(431, "too large");
}

#[test]
fn malformed_request_line_gets_400_and_http10_closes() {
    let m = mef("badreq");
    let r = exchange(&m, b"GET\x01 / HTTP/1.1\r\n\r\n".to_vec());
    r.assert_error(400, "malformed HTTP request");
    let req = b"GET /.well-known/est/cacerts HTTP/1.0\r\n\r\n".to_vec();
    let r = exchange(&m, req);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
}
