//! The hostile-MEF matrix: whole procedures (`MefClient::reprovision`, and `provision` where the
//! case is about bootstrapping) against the procedure server of tests/support, which behaves
//! like a MEF except for one deliberate misbehaviour per case.
//!
//! Every case asserts the exact [`Error`] variant and its [`ErrorClass`], that nothing was
//! installed (the store directory is byte-identical: files, symlink targets, generations),
//! that no key was created when the failure comes before key generation, and that the previous
//! credentials still load, still match, and still authenticate: a final re-provisioning
//! against a well-behaved server with the same CA succeeds.
//!
//! Timeouts are small (1 s per response), so the slow cases finish in about a second each.
//! The last section holds the field quirks the procedure tolerates (it succeeds there).

mod harness;
#[path = "../support/mod.rs"]
mod support;

use harness::*;
use onem2m_est::client::{Config, MefClient, Reprovision};
use onem2m_est::error::Operation;
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{KeyAlgorithm, PrivateKey};
use onem2m_est::proto::csrattrs::{Curve, KeyRequirement};
use onem2m_est::proto::{base64body, certs_only, media};
use onem2m_est::store::{CredentialStore, Credentials, FileStore};
use onem2m_est::uri::EstUri;
use onem2m_est::{Error, ErrorClass};
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Bodies: truncated, oversized, never ending; servers that never answer
// ---------------------------------------------------------------------------------------------

