//! A hostile-client suite for the reference MEF: the mirror of the client's hostile-server
//! matrix (`tests/hostile.rs`). Each case is an attack a device could make on the `onem2m-mef`
//! binary (on 127.0.0.1), and asserts the refusal, its reason (the status and the text that
//! names the failed check) and that no certificate was recorded in the MEF's store. Controls
//! (the same request without the attack, accepted) show that each refusal is the attack's.
//! SECURITY.md lists the families and cases.
//!
//! `ONEM2M_MEF_BIN=/path/to/onem2m-mef` runs the suite against another build of the binary.

mod common;

use common::*;
use onem2m_est_proto::san::GeneralName;
use onem2m_est_testkit::pki::{fresh_csr, CHALLENGE_PASSWORD};
use onem2m_est_testkit::{Eku, TestCa};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const VICTIM_ID: &str = "https://sp.example.com/cse01/CVICTIM";
const EST: &str = "/.well-known/est";

// --- DER for crafted CSRs (test inputs only; the MEF parses with x509-parser) ---------------

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let n = content.len();
    let mut v = vec![tag];
    match n {
        0..=127 => v.push(n as u8),
        128..=255 => v.extend([0x81, n as u8]),
        _ => v.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(content);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

const OID_SAN: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x11];
const OID_BC: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x13];
const OID_KU: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0f];
const OID_EKU: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x25];
/// 1.3.6.1.4.1.99999.1, an extension nobody defined.
const OID_UNKNOWN: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01,
];
const KP_SERVER_AUTH: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
const KP_CLIENT_AUTH: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
const KP_CODE_SIGNING: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
const EXTENSION_REQUEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 14];

/// An Extension (RFC 5280 4.1).
fn ext(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let crit: &[u8] = if critical { &[0x01, 0x01, 0xff] } else { &[] };
    tlv(0x30, &cat(&[oid, crit, &tlv(0x04, value)]))
}

fn san_value(names: &[&str]) -> Vec<u8> {
    let names: Vec<GeneralName> = names
        .iter()
        .map(|n| GeneralName::Uri(n.to_string()))
        .collect();
    onem2m_est_proto::san::encode(&names).unwrap()
}

fn san_ext(names: &[&str]) -> Vec<u8> {
    ext(OID_SAN, false, &san_value(names))
}

/// An `Extensions` SEQUENCE.
fn extensions(exts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &exts.concat())
}

/// An extensionRequest attribute with these values (each an `Extensions`).
fn ext_request(values: &[Vec<u8>]) -> rcgen::Attribute {
    rcgen::Attribute {
        oid: EXTENSION_REQUEST,
        values: tlv(0x31, &values.concat()),
    }
}

fn password_attr(passwords: &[&str]) -> rcgen::Attribute {
    let values: Vec<Vec<u8>> = passwords.iter().map(|p| tlv(0x0c, p.as_bytes())).collect();
    rcgen::Attribute {
        oid: CHALLENGE_PASSWORD,
        values: tlv(0x31, &values.concat()),
    }
}

/// A CSR signed by `key` with exactly these attributes (an empty subject).
fn crafted_csr(key: &KeyPair, attrs: Vec<rcgen::Attribute>) -> Vec<u8> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.serialize_request_with_attributes(key, attrs)
        .unwrap()
        .der()
        .to_vec()
}

/// The usual CSR: the password and one extensionRequest holding `exts`.
fn csr_with(key: &KeyPair, password: &str, exts: &[Vec<u8>]) -> Vec<u8> {
    crafted_csr(
        key,
        vec![password_attr(&[password]), ext_request(&[extensions(exts)])],
    )
}

// --- the MEF under attack -------------------------------------------------------------------

/// A MEF trusting a third-party CA, with two registered devices: the attacker's (`device`,
/// identity AE_ID) and a victim (VICTIM_ID).
struct Target {
    mef: MefProc,
    tp: ThirdPartyCa,
    device: ClientCreds,
    victim: ClientCreds,
    dir: PathBuf,
}

