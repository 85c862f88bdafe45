//! End-to-end tests of the `onem2m-mef` binary over HTTPS on 127.0.0.1.

mod common;

use common::*;
use onem2m_est_proto::{multipart, san};
use onem2m_est_testkit::pki::{challenge_password, fresh_csr};
use onem2m_est_testkit::process::stderr;
use rcgen::KeyPair;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

/// A MEF trusting one third-party CA, with one registered AE client.
struct Setup {
    mef: MefProc,
    tp: ThirdPartyCa,
    client: ClientCreds,
}

fn setup(name: &str, extra: &[&str]) -> Setup {
    let dir = temp_dir(name);
    let tp = ThirdPartyCa::new(&dir, "tp");
    let client = tp.issue_client("device-1");
    let mut args = vec!["--client-trust", tp.pem_path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mef = MefProc::start(&dir, &args);
    register(&mef.dir, &client, "ae", AE_ID);
    Setup { mef, tp, client }
}

#[test]
fn cacerts_anonymous_with_labels_and_encodings() {
    let s = setup("cacerts", &[]);
    let anon = agent(&s.mef.ca_der, None);
    for url in [s.mef.url("cacerts"), s.mef.url("my-label/cacerts")] {
        let r = get(&anon, &url).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some("application/pkcs7-mime; smime-type=certs-only")
        );
        assert_eq!(r.header("content-transfer-encoding"), Some("base64"));
        // Unwrapped base64 on one line (strongSwan 5.9.8 cannot skip line breaks).
        let text = r.text();
        assert!(!text.trim_end().contains('\n') && !text.trim_end().contains('\r'));
        assert_eq!(r.certs(), vec![s.mef.ca_der.clone()]);
    }
    // The CA key is private to the MEF.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.mef.dir.join("mef-ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn initial_enrollment_issues_the_profiled_certificate() {
    let s = setup("enroll", &[]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let attrs = fetch_attrs(&a, &s.mef);
    assert_eq!(attrs.password.len(), 24);
    let expected_san = san::encode(&[san::GeneralName::Uri(AE_ID.into())]).unwrap();
    assert_eq!(
        attrs.requirements.subject_alt_name(),
        Some(&expected_san[..])
    );
    assert_eq!(
        attrs.requirements.key,
        Some(onem2m_est_proto::csrattrs::KeyRequirement::Ec(
            onem2m_est_proto::csrattrs::Curve::P256
        ))
    );
    assert_eq!(
        attrs.requirements.hash,
        Some(onem2m_est_proto::csrattrs::HashAlg::Sha256)
    );
    // The EKUs of the default issuance policy (CR 8.3.Z.2.3 step 3d).
    let eku = onem2m_est_proto::eku::encode(&[
        onem2m_est_proto::oids::KP_SERVER_AUTH,
        onem2m_est_proto::oids::KP_CLIENT_AUTH,
    ])
    .unwrap();
    assert!(attrs
        .requirements
        .extensions
        .iter()
        .any(|e| e.oid == onem2m_est_proto::oids::EXT_KEY_USAGE && e.value == eku));
    // A second fetch gives a different password.
    assert_ne!(fetch_attrs(&a, &s.mef).password, attrs.password);

    let key = KeyPair::generate().unwrap();
    let csr = make_csr(&key, &[uri(AE_ID)], Some(&attrs.password), None);
    let r = post_csr(&a, &s.mef.url("simpleenroll"), &csr);
    assert_eq!(r.header("content-transfer-encoding"), Some("base64"));
    let certs = r.certs();
    assert_eq!(certs.len(), 1);
    let (_, cert) = parse_x509_certificate(&certs[0]).unwrap();
    let (_, ca) = parse_x509_certificate(&s.mef.ca_der).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
    assert_eq!(cert.issuer(), ca.subject());
    assert_eq!(
        &cert.public_key().subject_public_key.data[..],
        rcgen::PublicKeyData::der_bytes(&key)
    );
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.2"
    );
    assert!(!cert.raw_serial().is_empty() && cert.raw_serial()[0] & 0x80 == 0);
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        AE_ID
    );
    let mut seen = 0;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(s) => {
                assert_eq!(s.general_names, vec![GeneralName::URI(AE_ID)]);
                seen += 1;
            }
            ParsedExtension::KeyUsage(ku) => {
                assert!(ext.critical);
                assert!(ku.digital_signature() && !ku.key_cert_sign());
                seen += 1;
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                // The default policy (CR 8.3.Z.2.3 step 3d, TS-0003 8.2).
                assert!(eku.client_auth && eku.server_auth && eku.other.is_empty());
                seen += 1;
            }
            ParsedExtension::AuthorityKeyIdentifier(_) => seen += 1,
            _ => {}
        }
    }
    assert_eq!(seen, 4);
    // Recorded in the database (CLI view).
    let (ok, out, _) = run_cli_on(&s.mef.dir, &["cert", "list"], &[]);
    assert!(ok);
    assert!(out.contains(&onem2m_mef::fingerprint(&certs[0])) && out.contains(AE_ID));
    // A header, and readable UTC dates (not Unix seconds) (issue #14).
    assert!(
        out.starts_with("SERIAL FINGERPRINT TYPE SUBJECT-ID NOT-BEFORE NOT-AFTER"),
        "{out}"
    );
    let row = out.lines().nth(1).unwrap();
    assert!(
        row.split(' ')
            .nth(5)
            .is_some_and(|t| t.len() == 20 && t.ends_with('Z')),
        "{row}"
    );
    let (ok, json, _) = run_cli(&[
        "cert",
        "list",
        "--json",
        "--data-dir",
        s.mef.dir.to_str().unwrap(),
    ]);
    assert!(
        ok && json.starts_with('{') && json.contains("\"not_after\":\""),
        "{json}"
    );
}