#[test]
fn truncated_cacerts_body() {
    let err = case(on("cacerts", |_, _, good| {
        Action::RawThenClose(head_and_part(&good, good.body.len() / 2))
    }));
    assert!(
        matches!(
            err,
            Error::Transport {
                operation: Operation::CaCerts,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_enrolment_body() {
    let err = case(on("simplereenroll", |_, _, good| {
        Action::RawThenClose(head_and_part(&good, 40))
    }));
    assert!(
        matches!(
            err,
            Error::Transport {
                operation: Operation::SimpleReenroll,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_cacerts_body() {
    let err = case(on("cacerts", |_, _, good| {
        with_body(good, vec![b'A'; 100 * 1024])
    }));
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("exceeds the limit")),
        "{err:?}"
    );
}

#[test]
fn slowloris_body_that_never_ends() {
    let err = case(on("cacerts", |_, _, good| {
        let mut head = head_and_part(&good, 0);
        // Announce far more than will ever come, then trickle.
        let text = String::from_utf8(head.clone()).unwrap().replace(
            &format!("Content-Length: {}", good.body.len()),
            "Content-Length: 100000",
        );
        head = text.into_bytes();
        Action::Trickle(head)
    }));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[test]
fn slowloris_response_head_that_never_ends() {
    let err = case(on("csrattrs", |_, _, _| {
        Action::Trickle(b"HTTP/1.1 200 OK\r\nX-Slow: ".to_vec())
    }));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[test]
fn server_never_answers_the_enrolment() {
    let err = case(on("simplereenroll", |_, _, _| Action::Stall));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[test]
fn server_never_answers_cacerts() {
    let err = case(on("cacerts", |_, _, _| Action::Stall));
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Content types
// ---------------------------------------------------------------------------------------------

#[test]
fn cacerts_with_a_wrong_content_type() {
    let err = case(on("cacerts", |_, _, good| {
        with_content_type(good, Some("text/html"))
    }));
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("Content-Type")),
        "{err:?}"
    );
}

#[test]
fn cacerts_without_a_content_type() {
    let err = case(on("cacerts", |_, _, good| with_content_type(good, None)));
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("no Content-Type")),
        "{err:?}"
    );
}

#[test]
fn csrattrs_with_a_wrong_content_type() {
    let err = case(on("csrattrs", |_, _, good| {
        with_content_type(good, Some(media::CERTS_ONLY_CONTENT_TYPE))
    }));
    assert!(
        matches!(
            err,
            Error::BadResponse {
                operation: Operation::CsrAttrs,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn enrolment_with_a_wrong_content_type() {
    let err = case(on("simplereenroll", |_, _, good| {
        with_content_type(good, Some(media::PKCS10))
    }));
    assert!(
        matches!(
            err,
            Error::BadResponse {
                operation: Operation::SimpleReenroll,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn enrolment_with_certs_only_smime_type_mismatch() {
    let err = case(on("simplereenroll", |_, _, good| {
        with_content_type(
            good,
            Some("application/pkcs7-mime; smime-type=enveloped-data"),
        )
    }));
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::SimpleReenroll, reason }
            if reason.contains("smime-type")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// base64
// ---------------------------------------------------------------------------------------------

#[test]
fn garbage_base64() {
    let err = case(on("cacerts", |_, _, good| {
        with_body(good, "!!! this is not base64 !!!")
    }));
    assert!(
        matches!(
            err,
            Error::Decode {
                operation: Operation::CaCerts,
                ..
            }
        ),
        "{err:?}"
    );
}

/// NULs after the base64 text are tolerated (libest sends one; RFC 8951 3, see
/// `tests/transport.rs`), but base64 resuming after them is garbage inside the text.
#[test]
fn nul_padded_base64_followed_by_more_text() {
    let err = case(on("simplereenroll", |_, _, good| {
        let mut body = good.body.clone();
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(b"AAAA\r\n");
        with_body(good, body)
    }));
    assert!(
        matches!(
            err,
            Error::Decode {
                operation: Operation::SimpleReenroll,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn nul_inside_base64() {
    let err = case(on("cacerts", |_, _, good| {
        let mut body = good.body.clone();
        body.insert(8, 0);
        with_body(good, body)
    }));
    assert!(
        matches!(
            err,
            Error::Decode {
                operation: Operation::CaCerts,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn base64_with_foreign_white_space() {
    // Vertical tab and form feed are not the white space RFC 8951 lets a server add.
    let err = case(on("csrattrs", |_, _, good| {
        let text = String::from_utf8(good.body.clone()).unwrap();
        let (a, b) = text.split_at(10);
        with_body(good, format!("{a}\x0b\x0c{b}"))
    }));
    assert!(
        matches!(
            err,
            Error::Decode {
                operation: Operation::CsrAttrs,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pem_armoured_instead_of_base64() {
    let err = case(on("simplereenroll", |_, _, good| {
        let text = String::from_utf8(good.body.clone()).unwrap();
        with_body(
            good,
            format!(
                "-----BEGIN PKCS7-----\n{}-----END PKCS7-----\n",
                text.trim_end()
            ),
        )
    }));
    assert!(
        matches!(
            err,
            Error::Decode {
                operation: Operation::SimpleReenroll,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn base64_of_something_that_is_not_cms() {
    let err = case(on("simplereenroll", |_, _, good| {
        with_body(good, base64body::encode(b"\x30\x03\x02\x01\x00"))
    }));
    assert!(
        matches!(
            err,
            Error::Decode {
                operation: Operation::SimpleReenroll,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Not a failure case: wrapped and white-space-laden base64 is what RFC 8951 says real servers
/// send, so the procedure must succeed (and install the new set).
#[test]
fn wrapped_and_white_space_laden_base64_is_tolerated() {
    let pki = Arc::new(MefPki::new("Wrapping MEF CA"));
    let device = Device::new(&pki);
    let server = ProcedureServer::start(
        pki.clone(),
        |_| {},
        |_, _, good| {
            let text = String::from_utf8(good.body.clone()).unwrap();
            let compact = text.trim_end();
            let mut wrapped = String::from(" \t\r\n");
            for (i, c) in compact.chars().enumerate() {
                if i > 0 && i % 64 == 0 {
                    wrapped.push_str("\r\n\t ");
                }
                wrapped.push(c);
            }
            wrapped.push_str("\n\n  ");
            with_body(good, wrapped)
        },
    );
    let done = client_for(&server.base())
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap();
    let now = FileStore::new(device.dir.path())
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(now.chain, done.chain);
}

// ---------------------------------------------------------------------------------------------
// CMS contents and the issued certificate
// ---------------------------------------------------------------------------------------------

fn zero_certs_response() -> Response {
    let der = certs_only::encode(&[]).expect("an empty certs-only SignedData");
    Response::new(200)
        .header("Content-Type", media::CERTS_ONLY_CONTENT_TYPE)
        .body(base64body::encode(&der))
}

#[test]
fn cms_with_zero_certificates_from_the_enrolment() {
    let err = case(on("simplereenroll", |_, _, _| zero_certs_response().into()));
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::SimpleReenroll, reason }
            if reason.contains("no certificate")),
        "{err:?}"
    );
}

#[test]
fn cms_with_zero_certificates_from_cacerts() {
    let err = case(on("cacerts", |_, _, _| zero_certs_response().into()));
    assert!(
        matches!(
            err,
            Error::BadResponse {
                operation: Operation::CaCerts,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn cacerts_with_an_end_entity_certificate() {
    let err = case(on("cacerts", |pki, _, _| {
        let ee = pki.server_identity().chain[0].clone();
        certs_only_response(&[pki.ca.cert.clone(), ee]).into()
    }));
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("not a CA certificate")),
        "{err:?}"
    );
}

fn rejected_because(err: &Error, why: &str) -> bool {
    matches!(err, Error::CertificateRejected { reason } if reason.contains(why))
}

#[test]
fn cms_with_unrelated_certificates() {
    let stranger = Arc::new(MefPki::new("Unrelated CA"));
    let err = case(enroll_with(move |_, _| {
        let creds = stranger.device_credentials();
        vec![creds.chain[0].clone(), stranger.ca.cert.clone()]
    }));
    assert!(rejected_because(&err, "wrong key"), "{err:?}");
}

#[test]
fn certificate_for_another_key() {
    let err = case(enroll_with(|pki, _| {
        vec![pki.device_credentials().chain[0].clone()]
    }));
    assert!(rejected_because(&err, "wrong key"), "{err:?}");
}

#[test]
fn certificate_for_another_identity() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &["cse02.sp.example.com"], |_| {})]
    }));
    assert!(rejected_because(&err, "wrong identity"), "{err:?}");
}

#[test]
fn expired_certificate() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &[&pki.identity], |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })]
    }));
    assert!(rejected_because(&err, "has expired"), "{err:?}");
}

#[test]
fn not_yet_valid_certificate() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &[&pki.identity], |p| {
            p.not_before = rcgen::date_time_ymd(2100, 1, 1);
            p.not_after = rcgen::date_time_ymd(2101, 1, 1);
        })]
    }));
    assert!(rejected_because(&err, "not yet valid"), "{err:?}");
}

#[test]
fn certificate_not_chaining_to_the_trust_anchors() {
    let stranger = Arc::new(MefPki::new("Unrelated CA"));
    let err = case(enroll_with(move |pki, spki| {
        vec![stranger.issue_for(spki, &[&pki.identity], |_| {})]
    }));
    assert!(rejected_because(&err, "untrusted issuer"), "{err:?}");
}

// TS-0003 10.1.1.1 / 10.1.1.3 / 10.1.1.5-10.1.1.8: what is installed meets the certificate
// profile the client claims.

#[test]
fn certificate_without_key_usage() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &[&pki.identity], |p| p.key_usages.clear())]
    }));
    assert!(rejected_because(&err, "no keyUsage"), "{err:?}");
}

#[test]
fn certificate_with_a_wildcard_name() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &[&pki.identity, "*.sp.example.com"], |_| {})]
    }));
    assert!(rejected_because(&err, "wildcard"), "{err:?}");
}

#[test]
fn certificate_with_a_wildcard_common_name() {
    let err = case(enroll_with(|pki, spki| {
        vec![pki.issue_for(spki, &[&pki.identity], |p| {
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name
                .push(rcgen::DnType::CommonName, "*.sp.example.com");
        })]
    }));
    assert!(rejected_because(&err, "wildcard"), "{err:?}");
}

#[test]
fn certificate_signed_outside_the_ts0003_algorithms() {
    // The MEF CA delegates to a P-384 issuing CA: the leaf is signed with ecdsa-with-SHA384,
    // which TS-0003 10.1.1.3 (ECDSA P-256, SHA-256) does not allow. The chain is otherwise
    // valid (it reaches the MEF CA, which authorises the server).
    let err = case(enroll_with(|pki, spki| {
        let issuing = pki
            .ca
            .subordinate("P-384 issuing CA", &rcgen::PKCS_ECDSA_P384_SHA384);
        let public = rcgen::SubjectPublicKeyInfo::from_der(spki).expect("SPKI");
        let leaf = issuing.issue("device", &[&pki.identity], Eku::ClientAuth, &public, |_| {});
        vec![leaf, issuing.cert.clone()]
    }));
    assert!(
        rejected_because(&err, "ecdsa-with-SHA384") && rejected_because(&err, "10.1.1.3"),
        "{err:?}"
    );
}

fn refused_cacerts_not_authenticating_the_server(err: &Error) -> bool {
    matches!(err, Error::BadResponse { operation: Operation::CaCerts, reason }
        if reason.contains("RFC 7030 4.1.3"))
}

#[test]
fn cacerts_from_a_different_ca_than_the_one_that_authenticated_the_server() {
    let stranger = Arc::new(MefPki::new("Stranger CA"));
    let err = case(cacerts_from_another_ca(stranger));
    assert!(
        refused_cacerts_not_authenticating_the_server(&err),
        "{err:?}"
    );
}

#[test]
fn initial_provisioning_cacerts_from_a_different_ca() {
    let stranger = Arc::new(MefPki::new("Stranger CA"));
    let err = case_with(
        |_, _| {},
        cacerts_from_another_ca(stranger),
        Proc::Provision,
        ErrorClass::Server,
        true,
    );
    assert!(
        refused_cacerts_not_authenticating_the_server(&err),
        "{err:?}"
    );
}

#[test]
fn initial_provisioning_certificate_for_another_identity() {
    let err = case_with(
        |_, _| {},
        on("simpleenroll", |pki, req, _| {
            let spki = pki.check_csr(req).expect("valid CSR");
            certs_only_response(&[pki.issue_for(&spki, &["cse99.sp.example.com"], |_| {})]).into()
        }),
        Proc::Provision,
        ErrorClass::Server,
        true,
    );
    assert!(rejected_because(&err, "wrong identity"), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// CSR attributes the client cannot satisfy
// ---------------------------------------------------------------------------------------------

#[test]
fn csrattrs_demanding_an_unsupported_key_type() {
    let err = case_with(
        |_, _| {},
        demanding(KeyRequirement::Ec(Curve::P521)),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Client,
        false,
    );
    assert!(
        matches!(&err, Error::Unsupported { what } if what.contains("P-521")),
        "{err:?}"
    );
}

#[test]
fn csrattrs_demanding_an_absurd_rsa_size_refused_before_key_generation() {
    let err = case_with(
        |_, _| {},
        demanding(KeyRequirement::Rsa {
            bits: Some(1 << 30),
        }),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Client,
        false,
    );
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
}

#[test]
fn csrattrs_demanding_rsa_when_renewing_an_ec_key() {
    let err = case_with(
        |_, _| {},
        demanding(KeyRequirement::Rsa { bits: Some(2048) }),
        Proc::Reprovision(Reprovision::Renew),
        ErrorClass::Client,
        false,
    );
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
}

#[test]
fn csrattrs_asking_for_another_identity_than_configured() {
    let err = case_with(
        |_, _| {},
        on("csrattrs", |pki, _, _| {
            let mut other = MefPki::new("unused");
            other.challenge = pki.challenge.clone();
            other.identity = "cse02.sp.example.com".into();
            MefPki::csrattrs_response(&other.requirements()).into()
        }),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Client,
        false,
    );
    assert!(matches!(err, Error::IdentityConflict { .. }), "{err:?}");
}

#[test]
fn csrattrs_asking_for_channel_binding() {
    let err = case_with(
        |_, _| {},
        on("csrattrs", |pki, _, _| {
            let mut reqs = pki.requirements();
            reqs.challenge_password =
                onem2m_est::proto::csrattrs::ChallengePassword::ChannelBinding;
            MefPki::csrattrs_response(&reqs).into()
        }),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Client,
        false,
    );
    assert!(
        matches!(&err, Error::Unsupported { what } if what.contains("channel binding")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Root key rollover (RFC 7030 4.1.3): OldWithOld, OldWithNew, NewWithOld, NewWithNew
// ---------------------------------------------------------------------------------------------

/// A MEF rolling its root over: `pki.ca` is the old root (the device's), `new` the new one
/// (NewWithNew, a later notAfter), with both link certificates.
struct Rollover {
    pki: Arc<MefPki>,
    new: Arc<TestCa>,
    old_with_new: CertificateDer<'static>,
    new_with_old: CertificateDer<'static>,
}

impl Rollover {
    fn new(same_name: bool) -> Rollover {
        let pki = Arc::new(MefPki::new("Rollover MEF CA"));
        let new = Arc::new(TestCa::successor(if same_name {
            "Rollover MEF CA"
        } else {
            "Rollover MEF CA G2"
        }));
        Rollover {
            old_with_new: new.certify(&pki.ca),
            new_with_old: pki.ca.certify(&new),
            pki,
            new,
        }
    }

    /// A TLS identity under the new root, with NewWithOld in the chain so that a device that
    /// still trusts only the old root authenticates it.
    fn new_server_identity(&self) -> ServerIdentity {
        let mut id = self
            .new
            .server_identity(&["localhost", "127.0.0.1"], Eku::ServerAuth);
        id.chain = vec![id.chain[0].clone(), self.new_with_old.clone()];
        id
    }

    /// A MEF serving `cacerts` and issuing from `issuer`, with TLS identity `identity`,
    /// accepting client certificates from both roots.
    fn server(
        &self,
        identity: Option<ServerIdentity>,
        cacerts: Vec<CertificateDer<'static>>,
        issue_from_new: bool,
    ) -> ProcedureServer {
        let new = self.new.clone();
        let roots = vec![self.pki.ca.cert.clone(), self.new.cert.clone()];
        ProcedureServer::start(
            self.pki.clone(),
            move |o| {
                if let Some(identity) = identity {
                    o.identity = identity;
                }
                o.client_auth = ClientAuth::Required(roots);
            },
            move |pki, req, good| match req.path.rsplit('/').next() {
                Some("cacerts") => certs_only_response(&cacerts).into(),
                Some("simplereenroll") if issue_from_new => {
                    let spki = pki.check_csr(req).expect("valid CSR");
                    let public = rcgen::SubjectPublicKeyInfo::from_der(&spki).unwrap();
                    certs_only_response(&[new.issue(
                        "device",
                        &[&pki.identity],
                        Eku::ClientAuth,
                        &public,
                        |_| {},
                    )])
                    .into()
                }
                _ => good.into(),
            },
        )
    }
}

/// The installed trust anchors, sorted (certs-only is a SET OF: order carries no meaning).
fn installed_anchors(dir: &Path) -> Vec<CertificateDer<'static>> {
    sorted(
        FileStore::new(dir)
            .unwrap()
            .load()
            .unwrap()
            .unwrap()
            .trust_anchors,
    )
}

fn sorted(mut certs: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    certs.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
    certs
}

fn rollover_in_progress_then_done(same_name: bool) {
    let r = Rollover::new(same_name);
    let device = Device::new(&r.pki);
    // In progress: the TLS chain is still under the old root; /cacerts has the new root and
    // both link certificates (no OldWithOld), the old CA still issues.
    let set = vec![
        r.new.cert.clone(),
        r.old_with_new.clone(),
        r.new_with_old.clone(),
    ];
    let during = r.server(None, set.clone(), false);
    client_for(&during.base())
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap();
    assert_eq!(installed_anchors(device.dir.path()), sorted(set));
    // The same server again, under the old root: not locked out.
    client_for(&during.base())
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Renew,
        )
        .unwrap();
    drop(during);

    // Done: the TLS chain is under the new root, /cacerts has the new root only, the new CA
    // issues.
    let mut id = r
        .new
        .server_identity(&["localhost", "127.0.0.1"], Eku::ServerAuth);
    id.chain.truncate(1);
    let after = r.server(Some(id), vec![r.new.cert.clone()], true);
    client_for(&after.base())
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap();
    assert_eq!(
        installed_anchors(device.dir.path()),
        std::slice::from_ref(&r.new.cert)
    );
}

#[test]
fn root_key_rollover_in_progress_then_done() {
    rollover_in_progress_then_done(false);
}

#[test]
fn root_key_rollover_with_the_same_root_name() {
    // The usual rollover keeps the root's name: OldWithNew is then self-issued but not
    // self-signed, and must not be taken for a root.
    rollover_in_progress_then_done(true);
}

#[test]
fn root_key_rollover_done_for_a_device_that_missed_it() {
    // The device still trusts the old root only; the MEF has finished rolling over: TLS under
    // the new root with NewWithOld in its chain, /cacerts has NewWithNew only.
    let r = Rollover::new(false);
    let device = Device::new(&r.pki);
    let server = r.server(
        Some(r.new_server_identity()),
        vec![r.new.cert.clone()],
        true,
    );
    client_for(&server.base())
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap();
    assert_eq!(
        installed_anchors(device.dir.path()),
        std::slice::from_ref(&r.new.cert)
    );
    // And again, now with the new root installed.
    client_for(&server.base())
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Renew,
        )
        .unwrap();
}

#[test]
fn root_key_rollover_with_all_four_certificates() {
    // OldWithOld, OldWithNew, NewWithOld, NewWithNew, in a scrambled order.
    let r = Rollover::new(false);
    let device = Device::new(&r.pki);
    let set = vec![
        r.new_with_old.clone(),
        r.pki.ca.cert.clone(),
        r.new.cert.clone(),
        r.old_with_new.clone(),
    ];
    let server = r.server(None, set.clone(), false);
    client_for(&server.base())
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap();
    assert_eq!(installed_anchors(device.dir.path()), sorted(set));
}

#[test]
fn forged_old_with_new_is_refused() {
    // An authorised server tries to hand the device to its own root: it certifies the
    // device's root under that root (an "OldWithNew" link no old key vouches for). Every
    // certificate validates against the attacker's root and the server chain is authorised
    // through the link, so only the NewWithOld rule stops it.
    let err = case(|pki, req, good| match req.path.rsplit('/').next() {
        Some("cacerts") => {
            let attacker = TestCa::successor("Attacker root");
            let forged = attacker.certify(&pki.ca);
            certs_only_response(&[attacker.cert.clone(), forged]).into()
        }
        _ => good.into(),
    });
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("NewWithOld") && reason.contains("Attacker root")),
        "{err:?}"
    );
}

#[test]
fn forged_new_with_old_is_refused() {
    // The new root and a "NewWithOld" signed by an impostor key under the old root's name.
    let err = case(|_, req, good| {
        // The impostor only borrows the name of the MEF root (the harness's "Hostile MEF CA").
        let impostor = TestCa::new("Hostile MEF CA");
        let new = TestCa::successor("Hostile MEF CA G2");
        let forged = impostor.certify(&new);
        match req.path.rsplit('/').next() {
            Some("cacerts") => certs_only_response(&[new.cert.clone(), forged]).into(),
            _ => good.into(),
        }
    });
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("does not validate against the newest root")),
        "{err:?}"
    );
}