fn target(name: &str, extra: &[&str]) -> Target {
    let dir = temp_dir(&format!("hostile-{name}"));
    let tp = ThirdPartyCa::new(&dir, "tp");
    let device = tp.issue_client("attacker device");
    let victim = tp.issue_client("victim device");
    let mef_dir = dir.join("mef");
    std::fs::create_dir_all(&mef_dir).unwrap();
    register(&mef_dir, &device, "ae", AE_ID);
    register(&mef_dir, &victim, "ae", VICTIM_ID);
    let mut args = vec!["--client-trust", tp.pem_path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mef = MefProc::start(&mef_dir, &args);
    Target {
        mef,
        tp,
        device,
        victim,
        dir,
    }
}

/// How many certificates the MEF's store holds (`cert list`).
fn issued_count(mef_dir: &Path) -> usize {
    // --json: one object per certificate, no header line.
    let dir = mef_dir.to_str().unwrap();
    let (ok, out, err) = run_cli(&["cert", "list", "--json", "--data-dir", dir]);
    assert!(ok, "cert list: {err}");
    out.lines().filter(|l| l.starts_with('{')).count()
}

impl Target {
    fn agent(&self, creds: &ClientCreds) -> ureq::Agent {
        agent(&self.mef.ca_der, Some(creds))
    }

    fn issued(&self) -> usize {
        issued_count(&self.mef.dir)
    }

    fn password(&self, creds: &ClientCreds) -> String {
        fetch_attrs(&self.agent(creds), &self.mef).password
    }

    fn conn(&self, creds: &ClientCreds) -> std::io::Result<RawConn> {
        RawConn::open(
            &self.mef.ca_der,
            Some((std::slice::from_ref(&creds.cert_der), &creds.key)),
            self.mef.addr.port(),
        )
    }

    /// Asserts that `resp` is the refusal `status` naming `needle`, and that the store holds
    /// `before` certificates still.
    fn refused(&self, case: &str, resp: &Resp, status: u16, needle: &str, before: usize) {
        if let Err(e) = self.check_refused(case, resp, status, needle, before) {
            panic!("{e}");
        }
    }

    /// [`Target::refused`] as a result, for tables of cases that report every case that fails.
    fn check_refused(
        &self,
        case: &str,
        resp: &Resp,
        status: u16,
        needle: &str,
        before: usize,
    ) -> Result<(), String> {
        let text = resp.text();
        if resp.status != status || !text.to_lowercase().contains(&needle.to_lowercase()) {
            return Err(format!(
                "{case}: expected {status} naming {needle:?}, got {}: {}",
                resp.status,
                text.trim()
            ));
        }
        resp.assert_error(status, needle);
        let now = self.issued();
        if now != before {
            return Err(format!("{case}: a certificate was recorded"));
        }
        eprintln!("case {case}: refused {status} ({})", text.trim());
        Ok(())
    }

    fn post(&self, creds: &ClientCreds, op: &str, csr: &[u8]) -> Resp {
        post_csr(&self.agent(creds), &self.mef.url(op), csr)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uri_names(cert_der: &[u8]) -> Vec<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    c.subject_alternative_name()
        .unwrap()
        .map(|s| {
            s.value
                .general_names
                .iter()
                .map(|g| format!("{g:?}"))
                .collect()
        })
        .unwrap_or_default()
}

// --- identity substitution ------------------------------------------------------------------

#[test]
fn identity_substitution_is_refused() {
    let t = target("identity", &[]);
    let key = KeyPair::generate().unwrap();
    let n = t.issued();
    let cases: [(&str, Vec<rcgen::SanType>, &str); 4] = [
        (
            "the victim's identity",
            vec![uri(VICTIM_ID)],
            "does not match the identity",
        ),
        (
            "own and the victim's identity",
            vec![uri(AE_ID), uri(VICTIM_ID)],
            "exactly one name",
        ),
        (
            "own identity as a dNSName",
            vec![dns("sp.example.com")],
            "does not match the identity",
        ),
        ("no subjectAltName", vec![], "no subjectAltName"),
    ];
    for (case, sans, needle) in cases {
        for op in ["simpleenroll", "serverkeygen"] {
            // A refusal consumes the password (a final answer), so each attempt gets its own.
            let pw = t.password(&t.device);
            let csr = make_csr(&key, &sans, Some(&pw), None);
            let r = t.post(&t.device, op, &csr);
            t.refused(&format!("{op}: {case}"), &r, 400, needle, n);
        }
    }
    // The victim's challengePassword in the attacker's CSR, on the attacker's connection.
    let victim_pw = t.password(&t.victim);
    let csr = make_csr(&key, &[uri(VICTIM_ID)], Some(&victim_pw), None);
    let r = t.post(&t.device, "simpleenroll", &csr);
    t.refused(
        "the victim's challengePassword",
        &r,
        403,
        "does not match one issued to this client",
        n,
    );
    // Control: the victim's password still works for the victim (the attack did not use it up).
    let csr = make_csr(&key, &[uri(VICTIM_ID)], Some(&victim_pw), None);
    assert_eq!(t.post(&t.victim, "simpleenroll", &csr).status, 200);
    // Whatever the CSR's subject says, the certificate carries the registered identity only.
    let pw = t.password(&t.device);
    let csr = make_csr(&key, &[uri(AE_ID)], Some(&pw), Some(VICTIM_ID));
    let issued = t.post(&t.device, "simpleenroll", &csr).certs();
    let names = uri_names(&issued[0]);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].contains(AE_ID), "{names:?}");
    let (_, c) = x509_parser::parse_x509_certificate(&issued[0]).unwrap();
    assert!(!c.subject().to_string().contains("CVICTIM"));
}

// --- challengePassword replay ---------------------------------------------------------------