#[test]
fn cse_and_node_identities() {
    let s = setup("cse-node", &[]);
    let cse = s.tp.issue_client("cse");
    let node = s.tp.issue_client("node");
    register(&s.mef.dir, &cse, "cse", "cse01.sp.example.com");
    register(&s.mef.dir, &node, "node", "urn:oid:1.3.6.1.4.1.99999.1.2.3");
    // Enrols with `creds` asking for `san`: the certificate names exactly `expected`.
    let enrolled = |creds: &ClientCreds, san: rcgen::SanType, expected: GeneralName| {
        let issued = enroll(&agent(&s.mef.ca_der, Some(creds)), &s.mef, san);
        let (_, c) = parse_x509_certificate(&issued.cert_der).unwrap();
        let sans = c.subject_alternative_name().unwrap().unwrap();
        assert_eq!(sans.value.general_names, vec![expected]);
    };
    enrolled(
        &cse,
        dns("cse01.sp.example.com"),
        GeneralName::DNSName("cse01.sp.example.com"),
    );
    enrolled(
        &node,
        uri("urn:oid:1.3.6.1.4.1.99999.1.2.3"),
        GeneralName::URI("urn:oid:1.3.6.1.4.1.99999.1.2.3"),
    );
    // A URI form for a CSE is not its identity.
    let a = agent(&s.mef.ca_der, Some(&cse));
    let pw = fetch_attrs(&a, &s.mef).password;
    let csr = fresh_csr(&[uri("https://cse01.sp.example.com")], Some(&pw));
    post_csr(&a, &s.mef.url("simpleenroll"), &csr).assert_error(400, "subjectAltName");
}

#[test]
fn keep_alive_one_connection_for_the_whole_procedure() {
    let s = setup("keepalive", &[]);
    let host = format!("Host: localhost:{}\r\n", s.mef.addr.port());
    let get_req =
        |op: &str| format!("GET /.well-known/est/{op} HTTP/1.1\r\n{host}\r\n").into_bytes();
    // First two requests on the connection; the password is needed for the third.
    let first = raw_exchange(
        &s.mef.ca_der,
        Some(&s.client),
        s.mef.addr.port(),
        &[get_req("cacerts"), get_req("csrattrs")],
    );
    assert_eq!(first[0].status, 200);
    assert_eq!(first[1].status, 200);
    // Now the whole procedure on one connection: the password must come from a csrattrs
    // response on the same connection, so send cacerts + csrattrs, then read, then enroll.
    // raw_exchange sends sequentially, so use a password fetched on an earlier connection
    // (passwords are bound to the client certificate, not to the connection).
    let pw = Attrs::decode(&first[1].body).password;
    let csr = csr_b64(&fresh_csr(&[uri(AE_ID)], Some(&pw)));
    let post_req = format!(
        "POST /.well-known/est/simpleenroll HTTP/1.1\r\n{host}Content-Type: application/pkcs10\r\nContent-Length: {}\r\n\r\n{csr}",
        csr.len()
    )
    .into_bytes();
    let rs = raw_exchange(
        &s.mef.ca_der,
        Some(&s.client),
        s.mef.addr.port(),
        &[get_req("cacerts"), get_req("csrattrs"), post_req],
    );
    assert_eq!(
        rs.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![200, 200, 200]
    );
    assert_eq!(rs[2].certs().len(), 1);
    // Connection: close is honoured.
    let close = format!("GET /.well-known/est/cacerts HTTP/1.1\r\n{host}Connection: close\r\n\r\n")
        .into_bytes();
    let r = raw_exchange(&s.mef.ca_der, None, s.mef.addr.port(), &[close]);
    assert_eq!(r[0].header("connection"), Some("close"));
}

