//! A server that switches certificates between the requests of one procedure.

use super::cms::refused_cacerts_not_authenticating_the_server;
use super::*;

/// A Rekey whose second connection presents the identity `switch` gives: the server is not
/// authorised, and the case's checks of [`case_with`] hold.
fn assert_switch_refused(switch: impl FnOnce(&MefPki) -> ServerIdentity) {
    let err = case_with(
        switching(switch),
        close_after_cacerts,
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Server,
        false,
    );
    assert!(matches!(err, Error::ServerNotAuthorized { .. }), "{err:?}");
}

#[test]
fn switch_to_a_certificate_from_an_untrusted_ca() {
    assert_switch_refused(|_| {
        TestCa::new("Impostor CA").server_identity(&["localhost"], Eku::ServerAuth)
    });
}

#[test]
fn switch_to_a_certificate_for_another_host() {
    assert_switch_refused(|pki| {
        pki.ca
            .server_identity(&["other.example.net"], Eku::ServerAuth)
    });
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
    let (device, server) = device_and_server(
        "Two-front-end MEF CA",
        |o, pki| o.switch_identity = Some((1, pki.server_identity())),
        close_after_cacerts,
    );
    let done = device.reprovision(&server, Reprovision::Rekey).unwrap();
    assert_eq!(done.connection.handshakes, 2);
    assert_eq!(server.server.handshakes(), 2);
}