#[test]
fn challenge_password_replay_is_refused_sequentially_and_under_concurrency() {
    let t = target("replay", &[]);
    let key = KeyPair::generate().unwrap();
    let pw = t.password(&t.device);
    let csr = make_csr(&key, &[uri(AE_ID)], Some(&pw), None);
    assert_eq!(t.post(&t.device, "simpleenroll", &csr).status, 200);
    let n = t.issued();
    // The same CSR again, and another CSR with the same password.
    let r = t.post(&t.device, "simpleenroll", &csr);
    t.refused("replayed CSR", &r, 403, "already used", n);
    let other = fresh_csr(&[uri(AE_ID)], Some(&pw));
    let r = t.post(&t.device, "serverkeygen", &other);
    t.refused("replayed password", &r, 403, "already used", n);
    // A password consumed by a refused CSR stays consumed.
    let pw = t.password(&t.device);
    let wrong = make_csr(&key, &[uri(VICTIM_ID)], Some(&pw), None);
    t.post(&t.device, "simpleenroll", &wrong)
        .assert_error(400, "does not match");
    let r = t.post(
        &t.device,
        "simpleenroll",
        &make_csr(&key, &[uri(AE_ID)], Some(&pw), None),
    );
    t.refused("password after a refused CSR", &r, 403, "already used", n);
    // No password, a made-up one.
    let r = t.post(
        &t.device,
        "simpleenroll",
        &make_csr(&key, &[uri(AE_ID)], None, None),
    );
    t.refused("no challengePassword", &r, 403, "no challengePassword", n);
    let r = t.post(
        &t.device,
        "simpleenroll",
        &make_csr(&key, &[uri(AE_ID)], Some("AAAAAAAAAAAAAAAAAAAAAAAA"), None),
    );
    t.refused("made-up challengePassword", &r, 403, "does not match", n);
    // A second password attribute, a second value: one of them unchecked would be a way round.
    let pw = t.password(&t.device);
    let twice = crafted_csr(
        &key,
        vec![
            password_attr(&[&pw]),
            password_attr(&["AAAAAAAAAAAAAAAAAAAAAAAA"]),
            ext_request(&[extensions(&[san_ext(&[AE_ID])])]),
        ],
    );
    let r = t.post(&t.device, "simpleenroll", &twice);
    t.refused("challengePassword attribute twice", &r, 400, "twice", n);
    let two_values = crafted_csr(
        &key,
        vec![
            password_attr(&[&pw, "AAAAAAAAAAAAAAAAAAAAAAAA"]),
            ext_request(&[extensions(&[san_ext(&[AE_ID])])]),
        ],
    );
    let r = t.post(&t.device, "simpleenroll", &two_values);
    t.refused(
        "challengePassword with two values",
        &r,
        400,
        "exactly one value",
        n,
    );

    // 20 concurrent requests, each on its own connection, all with one password: one wins.
    let pw = t.password(&t.device);
    let url = t.mef.url("simpleenroll");
    let statuses: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let a = t.agent(&t.device);
                let csr = fresh_csr(&[uri(AE_ID)], Some(&pw));
                let url = url.clone();
                scope.spawn(move || {
                    let r = post_csr(&a, &url, &csr);
                    (r.status, r.text())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = statuses.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(won, 1, "{statuses:?}");
    for (status, text) in statuses.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 403, "{text}");
        assert!(
            text.contains("already been used") || text.contains("does not match"),
            "{text}"
        );
    }
    assert_eq!(t.issued(), n + 1, "exactly one certificate for 20 replays");
    eprintln!("case 20 concurrent replays: 1 issued, 19 refused 403");
}

#[test]
fn expired_challenge_password_is_refused() {
    let t = target("expired-pw", &["--challenge-ttl-secs", "1"]);
    let pw = t.password(&t.device);
    std::thread::sleep(Duration::from_millis(2200));
    let n = t.issued();
    let key = KeyPair::generate().unwrap();
    let r = t.post(
        &t.device,
        "simpleenroll",
        &make_csr(&key, &[uri(AE_ID)], Some(&pw), None),
    );
    t.refused("expired challengePassword", &r, 403, "expired", n);
}

// --- CSRs read in full ----------------------------------------------------------------------

#[test]
fn every_csr_attribute_and_value_is_read_on_simpleenroll_and_serverkeygen() {
    let t = target("csr-walk", &[]);
    let key = KeyPair::generate().unwrap();
    // GeneralNames, then more bytes: a second GeneralNames naming the victim.
    let trailing = cat(&[&san_value(&[AE_ID]), &san_value(&[VICTIM_ID])]);
    // [6] with a non-ASCII byte: not an IA5String.
    let unparsable = tlv(0x30, &[0x86, 0x01, 0xff]);
    type Build<'a> = Box<dyn Fn(&str) -> Vec<u8> + 'a>;
    let k = &key;
    let cases: Vec<(&str, Build, &str)> = vec![
        (
            "a second extensionRequest attribute",
            Box::new(move |pw| {
                crafted_csr(
                    k,
                    vec![
                        password_attr(&[pw]),
                        ext_request(&[extensions(&[san_ext(&[AE_ID])])]),
                        ext_request(&[extensions(&[san_ext(&[VICTIM_ID])])]),
                    ],
                )
            }),
            "twice",
        ),
        (
            "a second value in the extensionRequest SET",
            Box::new(move |pw| {
                crafted_csr(
                    k,
                    vec![
                        password_attr(&[pw]),
                        ext_request(&[
                            extensions(&[san_ext(&[AE_ID])]),
                            extensions(&[san_ext(&[VICTIM_ID])]),
                        ]),
                    ],
                )
            }),
            "exactly one value",
        ),
        (
            "an unparsable subjectAltName beside a valid one",
            Box::new({
                let unparsable = unparsable.clone();
                move |pw| {
                    csr_with(
                        k,
                        pw,
                        &[san_ext(&[AE_ID]), ext(OID_SAN, false, &unparsable)],
                    )
                }
            }),
            "twice",
        ),
        (
            "a subjectAltName that is not GeneralNames beside a valid one",
            Box::new(move |pw| {
                csr_with(
                    k,
                    pw,
                    &[san_ext(&[AE_ID]), ext(OID_SAN, false, &[0x04, 0x00])],
                )
            }),
            "twice",
        ),
        (
            "an unparsable subjectAltName",
            Box::new(move |pw| csr_with(k, pw, &[ext(OID_SAN, false, &unparsable)])),
            "does not parse",
        ),
        (
            "a subjectAltName with names after its GeneralNames",
            Box::new(move |pw| csr_with(k, pw, &[ext(OID_SAN, false, &trailing)])),
            "does not parse",
        ),
        (
            "an unknown attribute",
            Box::new(move |pw| {
                let mut attrs = vec![
                    password_attr(&[pw]),
                    ext_request(&[extensions(&[san_ext(&[AE_ID])])]),
                ];
                attrs.push(rcgen::Attribute {
                    oid: &[1, 2, 840, 113549, 1, 9, 2], // unstructuredName
                    values: tlv(0x31, &tlv(0x0c, VICTIM_ID.as_bytes())),
                });
                crafted_csr(k, attrs)
            }),
            "does not accept",
        ),
    ];
    for op in ["simpleenroll", "serverkeygen"] {
        let mut failed = Vec::new();
        for (case, build, needle) in &cases {
            let pw = t.password(&t.device);
            let before = t.issued();
            let r = t.post(&t.device, op, &build(&pw));
            failed.extend(
                t.check_refused(&format!("{op}: {case}"), &r, 400, needle, before)
                    .err(),
            );
        }
        assert!(failed.is_empty(), "{failed:#?}");
        // Control: the same crafting with one extensionRequest, one value, one valid name.
        let pw = t.password(&t.device);
        let r = t.post(&t.device, op, &csr_with(&key, &pw, &[san_ext(&[AE_ID])]));
        assert_eq!(r.status, 200, "{op} control: {}", r.text());
    }
}

