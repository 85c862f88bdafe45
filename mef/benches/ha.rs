//! Figures of the MEF deployments of issue #17 (BENCHMARKS.md, "MEF replicas"): the load
//! runner of the HA tests (tests/common/load.rs: N devices, each initial provisioning then
//! re-provisioning in a loop, through the client library) against
//!
//! - one SQLite MEF, clients connecting directly;
//! - the same through HAProxy (TCP mode): the balancer's own cost;
//! - one MEF on PostgreSQL (a throw-away server, tests/common/postgres.rs), directly and
//!   through HAProxy;
//! - two replicas on that PostgreSQL behind HAProxy;
//!
//! and prints enrolments (procedures: initial provisioning or re-provisioning) per second,
//! latency percentiles, store calls per enrolment (the MEF's `mef_database_calls_total`) and,
//! for PostgreSQL, the SQL statements per enrolment as the server counted them
//! (`pg_stat_statements`: every round trip, BEGIN and COMMIT included). Never a timed
//! assertion.
//!
//! `cargo bench -p onem2m-mef --bench ha -- [--quick] [--seconds S] [--threads N]`

#[path = "../tests/common/mod.rs"]
mod common;

use common::haproxy::HaProxy;
use common::load::{self, LoadConfig, LoadReport};
use common::postgres::PgServer;
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
    measure("SQLite, 1 replica, direct", &direct, &[&mef], &Vec::new());
    let hp = HaProxy::start(&root.join("haproxy"), &[("a", mef.addr)]);
    let through = LoadConfig {
        base_uri: hp.base_uri(),
        ..direct
    };
    measure(
        "SQLite, 1 replica, through HAProxy",
        &through,
        &[&mef],
        &vec![("HAProxy", hp.pid(), false)],
    );
    drop(hp);
    drop(mef);

    // PostgreSQL: one replica, then two on the same database and key directory.
    let pg = PgServer::start();
    pg.execute(
        "postgres",
        "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
    );
    pg.stop();
    pg.resume();
    let url = pg.create_database("mef");
    pg.execute("mef", "CREATE EXTENSION pg_stat_statements");
    let dir = root.join("shared");
    let args = [
        "--database",
        url.as_str(),
        "--client-trust",
        tp_pem.as_str(),
    ];
    let a = Replica::start("a", &dir, "127.0.0.1:0", &args);
    let devices = load::devices_on(&tp, &dir, Some(&url), threads);
    let direct = LoadConfig {
        base_uri: a.base_uri(),
        trust_anchor: a.ca_der.clone(),
        devices,
        duration,
        max_attempts: 5,
    };
    measure_pg("PostgreSQL, 1 replica, direct", &direct, &[&a], &pg, None);
    let hp = HaProxy::start(&root.join("haproxy-pg1"), &[("a", a.addr)]);
    let one = LoadConfig {
        base_uri: hp.base_uri(),
        ..direct
    };
    measure_pg(
        "PostgreSQL, 1 replica, through HAProxy",
        &one,
        &[&a],
        &pg,
        Some(&hp),
    );
    drop(hp);
    let b = Replica::start("b", &dir, "127.0.0.1:0", &args);
    let hp = HaProxy::start(&root.join("haproxy-pg2"), &[("a", a.addr), ("b", b.addr)]);
    let two = LoadConfig {
        base_uri: hp.base_uri(),
        ..one
    };
    measure_pg(
        "PostgreSQL, 2 replicas, through HAProxy",
        &two,
        &[&a, &b],
        &pg,
        Some(&hp),
    );
    drop(hp);
    drop((a, b, pg));
    let _ = std::fs::remove_dir_all(&root);
}

