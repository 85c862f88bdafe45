//! Listeners, TLS and the connection thread pool ([`crate::pool`]).
//!
//! The main listener is rustls 0.23 (ring, TLS 1.2 and 1.3, certificate-based RSPF); the optional
//! PSK listener is OpenSSL (PPSK-based RSPF, [`crate::psk`]). Both run the same accept loop and
//! HTTP/EST code through [`TlsAcceptor`] and [`ServerStream`] ([`crate::conn`]); what differs is the
//! authenticated [`Principal`] of a connection: its client certificate chain or its KpmID.

use crate::ca::MefCa;
use crate::challenge::Challenges;
use crate::conn::{ConnInfo, Principal, ServerStream, TlsAcceptor};
use crate::http::{self, ReadError, Response};
use crate::identity::{fingerprint, Identity, SubjectType};
use crate::pool::{Pool, IDLE_RETIRE};
use crate::state::Shared;
use crate::store::Store;
use crate::{MefConfig, MefError};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The rustls acceptor of the main listener.
struct RustlsAcceptor(Arc<ServerConfig>);

impl ServerStream for StreamOwned<ServerConnection, TcpStream> {
    fn send_close(&mut self) {
        self.conn.send_close_notify();
        let _ = self.conn.complete_io(&mut self.sock);
    }

    fn tcp(&mut self) -> &mut TcpStream {
        &mut self.sock
    }
}

impl TlsAcceptor for RustlsAcceptor {
    type Stream = StreamOwned<ServerConnection, TcpStream>;

    fn accept(&self, sock: TcpStream) -> std::io::Result<(Self::Stream, ConnInfo)> {
        let conn = ServerConnection::new(self.0.clone()).map_err(std::io::Error::other)?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        let certs = stream
            .conn
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        Ok((stream, ConnInfo::new(Principal::Certificates(certs))))
    }
}

/// RFC 5280 6.1.4 (n): an intermediate CA certificate whose keyUsage extension is present must
/// assert keyCertSign. rustls-webpki does not check keyUsage (it checks basicConstraints), so
/// this runs after it, on every certificate the client presented after its own: a
/// certificate that may not sign certificates cannot vouch for the client.
fn check_intermediate_key_usage(intermediates: &[CertificateDer<'_>]) -> Result<(), String> {
    for (i, der) in intermediates.iter().enumerate() {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("intermediate certificate #{} does not parse: {e}", i + 1))?;
        let ku = cert.key_usage().map_err(|e| {
            format!(
                "intermediate certificate #{} has a malformed keyUsage: {e}",
                i + 1
            )
        })?;
        if let Some(ku) = ku {
            if !ku.value.key_cert_sign() {
                return Err(format!(
                    "intermediate CA certificate #{} ({}) has a keyUsage without keyCertSign \
                     (RFC 5280 6.1.4 (n))",
                    i + 1,
                    cert.subject()
                ));
            }
        }
    }
    Ok(())
}

/// A client certificate verifier that adds the keyUsage check rustls-webpki leaves out
/// ([`check_intermediate_key_usage`]) to another one.
#[derive(Debug)]
struct KeyUsageChecked(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for KeyUsageChecked {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let verified = self.0.verify_client_cert(end_entity, intermediates, now)?;
        check_intermediate_key_usage(intermediates).map_err(|reason| {
            log::info!("refused a client certificate chain: {reason}");
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                Arc::new(ChainRefused(reason)),
            )))
        })?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Why [`KeyUsageChecked`] refused a chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ChainRefused(String);

/// A running MEF. Dropping it shuts it down.
pub struct RunningMef {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    psk_addr: Option<SocketAddr>,
    ts0003_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
    psk_thread: Option<JoinHandle<()>>,
    ts0003_thread: Option<JoinHandle<()>>,
    metrics: Option<crate::metrics::MetricsServer>,
}