// --- SAN and extension games ----------------------------------------------------------------

#[test]
fn extensions_the_policy_does_not_grant_are_refused() {
    let t = target("extensions", &[]);
    let key = KeyPair::generate().unwrap();

    let eku = |kps: &[&[u8]]| ext(OID_EKU, false, &tlv(0x30, &kps.concat()));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "basicConstraints CA:TRUE",
            ext(OID_BC, true, &tlv(0x30, &[0x01, 0x01, 0xff])),
            "CA:TRUE",
        ),
        (
            "keyUsage keyCertSign",
            // digitalSignature | keyCertSign
            ext(OID_KU, true, &[0x03, 0x02, 0x02, 0x84]),
            "keyCertSign",
        ),
        (
            "keyUsage cRLSign",
            ext(OID_KU, true, &[0x03, 0x02, 0x01, 0x82]),
            "cRLSign",
        ),
        (
            "keyUsage keyEncipherment",
            ext(OID_KU, true, &[0x03, 0x02, 0x05, 0xa0]),
            "other than digitalSignature",
        ),
        (
            // The default policy wants serverAuth and clientAuth (CR 8.3.Z.2.3 step 3d).
            "extendedKeyUsage clientAuth alone",
            eku(&[KP_CLIENT_AUTH]),
            "EKU check",
        ),
        (
            "extendedKeyUsage with an extra purpose",
            eku(&[KP_SERVER_AUTH, KP_CLIENT_AUTH, KP_CODE_SIGNING]),
            "EKU check",
        ),
        (
            "extendedKeyUsage naming a purpose twice",
            eku(&[KP_SERVER_AUTH, KP_CLIENT_AUTH, KP_CLIENT_AUTH]),
            "twice",
        ),
        (
            "extendedKeyUsage codeSigning",
            eku(&[KP_CODE_SIGNING]),
            "EKU check",
        ),
        (
            "an unknown critical extension",
            ext(OID_UNKNOWN, true, &[0x05, 0x00]),
            "does not grant",
        ),
        (
            "an unknown extension",
            ext(OID_UNKNOWN, false, &[0x05, 0x00]),
            "does not grant",
        ),
        ("subjectAltName twice", san_ext(&[AE_ID]), "twice"),
    ];
    for op in ["simpleenroll", "serverkeygen"] {
        let mut failed = Vec::new();
        for (case, extra, needle) in &cases {
            let pw = t.password(&t.device);
            let csr = csr_with(&key, &pw, &[san_ext(&[AE_ID]), extra.clone()]);
            let before = t.issued();
            let r = t.post(&t.device, op, &csr);
            failed.extend(
                t.check_refused(&format!("{op}: {case}"), &r, 400, needle, before)
                    .err(),
            );
        }
        assert!(failed.is_empty(), "{failed:#?}");
    }
    // Control: what the profile grants may be requested (CA:FALSE, digitalSignature,
    // the policy's serverAuth + clientAuth), and the certificate is the MEF's profile.
    let pw = t.password(&t.device);
    let csr = csr_with(
        &key,
        &pw,
        &[
            san_ext(&[AE_ID]),
            ext(OID_BC, false, &tlv(0x30, &[])),
            ext(OID_KU, true, &[0x03, 0x02, 0x07, 0x80]),
            eku(&[KP_CLIENT_AUTH, KP_SERVER_AUTH]),
        ],
    );
    let certs = t.post(&t.device, "simpleenroll", &csr).certs();
    let (_, c) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
    assert!(!c.is_ca());
    let ku = c.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign() && !ku.crl_sign());
    let eku = c.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && eku.server_auth && eku.other.is_empty());
}

// --- revoked and forged certificates, on every operation ------------------------------------

const OPS: [&str; 4] = ["csrattrs", "simpleenroll", "simplereenroll", "serverkeygen"];

/// Every operation but /cacerts with `creds`, each refused `status` naming `needle`.
fn refused_everywhere(t: &Target, case: &str, creds: &ClientCreds, status: u16, needle: &str) {
    let n = t.issued();
    let a = t.agent(creds);
    for op in OPS {
        let r = if op == "csrattrs" {
            get(&a, &t.mef.url(op)).unwrap()
        } else {
            // A CSR that would pass every check after authorisation (no password is pending,
            // so none can be issued to this client any more).
            post_csr(
                &a,
                &t.mef.url(op),
                &make_csr(&creds.key, &[uri(AE_ID)], Some("x"), None),
            )
        };
        t.refused(&format!("{case}: {op}"), &r, status, needle, n);
    }
}

