//! The `onem2m-mef` binary's PPSK-based RSPF: `psk add/list/remove`, the `--psk-listen`
//! listener, and interop with OpenSSL's own client (`openssl s_client`), all on 127.0.0.1.

mod common;

use common::{psk_add_args, temp_dir, BIN};
use onem2m_est_testkit::process::{run, text};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const KPM_ID: &str = "kpm-mef-0001";
const KPM_HEX: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const CSE_ID: &str = "cse01.sp.example.com";

fn mef(args: &[&str]) -> Output {
    run(BIN, args)
}

fn add_psk(dir: &Path) {
    let d = dir.display().to_string();
    let o = mef(&psk_add_args(
        &d,
        KPM_ID,
        "--kpm-hex",
        KPM_HEX,
        "cse",
        CSE_ID,
    ));
    assert!(o.status.success(), "{}", text(&o));
}

/// The MEF with a PSK listener; killed on drop.
struct PskMef {
    child: Child,
    main: SocketAddr,
    psk: SocketAddr,
}

impl PskMef {
    fn start(dir: &Path) -> PskMef {
        let mut child = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--psk-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("mef.log")).expect("mef.log"))
            .spawn()
            .expect("spawn onem2m-mef");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let mut second = String::new();
        out.read_line(&mut second).unwrap();
        let main = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line {first:?}"))
            .parse()
            .unwrap();
        let psk = second
            .trim()
            .strip_prefix("psk listening on ")
            .unwrap_or_else(|| panic!("second line {second:?}"))
            .parse()
            .unwrap();
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = out.read_to_string(&mut sink);
        });
        PskMef { child, main, psk }
    }
}

