//! The MEF behind a load balancer (issue #17): HAProxy in TCP mode (the MEF terminates mutual
//! TLS itself) with round-robin balancing and health checks in front of two `onem2m-mef`
//! replicas, all on 127.0.0.1. Needs `haproxy` (the tests fail without it).

mod common;

use common::haproxy::HaProxy;
use common::replica::Replica;
use common::temp_dir;

/// A ureq agent trusting every CA in `cas`, on a connection of its own (no pooling across
/// agents: each request made with a new agent is a new TCP connection, so a new balancing
/// decision).
fn agent_trusting(cas: &[Vec<u8>]) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots: Vec<_> = cas
        .iter()
        .map(|c| Certificate::from_der(c).to_owned())
        .collect();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&roots))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent()
}

/// Which replica answered a /cacerts through the balancer: the one whose CA it returned.
fn cacerts_from(hp: &HaProxy, replicas: &[&Replica]) -> usize {
    let cas: Vec<Vec<u8>> = replicas.iter().map(|r| r.ca_der.clone()).collect();
    let r = common::get(&agent_trusting(&cas), &format!("{}/cacerts", hp.base_uri())).unwrap();
    let certs = r.certs();
    replicas
        .iter()
        .position(|rep| certs.contains(&rep.ca_der))
        .expect("a CA of neither replica")
}

fn cacerts_served(r: &Replica) -> f64 {
    r.scrape().get("mef_requests_total{operation=\"cacerts\"}")
}

/// Two replicas that share nothing (each its own CA and SQLite database): the balancer
/// alternates new connections between them, stops sending to a SIGKILLed one once its health
/// check fails, and sends to it again after it restarted.
#[test]
fn haproxy_alternates_between_replicas_and_routes_around_a_dead_one() {
    let root = temp_dir("ha-balancer");
    let mut a = Replica::start("a", &root.join("a"), "127.0.0.1:0", &[]);
    let b = Replica::start("b", &root.join("b"), "127.0.0.1:0", &[]);
    let hp = HaProxy::start(&root.join("haproxy"), &[("a", a.addr), ("b", b.addr)]);
    let served: Vec<usize> = (0..10).map(|_| cacerts_from(&hp, &[&a, &b])).collect();
    println!("replica per /cacerts through haproxy: {served:?}");
    // Round robin over new connections: strictly alternating.
    for w in served.windows(2) {
        assert_ne!(w[0], w[1], "{served:?}");
    }
    assert_eq!(cacerts_served(&a), 5.0);
    assert_eq!(cacerts_served(&b), 5.0);

    a.kill();
    hp.wait_down("a");
    let served: Vec<usize> = (0..6).map(|_| cacerts_from(&hp, &[&a, &b])).collect();
    assert_eq!(served, [1; 6], "a dead replica was sent requests");
    assert_eq!(cacerts_served(&b), 11.0);

    a.restart();
    hp.wait_up(2);
    let served: Vec<usize> = (0..4).map(|_| cacerts_from(&hp, &[&a, &b])).collect();
    assert!(
        served.contains(&0),
        "the restarted replica gets no requests: {served:?}"
    );
    println!("haproxy: {:?}", hp.stats());
    drop(hp);
    let _ = std::fs::remove_dir_all(&root);
}