impl RunningMef {
    /// The bound address of the `/metrics` listener, when [`MefConfig::metrics_listen`] was set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr())
    }

    /// The bound address (with the real port when the configuration said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound address of the TLS-PSK listener, when [`MefConfig::psk_listen`] was set.
    pub fn psk_addr(&self) -> Option<SocketAddr> {
        self.psk_addr
    }

    /// The bound address of the ts0003 listener, when [`MefConfig::ts0003_listen`] was set.
    pub fn ts0003_addr(&self) -> Option<SocketAddr> {
        self.ts0003_addr
    }

    /// The base URI of the ts0003 listener (`https://localhost:PORT/.well-known/est`, with
    /// `/label` when given), when it runs.
    pub fn ts0003_base_uri(&self, label: Option<&str>) -> Option<String> {
        Some(est_base_uri(self.ts0003_addr?, label))
    }

    /// The base URI of the TLS-PSK listener (`https://localhost:PSKPORT/.well-known/est`, with
    /// `/label` when given), when it runs.
    pub fn psk_base_uri(&self, label: Option<&str>) -> Option<String> {
        Some(est_base_uri(self.psk_addr?, label))
    }

    /// Registers a PSK of PPSK-based RSPF: `kpm_id` (the TLS psk_identity), its key `kpm`
    /// (16 to 64 bytes) and the identity certificates are issued for. Replaces an entry with
    /// the same KpmID. Takes effect for new handshakes at once.
    pub fn add_psk(
        &self,
        kpm_id: &str,
        kpm: &[u8],
        subject_type: SubjectType,
        subject_id: &str,
    ) -> Result<(), MefError> {
        crate::psk::add_psk(&self.shared.store, kpm_id, kpm, subject_type, subject_id)
    }

    /// The MEF CA certificate DER (the explicit trust anchor clients are given).
    pub fn ca_cert_der(&self) -> CertificateDer<'static> {
        self.shared.ca.cert_der().clone()
    }

    /// Path of the MEF CA certificate PEM file in the data directory.
    pub fn ca_cert_pem_path(&self) -> PathBuf {
        self.shared.ca.cert_path().to_path_buf()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.shared.config.data_dir
    }

    /// `https://localhost:PORT/.well-known/est` or, with a label, `.../est/<label>`
    /// (no trailing slash).
    pub fn base_uri(&self, label: Option<&str>) -> String {
        est_base_uri(self.local_addr, label)
    }

    /// The database (registry, issued certificates).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Registers the identity of a third-party client certificate. `cert_der_or_fingerprint`
    /// is either the certificate DER or its SHA-256 fingerprint as hex text bytes.
    pub fn add_identity(
        &self,
        cert_der_or_fingerprint: &[u8],
        subject_type: SubjectType,
        subject_id: &str,
    ) -> Result<(), MefError> {
        add_identity(
            &self.shared.store,
            cert_der_or_fingerprint,
            subject_type,
            subject_id,
        )
    }

    /// Marks an issued certificate revoked, by serial or fingerprint (hex), with its renewals
    /// ([`Store::revoke`]).
    pub fn revoke(&self, serial_or_fingerprint: &str) -> Result<bool, MefError> {
        self.shared.store.revoke(serial_or_fingerprint)
    }

    /// Revokes every certificate issued for an identity, with their renewals; returns how many.
    pub fn revoke_identity(
        &self,
        subject_type: SubjectType,
        subject_id: &str,
    ) -> Result<usize, MefError> {
        let identity = Identity::new(subject_type, subject_id)?;
        self.shared.store.revoke_identity(&identity)
    }

    /// Graceful shutdown: stops accepting connections, lets requests being handled finish,
    /// closes idle keep-alive connections and joins every connection thread of the pool.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() with a connection of our own.
        let _ = TcpStream::connect_timeout(
            &wake_addr(self.local_addr),
            std::time::Duration::from_secs(1),
        );
        for addr in [self.psk_addr, self.ts0003_addr].into_iter().flatten() {
            let _ = TcpStream::connect_timeout(&wake_addr(addr), std::time::Duration::from_secs(1));
        }
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        if let Some(t) = self.psk_thread.take() {
            let _ = t.join();
        }
        if let Some(t) = self.ts0003_thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningMef {
    fn drop(&mut self) {
        if self.accept_thread.is_some() {
            self.stop_now();
        }
    }
}

fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => [127, 0, 0, 1].into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

/// Registers an identity in `store` (see [`RunningMef::add_identity`]); validates it first.
pub fn add_identity(
    store: &Store,
    cert_der_or_fingerprint: &[u8],
    subject_type: SubjectType,
    subject_id: &str,
) -> Result<(), MefError> {
    let identity = Identity::new(subject_type, subject_id)?;
    let fp = match std::str::from_utf8(cert_der_or_fingerprint)
        .ok()
        .and_then(|t| crate::identity::normalize_fingerprint(t).ok())
    {
        Some(fp) => fp,
        None => {
            x509_parser::parse_x509_certificate(cert_der_or_fingerprint).map_err(|_| {
                MefError::InvalidIdentity(
                    "neither a certificate DER nor a SHA-256 fingerprint in hex".into(),
                )
            })?;
            fingerprint(cert_der_or_fingerprint)
        }
    };
    store.add_identity(&fp, &identity)
}

/// `https://localhost:PORT/.well-known/est`, with `/label` when given (RFC 7030 3.2.2).
fn est_base_uri(addr: SocketAddr, label: Option<&str>) -> String {
    let mut uri = format!("https://localhost:{}/.well-known/est", addr.port());
    if let Some(l) = label {
        uri.push('/');
        uri.push_str(l);
    }
    uri
}

/// Binds a listener (`name`d in errors: the PSK or ts0003 one; the main one unnamed) and reads
/// the address it got.
fn bind(addr: SocketAddr, name: Option<&str>) -> Result<(TcpListener, SocketAddr), MefError> {
    let (binding, bound) = match name {
        Some(n) => (
            format!("binding the {n} listener {addr}"),
            format!("reading the bound {n} address"),
        ),
        None => (
            format!("binding {addr}"),
            "reading the bound address".to_string(),
        ),
    };
    let l = TcpListener::bind(addr).map_err(|e| MefError::Io {
        context: binding,
        source: e,
    })?;
    let local = l.local_addr().map_err(|e| MefError::Io {
        context: bound,
        source: e,
    })?;
    Ok((l, local))
}

fn tls_err(e: impl std::fmt::Display) -> MefError {
    MefError::Tls(e.to_string())
}

