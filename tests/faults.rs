//! Faults on the device side: the credential store failing at each step of an install.
//!
//! - [`FileStore`] with a fault injected at every step of its install
//!   ([`FileStore::inject_fault`]): a crash (the process killed there, no clean-up, e.g.
//!   between the writes and the rename), a full disk (ENOSPC) and a permission refusal
//!   (EACCES). The tests run as root, where `chmod` denies nothing, so ENOSPC and EACCES are
//!   injected as the I/O error of that step's system call.
//! - The same faults under a whole procedure (`MefClient::reprovision` against the procedure
//!   server of the test kit, onem2m_est_testkit::server).
//!
//! A host store behind the C ABI's credential and key callbacks, each callback failing in turn,
//! is tested in the C ABI crate (ffi/src/tests/callback_faults.rs).
//!
//! After each: a fresh load gives the old or the new complete set (never a mix), the key is
//! the one matching the certificate, and the credentials still authenticate to the MEF.
//! The unit tests in src/store.rs cover crashes at three points of a bare install; this file
//! covers every point, every fault, first installs and procedures.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use onem2m_est::client::{MefClient, Reprovision};
use onem2m_est::store::{CredentialStore, Credentials, FailPoint, Fault, FileStore};
use onem2m_est::{Error, ErrorClass};
use onem2m_est_testkit::server::*;
use rustls::pki_types::CertificateDer;
use tempfile::TempDir;

const FAULTS: [Fault; 3] = [Fault::Crash, Fault::DiskFull, Fault::PermissionDenied];

/// A client of the procedure server at `base`, with 2 s per response and 2 polls.
fn client_for(base: &str) -> MefClient {
    let transport = test_transport(
        Duration::from_secs(2),
        Duration::from_secs(2),
        quick_poll(2, Duration::from_secs(1), Duration::from_millis(10)),
    );
    cse_client(base, MEF_CSE_ID, transport)
}

fn spki_of(cert: &CertificateDer<'_>) -> Vec<u8> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref()).unwrap();
    c.public_key().raw.to_vec()
}

/// Every fault at every step of an install, and the words that name it in a failure.
fn every_fault() -> impl Iterator<Item = (FailPoint, Fault, String)> {
    FailPoint::ALL
        .iter()
        .flat_map(|&at| FAULTS.map(move |fault| (at, fault, format!("{fault:?} at {at:?}"))))
}

/// Same chain, trust anchors and key.
fn same(a: &Credentials, b: &Credentials) -> bool {
    a.chain == b.chain
        && a.trust_anchors == b.trust_anchors
        && a.key.public_key_info() == b.key.public_key_info()
}

/// What a fresh `FileStore` on `dir` loads: one of `allowed`, complete, its key matching its
/// certificate. Returns the index of the one it is.
fn loads_one_of(dir: &Path, allowed: &[&Credentials], context: &str) -> usize {
    let loaded = FileStore::new(dir)
        .unwrap()
        .load()
        .unwrap_or_else(|e| panic!("{context}: the store does not load: {e}"))
        .unwrap_or_else(|| panic!("{context}: the store is empty"));
    assert_eq!(
        loaded.key.public_key_info(),
        spki_of(&loaded.chain[0]),
        "{context}: the key does not match the certificate"
    );
    allowed
        .iter()
        .position(|c| same(c, &loaded))
        .unwrap_or_else(|| panic!("{context}: a set that is neither the old nor the new one"))
}

/// Entries of the store directory besides the current generation and the top-level names.
fn debris(dir: &Path) -> Vec<String> {
    // `current` is a symlink on Unix, a pointer file naming the generation elsewhere.
    let current = if cfg!(unix) {
        std::fs::read_link(dir.join("current")).ok()
    } else {
        std::fs::read_to_string(dir.join("current"))
            .ok()
            .map(|name| name.trim_end().into())
    };
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !["current", "cert.pem", "key.pem", "trust-anchors.pem"].contains(&n.as_str()))
        .filter(|n| current.as_deref() != Some(Path::new(n)))
        .collect();
    out.sort();
    out
}