#[test]
fn body_encodings_and_content_types() {
    let s = setup("encodings", &[]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let url = s.mef.url("simpleenroll");
    let csr = |pw: &str| fresh_csr(&[uri(AE_ID)], Some(pw));
    // Line-wrapped base64 with CRLFs and a parameterised Content-Type.
    let pw = fetch_attrs(&a, &s.mef).password;
    let b64 = csr_b64(&csr(&pw));
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let body = wrapped.join("\r\n") + "\r\n";
    let r = post(
        &a,
        &url,
        Some("application/pkcs10; charset=binary"),
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // One long line without a trailing newline (what strongSwan posts).
    let pw = fetch_attrs(&a, &s.mef).password;
    let r = post(
        &a,
        &url,
        Some("application/pkcs10"),
        csr_b64(&csr(&pw)).as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    // Rejections; each leaves the password of this attempt unusable or untouched as documented.
    let pw = fetch_attrs(&a, &s.mef).password;
    let good = csr_b64(&csr(&pw));
    post(&a, &url, Some("application/json"), good.as_bytes())
        .unwrap()
        .assert_error(415, "content-type");
    post(&a, &url, None, good.as_bytes())
        .unwrap()
        .assert_error(415, "content-type");
    post(&a, &url, Some("application/pkcs10"), b"MIIB$$$not base64")
        .unwrap()
        .assert_error(400, "base64");
    post(&a, &url, Some("application/pkcs10"), b"AAAA")
        .unwrap()
        .assert_error(400, "DER");
    let big = vec![b'A'; 70 * 1024];
    post(&a, &url, Some("application/pkcs10"), &big)
        .unwrap()
        .assert_error(413, "limit");
    // None of these consumed the password: it still works.
    let r = post(&a, &url, Some("application/pkcs10"), good.as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn challenge_password_rules() {
    let s = setup("challenge", &[]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let url = s.mef.url("simpleenroll");
    let csr = |pw: Option<&str>| fresh_csr(&[uri(AE_ID)], pw);

    // Missing.
    post_csr(&a, &url, &csr(None)).assert_error(403, "no challengePassword");
    // Wrong.
    let _ = fetch_attrs(&a, &s.mef);
    post_csr(&a, &url, &csr(Some("AAAAAAAAAAAAAAAAAAAAAAAA"))).assert_error(403, "does not match");
    // Reused after a successful enrollment.
    let pw = fetch_attrs(&a, &s.mef).password;
    assert_eq!(post_csr(&a, &url, &csr(Some(&pw))).status, 200);
    post_csr(&a, &url, &csr(Some(&pw))).assert_error(403, "does not match");
    // Consumed by a CSR that failed a later check (wrong identity), then unusable.
    let pw = fetch_attrs(&a, &s.mef).password;
    let wrong = fresh_csr(&[uri("https://sp.example.com/cse01/CAE02")], Some(&pw));
    post_csr(&a, &url, &wrong).assert_error(400, "does not match the identity");
    post_csr(&a, &url, &csr(Some(&pw))).assert_error(403, "does not match");
    // Another client's password.
    let other = s.tp.issue_client("device-2");
    register(
        &s.mef.dir,
        &other,
        "ae",
        "https://sp.example.com/cse01/CAE02",
    );
    let b = agent(&s.mef.ca_der, Some(&other));
    let others_pw = fetch_attrs(&b, &s.mef).password;
    post_csr(&a, &url, &csr(Some(&others_pw))).assert_error(403, "does not match");
    // ... which the other client can still use.
    let csr_b = fresh_csr(
        &[uri("https://sp.example.com/cse01/CAE02")],
        Some(&others_pw),
    );
    assert_eq!(post_csr(&b, &url, &csr_b).status, 200);
}

#[test]
fn expired_challenge_password() {
    let s = setup("expired", &["--challenge-ttl-secs", "1"]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let pw = fetch_attrs(&a, &s.mef).password;
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let csr = fresh_csr(&[uri(AE_ID)], Some(&pw));
    post_csr(&a, &s.mef.url("simpleenroll"), &csr).assert_error(403, "expired");
}

#[test]
fn csr_content_rules() {
    let s = setup("csr-rules", &[]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let url = s.mef.url("simpleenroll");
    let pw = || fetch_attrs(&a, &s.mef).password;

    post_csr(
        &a,
        &url,
        &fresh_csr(&[uri("https://sp.example.com/cse01/Cother")], Some(&pw())),
    )
    .assert_error(400, "does not match the identity");
    post_csr(
        &a,
        &url,
        &fresh_csr(&[uri(AE_ID), dns("extra.example.com")], Some(&pw())),
    )
    .assert_error(400, "exactly one name");
    post_csr(&a, &url, &fresh_csr(&[], Some(&pw()))).assert_error(400, "no subjectAltName");
    post_csr(&a, &url, &fresh_csr(&[dns("sp.example.com")], Some(&pw())))
        .assert_error(400, "does not match the identity");
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    post_csr(&a, &url, &make_csr(&p384, &[uri(AE_ID)], Some(&pw()), None))
        .assert_error(400, "P-256");
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    post_csr(&a, &url, &make_csr(&ed, &[uri(AE_ID)], Some(&pw()), None)).assert_error(400, "P-256");
    // Bad signature: flip a bit in the last byte (inside the ECDSA signature value).
    let mut bad = fresh_csr(&[uri(AE_ID)], Some(&pw()));
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    post_csr(&a, &url, &bad).assert_error(400, "signature");
    // No certificate was issued by any of these.
    let (_, out, _) = run_cli_on(&s.mef.dir, &["cert", "list"], &[]);
    // Only the header line.
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn client_authentication_rules() {
    let s = setup("authn", &[]);
    // No client certificate: only /cacerts.
    let anon = agent(&s.mef.ca_der, None);
    get(&anon, &s.mef.url("csrattrs"))
        .unwrap()
        .assert_error(403, "client certificate");
    let csr = fresh_csr(&[uri(AE_ID)], Some("x"));
    post_csr(&anon, &s.mef.url("simpleenroll"), &csr).assert_error(403, "client certificate");
    post_csr(&anon, &s.mef.url("serverkeygen"), &csr).assert_error(403, "client certificate");
    // Untrusted client certificate: refused at the TLS layer.
    let rogue = ClientCreds::self_signed();
    assert!(get(&agent(&s.mef.ca_der, Some(&rogue)), &s.mef.url("cacerts")).is_err());
    // Trusted but unregistered.
    let unregistered = s.tp.issue_client("device-x");
    let u = agent(&s.mef.ca_der, Some(&unregistered));
    get(&u, &s.mef.url("csrattrs"))
        .unwrap()
        .assert_error(403, "not registered");
    post_csr(&u, &s.mef.url("simpleenroll"), &csr).assert_error(403, "not registered");
    // HTTP authentication is refused, never requested.
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let r = a
        .get(s.mef.url("csrattrs"))
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.headers().get("www-authenticate").is_none());
    let text = r.into_body().read_to_string().unwrap();
    assert!(
        text.contains("HTTP-based client authentication is not used"),
        "{text}"
    );
    // Registry removal takes effect immediately.
    let (ok, _, _) = run_cli_on(
        &s.mef.dir,
        &["identity", "remove"],
        &["--fingerprint", &s.client.fingerprint()],
    );
    assert!(ok);
    get(&a, &s.mef.url("csrattrs"))
        .unwrap()
        .assert_error(403, "not registered");
}

#[test]
fn unsupported_operations_and_methods() {
    let s = setup("unsupported", &[]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let r = post(
        &a,
        &s.mef.url("fullcmc"),
        Some("application/pkcs7-mime"),
        b"AAAA",
    )
    .unwrap();
    r.assert_error(501, "fullcmc");
    get(&a, &s.mef.url("nonsense"))
        .unwrap()
        .assert_error(404, "unknown");
    get(&a, &s.mef.url("a/b/cacerts"))
        .unwrap()
        .assert_error(404, "unknown");
    get(
        &a,
        &format!("https://localhost:{}/other", s.mef.addr.port()),
    )
    .unwrap()
    .assert_error(404, "EST");
    get(&a, &s.mef.url("simpleenroll"))
        .unwrap()
        .assert_error(405, "POST");
    post(&a, &s.mef.url("cacerts"), None, b"")
        .unwrap()
        .assert_error(405, "GET");
}

#[test]
fn reenrollment_renew_rekey_and_refusals() {
    let s = setup("reenroll", &[]);
    let tp_agent = agent(&s.mef.ca_der, Some(&s.client));
    let url = s.mef.url("simplereenroll");
    // A third-party certificate cannot re-enroll.
    let pw = fetch_attrs(&tp_agent, &s.mef).password;
    let csr = fresh_csr(&[uri(AE_ID)], Some(&pw));
    post_csr(&tp_agent, &url, &csr).assert_error(403, "issued by this MEF");

    let issued = enroll(&tp_agent, &s.mef, uri(AE_ID));
    let a = agent(&s.mef.ca_der, Some(&issued));
    // Renew: same key, same subject as the certificate (CN = AE-ID).
    let pw = fetch_attrs(&a, &s.mef).password;
    let renew = make_csr(&issued.key, &[uri(AE_ID)], Some(&pw), Some(AE_ID));
    let renewed = post_csr(&a, &url, &renew).certs();
    let (_, c) = parse_x509_certificate(&renewed[0]).unwrap();
    assert_eq!(
        &c.public_key().subject_public_key.data[..],
        rcgen::PublicKeyData::der_bytes(&issued.key)
    );
    // Rekey: a new key.
    let pw = fetch_attrs(&a, &s.mef).password;
    let new_key = KeyPair::generate().unwrap();
    let rekeyed = post_csr(
        &a,
        &url,
        &make_csr(&new_key, &[uri(AE_ID)], Some(&pw), None),
    )
    .certs();
    let (_, c) = parse_x509_certificate(&rekeyed[0]).unwrap();
    assert_eq!(
        &c.public_key().subject_public_key.data[..],
        rcgen::PublicKeyData::der_bytes(&new_key)
    );
    // Identity change refused.
    let pw = fetch_attrs(&a, &s.mef).password;
    let change = fresh_csr(&[uri("https://sp.example.com/cse01/CAE99")], Some(&pw));
    post_csr(&a, &url, &change).assert_error(400, "does not match the identity");
    // Subject change refused.
    let pw = fetch_attrs(&a, &s.mef).password;
    let subj = make_csr(
        &KeyPair::generate().unwrap(),
        &[uri(AE_ID)],
        Some(&pw),
        Some("someone else"),
    );
    post_csr(&a, &url, &subj).assert_error(400, "subject");
    // An issued certificate may also use /simpleenroll.
    let again = enroll(&a, &s.mef, uri(AE_ID));
    // Revoked certificate refused.
    let (ok, _, _) = run_cli_on(
        &s.mef.dir,
        &["cert", "revoke"],
        &["--id", &issued.fingerprint()],
    );
    assert!(ok);
    get(&a, &s.mef.url("csrattrs"))
        .unwrap()
        .assert_error(403, "revoked");
    post_csr(
        &a,
        &url,
        &make_csr(&issued.key, &[uri(AE_ID)], Some("x"), None),
    )
    .assert_error(403, "revoked");
    // Revocation follows what the revoked certificate obtained: `again` was enrolled with it.
    get(&agent(&s.mef.ca_der, Some(&again)), &s.mef.url("csrattrs"))
        .unwrap()
        .assert_error(403, "revoked");
    // Other certificates of the same identity are unaffected.
    let other = enroll(&tp_agent, &s.mef, uri(AE_ID));
    let b = agent(&s.mef.ca_der, Some(&other));
    let pw = fetch_attrs(&b, &s.mef).password;
    assert_eq!(
        post_csr(
            &b,
            &url,
            &make_csr(&other.key, &[uri(AE_ID)], Some(&pw), None)
        )
        .status,
        200
    );
}

#[test]
fn server_side_key_generation() {
    let s = setup("serverkeygen", &[]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let pw = fetch_attrs(&a, &s.mef).password;
    let csr_key = KeyPair::generate().unwrap();
    let csr = make_csr(&csr_key, &[uri(AE_ID)], Some(&pw), None);
    let r = post_csr(&a, &s.mef.url("serverkeygen"), &csr);
    assert_eq!(r.status, 200, "{}", r.text());
    let ct = r.header("content-type").unwrap().to_owned();
    assert!(ct.starts_with("multipart/mixed"), "{ct}");
    let decoded = multipart::decode_serverkeygen(&ct, &r.body).unwrap();
    assert_eq!(decoded.certificates.len(), 1);
    let key = KeyPair::try_from(&decoded.private_key_pkcs8[..]).unwrap();
    let (_, c) = parse_x509_certificate(&decoded.certificates[0]).unwrap();
    assert_eq!(
        &c.public_key().subject_public_key.data[..],
        rcgen::PublicKeyData::der_bytes(&key)
    );
    assert_ne!(
        &c.public_key().subject_public_key.data[..],
        rcgen::PublicKeyData::der_bytes(&csr_key)
    );
    // The generated credentials work for re-enrollment.
    let creds = ClientCreds {
        cert_der: decoded.certificates[0].clone(),
        key,
    };
    let b = agent(&s.mef.ca_der, Some(&creds));
    let pw = fetch_attrs(&b, &s.mef).password;
    let renew = make_csr(&creds.key, &[uri(AE_ID)], Some(&pw), None);
    assert_eq!(
        post_csr(&b, &s.mef.url("simplereenroll"), &renew).status,
        200
    );
    // Same checks as enrollment: a reused password is refused.
    post_csr(&a, &s.mef.url("serverkeygen"), &csr).assert_error(403, "does not match");
}

#[test]
fn manual_approval_answers_202_then_issues() {
    let s = setup("approval", &["--approval-polls", "2", "--retry-after", "7"]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let pw = fetch_attrs(&a, &s.mef).password;
    let csr = fresh_csr(&[uri(AE_ID)], Some(&pw));
    for _ in 0..2 {
        let r = post_csr(&a, &s.mef.url("simpleenroll"), &csr);
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(r.header("retry-after"), Some("7"));
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    }
    assert_eq!(
        post_csr(&a, &s.mef.url("simpleenroll"), &csr).certs().len(),
        1
    );
    // Issued once: the password is now consumed.
    post_csr(&a, &s.mef.url("simpleenroll"), &csr).assert_error(403, "does not match");
}

#[test]
fn restart_keeps_ca_registry_and_issued_certificates() {
    let s = setup("restart", &[]);
    let issued = enroll(&agent(&s.mef.ca_der, Some(&s.client)), &s.mef, uri(AE_ID));
    let dir = s.mef.dir.clone();
    let ca_before = s.mef.ca_der.clone();
    s.mef.stop();
    let mef = MefProc::start(&dir, &["--client-trust", s.tp.pem_path.to_str().unwrap()]);
    assert_eq!(mef.ca_der, ca_before);
    // Re-enrollment with the certificate issued before the restart.
    let a = agent(&mef.ca_der, Some(&issued));
    let pw = fetch_attrs(&a, &mef).password;
    let r = post_csr(
        &a,
        &mef.url("simplereenroll"),
        &make_csr(&issued.key, &[uri(AE_ID)], Some(&pw), None),
    );
    assert_eq!(r.certs().len(), 1);
    // The registry survived too.
    let _ = enroll(&agent(&mef.ca_der, Some(&s.client)), &mef, uri(AE_ID));
}

#[test]
fn identity_cli_validates_and_lists() {
    let dir = temp_dir("identity-cli");
    let d = dir.to_str().unwrap();
    let fp = "ab".repeat(32);
    for (ty, id) in [
        ("ae", "CAE01"),
        ("ae", "https://*.example.com/x"),
        ("cse", "*.sp.example.com"),
        // A single-label CSE-ID needs an SP-ID the MEF is not given (the client agrees).
        ("cse", "cse01"),
        ("ae", "/cse01/CAE01"),
        // "1.2.3" is a dotted OID now (urn:oid:1.2.3); this is not one.
        ("node", "1..3"),
        ("robot", "x"),
    ] {
        let (ok, _, err) = run_cli_on(
            d,
            &["identity", "add"],
            &[
                "--fingerprint",
                &fp,
                "--subject-type",
                ty,
                "--subject-id",
                id,
            ],
        );
        assert!(!ok, "{ty} {id} accepted");
        assert!(!err.is_empty());
    }
    let (ok, _, _) = run_cli_on(
        d,
        &["identity", "add"],
        &[
            "--fingerprint",
            &fp.to_uppercase(),
            "--subject-type",
            "cse",
            "--subject-id",
            "cse01.sp.example.com",
        ],
    );
    assert!(ok);
    let (ok, out, _) = run_cli_on(d, &["identity", "list"], &[]);
    assert!(ok);
    assert_eq!(out.trim(), format!("{fp} cse cse01.sp.example.com"));
    // The absolute AE-ID of TS-0001 7.2 is registered as the subjectAltName it maps to. It
    // replaces the CSE registration: refused without --replace (issue #14).
    let replace_with_ae = |extra: &[&str]| {
        let mut args = vec![
            "identity",
            "add",
            "--data-dir",
            d,
            "--fingerprint",
            &fp,
            "--subject-type",
            "ae",
            "--subject-id",
            "//example.net/mn-cse/CAE-device1",
        ];
        args.extend_from_slice(extra);
        run_cli(&args)
    };
    let (ok, _, err) = replace_with_ae(&[]);
    assert!(!ok && err.contains("already registered"), "{err}");
    let (ok, _, err) = replace_with_ae(&["--replace"]);
    assert!(ok, "{err}");
    let (_, out, _) = run_cli_on(d, &["identity", "list"], &[]);
    assert_eq!(
        out.trim(),
        format!("{fp} ae https://example.net/mn-cse/CAE-device1")
    );
    assert!(run_cli_on(d, &["identity", "remove"], &["--fingerprint", &fp]).0);
    assert!(!run_cli_on(d, &["identity", "remove"], &["--fingerprint", &fp]).0);
    assert_eq!(run_cli_on(d, &["identity", "list"], &[]).1.trim(), "");
}

#[test]
fn cmc_ra_server_certificate() {
    let dir = temp_dir("cmcra");
    let mef = MefProc::start(
        &dir,
        &["--server-eku", "cmc-ra", "--hostname", "mef.example.net"],
    );
    let pem = std::fs::read(dir.join("mef-server.pem")).unwrap();
    let der = ::pem::parse(pem).unwrap().into_contents();
    let (_, c) = parse_x509_certificate(&der).unwrap();
    let eku = c.extended_key_usage().unwrap().unwrap().value;
    assert!(!eku.server_auth && !eku.client_auth);
    assert_eq!(
        eku.other
            .iter()
            .map(|o| o.to_id_string())
            .collect::<Vec<_>>(),
        vec!["1.3.6.1.5.5.7.3.28"]
    );
    let sans = c.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        sans.value.general_names,
        vec![GeneralName::DNSName("mef.example.net")]
    );
    mef.stop();
    // Back to the default: the server certificate is re-issued, the CA kept.
    let mef = MefProc::start(&dir, &[]);
    let pem = std::fs::read(dir.join("mef-server.pem")).unwrap();
    let der = ::pem::parse(pem).unwrap().into_contents();
    let (_, c) = parse_x509_certificate(&der).unwrap();
    assert!(c.extended_key_usage().unwrap().unwrap().value.server_auth);
    assert_eq!(
        get(&agent(&mef.ca_der, None), &mef.url("cacerts"))
            .unwrap()
            .status,
        200
    );
}

/// CR 8.3.Z.2.3 step 3d with a per-subject-type policy from the command line: /csrattrs asks an
/// AE for clientAuth only, a CSR asking for more is refused naming the EKU check, and the
/// certificate carries exactly the policy's purposes.
#[test]
fn the_eku_policy_is_requested_checked_and_issued_per_subject_type() {
    let s = setup("eku-policy", &["--ae-eku", "client-auth"]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let attrs = fetch_attrs(&a, &s.mef);
    let client_only =
        onem2m_est_proto::eku::encode(&[onem2m_est_proto::oids::KP_CLIENT_AUTH]).unwrap();
    let requested: Vec<_> = attrs
        .requirements
        .extensions
        .iter()
        .filter(|e| e.oid == onem2m_est_proto::oids::EXT_KEY_USAGE)
        .collect();
    assert_eq!(requested.len(), 1);
    assert_eq!(requested[0].value, client_only);

    let csr_with_ekus = |pw: &str, ekus: Vec<rcgen::ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.subject_alt_names = vec![uri(AE_ID)];
        p.extended_key_usages = ekus;
        let attrs = vec![challenge_password(pw)];
        p.serialize_request_with_attributes(&key, attrs)
            .unwrap()
            .der()
            .to_vec()
    };
    use rcgen::ExtendedKeyUsagePurpose as P;
    let r = post_csr(
        &a,
        &s.mef.url("simpleenroll"),
        &csr_with_ekus(&attrs.password, vec![P::ServerAuth, P::ClientAuth]),
    );
    r.assert_error(400, "EKU check");
    // The refusal consumed the password; a CSR echoing the request is issued.
    let attrs = fetch_attrs(&a, &s.mef);
    let r = post_csr(
        &a,
        &s.mef.url("simpleenroll"),
        &csr_with_ekus(&attrs.password, vec![P::ClientAuth]),
    );
    let certs = r.certs();
    let (_, c) = parse_x509_certificate(&certs[0]).unwrap();
    let eku = c.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && eku.other.is_empty());
    // A purpose the MEF does not grant is refused at start-up.
    let (ok, _, err) = run_cli(&[
        "--data-dir",
        s.mef.dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--node-eku",
        "code-signing",
    ]);
    assert!(!ok && err.contains("key purpose"), "{err}");
}

/// RFC 7030 4.4.1: /serverkeygen ignores the CSR's public key and signature (a P-384 key, an
/// Ed25519 key, a signature that does not verify are all fine: the certificate is for the key
/// the MEF generates); /simpleenroll still checks them. 4.4.1.1/4.4.1.2: a request for the key
/// encrypted to a DecryptKeyIdentifier / AsymmetricDecryptKeyIdentifier the MEF does not hold is
/// terminated with an error naming the clause.
#[test]
fn serverkeygen_ignores_the_csr_key_and_signature_and_refuses_encryption_it_cannot_do() {
    let s = setup("serverkeygen-4.4.1", &[]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let url = s.mef.url("serverkeygen");
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let p256 = KeyPair::generate().unwrap();
    let flipped = |k: &KeyPair, pw: &str| {
        let mut der = make_csr(k, &[uri(AE_ID)], Some(pw), None);
        let last = der.len() - 1;
        der[last] ^= 0x01;
        der
    };
    type Build<'a> = Box<dyn Fn(&str) -> Vec<u8> + 'a>;
    let ignored: Vec<(&str, Build)> = vec![
        (
            "a P-384 key",
            Box::new(|pw| make_csr(&p384, &[uri(AE_ID)], Some(pw), None)),
        ),
        (
            "an Ed25519 key",
            Box::new(|pw| make_csr(&ed, &[uri(AE_ID)], Some(pw), None)),
        ),
        (
            "a signature that does not verify",
            Box::new(|pw| flipped(&p256, pw)),
        ),
    ];
    for (case, build) in &ignored {
        let pw = fetch_attrs(&a, &s.mef).password;
        let csr = build(&pw);
        let r = post_csr(&a, &url, &csr);
        assert_eq!(r.status, 200, "{case}: {}", r.text());
        let ct = r.header("content-type").unwrap().to_owned();
        let decoded = multipart::decode_serverkeygen(&ct, &r.body).unwrap();
        let key = KeyPair::try_from(&decoded.private_key_pkcs8[..]).unwrap();
        let (_, c) = parse_x509_certificate(&decoded.certificates[0]).unwrap();
        assert_eq!(
            &c.public_key().subject_public_key.data[..],
            rcgen::PublicKeyData::der_bytes(&key),
            "{case}"
        );
        // The same CSR is refused where its key and signature matter.
        let pw = fetch_attrs(&a, &s.mef).password;
        let csr = build(&pw);
        let r = post_csr(&a, &s.mef.url("simpleenroll"), &csr);
        assert_eq!(r.status, 400, "{case} on simpleenroll: {}", r.text());
    }

    // DER of SET { OCTET STRING "key-1" } and SET { SEQUENCE {} }.
    let octets = vec![0x31, 0x07, 0x04, 0x05, b'k', b'e', b'y', b'-', b'1'];
    let caps = vec![0x31, 0x02, 0x30, 0x00];
    let with_attrs = |pw: &str, extra: Vec<rcgen::Attribute>| {
        let mut p = rcgen::CertificateParams::default();
        p.subject_alt_names = vec![uri(AE_ID)];
        let mut attrs = vec![challenge_password(pw)];
        attrs.extend(extra);
        p.serialize_request_with_attributes(&p256, attrs)
            .unwrap()
            .der()
            .to_vec()
    };
    const DECRYPT: &[u64] = &[1, 2, 840, 113549, 1, 9, 16, 2, 37];
    const ASYMM: &[u64] = &[1, 2, 840, 113549, 1, 9, 16, 2, 54];
    const SMIME: &[u64] = &[1, 2, 840, 113549, 1, 9, 15];
    for (oid, needle) in [
        (
            DECRYPT,
            "DecryptKeyIdentifier of the CSR (RFC 7030 4.4.1.1)",
        ),
        (
            ASYMM,
            "AsymmetricDecryptKeyIdentifier of the CSR (RFC 7030 4.4.1.2)",
        ),
    ] {
        let pw = fetch_attrs(&a, &s.mef).password;
        let csr = with_attrs(
            &pw,
            vec![
                rcgen::Attribute {
                    oid,
                    values: octets.clone(),
                },
                rcgen::Attribute {
                    oid: SMIME,
                    values: caps.clone(),
                },
            ],
        );
        post_csr(&a, &url, &csr).assert_error(400, needle);
        // Only /serverkeygen knows the attribute.
        post_csr(&a, &s.mef.url("simpleenroll"), &csr)
            .assert_error(400, "only used with /serverkeygen");
        // The refusals left the password usable: the same password without the attribute works.
        let plain = with_attrs(&pw, vec![]);
        assert_eq!(post_csr(&a, &url, &plain).status, 200);
    }
}

/// TS-0003 10.1.1.5: a MEF CA created with `--sp-domain` carries them as critical permitted
/// dNSName nameConstraints, and the MEF refuses identities outside them on every operation that
/// needs one; a CA created without SP domains carries no nameConstraints.
#[test]
fn sp_domains_become_name_constraints_and_identities_outside_are_refused() {
    let s = setup(
        "sp-domains",
        &[
            "--hostname",
            "127.0.0.1",
            "--sp-domain",
            "sp.example.com",
            "--sp-domain",
            "m2m.example.org",
        ],
    );
    let (_, ca) = parse_x509_certificate(&s.mef.ca_der).unwrap();
    let ext = ca
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.30")
        .expect("the CA carries nameConstraints");
    assert!(
        ext.critical,
        "RFC 5280 4.2.1.10: conforming CAs mark it critical"
    );
    let ParsedExtension::NameConstraints(nc) = ext.parsed_extension() else {
        panic!("nameConstraints do not parse");
    };
    let permitted: Vec<String> = nc
        .permitted_subtrees
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.base.to_string())
        .collect();
    assert_eq!(
        permitted,
        vec!["DNSName(sp.example.com)", "DNSName(m2m.example.org)"]
    );
    assert!(nc.excluded_subtrees.is_none());
    // The AE-ID's host is inside: enrolment works.
    let a = agent(&s.mef.ca_der, Some(&s.client));
    enroll(&a, &s.mef, uri(AE_ID));
    // Identities outside: refused, /csrattrs already.
    for (t, id) in [
        ("ae", "https://sp.example.net/cse01/CAE02"),
        ("cse", "cse01.example.com"),
        ("cse", "cse01.evilsp.example.com"),
    ] {
        let other = s.tp.issue_client(&format!("device-{id}"));
        register(&s.mef.dir, &other, t, id);
        let b = agent(&s.mef.ca_der, Some(&other));
        get(&b, &s.mef.url("csrattrs"))
            .unwrap()
            .assert_error(403, "outside the SP domains");
    }
    // A CSE inside the second domain is served.
    let cse = s.tp.issue_client("device-cse");
    register(&s.mef.dir, &cse, "cse", "cse01.m2m.example.org");
    let c = agent(&s.mef.ca_der, Some(&cse));
    enroll(&c, &s.mef, dns("cse01.m2m.example.org"));

    // A server host name outside the SP domains would make the MEF's own certificate invalid.
    let (ok, _, err) = run_cli(&[
        "--data-dir",
        temp_dir("sp-domains-host").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--sp-domain",
        "sp.example.com",
    ]);
    assert!(!ok && err.contains("outside the SP domains"), "{err}");

    // Without --sp-domain: no nameConstraints.
    let plain = setup("sp-domains-none", &[]);
    let (_, ca) = parse_x509_certificate(&plain.mef.ca_der).unwrap();
    assert!(ca.name_constraints().unwrap().is_none());
}

fn write_pem(path: &std::path::Path, tag: &str, der: &[u8]) {
    std::fs::write(path, ::pem::encode(&::pem::Pem::new(tag, der.to_vec()))).unwrap();
}

/// `openssl verify -crl_check` of `cert` against the MEF CA and `crl`: (ok, output).
fn openssl_verify_crl(dir: &std::path::Path, ca: &[u8], crl: &[u8], cert: &[u8]) -> (bool, String) {
    write_pem(&dir.join("ca.pem"), "CERTIFICATE", ca);
    write_pem(&dir.join("crl.pem"), "X509 CRL", crl);
    write_pem(&dir.join("leaf.pem"), "CERTIFICATE", cert);
    run_text(
        std::process::Command::new("openssl")
            .args(["verify", "-crl_check", "-CAfile"])
            .arg(dir.join("ca.pem"))
            .arg("-CRLfile")
            .arg(dir.join("crl.pem"))
            .arg(dir.join("leaf.pem")),
    )
}

/// RFC 5280 revocation: issued certificates name the MEF's CRL URL in cRLDistributionPoints;
/// the CRL served there (anonymously, application/pkix-crl) is regenerated after each
/// revocation (also written to mef-ca.crl by `cert revoke`); `openssl verify -crl_check` sees
/// the revoked certificate as revoked and the other as good; /simplereenroll from the revoked
/// one is refused saying why.
#[test]
fn revocation_is_published_in_a_crl_at_the_distribution_point() {
    let s = setup("crl", &[]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let good = enroll(&a, &s.mef, uri(AE_ID));
    let doomed = enroll(&a, &s.mef, uri(AE_ID));
    let (_, cert) = parse_x509_certificate(&doomed.cert_der).unwrap();
    let dp_url = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(dps) => dps.points.first().and_then(|p| match p
                .distribution_point
                .as_ref()?
            {
                x509_parser::extensions::DistributionPointName::FullName(names) => {
                    names.iter().find_map(|n| match n {
                        GeneralName::URI(u) => Some(u.to_string()),
                        _ => None,
                    })
                }
                _ => None,
            }),
            _ => None,
        })
        .expect("the certificate names a CRL distribution point");
    assert_eq!(
        dp_url,
        format!("https://localhost:{}/crl/mef-ca.crl", s.mef.addr.port())
    );
    let fetch_crl = || {
        let anon = agent(&s.mef.ca_der, None);
        let r = get(&anon, &dp_url).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/pkix-crl"));
        r.body
    };
    let dir = temp_dir("crl-openssl");
    let before = fetch_crl();
    let (ok, out) = openssl_verify_crl(&dir, &s.mef.ca_der, &before, &doomed.cert_der);
    assert!(ok, "not yet revoked: {out}");

    let serial = cert.raw_serial_as_string().replace(':', "");
    let (ok, out, err) = run_cli_on(&s.mef.dir, &["cert", "revoke"], &["--id", &serial]);
    assert!(ok, "{out}{err}");
    // `cert revoke` rewrote the CRL file, and the served CRL follows.
    let file = std::fs::read(s.mef.dir.join("mef-ca.crl")).unwrap();
    let after = fetch_crl();
    assert_ne!(after, before, "the CRL is regenerated on revocation");
    for crl in [&file, &after] {
        let (ok, out) = openssl_verify_crl(&dir, &s.mef.ca_der, crl, &doomed.cert_der);
        assert!(!ok && out.contains("certificate revoked"), "{out}");
        let (ok, out) = openssl_verify_crl(&dir, &s.mef.ca_der, crl, &good.cert_der);
        assert!(ok, "the good certificate: {out}");
    }
    // curl fetches it from the distribution point too (HTTPS, the MEF CA as anchor).
    write_pem(&dir.join("ca.pem"), "CERTIFICATE", &s.mef.ca_der);
    let curl = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--fail", "--cacert"])
        .arg(dir.join("ca.pem"))
        .arg(&dp_url)
        .output()
        .expect("curl runs (scripts/test.sh installs it)");
    assert!(curl.status.success(), "{}", stderr(&curl));
    assert_eq!(curl.stdout, after);

    // /simplereenroll from the revoked certificate is refused, saying why.
    let b = agent(&s.mef.ca_der, Some(&doomed));
    let r = get(&b, &s.mef.url("csrattrs")).unwrap();
    r.assert_error(403, "revoked");
    let csr = make_csr(&doomed.key, &[uri(AE_ID)], Some("x"), None);
    post_csr(&b, &s.mef.url("simplereenroll"), &csr).assert_error(403, "revoked");
    // Only GET.
    let r = post(&agent(&s.mef.ca_der, None), &dp_url, None, b"").unwrap();
    assert_eq!(r.status, 405);
}

/// RFC 7030 4.1.3 on the command line: `ca rollover` writes the new CA and the two link
/// certificates (each verifies with `openssl verify` under the CA that signed it, and carries
/// the other generation's name and key); a restarted MEF serves all four in /cacerts and issues
/// under the new CA; a second rollover is refused during the overlap; `ca retire-old` ends it
/// and is refused when there is none.
#[test]
fn ca_rollover_and_retire_old_on_the_command_line() {
    let s = setup("rollover", &[]);
    let dir = s.mef.dir.clone();
    let old_ca = s.mef.ca_der.clone();
    let tp_pem = s.tp.pem_path.clone();
    let client = s.client;
    s.mef.stop();
    let d = dir.to_str().unwrap();
    let (ok, out, err) = run_cli_on(d, &["ca", "rollover"], &[]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = run_cli_on(d, &["ca", "rollover"], &[]);
    assert!(!ok && err.contains("already in progress"), "{err}");
    let read = |f: &str| {
        ::pem::parse(std::fs::read(dir.join(f)).unwrap())
            .unwrap()
            .into_contents()
    };
    let new_ca = read("mef-ca.pem");
    assert_eq!(read("mef-ca-old.pem"), old_ca);
    let (nwo, own) = (read("mef-ca-newwithold.pem"), read("mef-ca-oldwithnew.pem"));
    let verify = |anchor: &str, cert: &str| {
        let o = std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(dir.join(anchor))
            .arg(dir.join(cert))
            .output()
            .expect("the openssl CLI runs (scripts/test.sh installs it)");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    for (anchor, link) in [
        ("mef-ca-old.pem", "mef-ca-newwithold.pem"),
        ("mef-ca.pem", "mef-ca-oldwithnew.pem"),
    ] {
        let (ok, out) = verify(anchor, link);
        assert!(ok, "{link} under {anchor}: {out}");
        // And not under the other generation.
        let other = if anchor == "mef-ca.pem" {
            "mef-ca-old.pem"
        } else {
            "mef-ca.pem"
        };
        assert!(
            !verify(other, link).0,
            "{link} must not verify under {other}"
        );
    }
    let (_, n) = parse_x509_certificate(&new_ca).unwrap();
    let (_, o) = parse_x509_certificate(&old_ca).unwrap();
    let (_, l) = parse_x509_certificate(&nwo).unwrap();
    assert_eq!(l.subject(), n.subject());
    assert_eq!(l.issuer(), o.subject());
    assert_eq!(l.public_key().raw, n.public_key().raw);
    let (_, l) = parse_x509_certificate(&own).unwrap();
    assert_eq!(l.subject(), o.subject());
    assert_eq!(l.issuer(), n.subject());
    assert_eq!(l.public_key().raw, o.public_key().raw);
    assert_ne!(n.subject(), o.subject());

    // Restarted: all four in /cacerts; a client that trusts only the old CA still connects
    // (NewWithOld in the TLS chain), its certificate is under the new CA.
    let mef = MefProc::start(&dir, &["--client-trust", tp_pem.to_str().unwrap()]);
    let a = agent(&old_ca, Some(&client));
    let r = get(&a, &mef.url("cacerts")).unwrap();
    let mut served = r.certs();
    served.sort();
    let mut expected = vec![new_ca.clone(), old_ca.clone(), nwo.clone(), own.clone()];
    expected.sort();
    assert_eq!(served, expected);
    let issued = enroll(&a, &mef, uri(AE_ID));
    let (_, c) = parse_x509_certificate(&issued.cert_der).unwrap();
    assert_eq!(c.issuer(), n.subject());
    mef.stop();

    retire_old(&dir, &[], "mef-ca-old.key");
    let (ok, _, err) = run_cli_on(d, &["ca", "retire-old"], &[]);
    assert!(!ok && err.contains("no CA rollover in progress"), "{err}");
    let mef = MefProc::start(&dir, &["--client-trust", tp_pem.to_str().unwrap()]);
    let a = agent(&new_ca, Some(&client));
    assert_eq!(get(&a, &mef.url("cacerts")).unwrap().certs(), vec![new_ca]);
}

/// A CA whose key is not in `mef-ca.key` (a CA key in a PKCS #11 token: the MEF never writes
/// one) is not rolled over by `ca rollover` without the token keys: refused with what it needs
/// (--ca-key, --new-ca-key) and nothing changes. The rollover in a real token is in
/// tests/pkcs11.rs.
#[test]
fn ca_rollover_refuses_a_ca_without_its_key_file() {
    let dir = temp_dir("rollover-token");
    let d = dir.to_str().unwrap();
    onem2m_mef::ca::MefCa::load_or_create(&dir, &[], None).unwrap();
    std::fs::remove_file(dir.join("mef-ca.key")).unwrap();
    let before = std::fs::read(dir.join("mef-ca.pem")).unwrap();
    let (ok, _, err) = run_cli_on(d, &["ca", "rollover"], &[]);
    assert!(!ok);
    assert!(
        err.contains("PKCS #11 token") && err.contains("--new-ca-key"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("mef-ca.pem")).unwrap(), before);
    assert!(!dir.join("mef-ca-old.pem").exists());
    assert!(!dir.join("mef-ca.key").exists());
}
