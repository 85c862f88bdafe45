//! The in-process API the client library's tests and benchmarks use.

mod common;

use common::*;
use onem2m_mef::{Mef, MefConfig, SubjectType};
use rcgen::KeyPair;

#[test]
fn start_enroll_revoke_shutdown_in_process() {
    let dir = temp_dir("inprocess");
    let tp = ThirdPartyCa::new(&dir, "tp");
    let client = tp.issue_client("device");
    let mut config = MefConfig::new(dir.join("mef"));
    config.client_trust = vec![tp.ca.cert.clone()];
    let mef = Mef::start(config).unwrap();
    let port = mef.local_addr().port();
    assert_eq!(
        mef.base_uri(None),
        format!("https://localhost:{port}/.well-known/est")
    );
    assert_eq!(
        mef.base_uri(Some("lbl")),
        format!("https://localhost:{port}/.well-known/est/lbl")
    );
    assert!(mef.ca_cert_pem_path().exists());

    // Registry by certificate DER, and by fingerprint text; invalid identities refused.
    assert!(mef
        .add_identity(&client.cert_der, SubjectType::Ae, "not a uri")
        .is_err());
    mef.add_identity(&client.cert_der, SubjectType::Ae, AE_ID)
        .unwrap();
    let entries = mef.store().list_identities().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].fingerprint, client.fingerprint());

    let ca_der = mef.ca_cert_der().to_vec();
    let a = agent(&ca_der, Some(&client));
    let base = mef.base_uri(Some("lbl"));
    let r = get(&a, &format!("{base}/csrattrs")).unwrap();
    let pw = r.attrs().password;
    let key = KeyPair::generate().unwrap();
    let csr = make_csr(&key, &[uri(AE_ID)], Some(&pw), None);
    let certs = post_csr(&a, &format!("{base}/simpleenroll"), &csr).certs();
    let issued = mef.store().list_issued().unwrap();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].fingerprint, onem2m_mef::fingerprint(&certs[0]));
    assert_eq!(
        mef.store().issued_by_serial(&issued[0].serial).unwrap(),
        Some(issued[0].clone())
    );

    // Revocation through the API.
    let creds = ClientCreds {
        cert_der: certs[0].clone(),
        key,
    };
    assert!(mef.revoke(&issued[0].serial).unwrap());
    assert!(!mef.revoke("00").unwrap());
    let b = agent(&ca_der, Some(&creds));
    get(&b, &format!("{base}/csrattrs"))
        .unwrap()
        .assert_error(403, "revoked");

    let addr = mef.local_addr();
    mef.shutdown();
    // The listener is gone.
    assert!(std::net::TcpStream::connect(addr).is_err());
}
