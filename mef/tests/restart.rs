//! The single SQLite MEF survives a SIGKILL mid-load (issue #17): the load runner's clients
//! retry what the dead process did not finish, the restarted process (same data directory,
//! same port) serves them, and afterwards every certificate is accounted for, no
//! challengePassword was redeemed twice and the database passes its integrity check.

mod common;

use common::load::{self, LoadConfig};
use common::replica::{self, Replica};
use common::{agent, temp_dir, ThirdPartyCa};
use std::time::Duration;

#[test]
fn a_sigkilled_sqlite_mef_restarts_mid_load_and_every_certificate_is_accounted_for() {
    let root = temp_dir("restart-mid-load");
    let dir = root.join("mef");
    let tp = ThirdPartyCa::new(&root, "tp");
    let tp_pem = tp.pem_path.to_str().unwrap().to_owned();
    let mut mef = Replica::start("single", &dir, "127.0.0.1:0", &["--client-trust", &tp_pem]);
    let devices = load::devices(&tp, &dir, 4);
    let cfg = LoadConfig {
        base_uri: mef.base_uri(),
        trust_anchor: mef.ca_der.clone(),
        devices: devices.clone(),
        duration: Duration::from_secs(8),
        max_attempts: 100,
    };
    // A probe device, and a password handed out by the process that will be killed.
    let probe = tp.issue_client("probe");
    common::register(&dir, &probe, "cse", PROBE_ID);
    let probe_agent = agent(&mef.ca_der, Some(&probe));
    let password_before_kill = replica::fetch_password(&probe_agent, &mef.base_uri());
    let report = std::thread::scope(|s| {
        let mef = &mut mef;
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(2500));
            let pid = mef.pid();
            mef.kill();
            common::say(format!("SIGKILLed the MEF (pid {pid:?}) mid-load"));
            std::thread::sleep(Duration::from_millis(1000));
            mef.restart();
            common::say(format!(
                "restarted it on {} (pid {:?})",
                mef.addr,
                mef.pid()
            ));
        });
        load::run(&cfg)
    });
    report.print("restart mid-load, single SQLite MEF");
    report.write_log(&root.join("client.log"));
    assert_eq!(report.abandoned, 0, "a procedure was given up");
    assert!(
        report.failed_attempts() > 0,
        "no attempt failed: the kill did not hit the load"
    );
    // After the restart every device completed both procedures again.
    for (i, _) in devices.iter().enumerate() {
        let last = report
            .attempts
            .iter()
            .rev()
            .find(|a| a.device == i)
            .unwrap();
        assert!(last.outcome.is_ok(), "device {i} ended on a failure");
    }
    let store = onem2m_mef::Store::open(&dir).unwrap();
    common::say(load::check_consistency(&report, &replica::recorded(&store)));
    // Passwords are single-use across the restart (they are kept in the database): one handed
    // out before the kill is redeemed once afterwards, by one of 8 simultaneous requests, and
    // so is a fresh one (CR 8.3.Z.2.3 step 3).
    let base = [mef.base_uri()];
    let san = common::dns(PROBE_ID);
    let fresh = replica::fetch_password(&probe_agent, &mef.base_uri());
    for (what, password) in [
        ("from before the kill", &password_before_kill),
        ("fresh", &fresh),
    ] {
        let mut s = replica::race_password(&probe_agent, &base, san.clone(), password, 8);
        s.sort();
        assert_eq!(
            s,
            [200, 403, 403, 403, 403, 403, 403, 403],
            "{what} password, 8 attempts"
        );
        let again = replica::race_password(&probe_agent, &base, san.clone(), password, 1);
        assert_eq!(again, [403], "{what} password presented again");
    }
    common::say(
        "challengePassword: one from before the kill and a fresh one each redeemed once of 8 \
         simultaneous attempts, refused afterwards",
    );
    drop(store);
    mef.kill();
    let integrity = replica::sqlite_integrity(&dir);
    common::say(format!("PRAGMA integrity_check: {integrity}"));
    assert_eq!(integrity, "ok");
    let _ = std::fs::remove_dir_all(&root);
}

const PROBE_ID: &str = "probe.sp.example.com";
