//! End-to-end tests of the `onem2m-mef` binary over HTTPS on 127.0.0.1.

mod common;

use common::*;
use onem2m_est_proto::{base64body, multipart, san};
use rcgen::KeyPair;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

/// A MEF trusting one third-party CA, with one registered AE client.
struct Setup {
    mef: MefProc,
    tp: ThirdPartyCa,
    client: Creds,
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
                assert!(eku.client_auth && !eku.server_auth);
                seen += 1;
            }
            ParsedExtension::AuthorityKeyIdentifier(_) => seen += 1,
            _ => {}
        }
    }
    assert_eq!(seen, 4);
    // Recorded in the database (CLI view).
    let (ok, out, _) = run_cli(&["cert", "list", "--data-dir", s.mef.dir.to_str().unwrap()]);
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
    let issued = enroll(
        &agent(&s.mef.ca_der, Some(&cse)),
        &s.mef,
        dns("cse01.sp.example.com"),
    );
    let (_, c) = parse_x509_certificate(&issued.cert_der).unwrap();
    let sans = c.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        sans.value.general_names,
        vec![GeneralName::DNSName("cse01.sp.example.com")]
    );
    let issued = enroll(
        &agent(&s.mef.ca_der, Some(&node)),
        &s.mef,
        uri("urn:oid:1.3.6.1.4.1.99999.1.2.3"),
    );
    let (_, c) = parse_x509_certificate(&issued.cert_der).unwrap();
    let sans = c.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        sans.value.general_names,
        vec![GeneralName::URI("urn:oid:1.3.6.1.4.1.99999.1.2.3")]
    );
    // A URI form for a CSE is not its identity.
    let a = agent(&s.mef.ca_der, Some(&cse));
    let pw = fetch_attrs(&a, &s.mef).password;
    let csr = make_csr(
        &KeyPair::generate().unwrap(),
        &[uri("https://cse01.sp.example.com")],
        Some(&pw),
        None,
    );
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
    let items =
        onem2m_est_proto::csrattrs::decode(&base64body::decode(&first[1].body).unwrap()).unwrap();
    let reqs = onem2m_est_proto::csrattrs::CsrRequirements::from_items(&items).unwrap();
    let pw = match reqs.challenge_password {
        onem2m_est_proto::csrattrs::ChallengePassword::Value(v) => v.to_string(),
        _ => panic!(),
    };
    let csr = csr_b64(&make_csr(
        &KeyPair::generate().unwrap(),
        &[uri(AE_ID)],
        Some(&pw),
        None,
    ));
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
    let csr = |pw: &str| make_csr(&KeyPair::generate().unwrap(), &[uri(AE_ID)], Some(pw), None);
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
    let csr = |pw: Option<&str>| make_csr(&KeyPair::generate().unwrap(), &[uri(AE_ID)], pw, None);

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
    let wrong = make_csr(
        &KeyPair::generate().unwrap(),
        &[uri("https://sp.example.com/cse01/CAE02")],
        Some(&pw),
        None,
    );
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
    let csr_b = make_csr(
        &KeyPair::generate().unwrap(),
        &[uri("https://sp.example.com/cse01/CAE02")],
        Some(&others_pw),
        None,
    );
    assert_eq!(post_csr(&b, &url, &csr_b).status, 200);
}