#[test]
fn a_second_root_not_linked_to_the_newest_is_refused() {
    let err = case(|pki, req, good| match req.path.rsplit('/').next() {
        Some("cacerts") => {
            let stranger = TestCa::new("Stranger root");
            certs_only_response(&[pki.ca.cert.clone(), stranger.cert.clone()]).into()
        }
        _ => good.into(),
    });
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("not linked")),
        "{err:?}"
    );
}

#[test]
fn cacerts_without_a_root_is_refused() {
    let err = case(|pki, req, good| match req.path.rsplit('/').next() {
        Some("cacerts") => {
            let sub = pki
                .ca
                .subordinate("Issuing CA", &rcgen::PKCS_ECDSA_P256_SHA256);
            certs_only_response(std::slice::from_ref(&sub.cert)).into()
        }
        _ => good.into(),
    });
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("no self-signed root")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Re-enrolment identity (RFC 7030 4.2.2): a server that inspects the CSR
// ---------------------------------------------------------------------------------------------

/// What a CSR carried: the subject (DER), the subjectAltName (value DER, critical) and the
/// extendedKeyUsage purposes (dotted).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CsrNames {
    subject: Vec<u8>,
    san: Option<(Vec<u8>, bool)>,
    ekus: Vec<String>,
}

fn csr_names(req: &Request) -> CsrNames {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::cri_attributes::ParsedCriAttribute;
    use x509_parser::prelude::FromDer;
    let der = base64body::decode(&req.body).unwrap();
    let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
    let info = &csr.certification_request_info;
    let mut names = CsrNames {
        subject: info.subject.as_raw().to_vec(),
        san: None,
        ekus: Vec::new(),
    };
    for attr in info.iter_attributes() {
        if let ParsedCriAttribute::ExtensionRequest(er) = attr.parsed_attribute() {
            for ext in &er.extensions {
                match ext.oid.to_id_string().as_str() {
                    "2.5.29.17" => names.san = Some((ext.value.to_vec(), ext.critical)),
                    "2.5.29.37" => {
                        let x509_parser::extensions::ParsedExtension::ExtendedKeyUsage(eku) =
                            ext.parsed_extension()
                        else {
                            panic!("malformed EKU in the CSR")
                        };
                        names.ekus = eku.other.iter().map(|o| o.to_id_string()).collect();
                        if eku.client_auth {
                            names.ekus.push("1.3.6.1.5.5.7.3.2".into());
                        }
                        if eku.server_auth {
                            names.ekus.push("1.3.6.1.5.5.7.3.1".into());
                        }
                        names.ekus.sort();
                    }
                    _ => {}
                }
            }
        }
    }
    names
}