#[test]
fn every_fault_at_every_install_step_leaves_one_complete_set() {
    let pki = MefPki::new("Faults CA");
    for (at, fault, context) in every_fault() {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("creds");
        let (old, new, newer) = (
            pki.device_credentials(),
            pki.device_credentials(),
            pki.device_credentials(),
        );
        let mut store = FileStore::new(&dir).unwrap();
        store.install(&old).unwrap();

        store.inject_fault(Some((at, fault)));
        let result = store.install(&new);
        let took_effect = at == FailPoint::AfterSwap;
        match (&result, took_effect, fault) {
            // The rename made the new set current; only a crash there reports failure.
            (Ok(()), true, Fault::DiskFull | Fault::PermissionDenied) => {}
            (Err(Error::Store { .. }), true, Fault::Crash) => {}
            (Err(e @ Error::Store { reason, .. }), false, _) => {
                assert_eq!(e.class(), ErrorClass::Client);
                match fault {
                    Fault::DiskFull => assert!(reason.contains("no space"), "{reason}"),
                    Fault::PermissionDenied => {
                        assert!(reason.contains("permission denied"), "{reason}")
                    }
                    Fault::Crash => assert!(reason.contains("crash"), "{reason}"),
                }
            }
            other => panic!("{context}: unexpected outcome {other:?}"),
        }
        let which = loads_one_of(&dir, &[&old, &new], &context);
        assert_eq!(which, usize::from(took_effect), "{context}");
        if fault != Fault::Crash {
            // A failing system call is cleaned up after at once.
            assert_eq!(debris(&dir), Vec::<String>::new(), "{context}");
        }

        // The next install works, and clears whatever a crash left.
        store.inject_fault(None);
        store.install(&newer).unwrap();
        assert_eq!(loads_one_of(&dir, &[&newer], &context), 0);
        assert_eq!(debris(&dir), Vec::<String>::new(), "{context}");
    }
}

#[test]
fn faults_during_a_first_install_leave_nothing_or_everything() {
    let pki = MefPki::new("First install CA");
    for (at, fault, context) in every_fault() {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("creds");
        let new = pki.device_credentials();
        let mut store = FileStore::new(&dir).unwrap();
        store.inject_fault(Some((at, fault)));
        let result = store.install(&new);
        if at == FailPoint::AfterSwap {
            assert_eq!(result.is_ok(), fault != Fault::Crash, "{context}");
            assert_eq!(loads_one_of(&dir, &[&new], &context), 0);
        } else {
            assert!(matches!(result, Err(Error::Store { .. })), "{context}");
            let loaded = FileStore::new(&dir).unwrap().load().unwrap();
            assert!(loaded.is_none(), "{context}: something loads");
        }
    }
}

/// A whole re-provisioning whose store fails at each step of the install: the procedure
/// reports a Client error (or succeeds when the install took effect), the previous
/// credentials (or the new ones) are complete and matching, and they authenticate.
#[test]
fn reprovisioning_with_a_failing_store() {
    let pki = Arc::new(MefPki::new("Procedure faults CA"));
    let server = ProcedureServer::start(pki.clone(), |_| {}, |_, _, good| good.into());
    let client = client_for(&server.base());
    for mode in [Reprovision::Rekey, Reprovision::Renew] {
        for (at, fault, fault_context) in every_fault() {
            let context = format!("{mode:?}, {fault_context}");
            let tmp = TempDir::new().unwrap();
            let old = pki.device_credentials();
            FileStore::new(tmp.path()).unwrap().install(&old).unwrap();

            let mut store = FileStore::new(tmp.path()).unwrap();
            store.inject_fault(Some((at, fault)));
            let result = client.reprovision(&mut store, mode);
            let took_effect = at == FailPoint::AfterSwap;
            match &result {
                Ok(done) => {
                    assert!(took_effect && fault != Fault::Crash, "{context}");
                    let now = FileStore::new(tmp.path()).unwrap().load().unwrap().unwrap();
                    assert_eq!(now.chain, done.chain, "{context}");
                }
                Err(e) => {
                    assert!(matches!(e, Error::Store { .. }), "{context}: {e}");
                    assert_eq!(e.class(), ErrorClass::Client, "{context}");
                }
            }
            let loaded = FileStore::new(tmp.path()).unwrap().load().unwrap().unwrap();
            assert_eq!(
                loaded.key.public_key_info(),
                spki_of(&loaded.chain[0]),
                "{context}"
            );
            if took_effect {
                assert_ne!(loaded.chain, old.chain, "{context}");
            } else {
                assert!(same(&loaded, &old), "{context}: not the old set");
            }
            if mode == Reprovision::Renew {
                assert_eq!(loaded.key.public_key_info(), old.key.public_key_info());
            }
            // Whatever is current authenticates: the next renewal succeeds.
            let mut store = FileStore::new(tmp.path()).unwrap();
            client
                .reprovision(&mut store, Reprovision::Renew)
                .unwrap_or_else(|e| panic!("{context}: the current set is unusable: {e}"));
        }
    }
}
