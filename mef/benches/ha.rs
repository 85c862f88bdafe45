//! Figures of the MEF deployments of issue #17 (BENCHMARKS.md, "MEF replicas"): the load
//! runner of the HA tests (tests/common/load.rs: N devices, each initial provisioning then
//! re-provisioning in a loop, through the client library) against
//!
//! - one SQLite MEF, clients connecting directly;
//! - the same through HAProxy (TCP mode): the balancer's own cost;
//!
//! and prints enrolments per second, latency percentiles and database calls per enrolment
//! (the MEF's `mef_database_calls_total`). Never a timed assertion.
//!
//! `cargo bench -p onem2m-mef --bench ha -- [--quick] [--seconds S] [--threads N]`

#[path = "../tests/common/mod.rs"]
mod common;

use common::haproxy::HaProxy;
use common::load::{self, LoadConfig, LoadReport};
use common::replica::Replica;
use std::time::Duration;

fn take_opt(args: &mut Vec<String>, name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.remove(i);
    (i < args.len()).then(|| args.remove(i))
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    args.retain(|a| a != "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    args.retain(|a| a != "--quick");
    let seconds: f64 = take_opt(&mut args, "--seconds")
        .map(|v| v.parse().expect("--seconds S"))
        .unwrap_or(if quick { 2.0 } else { 10.0 });
    let threads: usize = take_opt(&mut args, "--threads")
        .map(|v| v.parse().expect("--threads N"))
        .unwrap_or(4);
    let duration = Duration::from_secs_f64(seconds);
    println!(
        "# MEF deployments, {threads} client threads x {seconds} s, {} CPU(s), load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split(' ')
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    let root = common::temp_dir("bench-ha");
    let tp = common::ThirdPartyCa::new(&root, "tp");
    let tp_pem = tp.pem_path.to_str().unwrap().to_owned();

    // One SQLite MEF, directly and through HAProxy.
    let dir = root.join("sqlite");
    let mef = Replica::start("sqlite", &dir, "127.0.0.1:0", &["--client-trust", &tp_pem]);
    let devices = load::devices(&tp, &dir, threads);
    let direct = LoadConfig {
        base_uri: mef.base_uri(),
        trust_anchor: mef.ca_der.clone(),
        devices,
        duration,
        max_attempts: 5,
    };
    measure("SQLite, 1 replica, direct", &direct, &[&mef]);
    let hp = HaProxy::start(&root.join("haproxy"), &[("a", mef.addr)]);
    let through = LoadConfig {
        base_uri: hp.base_uri(),
        ..direct
    };
    measure("SQLite, 1 replica, through HAProxy", &through, &[&mef]);
    drop(hp);
    drop(mef);
    let _ = std::fs::remove_dir_all(&root);
}

/// One load run: its figures, and the database calls the replicas made per enrolment.
fn measure(label: &str, cfg: &LoadConfig, replicas: &[&Replica]) -> LoadReport {
    let calls = |rs: &[&Replica]| -> f64 {
        rs.iter()
            .map(|r| r.scrape().get("mef_database_calls_total"))
            .sum()
    };
    let before = calls(replicas);
    let report = load::run(cfg);
    let after = calls(replicas);
    report.print(label);
    println!(
        "{label}: {:.1} database calls per enrolment (mef_database_calls_total)",
        (after - before) / report.completed().max(1) as f64
    );
    report
}