#[test]
fn expired_challenge_password() {
    let s = setup("expired", &["--challenge-ttl-secs", "1"]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let pw = fetch_attrs(&a, &s.mef).password;
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let csr = make_csr(
        &KeyPair::generate().unwrap(),
        &[uri(AE_ID)],
        Some(&pw),
        None,
    );
    post_csr(&a, &s.mef.url("simpleenroll"), &csr).assert_error(403, "expired");
}

#[test]
fn csr_content_rules() {
    let s = setup("csr-rules", &[]);
    let a = agent(&s.mef.ca_der, Some(&s.client));
    let url = s.mef.url("simpleenroll");
    let pw = || fetch_attrs(&a, &s.mef).password;
    let key = || KeyPair::generate().unwrap();

    post_csr(
        &a,
        &url,
        &make_csr(
            &key(),
            &[uri("https://sp.example.com/cse01/Cother")],
            Some(&pw()),
            None,
        ),
    )
    .assert_error(400, "does not match the identity");
    post_csr(
        &a,
        &url,
        &make_csr(
            &key(),
            &[uri(AE_ID), dns("extra.example.com")],
            Some(&pw()),
            None,
        ),
    )
    .assert_error(400, "exactly one name");
    post_csr(&a, &url, &make_csr(&key(), &[], Some(&pw()), None))
        .assert_error(400, "no subjectAltName");
    post_csr(
        &a,
        &url,
        &make_csr(&key(), &[dns("sp.example.com")], Some(&pw()), None),
    )
    .assert_error(400, "does not match the identity");
    let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    post_csr(&a, &url, &make_csr(&p384, &[uri(AE_ID)], Some(&pw()), None))
        .assert_error(400, "P-256");
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    post_csr(&a, &url, &make_csr(&ed, &[uri(AE_ID)], Some(&pw()), None)).assert_error(400, "P-256");
    // Bad signature: flip a bit in the last byte (inside the ECDSA signature value).
    let mut bad = make_csr(&key(), &[uri(AE_ID)], Some(&pw()), None);
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    post_csr(&a, &url, &bad).assert_error(400, "signature");
    // No certificate was issued by any of these.
    let (_, out, _) = run_cli(&["cert", "list", "--data-dir", s.mef.dir.to_str().unwrap()]);
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
    let csr = make_csr(
        &KeyPair::generate().unwrap(),
        &[uri(AE_ID)],
        Some("x"),
        None,
    );
    post_csr(&anon, &s.mef.url("simpleenroll"), &csr).assert_error(403, "client certificate");
    post_csr(&anon, &s.mef.url("serverkeygen"), &csr).assert_error(403, "client certificate");
    // Untrusted client certificate: refused at the TLS layer.
    let rogue = self_signed_client();
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
    let (ok, _, _) = run_cli(&[
        "identity",
        "remove",
        "--data-dir",
        s.mef.dir.to_str().unwrap(),
        "--fingerprint",
        &s.client.fingerprint(),
    ]);
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
    let csr = make_csr(
        &KeyPair::generate().unwrap(),
        &[uri(AE_ID)],
        Some(&pw),
        None,
    );
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
    let change = make_csr(
        &KeyPair::generate().unwrap(),
        &[uri("https://sp.example.com/cse01/CAE99")],
        Some(&pw),
        None,
    );
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
    let (ok, _, _) = run_cli(&[
        "cert",
        "revoke",
        "--data-dir",
        s.mef.dir.to_str().unwrap(),
        "--id",
        &issued.fingerprint(),
    ]);
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
    // Other certificates of the same identity are unaffected.
    let b = agent(&s.mef.ca_der, Some(&again));
    let pw = fetch_attrs(&b, &s.mef).password;
    assert_eq!(
        post_csr(
            &b,
            &url,
            &make_csr(&again.key, &[uri(AE_ID)], Some(&pw), None)
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
    let creds = Creds {
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
    let csr = make_csr(
        &KeyPair::generate().unwrap(),
        &[uri(AE_ID)],
        Some(&pw),
        None,
    );
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
        let (ok, _, err) = run_cli(&[
            "identity",
            "add",
            "--data-dir",
            d,
            "--fingerprint",
            &fp,
            "--subject-type",
            ty,
            "--subject-id",
            id,
        ]);
        assert!(!ok, "{ty} {id} accepted");
        assert!(!err.is_empty());
    }
    let (ok, _, _) = run_cli(&[
        "identity",
        "add",
        "--data-dir",
        d,
        "--fingerprint",
        &fp.to_uppercase(),
        "--subject-type",
        "cse",
        "--subject-id",
        "cse01.sp.example.com",
    ]);
    assert!(ok);
    let (ok, out, _) = run_cli(&["identity", "list", "--data-dir", d]);
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
    let (_, out, _) = run_cli(&["identity", "list", "--data-dir", d]);
    assert_eq!(
        out.trim(),
        format!("{fp} ae https://example.net/mn-cse/CAE-device1")
    );
    assert!(run_cli(&["identity", "remove", "--data-dir", d, "--fingerprint", &fp]).0);
    assert!(!run_cli(&["identity", "remove", "--data-dir", d, "--fingerprint", &fp]).0);
    assert_eq!(run_cli(&["identity", "list", "--data-dir", d]).1.trim(), "");
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
