//! The MEF behind a load balancer (issue #17): HAProxy in TCP mode (the MEF terminates mutual
//! TLS itself) with round-robin balancing and health checks in front of two `onem2m-mef`
//! replicas, all on 127.0.0.1: first on replicas that share nothing, then on two replicas of
//! one PostgreSQL database (a throw-away server, tests/common/postgres.rs). Needs `haproxy`
//! and PostgreSQL (the tests fail without them).

mod common;

use common::haproxy::HaProxy;
use common::load::{self, LoadConfig};
use common::postgres::PgServer;
use common::replica::{self, Replica};
use common::{agent, temp_dir, ThirdPartyCa};
use std::time::Duration;

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
    common::say(format!("replica per /cacerts through haproxy: {served:?}"));
    // Round robin over new connections: strictly alternating.
    for w in served.windows(2) {
        assert_ne!(w[0], w[1], "{served:?}");
    }
    assert_eq!(cacerts_served(&a), 5.0);
    assert_eq!(cacerts_served(&b), 5.0);
    // The health checks complete their TLS handshakes (none counted as failed).
    for r in [&a, &b] {
        assert_eq!(r.scrape().get("mef_tls_handshake_failures_total"), 0.0);
    }

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
    common::say(format!("haproxy: {:?}", hp.stats()));
    drop(hp);
    let _ = std::fs::remove_dir_all(&root);
}

// ---------------------------------------------------------------------------------------------
// Two replicas on one PostgreSQL behind HAProxy
// ---------------------------------------------------------------------------------------------

/// Two replicas sharing one PostgreSQL database and one data directory (the CA and server key
/// files on shared storage, README "Replicas"), HAProxy in front.
struct Cluster {
    root: std::path::PathBuf,
    pg: PgServer,
    url: String,
    tp: ThirdPartyCa,
    a: Replica,
    b: Replica,
    hp: HaProxy,
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let root = temp_dir(name);
        let pg = PgServer::start();
        let url = pg.create_database("mef");
        let tp = ThirdPartyCa::new(&root, "tp");
        let dir = root.join("shared");
        let args = [
            "--database",
            url.as_str(),
            "--client-trust",
            tp.pem_path.to_str().unwrap(),
            "--retry-after",
            "1",
        ];
        let a = Replica::start("a", &dir, "127.0.0.1:0", &args);
        let b = Replica::start("b", &dir, "127.0.0.1:0", &args);
        assert_eq!(a.ca_der, b.ca_der, "the replicas do not share the CA");
        let hp = HaProxy::start(&root.join("haproxy"), &[("a", a.addr), ("b", b.addr)]);
        Cluster {
            root,
            pg,
            url,
            tp,
            a,
            b,
            hp,
        }
    }

    fn replicas(&self) -> [&Replica; 2] {
        [&self.a, &self.b]
    }

    /// A client certificate named `cn` from the third-party CA, registered as CSE `cse_id`
    /// (`identity add` against the shared database).
    fn device(&self, cn: &str, cse_id: &str) -> common::ClientCreds {
        let creds = self.tp.issue_client(cn);
        load::register_on(&self.a.dir, Some(&self.url), &creds, cse_id);
        creds
    }

    fn devices(&self, n: usize) -> Vec<load::Device> {
        load::devices_on(&self.tp, &self.a.dir, Some(&self.url), n)
    }

    fn store(&self) -> onem2m_mef::Store {
        onem2m_mef::Store::open_database(&self.url.parse().unwrap(), &self.a.dir).unwrap()
    }
}

