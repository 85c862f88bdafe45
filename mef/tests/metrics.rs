//! `/metrics` (issue #17): the Prometheus text format on its own plain-HTTP listener, scraped
//! after some requests and parsed strictly (common::replica::parse_exposition).

mod common;

use common::replica::{self, Replica};
use common::{agent, get, temp_dir, ThirdPartyCa};

const CSE: &str = "cse01.sp.example.com";

#[test]
fn metrics_count_requests_refusals_issuance_and_report_saturation_and_expiry() {
    let root = temp_dir("metrics");
    let dir = root.join("mef");
    let tp = ThirdPartyCa::new(&root, "tp");
    let mef = Replica::start(
        "m",
        &dir,
        "127.0.0.1:0",
        &[
            "--client-trust",
            tp.pem_path.to_str().unwrap(),
            "--max-connections",
            "17",
        ],
    );
    let dev = tp.issue_client("device");
    common::register(&dir, &dev, "cse", CSE);
    let a = agent(&mef.ca_der, Some(&dev));
    let base = mef.base_uri();
    for _ in 0..2 {
        let pw = replica::fetch_password(&a, &base);
        let s = replica::race_password(&a, std::slice::from_ref(&base), common::dns(CSE), &pw, 1);
        assert_eq!(s, [200]);
    }
    assert_eq!(
        get(&a, &format!("{base}/simpleenroll")).unwrap().status,
        405
    );
    assert_eq!(get(&a, &format!("{base}/nosuchop")).unwrap().status, 404);
    // Not on the EST listener.
    let on_est = get(
        &a,
        &format!("https://localhost:{}/metrics", mef.addr.port()),
    )
    .unwrap();
    assert_eq!(on_est.status, 404);
    assert_eq!(get(&a, &format!("{base}/cacerts")).unwrap().status, 200);

    let m = mef.scrape();
    for (family, kind) in [
        ("mef_requests_total", "counter"),
        ("mef_refusals_total", "counter"),
        ("mef_certificates_issued_total", "counter"),
        ("mef_issuance_duration_seconds", "histogram"),
        ("mef_tls_handshake_failures_total", "counter"),
        ("mef_database_calls_total", "counter"),
        ("mef_database_errors_total", "counter"),
        ("mef_database_duration_seconds", "histogram"),
        ("mef_connection_threads_busy", "gauge"),
        ("mef_connection_threads_limit", "gauge"),
        ("mef_connections_queued", "gauge"),
        ("mef_ca_certificate_expiry_seconds", "gauge"),
        ("process_start_time_seconds", "gauge"),
        ("mef_database_connections_busy", "gauge"),
        ("mef_database_connections_limit", "gauge"),
    ] {
        assert_eq!(
            m.types.get(family).map(String::as_str),
            Some(kind),
            "{family}"
        );
    }
    let req = |op: &str| m.get(&format!("mef_requests_total{{operation=\"{op}\"}}"));
    let refused = |op: &str, reason: &str| {
        m.get(&format!(
            "mef_refusals_total{{operation=\"{op}\",reason=\"{reason}\"}}"
        ))
    };
    assert_eq!(req("csrattrs"), 2.0);
    assert_eq!(req("simpleenroll"), 3.0);
    assert_eq!(req("cacerts"), 1.0);
    // /nosuchop and /metrics on the EST port.
    assert_eq!(req("other"), 2.0);
    assert_eq!(refused("simpleenroll", "method_not_allowed"), 1.0);
    assert_eq!(refused("other", "not_found"), 2.0);
    assert_eq!(refused("simpleenroll", "forbidden"), 0.0);
    assert_eq!(
        m.get("mef_certificates_issued_total{operation=\"simpleenroll\"}"),
        2.0
    );
    assert_eq!(m.get("mef_issuance_duration_seconds_count"), 2.0);
    assert_eq!(
        m.get("mef_issuance_duration_seconds_bucket{le=\"+Inf\"}"),
        2.0
    );
    assert!(m.get("mef_issuance_duration_seconds_sum") > 0.0);
    // Every request looked the client up at least once; a first start has no failures.
    assert!(m.get("mef_database_calls_total") >= 7.0);
    assert_eq!(
        m.get("mef_database_duration_seconds_count"),
        m.get("mef_database_calls_total")
    );
    assert_eq!(m.get("mef_database_errors_total"), 0.0);
    assert_eq!(
        m.get("mef_connection_threads_limit{listener=\"main\"}"),
        17.0
    );
    let busy = m.get("mef_connection_threads_busy{listener=\"main\"}");
    assert!((0.0..=17.0).contains(&busy));
    assert_eq!(m.get("mef_connections_queued{listener=\"main\"}"), 0.0);
    // SQLite has no connection pool: declared, no sample.
    assert!(!m.samples.contains_key("mef_database_connections_limit"));
    // A new CA: valid for years.
    let expiry = m.get("mef_ca_certificate_expiry_seconds");
    assert!(expiry > 365.0 * 86400.0, "{expiry}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = m.get("process_start_time_seconds");
    assert!(started <= now && started > now - 300.0, "{started}");
    // Label values only from the fixed sets.
    for key in m.samples.keys() {
        if let Some(op) = key.split("operation=\"").nth(1) {
            let op = op.split('"').next().unwrap();
            assert!(
                [
                    "cacerts",
                    "csrattrs",
                    "simpleenroll",
                    "simplereenroll",
                    "serverkeygen",
                    "crl",
                    "other"
                ]
                .contains(&op),
                "{key}"
            );
        }
    }
    drop(mef);
    let _ = std::fs::remove_dir_all(&root);
}

/// Without `--metrics-listen` there is no metrics listener (off by default).
#[test]
fn no_metrics_listener_by_default() {
    use std::io::BufRead;
    let root = temp_dir("metrics-default");
    let mut child = std::process::Command::new(common::bin())
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.join("mef"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("CA certificate: ");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.iter().any(|l| l.starts_with("listening on ")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("metrics listening")),
        "{lines:?}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
