//! The harness of the hostile-MEF matrix (tests/hostile, and the C ABI crate's subset): a
//! watched store, a device with credentials, and one case run against the procedure server
//! ([`crate::server::ProcedureServer`]) with one misbehaviour.

use crate::pki::*;
use crate::server::*;
use onem2m_est::client::{InitialAuth, KeySource, MefClient, Provisioned, Reprovision};
use onem2m_est::keys::{KeyAlgorithm, PrivateKey};
use onem2m_est::proto::csrattrs::KeyRequirement;
use onem2m_est::store::{CredentialStore, Credentials, FileStore};
use onem2m_est::tls::ClientIdentity;
use onem2m_est::transport::TransportConfig;
use onem2m_est::{Error, ErrorClass};
use rustls::pki_types::CertificateDer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

/// The matrix's client transport: 2 s to connect and for the handshake, 1 s per response (so
/// slow cases end in about a second), 3 polls, bodies of at most 64 KiB.
pub fn quick_transport() -> TransportConfig {
    let mut t = test_transport(
        Duration::from_secs(2),
        Duration::from_secs(1),
        quick_poll(3, Duration::from_secs(1), Duration::from_millis(50)),
    );
    t.max_body_bytes = 64 * 1024;
    t
}

/// The matrix's client of the procedure server at `base`.
pub fn client_for(base: &str) -> MefClient {
    cse_client(base, MEF_CSE_ID, quick_transport())
}

/// A [`FileStore`] that counts what the procedure asked of it.
pub struct Watched {
    pub inner: FileStore,
    pub created: Arc<AtomicU32>,
    pub installed: Arc<AtomicU32>,
}

impl Watched {
    pub fn new(dir: &Path) -> Watched {
        Watched {
            inner: FileStore::new(dir).unwrap(),
            created: Arc::default(),
            installed: Arc::default(),
        }
    }
}

impl CredentialStore for Watched {
    fn load(&self) -> onem2m_est::Result<Option<Credentials>> {
        self.inner.load()
    }
    fn create_key(&mut self, algorithm: KeyAlgorithm) -> onem2m_est::Result<Arc<dyn PrivateKey>> {
        self.created.fetch_add(1, Ordering::SeqCst);
        self.inner.create_key(algorithm)
    }
    fn install(&mut self, credentials: &Credentials) -> onem2m_est::Result<()> {
        self.installed.fetch_add(1, Ordering::SeqCst);
        self.inner.install(credentials)
    }
    fn discard_key(&mut self, key: &Arc<dyn PrivateKey>) {
        self.inner.discard_key(key)
    }
}

