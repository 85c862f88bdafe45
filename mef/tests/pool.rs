//! The connection thread pool: idle and slow clients do not starve others, the connection bound
//! still closes excess connections at once, and shutdown ends idle connections.

mod common;

use common::*;
use onem2m_mef::{Mef, MefConfig, RunningMef};
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

fn start(name: &str, workers: usize, max_connections: usize) -> RunningMef {
    let mut config = MefConfig::new(temp_dir(name).join("mef"));
    config.workers = workers;
    config.max_connections = max_connections;
    Mef::start(config).unwrap()
}

fn cacerts_request(mef: &RunningMef) -> Vec<u8> {
    format!(
        "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
        mef.local_addr().port()
    )
    .into_bytes()
}

/// A TCP connection that never sends a byte: it holds whatever serves it for the whole I/O
/// timeout (30 s by default), well beyond the client read timeout of `raw_exchange` (20 s).
fn silent(mef: &RunningMef) -> TcpStream {
    TcpStream::connect(mef.local_addr()).unwrap()
}

#[test]
fn idle_and_silent_clients_do_not_starve_others() {
    let mef = start("pool-starve", 1, 8);
    let ca = mef.ca_cert_der().to_vec();
    // One idle keep-alive connection (ureq pools it after the response) and two silent ones:
    // three connections each holding a thread, with one resident worker.
    let idle = agent(&ca, None);
    let r = get(&idle, &format!("{}/cacerts", mef.base_uri(None))).unwrap();
    assert_eq!(r.status, 200);
    let _s1 = silent(&mef);
    let _s2 = silent(&mef);
    for _ in 0..3 {
        let r = raw_exchange(
            &ca,
            None,
            mef.local_addr().port(),
            &[cacerts_request(&mef), cacerts_request(&mef)],
        );
        assert_eq!(r[0].status, 200);
        assert_eq!(r[1].status, 200);
        assert_eq!(r[1].certs(), vec![ca.clone()]);
    }
    mef.shutdown();
}

/// The server closed `s`: end of stream (or a reset) within 20 s, not a read timeout.
fn assert_closed_by_server(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    match s.read(&mut [0u8; 16]) {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
    }
}

#[test]
fn connections_beyond_the_bound_are_closed_at_once() {
    let mef = start("pool-bound", 1, 2);
    let _s1 = silent(&mef);
    let _s2 = silent(&mef);
    let mut third = silent(&mef);
    assert_closed_by_server(&mut third);
    drop((_s1, _s2));
    mef.shutdown();
}

#[test]
fn shutdown_ends_idle_and_silent_connections() {
    let mef = start("pool-shutdown", 2, 16);
    let ca = mef.ca_cert_der().to_vec();
    let silent: Vec<TcpStream> = (0..4).map(|_| silent(&mef)).collect();
    let idle = agent(&ca, None);
    let r = get(&idle, &format!("{}/cacerts", mef.base_uri(None))).unwrap();
    assert_eq!(r.status, 200);
    // Returns only once every connection job has ended (it joins the pool).
    mef.shutdown();
    for mut s in silent {
        assert_closed_by_server(&mut s);
    }
}
