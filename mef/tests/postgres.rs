//! The PostgreSQL backend (`--database postgres://...`) against a real, throw-away PostgreSQL
//! server (tests/common/postgres.rs): these tests fail, never skip, when PostgreSQL is missing.

mod common;

use common::postgres::PgServer;
use common::*;
use onem2m_mef::challenge::{ChallengeCheck, Challenges};
use onem2m_mef::store::SCHEMA_VERSION;
use onem2m_mef::{Database, Store};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn open(db: &Database) -> Arc<Store> {
    Arc::new(Store::open_database(db, Path::new("/nonexistent")).unwrap())
}

/// Two replicas starting at once on a fresh database both migrate it (one waits for the
/// other's migration under the advisory lock) and find the current schema.
#[test]
fn replicas_starting_at_once_migrate_once() {
    let pg = PgServer::start();
    let db: Database = pg.create_database("migrate").parse().unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                Store::open_database(&db, Path::new("/nonexistent")).map(|s| s.schema_version())
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap().unwrap(), SCHEMA_VERSION);
    }
    // The pool as monitoring sees it: bounded by its configured size.
    let Database::Postgres { config, .. } = db else {
        unreachable!()
    };
    let small = Database::Postgres {
        config,
        pool_size: 3,
    };
    let s = open(&small);
    let state = s.pool_state().unwrap();
    assert_eq!(state.max, 3);
    assert!(
        state.connections >= 1 && state.idle <= state.connections,
        "{state:?}"
    );
    let dir = temp_dir("pg-pool-state");
    assert_eq!(Store::open(&dir).unwrap().pool_state(), None);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A challengePassword issued by replica A is redeemed exactly once at replica B, whatever the
/// number of concurrent attempts, and refused afterwards at either replica.
#[test]
fn challenge_password_is_single_use_across_replicas() {
    let pg = PgServer::start();
    let db: Database = pg.create_database("challenges").parse().unwrap();
    let (a, b) = (open(&db), open(&db));
    let issued_at_a = Challenges::new(a.clone());
    let password = issued_at_a
        .issue("client-1", Duration::from_secs(60))
        .unwrap();
    let at_b = Arc::new(Challenges::new(b.clone()));
    assert_eq!(
        at_b.check("client-1", &password).unwrap(),
        ChallengeCheck::Valid
    );
    assert_eq!(
        at_b.check("client-2", &password).unwrap(),
        ChallengeCheck::Unknown
    );
    for round in 0..5 {
        let password = if round == 0 {
            password.clone()
        } else {
            issued_at_a
                .issue("client-1", Duration::from_secs(60))
                .unwrap()
        };
        let threads = 16;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                // Half the attempts at B through one store, the others each through a store of
                // their own (a replica of their own) on the same database.
                let challenges = if i % 2 == 0 {
                    at_b.clone()
                } else {
                    Arc::new(Challenges::new(open(&db)))
                };
                let (barrier, password) = (barrier.clone(), password.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    challenges.consume("client-1", &password).unwrap()
                })
            })
            .collect();
        let won = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&w| w)
            .count();
        assert_eq!(
            won, 1,
            "round {round}: exactly one attempt claims the password"
        );
        assert_eq!(
            issued_at_a.check("client-1", &password).unwrap(),
            ChallengeCheck::Unknown
        );
        assert!(!at_b.consume("client-1", &password).unwrap());
    }
    // The per-client cap holds across replicas: the oldest of nine pending passwords is gone.
    let oldest = issued_at_a
        .issue("client-3", Duration::from_secs(60))
        .unwrap();
    for _ in 0..8 {
        at_b.issue("client-3", Duration::from_secs(60)).unwrap();
    }
    assert_eq!(
        issued_at_a.check("client-3", &oldest).unwrap(),
        ChallengeCheck::Unknown
    );
    let expired = issued_at_a.issue("client-4", Duration::ZERO).unwrap();
    assert_eq!(
        at_b.check("client-4", &expired).unwrap(),
        ChallengeCheck::Expired
    );
}

/// A malformed or unreachable database is reported without the password of its URL.
#[test]
fn database_errors_never_show_the_password() {
    for url in [
        "postgres://mef:s3cr3t-pw@127.0.0.1:notaport/mef",
        "postgres://mef:s3cr3t-pw@127.0.0.1:1/mef",
    ] {
        let (ok, out, err) = run_cli(&["identity", "list", "--database", url]);
        assert!(!ok, "{out}");
        assert!(err.contains("error:"), "{err}");
        assert!(
            !err.contains("s3cr3t-pw") && !out.contains("s3cr3t-pw"),
            "{err}"
        );
    }
}

/// Registers the device's third-party certificate in the replicas' database with the CLI, no
/// data directory involved.
fn register_in(url: &str, dir: &Path, device: &ClientCreds) {
    let (pem_path, _) = device.write_pem(dir, "device");
    let (ok, out, err) = run_cli(&[
        "identity",
        "add",
        "--database",
        url,
        "--client-cert",
        pem_path.to_str().unwrap(),
        "--subject-type",
        "ae",
        "--subject-id",
        AE_ID,
    ]);
    assert!(ok, "identity add --database: {out} {err}");
}