impl Drop for PskMef {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl s_client -quiet` with a raw HTTP request on stdin; killed after 20 s at most.
fn s_client(port: u16, extra: &[&str], request: &str) -> Output {
    let connect = format!("127.0.0.1:{port}");
    let args = [&["-connect", &connect, "-quiet"], extra].concat();
    onem2m_est_testkit::openssl::s_client(&args, request)
}

const GET_CACERTS: &str =
    "GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

#[test]
fn registry_commands_never_print_keys() {
    let dir = temp_dir("psk-registry");
    let d = dir.display().to_string();
    add_psk(&dir);
    let o = mef(&["psk", "list", "--data-dir", &d]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.trim(), format!("{KPM_ID} cse {CSE_ID}"));
    assert!(!text(&o).contains(KPM_HEX));
    // A key file of hexadecimal text; too-short keys and bad identities are refused.
    std::fs::write(dir.join("k.hex"), format!("{KPM_HEX}{KPM_HEX}\n")).unwrap();
    let file = dir.join("k.hex").display().to_string();
    let o = mef(&psk_add_args(
        &d,
        "kpm-2",
        "--kpm-file",
        &file,
        "ae",
        "https://sp.example.com/cse01/CAE01",
    ));
    assert!(o.status.success(), "{}", text(&o));
    for (id, hex, ty, sid) in [
        ("kpm-3", "00112233", "cse", CSE_ID),
        ("kpm-3", "not hex", "cse", CSE_ID),
        ("", KPM_HEX, "cse", CSE_ID),
        ("kpm-3", KPM_HEX, "cse", "not a dns name!"),
    ] {
        let o = mef(&psk_add_args(&d, id, "--kpm-hex", hex, ty, sid));
        assert_eq!(o.status.code(), Some(1), "{id} {hex}: {}", text(&o));
        assert!(!String::from_utf8_lossy(&o.stderr).contains("00112233"));
    }
    let o = mef(&["psk", "list", "--data-dir", &d]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);
    let o = mef(&["psk", "remove", "--data-dir", &d, "--kpm-id", "kpm-2"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mef(&["psk", "remove", "--data-dir", &d, "--kpm-id", "kpm-2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn s_client_fetches_cacerts_over_the_mandatory_psk_suite() {
    let dir = temp_dir("psk-s-client");
    add_psk(&dir);
    let m = PskMef::start(&dir);
    assert_ne!(m.main.port(), m.psk.port());
    let psk = [
        "-psk",
        KPM_HEX,
        "-psk_identity",
        KPM_ID,
        "-cipher",
        "PSK-AES128-CBC-SHA256",
        "-tls1_2",
    ];
    let o = s_client(m.psk.port(), &psk, GET_CACERTS);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("HTTP/1.1 200"), "{}", text(&o));
    assert!(out.contains("application/pkcs7-mime"), "{}", text(&o));
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").trim();
    assert!(body.len() > 100, "{}", text(&o));
    assert!(
        body.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=\r\n".contains(&b)),
        "base64 body: {body}"
    );

    // TLS 1.3 external PSK works too.
    let o = s_client(
        m.psk.port(),
        &["-psk", KPM_HEX, "-psk_identity", KPM_ID, "-tls1_3"],
        GET_CACERTS,
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("HTTP/1.1 200"),
        "{}",
        text(&o)
    );

    // /simplereenroll is refused over PSK (CR 8.3.Z.2.3 pre-condition C).
    let reenroll = "POST /.well-known/est/simplereenroll HTTP/1.1\r\nHost: localhost\r\n\
                    Content-Type: application/pkcs10\r\nContent-Length: 4\r\n\
                    Connection: close\r\n\r\nAAAA";
    let o = s_client(m.psk.port(), &psk, reenroll);
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("HTTP/1.1 403"),
        "{}",
        text(&o)
    );
    drop(m);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_keys_and_unknown_identities_fail_the_handshake() {
    let dir = temp_dir("psk-refused");
    add_psk(&dir);
    let m = PskMef::start(&dir);
    let wrong_key = "ff".repeat(16);
    for (key, id, version) in [
        (wrong_key.as_str(), KPM_ID, "-tls1_2"),
        (wrong_key.as_str(), KPM_ID, "-tls1_3"),
        (KPM_HEX, "kpm-unknown", "-tls1_2"),
        (KPM_HEX, "kpm-unknown", "-tls1_3"),
    ] {
        let o = s_client(
            m.psk.port(),
            &["-psk", key, "-psk_identity", id, version],
            GET_CACERTS,
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(!out.contains("HTTP/1.1"), "{id} {version}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("alert"),
            "{id} {version}: {}",
            text(&o)
        );
    }
    // A client that offers only certificate suites finds nothing to talk about either.
    let o = s_client(m.psk.port(), &["-tls1_2"], GET_CACERTS);
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("HTTP/1.1"),
        "{}",
        text(&o)
    );
    // The operator sees each refused handshake at warn, with the peer (issue #11/#14), like the
    // rustls listener's; never the key.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refusals = loop {
        let log = std::fs::read_to_string(dir.join("mef.log")).unwrap_or_default();
        let n = log
            .lines()
            .filter(|l| l.contains(" WARN ") && l.contains("TLS handshake with 127.0.0.1:"))
            .count();
        if n >= 5 || std::time::Instant::now() > deadline {
            assert!(!log.contains(&wrong_key), "the key was logged: {log}");
            break (n, log);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        refusals.0 >= 5,
        "{} warn lines:\n{}",
        refusals.0,
        refusals.1
    );
    drop(m);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One HTTP request over TLS-PSK with the `openssl` crate; returns (status, body).
fn psk_request(port: u16, kpm_id: &str, kpm_hex: &str, request: &[u8]) -> (u16, Vec<u8>) {
    let r = common::psk_request(port, kpm_id, kpm_hex, request).unwrap();
    (r.status, r.body)
}

fn enroll_request(csr_der: &[u8]) -> Vec<u8> {
    let body = common::csr_b64(csr_der);
    format!(
        "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/pkcs10\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn the_challenge_password_is_bound_to_the_kpm_id() {
    let dir = temp_dir("psk-binding");
    add_psk(&dir);
    // A second KpmID for the same identity: the binding is to the KpmID, not the identity.
    let other_hex = "00".repeat(8) + &"11".repeat(8);
    let d = dir.display().to_string();
    let o = mef(&psk_add_args(
        &d,
        "kpm-other",
        "--kpm-hex",
        &other_hex,
        "cse",
        CSE_ID,
    ));
    assert!(o.status.success(), "{}", text(&o));
    let m = PskMef::start(&dir);
    let port = m.psk.port();

    let get =
        b"GET /.well-known/est/csrattrs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (status, body) = psk_request(port, KPM_ID, KPM_HEX, get);
    assert_eq!(status, 200);
    let attrs = common::Attrs::decode(&body);
    assert!(attrs.requirements.subject_alt_name().is_some());
    let password = attrs.password;

    let key = rcgen::KeyPair::generate().unwrap();
    let csr = common::make_csr(&key, &[common::dns(CSE_ID)], Some(&password), None);
    // Another KpmID cannot use it.
    let (status, body) = psk_request(port, "kpm-other", &other_hex, &enroll_request(&csr));
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    // A CSR for another identity is refused (and consumes the password, as on the main port).
    let wrong = common::make_csr(
        &key,
        &[common::dns("other.example.com")],
        Some(&password),
        None,
    );
    let (status, _) = psk_request(port, KPM_ID, KPM_HEX, &enroll_request(&wrong));
    assert_eq!(status, 400);
    let (status, _) = psk_request(port, KPM_ID, KPM_HEX, &enroll_request(&csr));
    assert_eq!(status, 403, "the password was consumed by the refused CSR");
    // A fresh password, the right identity, the right KpmID: issued.
    let (_, body) = psk_request(port, KPM_ID, KPM_HEX, get);
    let pw = common::Attrs::decode(&body).password;
    let csr = common::make_csr(&key, &[common::dns(CSE_ID)], Some(&pw), None);
    let (status, body) = psk_request(port, KPM_ID, KPM_HEX, &enroll_request(&csr));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    drop(m);
    let o = mef(&["cert", "list", "--data-dir", &d]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(CSE_ID),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