/// The same fields of a certificate.
fn cert_names(der: &[u8]) -> CsrNames {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let mut names = CsrNames {
        subject: cert.subject().as_raw().to_vec(),
        san: None,
        ekus: Vec::new(),
    };
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == "2.5.29.17" {
            names.san = Some((ext.value.to_vec(), ext.critical));
        }
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        names.ekus = eku.value.other.iter().map(|o| o.to_id_string()).collect();
        if eku.value.client_auth {
            names.ekus.push("1.3.6.1.5.5.7.3.2".into());
        }
        if eku.value.server_auth {
            names.ekus.push("1.3.6.1.5.5.7.3.1".into());
        }
        names.ekus.sort();
    }
    names
}

/// A device whose certificate has a subject the client would not write itself
/// (C=FR as PrintableString, O, CN "device 0001"), a critical subjectAltName with the MEF
/// identity, and extendedKeyUsage clientAuth + serverAuth (a CSE that also serves).
fn distinctive_device(pki: &MefPki) -> Device {
    let key = onem2m_est::keys::SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let leaf = pki.issue_for(key.public_key_info(), &[&pki.identity], |p| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(
            rcgen::DnType::CountryName,
            rcgen::DnValue::PrintableString("FR".try_into().unwrap()),
        );
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme Devices");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "device 0001");
        p.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ];
        // Critical SAN: with rcgen, only through a custom extension.
        let san = p.subject_alt_names.clone();
        p.subject_alt_names.clear();
        let value = onem2m_est::proto::san::encode(
            &san.iter()
                .map(|n| match n {
                    rcgen::SanType::DnsName(d) => {
                        onem2m_est::proto::san::GeneralName::Dns(d.as_str().into())
                    }
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 17], value);
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    });
    let creds = Credentials {
        trust_anchors: vec![pki.ca.cert.clone()],
        chain: vec![leaf],
        key: Arc::new(key),
    };
    let dir = TempDir::new().unwrap();
    FileStore::new(dir.path()).unwrap().install(&creds).unwrap();
    Device { dir, before: creds }
}