fn enroll_with(t: &Target, creds: &ClientCreds, op: &str) -> ClientCreds {
    enroll_at(&t.agent(creds), &t.mef, op, uri(AE_ID))
}

fn cli_ok(args: &[&str]) -> String {
    let (ok, out, err) = run_cli(args);
    assert!(ok, "{args:?}: {out} {err}");
    out
}

#[test]
fn revoked_certificates_and_their_renewals_are_refused_on_every_operation() {
    let t = target("revoked", &[]);
    let d = t.mef.dir.to_str().unwrap().to_owned();
    let first = enroll_with(&t, &t.device, "simpleenroll");
    let renewed = enroll_with(&t, &first, "simplereenroll");
    let renewed_again = enroll_with(&t, &renewed, "simplereenroll");
    let enrolled_with_it = enroll_with(&t, &first, "simpleenroll");
    // Revoking the first revokes everything obtained with it, transitively.
    let out = cli_ok(&[
        "cert",
        "revoke",
        "--data-dir",
        &d,
        "--id",
        &first.fingerprint(),
    ]);
    for (case, c) in [
        ("revoked certificate", &first),
        ("renewal of a revoked certificate", &renewed),
        ("renewal of that renewal", &renewed_again),
        ("enrolled with a revoked certificate", &enrolled_with_it),
    ] {
        refused_everywhere(&t, case, c, 403, "revoked");
    }
    assert!(out.contains("4 certificate(s)"), "{out}");
    // Removing the registration: the device's certificate and what it enrolled stop working.
    let later = enroll_with(&t, &t.device, "simpleenroll");
    let out = cli_ok(&[
        "identity",
        "remove",
        "--data-dir",
        &d,
        "--fingerprint",
        &t.device.fingerprint(),
    ]);
    refused_everywhere(
        &t,
        "enrolled through a removed registration",
        &later,
        403,
        "revoked",
    );
    assert!(out.contains("revoked 1 certificate(s)"), "{out}");
    let n = t.issued();
    let r = get(&t.agent(&t.device), &t.mef.url("csrattrs")).unwrap();
    t.refused("removed registration", &r, 403, "not registered", n);
    // Revocation by identity.
    let victims = enroll_with_identity(&t, &t.victim, VICTIM_ID);
    let out = cli_ok(&[
        "cert",
        "revoke",
        "--data-dir",
        &d,
        "--subject-type",
        "ae",
        "--subject-id",
        VICTIM_ID,
    ]);
    assert!(out.contains("revoked 1 certificate(s)"), "{out}");
    let n = t.issued();
    let r = get(&t.agent(&victims), &t.mef.url("csrattrs")).unwrap();
    t.refused("revoked by identity", &r, 403, "revoked", n);
    // A third-party certificate cannot renew.
    let pw = t.password(&t.victim);
    let r = t.post(
        &t.victim,
        "simplereenroll",
        &make_csr(&t.victim.key, &[uri(VICTIM_ID)], Some(&pw), None),
    );
    t.refused(
        "third-party certificate on simplereenroll",
        &r,
        403,
        "issued by this MEF",
        n,
    );
}

fn enroll_with_identity(t: &Target, creds: &ClientCreds, id: &str) -> ClientCreds {
    enroll(&t.agent(creds), &t.mef, uri(id))
}

/// A handshake (or the first request on it) is refused, and nothing is recorded.
fn handshake_refused(t: &Target, case: &str, chain: &[Vec<u8>], key: &KeyPair) {
    let n = t.issued();
    let outcome = RawConn::open(&t.mef.ca_der, Some((chain, key)), t.mef.addr.port())
        .and_then(|mut c| c.request(&get_request(&format!("{EST}/csrattrs"))));
    match outcome {
        Err(e) => eprintln!("case {case}: handshake refused ({e})"),
        Ok(r) => panic!("{case}: the MEF answered {} {}", r.status, r.text()),
    }
    assert_eq!(t.issued(), n);
}

#[test]
fn forged_certificates_are_refused() {
    let t = target("forged", &[]);
    // Self-signed, carrying the device's identity.
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.subject_alt_names = vec![uri(AE_ID)];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.self_signed(&key).unwrap();
    handshake_refused(&t, "self-signed certificate", &[cert.der().to_vec()], &key);
    // Issued by a CA that copies the MEF CA's name, with its own key.
    let fake_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "oneM2M MEF CA");
    dn.push(DnType::OrganizationName, "onem2m-mef");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let fake_ca = ca.self_signed(&fake_key).unwrap();
    let issuer = Issuer::new(ca, fake_key);
    let mut leaf = CertificateParams::default();
    leaf.subject_alt_names = vec![uri(AE_ID)];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = leaf.signed_by(&key, &issuer).unwrap();
    handshake_refused(
        &t,
        "certificate from a look-alike MEF CA",
        &[leaf.der().to_vec(), fake_ca.der().to_vec()],
        &key,
    );
    // Signed with the real MEF CA key (stolen), but never issued: not in the store.
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(t.mef.dir.join("mef-ca.key")).unwrap()).unwrap();
    let ca_der = rustls_pki_types::CertificateDer::from(t.mef.ca_der.clone());
    let real = Issuer::from_ca_cert_der(&ca_der, ca_key).unwrap();
    let mut leaf = CertificateParams::default();
    leaf.subject_alt_names = vec![uri(AE_ID)];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = leaf.signed_by(&key, &real).unwrap();
    let unknown = ClientCreds {
        cert_der: leaf.der().to_vec(),
        key,
    };
    refused_everywhere(
        &t,
        "MEF-CA-signed certificate the MEF never issued",
        &unknown,
        403,
        "neither issued by this MEF",
    );
}

