//! Third-party interoperability: strongSwan's `pki` (Debian packages strongswan-pki and
//! libstrongswan-extra-plugins) against the MEF. Fails, saying what to install, when `pki` is missing.

mod common;

use common::*;
use onem2m_est_testkit::process::stderr;
use std::path::Path;
use std::process::Command;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

const CSE_ID: &str = "cse01.sp.example.com";

fn pki_available() -> bool {
    Command::new("pki").arg("--help").output().is_ok()
}

fn pki(args: &[&str], cwd: &Path) -> Vec<u8> {
    let out = Command::new("pki")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pki {args:?} failed: {}",
        stderr(&out)
    );
    out.stdout
}

#[test]
fn strongswan_pki_estca_and_reenroll() {
    // A test that needs a tool fails without it: a skipped interop test proves nothing.
    assert!(
        pki_available(),
        "strongSwan `pki` is not installed: apt-get install strongswan-pki \
         libstrongswan-extra-plugins libstrongswan-standard-plugins (scripts/test.sh does)"
    );
    let dir = temp_dir("strongswan");
    let tp = ThirdPartyCa::new(&dir, "tp");
    let device = tp.issue_client("device");
    let mef = MefProc::start(
        &dir.join("mef"),
        &["--client-trust", tp.pem_path.to_str().unwrap()],
    );
    register(&mef.dir, &device, "cse", CSE_ID);
    let ca_pem = mef.dir.join("mef-ca.pem");
    let url = format!("https://localhost:{}/", mef.addr.port());

    // pki --estca fetches /cacerts without a client certificate.
    pki(
        &[
            "--estca",
            "--url",
            &url,
            "--cacert",
            ca_pem.to_str().unwrap(),
            "--caout",
            "estca.pem",
            "--outform",
            "pem",
            "--force",
        ],
        &dir,
    );
    let fetched = ::pem::parse(std::fs::read(dir.join("estca.pem")).unwrap()).unwrap();
    assert_eq!(fetched.contents(), &mef.ca_der[..]);

    // An initial certificate from the MEF (third-party credentials), written for pki.
    let issued = enroll(&agent(&mef.ca_der, Some(&device)), &mef, dns(CSE_ID));
    let (cert_path, key_path) = issued.write_pem(&dir, "issued");

    // The challengePassword, fetched with curl and the issued certificate.
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&ca_pem)
        .arg("--cert")
        .arg(&cert_path)
        .arg("--key")
        .arg(&key_path)
        .arg(format!("{url}.well-known/est/csrattrs"))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl: {}", stderr(&out));
    let password = Attrs::decode(&out.stdout).password;

    // New key and CSR made by pki, then /simplereenroll by pki with the issued certificate.
    let new_key = pki(
        &[
            "--gen",
            "--type",
            "ecdsa",
            "--size",
            "256",
            "--outform",
            "pem",
        ],
        &dir,
    );
    std::fs::write(dir.join("new.key"), &new_key).unwrap();
    let req = pki(
        &[
            "--req",
            "--in",
            "new.key",
            "--type",
            "ecdsa",
            "--dn",
            &format!("CN={CSE_ID}"),
            "--san",
            CSE_ID,
            "--password",
            &password,
            "--digest",
            "sha256",
            "--outform",
            "der",
        ],
        &dir,
    );
    std::fs::write(dir.join("req.der"), &req).unwrap();
    let new_cert = pki(
        &[
            "--est",
            "--url",
            &url,
            "--cacert",
            ca_pem.to_str().unwrap(),
            "--cert",
            cert_path.to_str().unwrap(),
            "--key",
            key_path.to_str().unwrap(),
            "--in",
            "req.der",
            "--outform",
            "der",
        ],
        &dir,
    );
    let (_, cert) = parse_x509_certificate(&new_cert).expect("pki wrote a DER certificate");
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    assert_eq!(sans.value.general_names, vec![GeneralName::DNSName(CSE_ID)]);
    // Issued for the key pki generated (not the old one).
    let pub_der = pki(
        &[
            "--pub",
            "--in",
            "new.key",
            "--type",
            "ecdsa",
            "--outform",
            "der",
        ],
        &dir,
    );
    assert_eq!(cert.public_key().raw, &pub_der[..]);
    // And recorded as a re-enrollment of this identity.
    let (_, list, _) = run_cli_on(&mef.dir, &["cert", "list"], &[]);
    assert!(list.contains(&onem2m_mef::fingerprint(&new_cert)));
}