/// A MEF that records the names of every enrolment CSR and answers /serverkeygen too.
fn recording_mef(
    seen: Arc<std::sync::Mutex<Vec<CsrNames>>>,
    requirements: impl Fn(&MefPki) -> onem2m_est::proto::csrattrs::CsrRequirements
        + Send
        + Sync
        + 'static,
) -> impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static {
    move |pki, req, good| match req.path.rsplit('/').next() {
        Some("csrattrs") => MefPki::csrattrs_response(&requirements(pki)).into(),
        Some("simplereenroll") => {
            seen.lock().unwrap().push(csr_names(req));
            good.into()
        }
        Some("serverkeygen") => {
            seen.lock().unwrap().push(csr_names(req));
            pki.check_csr(req).expect("the client's CSR is valid");
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = pki.issue_for(
                &rcgen::PublicKeyData::subject_public_key_info(&key),
                &[&pki.identity],
                |_| {},
            );
            let (content_type, body) = onem2m_est::proto::multipart::encode_serverkeygen(
                &key.serialize_der(),
                &[cert.as_ref()],
            )
            .unwrap();
            Response::new(200)
                .header("Content-Type", &content_type)
                .body(body)
                .into()
        }
        _ => good.into(),
    }
}

fn reenrolment_keeps_the_current_names(mode: Reprovision, request_eku: bool) {
    let pki = Arc::new(MefPki::new("Inspecting MEF CA"));
    let device = distinctive_device(&pki);
    let current = cert_names(device.before.chain[0].as_ref());
    assert_eq!(current.ekus, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = ProcedureServer::start(
        pki.clone(),
        |_| {},
        recording_mef(seen.clone(), move |pki| {
            let mut reqs = pki.requirements();
            if request_eku {
                // SEQUENCE { id-kp-clientAuth }, as a MEF asks for it.
                reqs.extensions
                    .push(onem2m_est::proto::csrattrs::RequestedExtension {
                        oid: "2.5.29.37".into(),
                        critical: false,
                        value: vec![
                            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
                        ],
                    });
            }
            reqs
        }),
    );
    client_for(&server.base())
        .reprovision(&mut FileStore::new(device.dir.path()).unwrap(), mode)
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // RFC 7030 4.2.2: Subject and SubjectAltName identical (the SAN's criticality too); the
    // current certificate's EKUs carried, with the requested one (issue #11).
    assert_eq!(seen[0], current);
}

#[test]
fn renew_csr_keeps_subject_san_and_ekus() {
    reenrolment_keeps_the_current_names(Reprovision::Renew, false);
}

#[test]
fn rekey_csr_keeps_subject_san_and_ekus_with_requested_ekus() {
    reenrolment_keeps_the_current_names(Reprovision::Rekey, true);
}

#[test]
fn serverkeygen_reprovisioning_csr_keeps_subject_san_and_ekus() {
    reenrolment_keeps_the_current_names(Reprovision::ServerKeygen, false);
}

#[test]
fn reenrolment_follows_a_mef_that_requests_another_identity() {
    // The MEF asks for a new name (its CSR attributes are the source of truth): the CSR
    // carries what it asks, not the current certificate's names.
    let pki = Arc::new(MefPki::new("Renaming MEF CA"));
    let device = distinctive_device(&pki);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let renamed = "cse02.sp.example.com";
    let recorder = seen.clone();
    let server = ProcedureServer::start(
        pki.clone(),
        |_| {},
        move |pki: &MefPki, req: &Request, good: Response| -> Action {
            let mut reqs = pki.requirements();
            reqs.extensions[0].value =
                onem2m_est::proto::san::encode(&[onem2m_est::proto::san::GeneralName::Dns(
                    renamed.into(),
                )])
                .unwrap();
            match req.path.rsplit('/').next() {
                Some("csrattrs") => MefPki::csrattrs_response(&reqs).into(),
                Some("simplereenroll") => {
                    recorder.lock().unwrap().push(csr_names(req));
                    let spki = pki.check_csr(req).expect("valid CSR");
                    certs_only_response(&[pki.issue_for(&spki, &[renamed], |_| {})]).into()
                }
                _ => good.into(),
            }
        },
    );
    let client = MefClient::new(
        Config::new(EstUri::parse(&server.base()).unwrap()).transport(quick_transport()),
    );
    client
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    let (san, _) = seen[0].san.clone().unwrap();
    assert_eq!(
        onem2m_est::proto::san::decode(&san).unwrap(),
        [onem2m_est::proto::san::GeneralName::Dns(renamed.into())]
    );
    assert_ne!(
        seen[0].subject,
        cert_names(device.before.chain[0].as_ref()).subject
    );
}

#[test]
fn reenrolment_with_a_configured_identity_the_certificate_does_not_carry() {
    // No subjectAltName requested, and the configured identity is not the current
    // certificate's: RFC 7030 4.2.2 keeps the identity, so this is the caller's mistake.
    let pki = Arc::new(MefPki::new("Quiet MEF CA"));
    let device = Device::new(&pki);
    let server = ProcedureServer::start(
        pki.clone(),
        |_| {},
        |pki, req, good| match req.path.rsplit('/').next() {
            Some("csrattrs") => {
                let mut reqs = pki.requirements();
                reqs.extensions.clear();
                MefPki::csrattrs_response(&reqs).into()
            }
            _ => good.into(),
        },
    );
    let before = snapshot(device.dir.path());
    let client = MefClient::new(
        Config::new(EstUri::parse(&server.base()).unwrap())
            .identity(SubjectIdentity::new(SubjectType::Cse, "cse09.sp.example.com").unwrap())
            .transport(quick_transport()),
    );
    let err = client
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadArguments, "{err:?}");
    assert!(err.to_string().contains("RFC 7030 4.2.2"), "{err}");
    assert_eq!(snapshot(device.dir.path()), before);
    assert!(
        !server
            .server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/simplereenroll")),
        "refused before enrolment"
    );
}