pub(crate) fn start(config: MefConfig) -> Result<RunningMef, MefError> {
    config.eku_policy.validate()?;
    for d in &config.sp_domains {
        crate::Identity::new(crate::SubjectType::Cse, d)
            .map_err(|e| MefError::Config(format!("--sp-domain {d:?}: {e}")))?;
    }
    // The MEF's own server certificate is issued by the CA: with nameConstraints (RFC 5280
    // 4.2.1.10) its DNS names must lie within the SP domains or no client would accept it.
    if !config.sp_domains.is_empty() {
        for h in &config.hostnames {
            if h.parse::<std::net::IpAddr>().is_err()
                && !crate::Identity::new(crate::SubjectType::Cse, h)
                    .map(|id| id.within_domains(&config.sp_domains))
                    .unwrap_or(false)
            {
                return Err(MefError::Config(format!(
                    "--hostname {h:?} lies outside the SP domains ({}): the MEF CA's \
                     nameConstraints would invalidate the MEF's own server certificate",
                    config.sp_domains.join(", ")
                )));
            }
        }
    }
    let store = Arc::new(Store::open_database(&config.database, &config.data_dir)?);
    // Replicas sharing a data directory load (or create) the key material one at a time.
    let (ca, (server_cert, server_key)) = store.with_key_material_lock(|| {
        let ca =
            MefCa::load_or_create(&config.data_dir, &config.sp_domains, config.ca_key.as_ref())?;
        let server = ca.server_cert(&config.data_dir, &config.hostnames, config.server_eku)?;
        Ok((ca, server))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    // TLS-layer client verification against (client trust) ∪ (MEF CA); a missing certificate is
    // allowed at this layer (pki --estca fetches /cacerts without one) and refused per operation.
    let mut roots = RootCertStore::empty();
    // During a CA rollover overlap (RFC 7030 4.1.3) certificates issued under the old CA still
    // authenticate: it stays an anchor until `ca retire-old`.
    for c in config
        .client_trust
        .iter()
        .chain(std::iter::once(ca.cert_der()))
        .chain(ca.overlap().map(|o| &o.old))
    {
        roots.add(c.clone()).map_err(tls_err)?;
    }
    let verifier: Arc<dyn ClientCertVerifier> = Arc::new(KeyUsageChecked(
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(tls_err)?,
    ));
    let third_party = if config.client_trust.is_empty() {
        None
    } else {
        let mut tp = RootCertStore::empty();
        for c in &config.client_trust {
            tp.add(c.clone()).map_err(tls_err)?;
        }
        Some(Arc::new(KeyUsageChecked(
            WebPkiClientVerifier::builder_with_provider(Arc::new(tp), provider.clone())
                .build()
                .map_err(tls_err)?,
        )) as Arc<dyn ClientCertVerifier>)
    };
    let ts0003 = match config.ts0003_listen {
        Some(addr) => {
            let client_roots: Vec<_> = config
                .client_trust
                .iter()
                .chain(std::iter::once(ca.cert_der()))
                .cloned()
                .collect();
            let acceptor = crate::ts0003::Ts0003Acceptor::new(
                &[server_cert.clone(), ca.cert_der().clone()],
                &server_key,
                &client_roots,
            )?;
            let (l, bound) = bind(addr, Some("ts0003"))?;
            Some((l, bound, acceptor))
        }
        None => None,
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.to_vec()));
    let mut tls = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            // During an overlap NewWithOld lets a client that trusts only the old CA reach the
            // MEF (and fetch the new anchors, RFC 7030 4.1.3).
            std::iter::once(server_cert)
                .chain(std::iter::once(ca.cert_der().clone()))
                .chain(ca.overlap().map(|o| o.new_with_old.clone()))
                .collect(),
            key,
        )
        .map_err(tls_err)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No session resumption: every enrolment comes from a new device, so tickets would never be
    // used, yet each connection paid for two (six random draws, a session encoding with the
    // client chain, a cache insert under a lock) and every client had to process them. Without
    // them every connection proves its client certificate afresh.
    tls.send_tls13_tickets = 0;
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    let tls = Arc::new(tls);

    let (listener, local_addr) = bind(config.listen, None)?;
    let psk = match config.psk_listen {
        Some(addr) => {
            let acceptor = crate::psk::PskAcceptor::new(store.clone())?;
            let (l, bound) = bind(addr, Some("PSK"))?;
            Some((l, bound, acceptor))
        }
        None => None,
    };
    // RFC 5280 4.2.1.13: issued certificates point at the CRL this listener serves.
    let mut ca = ca;
    ca.set_crl_url(Some(config.crl_url.clone().unwrap_or_else(|| {
        let host = config.hostnames.first().map_or("localhost", String::as_str);
        let host = match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(_)) => format!("[{host}]"),
            _ => host.to_string(),
        };
        format!(
            "https://{host}:{}{}",
            local_addr.port(),
            crate::ca::CRL_PATH
        )
    })));
    let ca_not_after = x509_parser::parse_x509_certificate(ca.cert_der())
        .map(|(_, c)| c.validity().not_after.timestamp())
        .map_err(|e| MefError::Crypto(format!("the MEF CA certificate does not parse: {e}")))?;
    let metrics = Arc::new(crate::metrics::Metrics::new(ca_not_after, store.clone()));
    let metrics_server = match config.metrics_listen {
        Some(addr) => Some(crate::metrics::MetricsServer::start(addr, metrics.clone())?),
        None => None,
    };
    let shared = Arc::new(Shared {
        config,
        ca,
        challenges: Challenges::new(store.clone()),
        store,
        approvals: Default::default(),
        third_party,
        crl: Default::default(),
        metrics,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let accept_thread = spawn_listener(
        "mef-accept",
        listener,
        shared.clone(),
        RustlsAcceptor(tls),
        stop.clone(),
    )?;
    log::info!("MEF listening on {local_addr}");
    let mut running = RunningMef {
        shared: shared.clone(),
        local_addr,
        psk_addr: None,
        ts0003_addr: None,
        stop: stop.clone(),
        accept_thread: Some(accept_thread),
        psk_thread: None,
        ts0003_thread: None,
        metrics: metrics_server,
    };
    if let Some(addr) = running.metrics_addr() {
        log::info!("MEF metrics (plain HTTP) on {addr}");
    }
    if let Some((l, bound, acceptor)) = ts0003 {
        // On failure `running` is dropped, which stops the other listeners again.
        running.ts0003_thread = Some(spawn_listener(
            "mef-ts0003-accept",
            l,
            shared.clone(),
            acceptor,
            stop.clone(),
        )?);
        running.ts0003_addr = Some(bound);
        log::info!(
            "MEF ts0003 listener (TLS 1.2, {}) on {bound}",
            crate::ts0003::CIPHERS
        );
    }
    if let Some((l, bound, acceptor)) = psk {
        // On failure `running` is dropped, which stops the main listener again.
        running.psk_thread = Some(spawn_listener("mef-psk-accept", l, shared, acceptor, stop)?);
        running.psk_addr = Some(bound);
        log::info!("MEF TLS-PSK listener on {bound}");
    }
    Ok(running)
}

fn spawn_listener<A: TlsAcceptor>(
    name: &str,
    listener: TcpListener,
    shared: Arc<Shared>,
    acceptor: A,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, MefError> {
    let acceptor = Arc::new(acceptor);
    // Resident workers as configured; the ceiling is the connection bound, so that idle or slow
    // keep-alive clients cannot hold every thread (see `crate::pool`).
    let pool = Pool::new(
        &format!("{name}-conn"),
        shared.config.workers,
        shared.config.max_connections,
        IDLE_RETIRE,
    )?;
    // The listener label of the pool's metrics: a fixed name per listener.
    let label = match name {
        "mef-psk-accept" => "psk",
        "mef-ts0003-accept" => "ts0003",
        _ => "main",
    };
    shared.metrics.add_pool(label, pool.gauge());
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || accept_loop(listener, shared, acceptor, stop, pool))
        .map_err(|e| MefError::Io {
            context: format!("spawning the {name} thread"),
            source: e,
        })
}

/// Open connections, so shutdown can end idle keep-alive connections at once.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: HashMap<u64, TcpStream>,
}

