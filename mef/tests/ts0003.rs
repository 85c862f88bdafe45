//! The ts0003 listener (TS-0003 10.2.1/10.2.3: TLS 1.2, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
//! only) with OpenSSL's own client (`openssl s_client`), on 127.0.0.1. Needs the openssl CLI
//! (the tests fail without it).

mod common;

use common::*;
use onem2m_est_testkit::process::text;
use onem2m_mef::{Mef, MefConfig, RunningMef};
use std::path::Path;
use std::process::Output;

const GET_CACERTS: &str =
    "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

fn start(dir: &Path, tp: &ThirdPartyCa) -> RunningMef {
    let mut config = MefConfig::new(dir.join("mef"));
    config.client_trust = vec![tp.ca.cert.clone()];
    config.ts0003_listen = Some("127.0.0.1:0".parse().unwrap());
    Mef::start(config).unwrap()
}

/// `openssl s_client -brief` with a raw HTTP request on stdin; killed after 20 s at most.
fn s_client(mef: &RunningMef, extra: &[&str]) -> Output {
    let connect = format!("127.0.0.1:{}", mef.ts0003_addr().unwrap().port());
    let ca = mef.ca_cert_pem_path().display().to_string();
    let args = [
        &["-connect", &connect, "-brief"][..],
        &["-servername", "localhost", "-verify_hostname", "localhost"],
        &["-CAfile", &ca, "-verify_return_error"],
        extra,
    ]
    .concat();
    onem2m_est_testkit::openssl::s_client(&args, GET_CACERTS)
}

fn answered(o: &Output) -> bool {
    String::from_utf8_lossy(&o.stdout).starts_with("HTTP/1.1 200")
}

#[test]
fn serves_est_on_the_mandatory_suite_with_a_client_certificate() {
    let dir = temp_dir("ts0003-ok");
    let tp = ThirdPartyCa::new(&dir, "tp");
    let (cert, key) = tp.issue_client("device").write_pem(&dir, "device");
    let mef = start(&dir, &tp);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let o = s_client(&mef, &["-cert", &cert, "-key", &key]);
    assert!(answered(&o), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Protocol version: TLSv1.2"), "{}", text(&o));
    assert!(
        err.contains("Ciphersuite: ECDHE-ECDSA-AES128-SHA256"),
        "{}",
        text(&o)
    );
    // /cacerts needs no client certificate (RFC 7030 4.1.1), as on the main listener.
    let o = s_client(&mef, &[]);
    assert!(answered(&o), "{}", text(&o));
}

#[test]
fn refuses_tls13_other_suites_and_untrusted_client_certificates() {
    let dir = temp_dir("ts0003-refused");
    let tp = ThirdPartyCa::new(&dir, "tp");
    let stranger = ThirdPartyCa::new(&dir, "stranger");
    let (cert, key) = stranger
        .issue_client("intruder")
        .write_pem(&dir, "intruder");
    let mef = start(&dir, &tp);
    for extra in [
        vec!["-tls1_3"],
        vec!["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"],
        vec![
            "-cert",
            cert.to_str().unwrap(),
            "-key",
            key.to_str().unwrap(),
        ],
    ] {
        let o = s_client(&mef, &extra);
        assert!(!answered(&o), "{extra:?}: {}", text(&o));
    }
}