// ---------------------------------------------------------------------------------------------
// 202 loops
// ---------------------------------------------------------------------------------------------

fn still_pending(err: &Error) -> bool {
    matches!(
        err,
        Error::StillPending {
            operation: Operation::SimpleReenroll,
            attempts: 3,
            ..
        }
    )
}

#[test]
fn accepted_forever_with_retry_after_zero() {
    let err = case(on("simplereenroll", accepted("0")));
    assert!(still_pending(&err), "{err:?}");
}

#[test]
fn accepted_with_a_huge_retry_after() {
    // RFC 7030 4.2.3: the client must wait at least Retry-After, so it neither sleeps for 584
    // billion years nor resends early: it stops and says what the server asked for.
    let err = case(on("simplereenroll", accepted("18446744073709551615")));
    assert!(
        matches!(&err, Error::RetryAfterTooLong { operation: Operation::SimpleReenroll,
            retry_after, attempts: 1, .. } if retry_after.as_secs() == u64::MAX),
        "{err:?}"
    );
    assert!(err.to_string().contains("18446744073709551615 s"), "{err}");
}

#[test]
fn accepted_with_a_retry_after_beyond_max_delay() {
    // One second is more than this harness's max_delay (50 ms): not resent after 50 ms.
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let err = case(on("simplereenroll", move |_, _, _| {
        seen.fetch_add(1, Ordering::SeqCst);
        Response::new(202).header("Retry-After", "1").into()
    }));
    assert!(
        matches!(&err, Error::RetryAfterTooLong { operation: Operation::SimpleReenroll,
            retry_after, limit, .. }
            if *retry_after == Duration::from_secs(1) && *limit == Duration::from_millis(50)),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn accepted_with_retry_after_in_the_past() {
    let err = case(on(
        "simplereenroll",
        accepted("Sun, 06 Nov 1994 08:49:37 GMT"),
    ));
    assert!(still_pending(&err), "{err:?}");
}

#[test]
fn accepted_with_a_negative_retry_after() {
    let err = case(on("simplereenroll", accepted("-5")));
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::SimpleReenroll, reason }
            if reason.contains("Retry-After")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP: redirects, authentication, errors
// ---------------------------------------------------------------------------------------------

#[test]
fn oversized_response_head() {
    let err = case(on("cacerts", |_, _, good| {
        good.header("X-Padding", &"p".repeat(128 * 1024)).into()
    }));
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("header is too large")),
        "{err:?}"
    );
}

