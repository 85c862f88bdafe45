//! The PostgreSQL backend (`--database postgres://...`) against a real, throw-away PostgreSQL
//! server (tests/common/postgres.rs): these tests fail, never skip, when PostgreSQL is missing.

mod common;

use common::postgres::PgServer;
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
}