impl Drop for Cluster {
    /// The processes first (the fields drop after this), then the scratch folder; PostgreSQL's
    /// own folder goes with `PgServer`.
    fn drop(&mut self) {
        self.a.kill();
        self.b.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The replica among `rs` whose counter `key` grew while `f` ran.
fn served_by<T>(rs: &[&Replica], key: &str, f: impl FnOnce() -> T) -> (usize, T) {
    let before: Vec<f64> = rs.iter().map(|r| r.scrape().get(key)).collect();
    let out = f();
    let after: Vec<f64> = rs.iter().map(|r| r.scrape().get(key)).collect();
    let grew: Vec<usize> = (0..rs.len()).filter(|&i| after[i] > before[i]).collect();
    assert_eq!(grew.len(), 1, "{key}: {before:?} -> {after:?}");
    (grew[0], out)
}

fn requests(op: &str) -> String {
    format!("mef_requests_total{{operation=\"{op}\"}}")
}

/// TS-0003 8.3.6.2.2/8.3.6.2.3 through the balancer with every EST request on a new
/// connection: /csrattrs answered by one replica, the enrollment by the other (the password
/// and the client's record are in the shared database), for initial provisioning,
/// re-provisioning and server-side key generation; then the client library's procedures
/// (one kept-alive connection each, pinned to one replica) through it too.
#[test]
fn both_procedures_and_serverkeygen_through_the_balancer_land_on_both_replicas() {
    let c = Cluster::start("ha-procedures");
    let cse = "cse01.sp.example.com";
    let dev = c.device("device", cse);
    let rs = c.replicas();
    let base = c.hp.base_uri();
    let fresh = |creds: &common::ClientCreds| agent(&c.a.ca_der, Some(creds));
    let mut creds = dev;
    let mut spread = Vec::new();
    for op in ["simpleenroll", "simplereenroll", "serverkeygen"] {
        let (x, pw) = served_by(&rs, &requests("csrattrs"), || {
            replica::fetch_password(&fresh(&creds), &base)
        });
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = common::make_csr(&key, &[common::dns(cse)], Some(&pw), None);
        let (y, r) = served_by(&rs, &requests(op), || {
            common::post_csr(&fresh(&creds), &format!("{base}/{op}"), &csr)
        });
        assert_eq!(r.status, 200, "{op}: {}", r.text());
        assert_ne!(
            x, y,
            "{op}: /csrattrs and the enrollment on the same replica"
        );
        spread.push((op, rs[x].name.clone(), rs[y].name.clone()));
        creds = if op == "serverkeygen" {
            let ct = r.header("content-type").unwrap().to_string();
            let d = onem2m_est_proto::multipart::decode_serverkeygen(&ct, &r.body).unwrap();
            common::ClientCreds {
                cert_der: d.certificates[0].clone(),
                key: rcgen::KeyPair::try_from(&d.private_key_pkcs8[..]).unwrap(),
            }
        } else {
            common::ClientCreds {
                cert_der: r.certs()[0].clone(),
                key,
            }
        };
    }
    common::say(format!(
        "procedure: (csrattrs at, enrollment at): {spread:?}"
    ));
    // The client library: a procedure on one connection, whichever replica it reaches.
    let creds = c.device("library device", "cse02.sp.example.com");
    let d = load::device_of(&creds, "cse02.sp.example.com".into());
    let report = load::run(&LoadConfig {
        base_uri: base.clone(),
        trust_anchor: c.a.ca_der.clone(),
        devices: vec![d],
        duration: Duration::from_millis(500),
        max_attempts: 1,
    });
    assert!(report.completed() >= 2 && report.failed_attempts() == 0);
    for r in rs {
        let m = r.scrape();
        // Each replica's PostgreSQL pool (--database-pool, default 16).
        assert_eq!(m.get("mef_database_connections_limit"), 16.0, "{}", r.name);
        let busy = m.get("mef_database_connections_busy");
        assert!((0.0..=16.0).contains(&busy), "{}: {busy}", r.name);
        assert!(m.get("mef_database_calls_total") > 0.0);
        common::say(format!(
            "{}: csrattrs {} simpleenroll {} simplereenroll {} serverkeygen {}",
            r.name,
            m.get(&requests("csrattrs")),
            m.get(&requests("simpleenroll")),
            m.get(&requests("simplereenroll")),
            m.get(&requests("serverkeygen"))
        ));
    }
}

/// A challengePassword handed out by replica A is redeemed exactly once at replica B, when
/// eight requests present it at once (four at B, four at A): CR 8.3.Z.2.3 step 3, across
/// replicas through the database's atomic claim.
#[test]
fn a_password_from_replica_a_is_accepted_once_at_replica_b_under_concurrent_attempts() {
    let c = Cluster::start("ha-password");
    let cse = "cse01.sp.example.com";
    let dev = c.device("device", cse);
    let ag = agent(&c.a.ca_der, Some(&dev));
    for bases in [vec![c.b.base_uri()], vec![c.b.base_uri(), c.a.base_uri()]] {
        let pw = replica::fetch_password(&ag, &c.a.base_uri());
        let mut s = replica::race_password(&ag, &bases, common::dns(cse), &pw, 8);
        s.sort();
        assert_eq!(s, [200, 403, 403, 403, 403, 403, 403, 403], "at {bases:?}");
    }
    // Each replica's refusals show the losers.
    let refused: f64 = c
        .replicas()
        .iter()
        .map(|r| {
            r.scrape()
                .get("mef_refusals_total{operation=\"simpleenroll\",reason=\"forbidden\"}")
        })
        .sum();
    assert_eq!(refused, 14.0);
}

/// The load through the balancer while replica A is SIGKILLed and restarted: the run
/// completes, every certificate is accounted for in PostgreSQL, no password was redeemed
/// twice, and the database is consistent.
#[test]
fn load_through_the_balancer_survives_a_replica_sigkilled_mid_run() {
    let mut c = Cluster::start("ha-kill");
    let devices = c.devices(4);
    let cfg = LoadConfig {
        base_uri: c.hp.base_uri(),
        trust_anchor: c.a.ca_der.clone(),
        devices,
        duration: Duration::from_secs(12),
        max_attempts: 100,
    };
    let report = std::thread::scope(|s| {
        let (a, hp) = (&mut c.a, &c.hp);
        s.spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            a.kill();
            common::say("SIGKILLed replica a mid-load");
            hp.wait_down("a");
            std::thread::sleep(Duration::from_secs(2));
            a.restart();
            hp.wait_up(2);
            common::say("replica a restarted and back in the balancer");
        });
        load::run(&cfg)
    });
    report.print("HA: 2 replicas on PostgreSQL behind HAProxy, replica a SIGKILLed mid-run");
    report.write_log(&c.root.join("client.log"));
    assert_eq!(report.abandoned, 0);
    assert!(
        report.failed_attempts() > 0,
        "the kill did not hit the load"
    );
    // Both replicas issued certificates after the restart (a's counters restarted with it).
    for r in c.replicas() {
        let m = r.scrape();
        let issued = m.get("mef_certificates_issued_total{operation=\"simpleenroll\"}")
            + m.get("mef_certificates_issued_total{operation=\"simplereenroll\"}");
        common::say(format!(
            "{}: {issued} certificates issued (since its start)",
            r.name
        ));
        assert!(issued > 0.0, "{} issued nothing", r.name);
    }
    let store = c.store();
    common::say(load::check_consistency(&report, &replica::recorded(&store)));
    pg_consistency(&c.pg);
}

