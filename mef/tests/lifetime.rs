//! `--cert-lifetime DURATION` of the `onem2m-mef` binary (issue #12): seconds-long
//! certificates for renewal tests, days for everything else; notBefore backdated by a minute
//! or a tenth of a shorter lifetime.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use rcgen::KeyPair;
use x509_parser::prelude::*;

/// Enrols once against a MEF started with `extra`; returns (notBefore, notAfter, issuance time).
fn issued_validity(name: &str, extra: &[&str]) -> (i64, i64, i64) {
    let dir = temp_dir(name);
    let tp = ThirdPartyCa::new(&dir, "tp");
    let client = tp.issue_client("device-1");
    let mut args = vec!["--client-trust", tp.pem_path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mef = MefProc::start(&dir, &args);
    register(&mef.dir, &client, "ae", AE_ID);
    let a = agent(&mef.ca_der, Some(&client));
    let attrs = fetch_attrs(&a, &mef);
    let key = KeyPair::generate().unwrap();
    let csr = make_csr(&key, &[uri(AE_ID)], Some(&attrs.password), None);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let certs = post_csr(&a, &mef.url("simpleenroll"), &csr).certs();
    let (_, cert) = parse_x509_certificate(&certs[0]).unwrap();
    let v = cert.validity();
    (v.not_before.timestamp(), v.not_after.timestamp(), now)
}

#[test]
fn lifetime_in_seconds() {
    let (nb, na, now) = issued_validity("lifetime-90s", &["--cert-lifetime", "90s"]);
    assert_eq!(na - nb, 90);
    // Backdated a tenth of the lifetime (9 s), not a whole minute.
    assert!((now - 11..=now - 7).contains(&nb), "nb {nb}, now {now}");
}

#[test]
fn lifetime_in_days() {
    let (nb, na, now) = issued_validity("lifetime-30d", &["--cert-lifetime", "30d"]);
    assert_eq!(na - nb, 30 * 86_400);
    assert!((now - 62..=now - 58).contains(&nb), "nb {nb}, now {now}");
}

#[test]
fn lifetime_arguments_are_checked() {
    let dir = temp_dir("lifetime-args");
    let d = dir.to_str().unwrap();
    for args in [
        vec![
            "--data-dir",
            d,
            "--cert-lifetime",
            "90s",
            "--cert-lifetime-days",
            "3",
        ],
        vec!["--data-dir", d, "--cert-lifetime", "0s"],
        vec!["--data-dir", d, "--cert-lifetime", "ninety"],
    ] {
        let out = std::process::Command::new(BIN)
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cert-lifetime"), "{args:?}: {stderr}");
    }
}
