//! Root key rollover (RFC 7030 4.1.3): OldWithOld, OldWithNew, NewWithOld, NewWithNew.

use super::*;

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
    device.reprovision(&during, Reprovision::Rekey).unwrap();
    assert_eq!(installed_anchors(device.dir.path()), sorted(set));
    // The same server again, under the old root: not locked out.
    device.reprovision(&during, Reprovision::Renew).unwrap();
    drop(during);

    // Done: the TLS chain is under the new root, /cacerts has the new root only, the new CA
    // issues.
    let mut id = r
        .new
        .server_identity(&["localhost", "127.0.0.1"], Eku::ServerAuth);
    id.chain.truncate(1);
    let after = r.server(Some(id), vec![r.new.cert.clone()], true);
    device.reprovision(&after, Reprovision::Rekey).unwrap();
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
    device.reprovision(&server, Reprovision::Rekey).unwrap();
    assert_eq!(
        installed_anchors(device.dir.path()),
        std::slice::from_ref(&r.new.cert)
    );
    // And again, now with the new root installed.
    device.reprovision(&server, Reprovision::Renew).unwrap();
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
    device.reprovision(&server, Reprovision::Rekey).unwrap();
    assert_eq!(installed_anchors(device.dir.path()), sorted(set));
}

#[test]
fn forged_old_with_new_is_refused() {
    // An authorised server tries to hand the device to its own root: it certifies the
    // device's root under that root (an "OldWithNew" link no old key vouches for). Every
    // certificate validates against the attacker's root and the server chain is authorised
    // through the link, so only the NewWithOld rule stops it.
    assert_cacerts_refused(
        |pki| {
            let attacker = TestCa::successor("Attacker root");
            let forged = attacker.certify(&pki.ca);
            vec![attacker.cert.clone(), forged]
        },
        &["NewWithOld", "Attacker root"],
    );
}

/// A /cacerts answer of the certificates `set` gives (the other requests answered well) is
/// refused as a bad /cacerts response whose reason contains each of `expected`.
fn assert_cacerts_refused(
    set: impl Fn(&MefPki) -> Vec<CertificateDer<'static>> + Send + Sync + 'static,
    expected: &[&str],
) {
    let err = case(move |pki, req, good| match req.path.rsplit('/').next() {
        Some("cacerts") => certs_only_response(&set(pki)).into(),
        _ => good.into(),
    });
    assert!(
        matches!(&err, Error::BadResponse { operation: Operation::CaCerts, reason }
            if expected.iter().all(|e| reason.contains(e))),
        "{err:?}"
    );
}

#[test]
fn forged_new_with_old_is_refused() {
    // The new root and a "NewWithOld" signed by an impostor key under the old root's name.
    assert_cacerts_refused(
        |_| {
            // The impostor only borrows the name of the MEF root (the harness's "Hostile MEF
            // CA").
            let impostor = TestCa::new("Hostile MEF CA");
            let new = TestCa::successor("Hostile MEF CA G2");
            let forged = impostor.certify(&new);
            vec![new.cert.clone(), forged]
        },
        &["does not validate against the newest root"],
    );
}

#[test]
fn a_second_root_not_linked_to_the_newest_is_refused() {
    assert_cacerts_refused(
        |pki| {
            vec![
                pki.ca.cert.clone(),
                TestCa::new("Stranger root").cert.clone(),
            ]
        },
        &["not linked"],
    );
}

#[test]
fn cacerts_without_a_root_is_refused() {
    assert_cacerts_refused(
        |pki| {
            vec![
                pki.ca
                    .subordinate("Issuing CA", &rcgen::PKCS_ECDSA_P256_SHA256)
                    .cert,
            ]
        },
        &["no self-signed root"],
    );
}