/// Referential checks of the PostgreSQL records after a run.
fn pg_consistency(pg: &PgServer) {
    let mut db = postgres::Client::connect(&pg.url("mef"), postgres::NoTls).unwrap();
    let q =
        |db: &mut postgres::Client, sql: &str| -> i64 { db.query_one(sql, &[]).unwrap().get(0) };
    let orphans = q(
        &mut db,
        "SELECT count(*) FROM issued_certs c WHERE c.authenticated_by IS NULL
            OR NOT (EXISTS (SELECT 1 FROM identities i WHERE i.fingerprint = c.authenticated_by)
                 OR EXISTS (SELECT 1 FROM issued_certs p WHERE p.fingerprint = c.authenticated_by))",
    );
    assert_eq!(orphans, 0, "certificates whose principal is unknown");
    let dup = q(
        &mut db,
        "SELECT count(*) FROM (SELECT fingerprint FROM issued_certs GROUP BY fingerprint
            HAVING count(*) > 1) d",
    );
    assert_eq!(dup, 0);
    common::say("PostgreSQL: every certificate's principal is a registered identity or an issued certificate; no duplicate");
}

/// PostgreSQL stopped mid-run: the replicas answer 503 with Retry-After while it is away and
/// serve again once it is back, without a restart of their own (same process start time).
#[test]
fn postgres_restarted_mid_run_gives_503_with_retry_after_and_the_replicas_recover() {
    let c = Cluster::start("ha-pg-restart");
    let devices = c.devices(3);
    let probe = c.device("probe", "probe.sp.example.com");
    let started: Vec<f64> = c
        .replicas()
        .iter()
        .map(|r| r.scrape().get("process_start_time_seconds"))
        .collect();
    let cfg = LoadConfig {
        base_uri: c.hp.base_uri(),
        trust_anchor: c.a.ca_der.clone(),
        devices,
        duration: Duration::from_secs(10),
        max_attempts: 200,
    };
    let outage = std::thread::scope(|s| {
        let (c, probe) = (&c, &probe);
        let h = s.spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            c.pg.stop();
            common::say("PostgreSQL stopped mid-run");
            // While it is away, each replica answers 503 with Retry-After.
            let mut seen = Vec::new();
            for r in c.replicas() {
                let resp = common::get(
                    &agent(&r.ca_der, Some(probe)),
                    &format!("{}/csrattrs", r.base_uri()),
                )
                .unwrap();
                seen.push((
                    r.name.clone(),
                    resp.status,
                    resp.header("retry-after").map(str::to_owned),
                ));
            }
            // Through the balancer too: the replicas stay in its pool (their health check
            // needs no database) and the client gets the 503 itself.
            let resp = common::get(
                &agent(&c.a.ca_der, Some(probe)),
                &format!("{}/csrattrs", c.hp.base_uri()),
            )
            .unwrap();
            seen.push((
                "haproxy".to_string(),
                resp.status,
                resp.header("retry-after").map(str::to_owned),
            ));
            std::thread::sleep(Duration::from_secs(2));
            c.pg.resume();
            common::say("PostgreSQL restarted");
            seen
        });
        let report = load::run(&cfg);
        (report, h.join().unwrap())
    });
    let (report, seen) = outage;
    report.print("HA: PostgreSQL restarted mid-run");
    common::say(format!("during the outage: {seen:?}"));
    for (name, status, retry_after) in &seen {
        assert_eq!(*status, 503, "{name}");
        let ra: u64 = retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(ra >= 1, "{name}: Retry-After {ra}");
    }
    assert_eq!(report.abandoned, 0);
    assert!(
        report.failed_attempts() > 0,
        "the outage did not hit the load"
    );
    // Recovered without a restart: the same processes serve, and succeed.
    let ag = agent(&c.a.ca_der, Some(&probe));
    for (r, t0) in c.replicas().iter().zip(&started) {
        let m = r.scrape();
        assert_eq!(
            m.get("process_start_time_seconds"),
            *t0,
            "{} restarted",
            r.name
        );
        assert!(m.get("mef_refusals_total{operation=\"csrattrs\",reason=\"unavailable\"}") >= 1.0);
        assert!(m.get("mef_database_errors_total") >= 1.0);
        let pw = replica::fetch_password(&ag, &r.base_uri());
        let s = replica::race_password(
            &ag,
            &[r.base_uri()],
            common::dns("probe.sp.example.com"),
            &pw,
            1,
        );
        assert_eq!(s, [200], "{} after the outage", r.name);
    }
    // The probe's certificates are not the load's.
    let store = c.store();
    let probe_fp = probe.fingerprint();
    let recorded: Vec<_> = replica::recorded(&store)
        .into_iter()
        .filter(|(_, _, by)| by.as_deref() != Some(probe_fp.as_str()))
        .collect();
    common::say(load::check_consistency(&report, &recorded));
}

/// The HAProxy configuration of mef/README.md ("The balancer") is one haproxy accepts.
#[test]
fn the_readme_haproxy_configuration_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("\n```text\ndefaults\n")
        .expect("the HAProxy configuration block of mef/README.md");
    let block = &readme[start + "\n```text\n".len()..];
    let block = &block[..block.find("```").unwrap()];
    assert!(block.contains("tcp-check connect ssl"), "{block}");
    let dir = temp_dir("ha-readme-cfg");
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(&cfg, block).unwrap();
    let (ok, out) = common::run_text(
        std::process::Command::new(common::haproxy::haproxy_bin())
            .args(["-c", "-f"])
            .arg(&cfg),
    );
    assert!(ok, "haproxy -c refused the README's configuration:\n{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