#[test]
fn a_third_party_certificate_expiring_on_an_open_connection_is_refused() {
    let t = target("expiring", &[]);
    // Valid for a few seconds from now.
    let key = KeyPair::generate().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let cert =
        t.tp.ca
            .issue("short-lived device", &[], Eku::ClientAuth, &key, |p| {
                p.not_before = now - time::Duration::minutes(1);
                p.not_after = now + time::Duration::seconds(4);
            });
    let short = ClientCreds {
        cert_der: cert.to_vec(),
        key,
    };
    register(&t.mef.dir, &short, "ae", AE_ID);
    let mut conn = t.conn(&short).unwrap();
    let r = conn
        .request(&get_request(&format!("{EST}/csrattrs")))
        .unwrap();
    let pw = r.attrs().password;
    std::thread::sleep(Duration::from_secs(6));
    let n = t.issued();
    let csr = fresh_csr(&[uri(AE_ID)], Some(&pw));
    let r = conn
        .request(&csr_request(&format!("{EST}/simpleenroll"), &csr, "", None))
        .unwrap();
    t.refused(
        "expired third-party certificate on a kept-alive connection: simpleenroll",
        &r,
        403,
        "validity period",
        n,
    );
    let r = conn
        .request(&get_request(&format!("{EST}/csrattrs")))
        .unwrap();
    t.refused(
        "expired third-party certificate on a kept-alive connection: csrattrs",
        &r,
        403,
        "validity period",
        n,
    );
}

/// A root, an intermediate CA (CA:TRUE) with these keyUsage bits, and a client certificate it
/// issued: (root DER, chain [leaf, intermediate], leaf key).
fn chain_via_intermediate(ku: Vec<KeyUsagePurpose>) -> (Vec<u8>, Vec<Vec<u8>>, KeyPair) {
    let root = TestCa::new("Manufacturer root");
    let intermediate = root.intermediate("Manufacturer intermediate", ku);
    let leaf = intermediate.issue_client("device");
    (
        root.cert.to_vec(),
        vec![leaf.cert_der, intermediate.cert.to_vec()],
        leaf.key,
    )
}

fn pem_file(path: &Path, certs: &[Vec<u8>]) {
    let text: String = certs
        .iter()
        .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.clone())))
        .collect();
    std::fs::write(path, text).unwrap();
}

/// `openssl verify`, the reference verdict on a chain. Fails (does not skip) without openssl.
fn openssl_verifies(dir: &Path, root: &[u8], chain: &[Vec<u8>]) -> bool {
    pem_file(&dir.join("v-root.pem"), &[root.to_vec()]);
    pem_file(&dir.join("v-int.pem"), &chain[1..]);
    pem_file(&dir.join("v-leaf.pem"), &chain[..1]);
    let (verified, _) = run_text(
        std::process::Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(dir.join("v-root.pem"))
            .arg("-untrusted")
            .arg(dir.join("v-int.pem"))
            .arg(dir.join("v-leaf.pem")),
    );
    verified
}