/// Forgets a connection when its job ends (even by panic).
struct ConnGuard {
    id: u64,
    conns: Arc<Mutex<Connections>>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut c = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        c.open.remove(&self.id);
    }
}

fn accept_loop<A: TlsAcceptor>(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Arc<A>,
    stop: Arc<AtomicBool>,
    pool: Pool,
) {
    let conns = Arc::new(Mutex::new(Connections::default()));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let guard = {
            let mut c = conns.lock().unwrap_or_else(|p| p.into_inner());
            if c.open.len() >= shared.config.max_connections {
                log::warn!("connection limit reached; closing a new connection");
                continue;
            }
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            c.next_id += 1;
            let id = c.next_id;
            c.open.insert(id, clone);
            ConnGuard {
                id,
                conns: conns.clone(),
            }
        };
        let shared = shared.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        pool.execute(Box::new(move || {
            let _guard = guard;
            // The peer address only feeds a debug line: no getpeername() per connection otherwise.
            let peer = log::log_enabled!(log::Level::Debug)
                .then(|| stream.peer_addr().ok())
                .flatten();
            if let Err(e) = serve_connection(stream, &shared, tls.as_ref(), &stop) {
                log::debug!("connection {peer:?}: {e}");
            }
        }));
    }
    // Graceful shutdown: no new requests are read (a request being handled still gets its
    // response, as only the read side is shut), then wait for every connection (queued ones
    // find their socket shut and end at once).
    {
        let c = conns.lock().unwrap_or_else(|p| p.into_inner());
        for s in c.open.values() {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
    }
    pool.shutdown();
}