/// What a directory holds: every file's bytes and every symlink's target, recursively.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Entry> {
    pub fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Link(std::fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                out.insert(rel, Entry::Dir);
                walk(root, &path, out);
            } else {
                out.insert(rel, Entry::File(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A device provisioned by `pki`: a store directory holding valid previous credentials.
pub struct Device {
    pub dir: TempDir,
    pub before: Credentials,
}

impl Device {
    pub fn new(pki: &MefPki) -> Device {
        let dir = TempDir::new().unwrap();
        let before = pki.device_credentials();
        FileStore::new(dir.path())
            .unwrap()
            .install(&before)
            .unwrap();
        Device { dir, before }
    }

    /// `mode` of this device's credentials against `server`, by [`client_for`] it.
    pub fn reprovision(
        &self,
        server: &ProcedureServer,
        mode: Reprovision,
    ) -> onem2m_est::Result<Provisioned> {
        client_for(&server.base()).reprovision(&mut FileStore::new(self.dir.path()).unwrap(), mode)
    }

    /// The previous credentials are current, complete, matching, and still authenticate: a
    /// re-provisioning (renew) against a well-behaved server with the same CA succeeds.
    pub fn assert_intact_and_usable(&self, pki: &Arc<MefPki>) {
        let loaded = FileStore::new(self.dir.path())
            .unwrap()
            .load()
            .unwrap()
            .expect("previous credentials still load");
        assert_eq!(loaded.chain, self.before.chain);
        assert_eq!(loaded.trust_anchors, self.before.trust_anchors);
        assert_eq!(
            loaded.key.public_key_info(),
            self.before.key.public_key_info()
        );
        let good = ProcedureServer::start(pki.clone(), |_| {}, |_, _, good| good.into());
        let mut store = FileStore::new(self.dir.path()).unwrap();
        // Generous timeouts here: this check is not about timing, and must not flake under load.
        let mut relaxed = client_for(&good.base()).config().clone();
        relaxed.transport.response_timeout = Duration::from_secs(15);
        relaxed.transport.tls_timeout = Duration::from_secs(15);
        let renewed = MefClient::new(relaxed)
            .reprovision(&mut store, Reprovision::Renew)
            .expect("the previous credentials still authenticate");
        assert_ne!(renewed.chain[0], self.before.chain[0]);
        let after = store.load().unwrap().unwrap();
        assert_eq!(
            after.key.public_key_info(),
            self.before.key.public_key_info()
        );
    }
}

/// A fresh MEF CA named `cn`, a device it provisioned, and a procedure server of that CA
/// answering with `hook` (TLS options tweaked by `options`): the set-up of [`case_with`], and
/// of the cases that are not its (one that succeeds, or a failure checked otherwise). The CA
/// is the server's `pki`.
pub fn device_and_server(
    cn: &str,
    options: impl FnOnce(&mut ServerOptions, &MefPki),
    hook: impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static,
) -> (Device, ProcedureServer) {
    let pki = Arc::new(MefPki::new(cn));
    let device = Device::new(&pki);
    let server = ProcedureServer::start(pki.clone(), |o| options(o, &pki), hook);
    (device, server)
}

/// How a case runs.
#[derive(Clone, Copy)]
pub enum Proc {
    Reprovision(Reprovision),
    /// Initial provisioning with a generated key, into an empty store.
    Provision,
}

/// One case of the matrix: a fresh MEF CA, a device provisioned by it, a procedure server
/// misbehaving with `hook` (TLS options tweaked by `options`), `proc` run against it. Returns
/// the error after asserting its class, that nothing changed in the store, that no key was
/// created unless `may_create_key`, and that the previous credentials are intact and usable.
pub fn case_with(
    options: impl FnOnce(&mut ServerOptions, &MefPki),
    hook: impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static,
    proc: Proc,
    class: ErrorClass,
    may_create_key: bool,
) -> Error {
    let (device, server) = device_and_server("Hostile MEF CA", options, hook);
    let pki = server.pki.clone();
    let client = client_for(&server.base());
    let empty = TempDir::new().unwrap();
    let dir = match proc {
        Proc::Reprovision(_) => device.dir.path(),
        Proc::Provision => empty.path(),
    };
    let before = snapshot(dir);
    let mut store = Watched::new(dir);
    let result = match proc {
        Proc::Reprovision(mode) => client.reprovision(&mut store, mode),
        Proc::Provision => {
            let (cert, key) = pki.ca.client_identity("manufacturer device");
            let auth = InitialAuth::Certificate {
                trust_anchors: vec![pki.ca.cert.clone()],
                client: ClientIdentity {
                    chain: vec![cert],
                    key,
                },
            };
            client.provision(&auth, &mut store, KeySource::Generate)
        }
    };
    let err = match result {
        Ok(done) => panic!("the hostile server's answer was accepted: {done:?}"),
        Err(e) => e,
    };
    assert_eq!(err.class(), class, "{err}");
    assert_eq!(
        store.installed.load(Ordering::SeqCst),
        0,
        "install was called"
    );
    if !may_create_key {
        assert_eq!(store.created.load(Ordering::SeqCst), 0, "a key was created");
    }
    assert_eq!(snapshot(dir), before, "the store changed: {err}");
    // TS-0003 8.3.6.2.1: no HTTP authentication, whatever the server asks.
    assert!(
        server
            .server
            .requests()
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "an Authorization header was sent"
    );
    drop(server);
    device.assert_intact_and_usable(&pki);
    err
}

/// A re-provisioning (rekey) case with default TLS options, class Server.
pub fn case(hook: impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static) -> Error {
    case_with(
        |_, _| {},
        hook,
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Server,
        true,
    )
}

/// Applies `f` to requests for operation `op` (last path segment); the rest are answered well.
pub fn on(
    op: &'static str,
    f: impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static,
) -> impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static {
    move |pki, req, good| {
        if req.path.rsplit('/').next() == Some(op) {
            f(pki, req, good)
        } else {
            Action::Respond(good)
        }
    }
}

/// The enrolment answer with the certificate `issue` makes for the CSR's key (the CSR is
/// checked like a MEF does first).
pub fn enroll_with(
    issue: impl Fn(&MefPki, &[u8]) -> Vec<CertificateDer<'static>> + Send + Sync + 'static,
) -> impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static {
    on("simplereenroll", move |pki, req, _| {
        let spki = pki.check_csr(req).expect("the client's CSR is valid");
        certs_only_response(&issue(pki, &spki)).into()
    })
}

pub fn with_body(resp: Response, body: impl Into<Vec<u8>>) -> Action {
    Response {
        body: body.into(),
        ..resp
    }
    .into()
}

pub fn with_content_type(resp: Response, ct: Option<&str>) -> Action {
    let mut headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("content-type"))
        .cloned()
        .collect();
    if let Some(ct) = ct {
        headers.push(("Content-Type".into(), ct.into()));
    }
    Response { headers, ..resp }.into()
}

pub fn accepted(retry_after: &'static str) -> impl Fn(&MefPki, &Request, Response) -> Action {
    move |_, _, _| Response::new(202).header("Retry-After", retry_after).into()
}

/// A redirect: `status` (3xx) with `location`.
pub fn redirect(
    status: u16,
    location: &'static str,
) -> impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static {
    move |_, _, _| Response::new(status).header("Location", location).into()
}

pub fn reason_of(err: &Error) -> String {
    err.to_string()
}

/// Serves `stranger`'s CA from /cacerts and issues the enrolment from it too: everything in
/// the response is consistent, but the new trust anchors would not authenticate the MEF this
/// device talked to (RFC 7030 4.1.3, 3.6.1): a device that installed them could never reach
/// its MEF again, and whoever holds the stranger CA would own it.
pub fn cacerts_from_another_ca(
    stranger: Arc<MefPki>,
) -> impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static {
    move |pki, req, good| match req.path.rsplit('/').next() {
        Some("cacerts") => stranger.cacerts().into(),
        Some("simpleenroll" | "simplereenroll") => {
            let spki = pki.check_csr(req).expect("the client's CSR is valid");
            certs_only_response(&[stranger.issue_for(&spki, &[&pki.identity], |_| {})]).into()
        }
        _ => good.into(),
    }
}

/// Closes the connection after /cacerts (announced), so the next request opens a new one.
pub fn close_after_cacerts(_: &MefPki, req: &Request, good: Response) -> Action {
    if req.path.ends_with("/cacerts") {
        // Announced, so the client does not race the close by reusing the connection.
        Action::RespondThenClose(good.header("Connection", "close"))
    } else {
        good.into()
    }
}

/// /csrattrs asks for the key `key`.
pub fn demanding(
    key: KeyRequirement,
) -> impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static {
    on("csrattrs", move |pki, _, _| {
        let mut reqs = pki.requirements();
        reqs.key = Some(key);
        MefPki::csrattrs_response(&reqs).into()
    })
}

/// Closes the connection after /cacerts, so /csrattrs needs a second handshake, on which the
/// server presents the identity `switch` gives.
pub fn switching(
    switch: impl FnOnce(&MefPki) -> ServerIdentity,
) -> impl FnOnce(&mut ServerOptions, &MefPki) {
    move |o, pki| o.switch_identity = Some((1, switch(pki)))
}