#[test]
fn an_intermediate_ca_without_key_cert_sign_is_refused_as_openssl_does() {
    for (case, ku, accepted) in [
        (
            "intermediate with keyCertSign (control)",
            vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::DigitalSignature,
            ],
            true,
        ),
        (
            "intermediate CA:TRUE without keyCertSign",
            vec![KeyUsagePurpose::DigitalSignature],
            false,
        ),
    ] {
        let dir = temp_dir(&format!("hostile-ku-{accepted}"));
        let (root, chain, key) = chain_via_intermediate(ku);
        assert_eq!(openssl_verifies(&dir, &root, &chain), accepted, "{case}");
        let root_pem = dir.join("root.pem");
        pem_file(&root_pem, &[root]);
        let mef_dir = dir.join("mef");
        std::fs::create_dir_all(&mef_dir).unwrap();
        let leaf = ClientCreds {
            cert_der: chain[0].clone(),
            key,
        };
        register(&mef_dir, &leaf, "ae", AE_ID);
        let mef = MefProc::start(&mef_dir, &["--client-trust", root_pem.to_str().unwrap()]);
        let outcome = RawConn::open(&mef.ca_der, Some((&chain, &leaf.key)), mef.addr.port())
            .and_then(|mut c| c.request(&get_request(&format!("{EST}/csrattrs"))));
        match (outcome, accepted) {
            (Ok(r), true) => assert_eq!(r.status, 200, "{case}: {}", r.text()),
            (Err(e), false) => eprintln!("case {case}: handshake refused ({e})"),
            (Ok(r), false) => panic!("{case}: the MEF answered {} {}", r.status, r.text()),
            (Err(e), true) => panic!("{case}: {e}"),
        }
        assert_eq!(issued_count(&mef_dir), 0);
        drop(mef);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

// --- pending-approval abuse -----------------------------------------------------------------

#[test]
fn one_client_cannot_reset_another_clients_pending_approval() {
    let t = target("approval", &["--approval-polls", "1", "--retry-after", "1"]);
    let key = KeyPair::generate().unwrap();
    let pw = t.password(&t.victim);
    let victim_csr = make_csr(&key, &[uri(VICTIM_ID)], Some(&pw), None);
    let r = t.post(&t.victim, "simpleenroll", &victim_csr);
    assert_eq!(r.status, 202, "{}", r.text());
    // The attacker floods the table with more distinct pending CSRs than any global bound
    // (the MEF used to clear the whole table at 10,000 entries), on one connection with one
    // password (a 202 leaves it pending).
    let mut conn = t.conn(&t.device).unwrap();
    let apw = conn
        .request(&get_request(&format!("{EST}/csrattrs")))
        .unwrap()
        .attrs()
        .password;
    let n = t.issued();
    for i in 0..10_001 {
        let csr = make_csr(&key, &[uri(AE_ID)], Some(&apw), Some(&format!("flood {i}")));
        let r = conn
            .request(&csr_request(&format!("{EST}/simpleenroll"), &csr, "", None))
            .unwrap();
        assert_eq!(r.status, 202, "flood {i}: {}", r.text());
    }
    assert_eq!(t.issued(), n);
    // The victim's approval still counts: its next attempt is issued, not sent back to wait.
    let r = t.post(&t.victim, "simpleenroll", &victim_csr);
    assert_eq!(
        r.status,
        200,
        "the victim's pending approval was reset: {}",
        r.text()
    );
    eprintln!("case approval flood of 10,001 CSRs: victim's pending approval kept");
}

// --- path and framing games -----------------------------------------------------------------

#[test]
fn path_and_framing_games_are_refused() {
    let t = target("framing", &[]);
    let csr = fresh_csr(&[uri(AE_ID)], Some(&t.password(&t.device)));
    let body_len = csr_b64(&csr).len();
    let enroll = format!("{EST}/simpleenroll");
    let mut framing: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "Content-Length with a plus sign",
            csr_request(
                &enroll,
                &csr,
                "",
                Some(&format!("Content-Length: +{body_len}\r\n")),
            ),
            400,
            "only ASCII digits",
        ),
        (
            "Content-Length twice, equal",
            csr_request(
                &enroll,
                &csr,
                &format!("Content-Length: {body_len}\r\n"),
                None,
            ),
            400,
            "several Content-Length",
        ),
        (
            "Content-Length twice, different",
            csr_request(&enroll, &csr, "Content-Length: 5\r\n", None),
            400,
            "several Content-Length",
        ),
        (
            "Content-Length and Transfer-Encoding",
            csr_request(&enroll, &csr, "Transfer-Encoding: chunked\r\n", None),
            400,
            "both Transfer-Encoding and Content-Length",
        ),
        (
            "Transfer-Encoding chunked",
            csr_request(&enroll, &csr, "Transfer-Encoding: chunked\r\n", Some("")),
            411,
            "Content-Length",
        ),
        (
            "Authorization",
            csr_request(&enroll, &csr, "Authorization: Basic dXNlcjpwYXNz\r\n", None),
            400,
            "HTTP-based client authentication is not used",
        ),
        (
            "Proxy-Authorization",
            csr_request(
                &enroll,
                &csr,
                "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n",
                None,
            ),
            400,
            "Proxy-Authorization",
        ),
    ];
    // Labels (RFC 7030 3.2.2) the MEF must not route: the CSR POSTed to {EST}/<label>/simpleenroll.
    let labels = [
        ("the label ..", "..".to_owned(), "invalid EST label"),
        ("the label .", ".".to_owned(), "invalid EST label"),
        (
            "a percent-encoded label",
            "%2e%2e".to_owned(),
            "invalid EST label",
        ),
        (
            "a label of 65 characters",
            "a".repeat(65),
            "invalid EST label",
        ),
        (
            "a label starting with a dot",
            ".hidden".to_owned(),
            "invalid EST label",
        ),
        ("two label segments", "a/b".to_owned(), "unknown EST path"),
    ];
    framing.extend(labels.iter().map(|(case, label, needle)| {
        let path = format!("{EST}/{label}/simpleenroll");
        (*case, csr_request(&path, &csr, "", None), 404, *needle)
    }));
    framing.extend([
        (
            "GET on simpleenroll",
            get_request(&enroll),
            405,
            "expects POST",
        ),
        (
            "a request head one byte over 16 KiB",
            {
                let mut head = format!("GET {EST}/cacerts HTTP/1.1\r\nHost: localhost\r\nX-Pad: ");
                let end = "\r\n\r\n";
                let pad = 16 * 1024 + 1 - head.len() - end.len();
                head.push_str(&"a".repeat(pad));
                head.push_str(end);
                head.into_bytes()
            },
            431,
            "too large",
        ),
    ]);
    let mut failed = Vec::new();
    for (case, raw, status, needle) in &framing {
        let before = t.issued();
        let mut conn = t.conn(&t.device).unwrap();
        let r = conn.request(raw).unwrap();
        failed.extend(t.check_refused(case, &r, *status, needle, before).err());
    }
    assert!(failed.is_empty(), "{failed:#?}");
    // Controls: a head of exactly 16 KiB is served, a conservative label is served, and the
    // password none of the refused requests reached still enrolls.
    let mut head = format!("GET {EST}/my-label_1.0/cacerts HTTP/1.1\r\nHost: localhost\r\nX-Pad: ");
    let pad = 16 * 1024 - head.len() - 4;
    head.push_str(&"a".repeat(pad));
    head.push_str("\r\n\r\n");
    let r = t.conn(&t.device).unwrap().request(head.as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = t
        .conn(&t.device)
        .unwrap()
        .request(&csr_request(&enroll, &csr, "", None))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

// --- PSK identity swaps ---------------------------------------------------------------------

const KPM_A: &str = "kpm-hostile-a";
const KPM_A_HEX: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const CSE_A: &str = "cse-a.sp.example.com";
const KPM_B: &str = "kpm-hostile-b";
const KPM_B_HEX: &str = "a0b1c2d3e4f5061728394a5b6c7d8e9f";
const CSE_B: &str = "cse-b.sp.example.com";

fn close(mut raw: Vec<u8>) -> Vec<u8> {
    // Connection: close, so that the response ends the exchange.
    let at = raw.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    raw.splice(at..at, b"Connection: close\r\n".iter().copied());
    raw
}

fn psk_password(port: u16, kpm_id: &str, kpm_hex: &str) -> String {
    let r = psk_request(
        port,
        kpm_id,
        kpm_hex,
        &close(get_request(&format!("{EST}/csrattrs"))),
    )
    .unwrap();
    r.attrs().password
}

#[test]
fn psk_identity_swaps_are_refused() {
    let dir = temp_dir("hostile-psk");
    let tp = ThirdPartyCa::new(&dir, "tp");
    let device = tp.issue_client("device");
    let mef_dir = dir.join("mef");
    std::fs::create_dir_all(&mef_dir).unwrap();
    register(&mef_dir, &device, "cse", CSE_A);
    let d = mef_dir.to_str().unwrap().to_owned();
    for (id, hex, cse) in [(KPM_A, KPM_A_HEX, CSE_A), (KPM_B, KPM_B_HEX, CSE_B)] {
        cli_ok(&psk_add_args(&d, id, "--kpm-hex", hex, "cse", cse));
    }
    let mef = MefProc::start(
        &mef_dir,
        &[
            "--client-trust",
            tp.pem_path.to_str().unwrap(),
            "--psk-listen",
            "127.0.0.1:0",
        ],
    );
    let port = mef.psk_addr.unwrap().port();
    let n = issued_count(&mef_dir);
    let cacerts = close(get_request(&format!("{EST}/cacerts")));
    // KpmID A with B's key, and an unregistered KpmID: no handshake.
    for (case, id, hex) in [
        ("KpmID A with the Kpm of B", KPM_A, KPM_B_HEX),
        (
            "unregistered KpmID with a registered Kpm",
            "kpm-nobody",
            KPM_A_HEX,
        ),
    ] {
        match psk_request(port, id, hex, &cacerts) {
            Err(e) => eprintln!("case {case}: handshake refused ({e})"),
            Ok(r) => panic!("{case}: answered {}", r.status),
        }
    }
    let refused = |case: &str, r: &Resp, status: u16, needle: &str| {
        r.assert_error(status, needle);
        assert_eq!(
            issued_count(&mef_dir),
            n,
            "{case}: a certificate was recorded"
        );
        eprintln!("case {case}: refused {status} ({})", r.text().trim());
    };
    // A CSR POSTed on the PSK listener as KpmID `id` with key `hex`.
    let psk_post = |id: &str, hex: &str, path: &str, csr: &[u8]| {
        psk_request(port, id, hex, &close(csr_request(path, csr, "", None))).unwrap()
    };
    let enroll = format!("{EST}/simpleenroll");
    let key = KeyPair::generate().unwrap();
    // A's challengePassword used in B's session.
    let pw_a = psk_password(port, KPM_A, KPM_A_HEX);
    let csr = make_csr(&key, &[dns(CSE_B)], Some(&pw_a), None);
    let r = psk_post(KPM_B, KPM_B_HEX, &enroll, &csr);
    refused(
        "KpmID A's password in KpmID B's session",
        &r,
        403,
        "does not match",
    );
    // ... and on the certificate listener by the third-party device of the same identity.
    let csr = make_csr(&key, &[dns(CSE_A)], Some(&pw_a), None);
    let r = post_csr(
        &agent(&mef.ca_der, Some(&device)),
        &mef.url("simpleenroll"),
        &csr,
    );
    refused(
        "a PSK password on the certificate listener",
        &r,
        403,
        "does not match",
    );
    // B's identity requested in A's session.
    let csr = make_csr(&key, &[dns(CSE_B)], Some(&pw_a), None);
    let r = psk_post(KPM_A, KPM_A_HEX, &enroll, &csr);
    refused(
        "KpmID B's identity in KpmID A's session",
        &r,
        400,
        "does not match the identity",
    );
    // Re-enrolment over PSK.
    let pw_a = psk_password(port, KPM_A, KPM_A_HEX);
    let csr = make_csr(&key, &[dns(CSE_A)], Some(&pw_a), None);
    let r = psk_post(KPM_A, KPM_A_HEX, &format!("{EST}/simplereenroll"), &csr);
    refused(
        "simplereenroll over TLS-PSK",
        &r,
        403,
        "not available over TLS-PSK",
    );
    // Removing KpmID A revokes what it enrolled: the certificate stops working on the main
    // listener.
    let r = psk_post(KPM_A, KPM_A_HEX, &enroll, &csr);
    let cert = r.certs()[0].clone();
    let out = cli_ok(&["psk", "remove", "--data-dir", &d, "--kpm-id", KPM_A]);
    let enrolled = ClientCreds {
        cert_der: cert,
        key,
    };
    let n = issued_count(&mef_dir);
    let r = get(&agent(&mef.ca_der, Some(&enrolled)), &mef.url("csrattrs")).unwrap();
    r.assert_error(403, "revoked");
    assert_eq!(issued_count(&mef_dir), n);
    assert!(out.contains("revoked 1 certificate(s)"), "{out}");
    // And the removed KpmID has no handshake any more.
    assert!(psk_request(port, KPM_A, KPM_A_HEX, &cacerts).is_err());
    drop(mef);
    let _ = std::fs::remove_dir_all(&dir);
}