fn serve_connection<A: TlsAcceptor>(
    sock: TcpStream,
    shared: &Shared,
    tls: &A,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let timeout = Some(shared.config.io_timeout);
    sock.set_read_timeout(timeout)?;
    sock.set_write_timeout(timeout)?;
    let _ = sock.set_nodelay(true);
    // Refusals are logged with the peer (crate::logging): one getpeername per connection.
    crate::logging::serving(sock.peer_addr().ok());
    let (mut stream, info) = tls.accept(sock).inspect_err(|e| {
        shared.metrics.tls_failure();
        crate::logging::handshake(e);
    })?;
    let mut buf = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let req = match http::read_request(&mut stream, &mut buf, shared.config.max_body) {
            Ok(r) => r,
            Err(ReadError::Closed) => break,
            Err(ReadError::Io(e)) => return Err(e),
            Err(ReadError::Reject(resp)) => {
                shared
                    .metrics
                    .request("", resp.status, std::time::Duration::ZERO);
                http::write_response(&mut stream, &resp, false)?;
                linger(&mut stream);
                return Ok(());
            }
        };
        // A panicking handler answers 500 and leaves the server running (no state is written
        // except in single transactions, which roll back when dropped mid-way).
        let started = std::time::Instant::now();
        let resp = guarded(&req, || crate::est::handle(shared, &info, &req));
        shared
            .metrics
            .request(&req.path, resp.status, started.elapsed());
        let keep_alive = req.keep_alive && !resp.close && !stop.load(Ordering::SeqCst);
        http::write_response(&mut stream, &resp, keep_alive)?;
        if !keep_alive {
            break;
        }
    }
    stream.send_close();
    Ok(())
}

/// Lingering close after refusing a request that was not fully read: closing a socket with
/// unread input makes TCP send a reset, which can destroy the error response before the client
/// reads it. So: close_notify, half-close, then discard input for a short while.
fn linger<S: ServerStream>(stream: &mut S) {
    stream.send_close();
    let sock = stream.tcp();
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let _ = sock.set_read_timeout(Some(std::time::Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while total < 256 * 1024 {
        match sock.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// Runs a handler; a panic becomes a 500 answer (and a closed connection) instead of taking the
/// connection thread down mid-response. Handlers write state only in single transactions, which
/// roll back when dropped, so nothing is half-written.
fn guarded(req: &http::Request, handler: impl FnOnce() -> Response) -> Response {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(handler)).unwrap_or_else(|_| {
        log::error!("handler panicked on {} {}", req.method, req.path);
        Response::text(500, "internal error").closing()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_handler_answers_500() {
        let req = http::Request {
            method: "GET".into(),
            path: "/x".into(),
            headers: Vec::new(),
            body: Vec::new(),
            keep_alive: true,
        };
        let r = guarded(&req, || panic!("boom"));
        assert_eq!(r.status, 500);
        assert!(r.close);
        assert_eq!(guarded(&req, || Response::text(200, "ok")).status, 200);
    }
}