/// Two `onem2m-mef` replicas on one PostgreSQL database and one shared data directory (the key
/// material), started at once on a fresh one: they serve the same CA, keep no database file,
/// and any request of a procedure may reach either of them.
#[test]
fn replicas_on_postgres_share_the_ca_and_serve_each_others_procedures() {
    let pg = PgServer::start();
    let url = pg.create_database("replicas");
    let dir = temp_dir("pg-replicas");
    let keys = dir.join("mef");
    let tp = ThirdPartyCa::new(&dir, "tp");
    let device = tp.issue_client("device");
    register_in(&url, &dir, &device);
    let trust = tp.pem_path.to_str().unwrap().to_owned();
    let extra = ["--database", url.as_str(), "--client-trust", trust.as_str()];
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| MefProc::start(&keys, &extra));
        let b = s.spawn(|| MefProc::start(&keys, &extra));
        (a.join().unwrap(), b.join().unwrap())
    });
    // One CA, created once: both replicas serve the same /cacerts.
    let cacerts = |m: &MefProc| get(&agent(&m.ca_der, None), &m.url("cacerts")).unwrap();
    assert_eq!(cacerts(&a).certs(), cacerts(&b).certs());
    assert!(!keys.join(onem2m_mef::store::DB_FILE).exists());

    // Initial provisioning: /csrattrs at A, /simpleenroll at B; the password is then spent at A.
    let dev = agent(&a.ca_der, Some(&device));
    let attrs = fetch_attrs(&dev, &a);
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = make_csr(&key, &[uri(AE_ID)], Some(&attrs.password), None);
    let certs = post_csr(&dev, &b.url("simpleenroll"), &csr).certs();
    post_csr(&dev, &a.url("simpleenroll"), &csr).assert_error(403, "does not match");
    let issued = ClientCreds {
        cert_der: certs[0].clone(),
        key,
    };
    // Re-provisioning with the issued certificate: /csrattrs at B, /simplereenroll at A.
    let renewer = agent(&a.ca_der, Some(&issued));
    let attrs = fetch_attrs(&renewer, &b);
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = make_csr(&key, &[uri(AE_ID)], Some(&attrs.password), None);
    let renewed = ClientCreds {
        cert_der: post_csr(&renewer, &a.url("simplereenroll"), &csr).certs()[0].clone(),
        key,
    };

    // The management commands work on the database alone, named by --database or by
    // $ONEM2M_MEF_DATABASE.
    let (ok, out, err) = run_cli(&["cert", "list", "--database", &url, "--json"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = std::process::Command::new(bin())
        .args(["cert", "list", "--json"])
        .env("ONEM2M_MEF_DATABASE", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let out = std::process::Command::new(bin())
        .args(["cert", "list"])
        .env_remove("ONEM2M_MEF_DATABASE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data-dir"));
    let (ok, out, err) = run_cli(&[
        "cert",
        "revoke",
        "--database",
        &url,
        "--id",
        &issued.fingerprint(),
    ]);
    assert!(ok, "{out} {err}");
    assert!(out.contains("2 certificate(s)"), "{out}");
    // Revoked at both replicas, with its renewal.
    for m in [&a, &b] {
        let r = get(&agent(&m.ca_der, Some(&renewed)), &m.url("csrattrs")).unwrap();
        assert_eq!(r.status, 403, "{}", r.text());
    }
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

/// PostgreSQL stopping under a running MEF: requests that need the database are answered 503
/// with Retry-After (RFC 7030 4.2.3), and once it is back the same MEF process serves again.
#[test]
fn database_outage_answers_503_and_the_mef_recovers() {
    let pg = PgServer::start();
    let url = pg.create_database("outage");
    let dir = temp_dir("pg-outage");
    let tp = ThirdPartyCa::new(&dir, "tp");
    let device = tp.issue_client("device");
    register_in(&url, &dir, &device);
    let trust = tp.pem_path.to_str().unwrap().to_owned();
    let mef = MefProc::start(
        &dir.join("mef"),
        &["--database", &url, "--client-trust", &trust],
    );
    let dev = agent(&mef.ca_der, Some(&device));
    let attrs = fetch_attrs(&dev, &mef);

    pg.stop();
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = make_csr(&key, &[uri(AE_ID)], Some(&attrs.password), None);
    for r in [
        get(&dev, &mef.url("csrattrs")).unwrap(),
        post_csr(&dev, &mef.url("simpleenroll"), &csr),
    ] {
        r.assert_error(503, "database is unavailable");
        assert_eq!(r.header("retry-after"), Some("10"));
    }
    // /cacerts needs no database.
    assert_eq!(get(&dev, &mef.url("cacerts")).unwrap().status, 200);

    pg.resume();
    // The pool replaces its dead connections: the very next requests succeed, and the
    // password fetched before the outage is still pending.
    let r = post_csr(&dev, &mef.url("simpleenroll"), &csr);
    assert_eq!(r.certs().len(), 1);
    enroll(&dev, &mef, uri(AE_ID));
    drop(mef);
    let _ = std::fs::remove_dir_all(&dir);
}