#[test]
fn accepted_for_cacerts() {
    // 202 belongs to enrolment (RFC 7030 4.2.3); /cacerts answers 200 or fails.
    let err = case(on("cacerts", |_, _, _| {
        Response::new(202).header("Retry-After", "0").into()
    }));
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if reason.contains("202")),
        "{err:?}"
    );
}

#[test]
fn redirect_to_another_host() {
    let err = case(on("cacerts", |_, _, _| {
        Response::new(302)
            .header(
                "Location",
                "https://evil.example.net/.well-known/est/cacerts",
            )
            .into()
    }));
    assert!(
        matches!(&err, Error::Redirect { operation: Operation::CaCerts, location }
            if location.contains("evil.example.net")),
        "{err:?}"
    );
}

#[test]
fn redirect_to_another_port_of_the_same_host() {
    let err = case(on("simplereenroll", |_, _, _| {
        Response::new(307)
            .header(
                "Location",
                "https://localhost:1/.well-known/est/simplereenroll",
            )
            .into()
    }));
    assert!(
        matches!(
            err,
            Error::Redirect {
                operation: Operation::SimpleReenroll,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unauthorized_with_www_authenticate() {
    let err = case(on("simplereenroll", |_, _, _| {
        Response::new(401)
            .header("WWW-Authenticate", "Basic realm=\"est\"")
            .into()
    }));
    assert!(
        matches!(&err, Error::HttpAuthenticationRequested { operation: Operation::SimpleReenroll, challenge }
            if challenge.contains("Basic")),
        "{err:?}"
    );
}

#[test]
fn internal_server_error() {
    let err = case(on("simplereenroll", |_, _, _| {
        Response::new(500).body("database on fire").into()
    }));
    assert!(
        matches!(&err, Error::ServerStatus { operation: Operation::SimpleReenroll, status: 500, message }
            if message.contains("database on fire")),
        "{err:?}"
    );
}

#[test]
fn server_keygen_not_offered() {
    let err = case_with(
        |_, _| {},
        |_, _, good| good.into(),
        Proc::Reprovision(Reprovision::ServerKeygen),
        ErrorClass::Server,
        false,
    );
    assert!(
        matches!(
            err,
            Error::ServerStatus {
                operation: Operation::ServerKeygen,
                status: 404,
                ..
            }
        ),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// TLS alerts and connection resets at every phase
// ---------------------------------------------------------------------------------------------

/// A fatal alert record injected mid-body (in the clear, as a middlebox or a broken stack sends
/// it): the record does not authenticate, the TLS session fails.
#[test]
fn tls_alert_mid_response() {
    let err = case(on("cacerts", |_, _, good| {
        Action::AlertAfter(head_and_part(&good, 20))
    }));
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

/// A genuine close_notify alert in the middle of a body announced longer: a truncation, not
/// an end of message.
#[test]
fn close_notify_alert_mid_response() {
    let err = case(on("simplereenroll", |_, _, good| {
        let mut part = good.clone();
        part.body.truncate(good.body.len() / 2);
        Action::RespondThenClose(part.header("Content-Length", &good.body.len().to_string()))
    }));
    assert!(
        matches!(
            err,
            Error::Transport {
                operation: Operation::SimpleReenroll,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A server that accepts the connection and never answers the ClientHello.
#[test]
fn server_never_answers_the_tls_handshake() {
    let err = case_with(
        |o, _| o.stall_handshakes = vec![0],
        |_, _, good| good.into(),
        Proc::Reprovision(Reprovision::Renew),
        ErrorClass::Server,
        false,
    );
    assert!(
        matches!(&err, Error::Timeout { phase } if phase.contains("handshake")),
        "{err:?}"
    );
}

#[test]
fn reset_during_the_tls_handshake() {
    let err = case_with(
        |o, _| o.reset_handshakes = vec![0],
        |_, _, good| good.into(),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Server,
        false,
    );
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
}

fn reset_at(op: &'static str, body_bytes: Option<usize>) -> Error {
    case(on(op, move |_, _, good| {
        Action::ResetAfter(match body_bytes {
            None => Vec::new(),
            Some(n) => head_and_part(&good, n),
        })
    }))
}

fn transport_error_in(err: &Error, op: Operation) -> bool {
    matches!(err, Error::Transport { operation, .. } if *operation == op)
}

#[test]
fn reset_before_the_cacerts_response() {
    let err = reset_at("cacerts", None);
    assert!(transport_error_in(&err, Operation::CaCerts), "{err:?}");
}

#[test]
fn reset_mid_cacerts_body() {
    let err = reset_at("cacerts", Some(30));
    assert!(transport_error_in(&err, Operation::CaCerts), "{err:?}");
}

#[test]
fn reset_before_the_csrattrs_response() {
    let err = reset_at("csrattrs", None);
    assert!(transport_error_in(&err, Operation::CsrAttrs), "{err:?}");
}

#[test]
fn reset_mid_csrattrs_body() {
    let err = reset_at("csrattrs", Some(12));
    assert!(transport_error_in(&err, Operation::CsrAttrs), "{err:?}");
}

#[test]
fn reset_before_the_enrolment_response() {
    let err = reset_at("simplereenroll", None);
    assert!(
        transport_error_in(&err, Operation::SimpleReenroll),
        "{err:?}"
    );
}

#[test]
fn reset_mid_enrolment_body() {
    let err = reset_at("simplereenroll", Some(50));
    assert!(
        transport_error_in(&err, Operation::SimpleReenroll),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A server that switches certificates between the requests of one procedure
// ---------------------------------------------------------------------------------------------

#[test]
fn switch_to_a_certificate_from_an_untrusted_ca() {
    let err = case_with(
        switching(|_| TestCa::new("Impostor CA").server_identity(&["localhost"], Eku::ServerAuth)),
        close_after_cacerts,
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Server,
        false,
    );
    assert!(matches!(err, Error::ServerNotAuthorized { .. }), "{err:?}");
}

#[test]
fn switch_to_a_certificate_for_another_host() {
    let err = case_with(
        switching(|pki| {
            pki.ca
                .server_identity(&["other.example.net"], Eku::ServerAuth)
        }),
        close_after_cacerts,
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Server,
        false,
    );
    assert!(matches!(err, Error::ServerNotAuthorized { .. }), "{err:?}");
}

/// The device trusts two CAs; the first connection's server certificate comes from the MEF CA,
/// /cacerts names only the MEF CA, and the second connection presents a certificate from the
/// other CA (authorised by the installed anchors, so its handshake succeeds). The new anchors
/// would not authorise that server: refused before install, on the second check of
/// `check_anchors_authorise_server`.
#[test]
fn switch_to_a_server_the_new_trust_anchors_do_not_authorise() {
    let pki = Arc::new(MefPki::new("MEF CA"));
    let other = TestCa::new("Second CA");
    let dir = TempDir::new().unwrap();
    let mut before = pki.device_credentials();
    before.trust_anchors.push(other.cert.clone());
    FileStore::new(dir.path())
        .unwrap()
        .install(&before)
        .unwrap();
    let snap = snapshot(dir.path());
    let second = other.server_identity(&["localhost"], Eku::ServerAuth);
    let server = ProcedureServer::start(
        pki.clone(),
        |o| o.switch_identity = Some((1, second)),
        close_after_cacerts,
    );
    let mut store = Watched::new(dir.path());
    let err = client_for(&server.base())
        .reprovision(&mut store, Reprovision::Renew)
        .unwrap_err();
    assert!(
        refused_cacerts_not_authenticating_the_server(&err),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Server);
    assert_eq!(server.server.handshakes(), 2);
    assert_eq!(store.installed.load(Ordering::SeqCst), 0);
    assert_eq!(snapshot(dir.path()), snap);
    let device = Device { dir, before };
    device.assert_intact_and_usable(&pki);
}

/// A switch to a second certificate that the explicit trust anchors authorise (two front ends
/// of one MEF behind a load balancer) is accepted: every connection is verified on its own.
#[test]
fn switch_to_another_authorised_certificate_is_accepted() {
    let pki = Arc::new(MefPki::new("Two-front-end MEF CA"));
    let device = Device::new(&pki);
    let server = ProcedureServer::start(
        pki.clone(),
        |o| o.switch_identity = Some((1, pki.server_identity())),
        close_after_cacerts,
    );
    let done = client_for(&server.base())
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap();
    assert_eq!(done.connection.handshakes, 2);
    assert_eq!(server.server.handshakes(), 2);
}

/// A 400 refusal is a ServerStatus, and no error text repeats the challengePassword.
#[test]
fn error_texts_never_carry_the_challenge_password() {
    let err = case(on("simplereenroll", |_, _, _| {
        Response::new(400).body("bad CSR").into()
    }));
    let pki_challenge = format!("challenge-{}", std::process::id());
    assert!(!reason_of(&err).contains(&pki_challenge), "{err}");
    assert!(
        matches!(err, Error::ServerStatus { status: 400, .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Tolerated: what servers in the field send that the procedure accepts
// ---------------------------------------------------------------------------------------------

/// A libest-based MEF: its /serverkeygen puts OpenSSL's traditional form of the key (SEC1
/// ECPrivateKey, from `i2d_PrivateKey`) in the application/pkcs8 part where RFC 7030 4.4.2
/// wants PKCS #8. The client wraps it and installs it.
#[test]
fn server_keygen_with_a_sec1_key_as_libest_sends_it() {
    use der::Encode as _;
    let pki = Arc::new(MefPki::new("libest-like MEF CA"));
    let device = Device::new(&pki);
    let generated = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let spki = rcgen::PublicKeyData::subject_public_key_info(&generated);
    let pkcs8 = generated.serialize_der();
    let info = pkcs8::PrivateKeyInfoRef::try_from(pkcs8.as_slice()).unwrap();
    let inner = sec1::EcPrivateKey::try_from(info.private_key.as_bytes()).unwrap();
    // What OpenSSL writes: the named curve and the public key inside the ECPrivateKey.
    let sec1_key = sec1::EcPrivateKey {
        private_key: inner.private_key,
        parameters: Some(sec1::EcParameters::NamedCurve(
            "1.2.840.10045.3.1.7".parse().unwrap(),
        )),
        public_key: inner.public_key,
    }
    .to_der()
    .unwrap();
    assert!(onem2m_est::keys::SoftwareKey::from_pkcs8_der(&sec1_key).is_err());
    let server = ProcedureServer::start(
        pki.clone(),
        |_| {},
        move |pki, req, good| {
            if req.path.ends_with("/serverkeygen") {
                let cert = pki.issue_for(&spki, &[&pki.identity], |_| {});
                let (ct, body) =
                    onem2m_est::proto::multipart::encode_serverkeygen(&sec1_key, &[cert.as_ref()])
                        .unwrap();
                Response::new(200)
                    .header("Content-Type", &ct)
                    .body(body)
                    .into()
            } else {
                good.into()
            }
        },
    );
    let mut store = FileStore::new(device.dir.path()).unwrap();
    client_for(&server.base())
        .reprovision(&mut store, Reprovision::ServerKeygen)
        .unwrap();
    let now = store.load().unwrap().unwrap();
    assert_eq!(
        now.key.public_key_info(),
        rcgen::PublicKeyData::subject_public_key_info(&generated).as_slice(),
        "the server-generated key is installed"
    );
    assert_ne!(now.chain, device.before.chain);
}