/// [`measure`], and the statements PostgreSQL executed per enrolment (`pg_stat_statements`,
/// the health checks' CRL lookups and the scrapes included), each listed.
fn measure_pg(
    label: &str,
    cfg: &LoadConfig,
    replicas: &[&Replica],
    pg: &PgServer,
    hp: Option<&HaProxy>,
) {
    let mut db = postgres::Client::connect(&pg.url("mef"), postgres::NoTls).unwrap();
    db.execute("SELECT pg_stat_statements_reset()", &[])
        .unwrap();
    // The postmaster's PID is the first line of postmaster.pid; its children are the backends.
    let postmaster: u32 = std::fs::read_to_string(pg.dir.join("data").join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut others: Watched = vec![("PostgreSQL", postmaster, true)];
    if let Some(hp) = hp {
        others.push(("HAProxy", hp.pid(), false));
    }
    let report = measure(label, cfg, replicas, &others);
    let n = report.completed().max(1) as f64;
    let rows = db
        .query(
            "SELECT calls, query FROM pg_stat_statements
              WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'mef')
                AND query NOT LIKE '%pg_stat_statements%'
              ORDER BY calls DESC",
            &[],
        )
        .unwrap();
    let total: i64 = rows.iter().map(|r| r.get::<_, i64>(0)).sum();
    println!(
        "{label}: {:.1} SQL statements per enrolment (pg_stat_statements), of which:",
        total as f64 / n
    );
    for r in &rows {
        let q: String = r.get(1);
        let q: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
        println!(
            "    {:5.2}  {}",
            r.get::<_, i64>(0) as f64 / n,
            q.chars().take(90).collect::<String>()
        );
    }
}

/// CPU time (user + system) of a process and, with `children`, of its live children (the
/// PostgreSQL backends of a postmaster), in milliseconds, from /proc.
fn cpu_ms(pid: u32, children: bool) -> f64 {
    let ticks = |stat: &str| -> Option<(u32, f64)> {
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // After the command: state, ppid, ... utime (14th field of the line), stime (15th).
        let ppid = f.get(1)?.parse().ok()?;
        let t = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((ppid, t))
    };
    // USER_HZ is 100 on Linux.
    let ms = |t: f64| t * 10.0;
    let own = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| ticks(&s))
        .map_or(0.0, |(_, t)| ms(t));
    if !children {
        return own;
    }
    let mut sum = own;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(s) = std::fs::read_to_string(e.path().join("stat")) {
            if let Some((ppid, t)) = ticks(&s) {
                if ppid == pid {
                    sum += ms(t);
                }
            }
        }
    }
    sum
}

/// Processes whose CPU a run reports: (name, pid, with children).
type Watched = Vec<(&'static str, u32, bool)>;

/// One load run: its figures, the database calls the replicas made per enrolment, and the CPU
/// per enrolment of the MEF replicas, the client threads (this process) and `others`.
fn measure(label: &str, cfg: &LoadConfig, replicas: &[&Replica], others: &Watched) -> LoadReport {
    let calls = |rs: &[&Replica]| -> f64 {
        rs.iter()
            .map(|r| r.scrape().get("mef_database_calls_total"))
            .sum()
    };
    let mut watched: Watched = replicas
        .iter()
        .map(|r| ("MEF", r.pid().unwrap(), false))
        .collect();
    watched.push(("clients", std::process::id(), false));
    watched.extend(others.iter().cloned());
    let before = calls(replicas);
    let cpu0: Vec<f64> = watched.iter().map(|w| cpu_ms(w.1, w.2)).collect();
    let report = load::run(cfg);
    let cpu1: Vec<f64> = watched.iter().map(|w| cpu_ms(w.1, w.2)).collect();
    let after = calls(replicas);
    report.print(label);
    let n = report.completed().max(1) as f64;
    println!(
        "{label}: {:.1} database calls per enrolment (mef_database_calls_total)",
        (after - before) / n
    );
    let mut per: Vec<(&str, f64)> = Vec::new();
    for (i, w) in watched.iter().enumerate() {
        let d = (cpu1[i] - cpu0[i]) / n;
        match per.iter_mut().find(|p| p.0 == w.0) {
            Some(p) => p.1 += d,
            None => per.push((w.0, d)),
        }
    }
    let text: Vec<String> = per.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
    println!("{label}: CPU ms per enrolment: {}", text.join(", "));
    report
}
