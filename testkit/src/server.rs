//! A scripted HTTPS server on 127.0.0.1, and a procedure server built on it (a small MEF that
//! misbehaves on purpose, [`ProcedureServer`]).
//!
//! The server runs rustls with a given certificate chain, optionally asks for (or requires) a
//! client certificate, keeps connections alive, and answers each request with whatever the
//! test's handler returns: a full response, or raw bytes followed by a close (to break a body
//! in the middle). It records every request (headers included, so tests can assert that no
//! Authorization header was ever sent), the client certificate of each connection, and counts
//! TLS handshakes. It stops when dropped.

use crate::pki::{Eku, ServerIdentity, TestCa};
use onem2m_est::client::{Config, MefClient};
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{KeyAlgorithm, PrivateKey};
use onem2m_est::transport::{PollPolicy, TransportConfig};
use onem2m_est::uri::EstUri;
use rcgen::CertificateParams;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Its clients
// ---------------------------------------------------------------------------------------------

/// A client of the EST server at `base` (an estBaseURI) for the CSE `cse_id`, with `transport`.
pub fn cse_client(base: &str, cse_id: &str, transport: TransportConfig) -> MefClient {
    MefClient::new(
        Config::new(EstUri::parse(base).expect("an estBaseURI"))
            .identity(SubjectIdentity::new(SubjectType::Cse, cse_id).expect("a CSE-ID"))
            .transport(transport),
    )
}

/// A client transport for a server on this machine: `connect` to connect and for the TLS
/// handshake, `response` for each response, and polling by `poll` ([`quick_poll`]).
pub fn test_transport(connect: Duration, response: Duration, poll: PollPolicy) -> TransportConfig {
    // TransportConfig is non_exhaustive: start from the defaults.
    let mut t = TransportConfig::default();
    t.connect_timeout = connect;
    t.tls_timeout = connect;
    t.response_timeout = response;
    t.poll = poll;
    t
}

/// Polling of at most `max_attempts` requests within `max_total`, 10 ms apart unless the
/// server asks for more, and waits of at most `max_delay`.
pub fn quick_poll(max_attempts: u32, max_total: Duration, max_delay: Duration) -> PollPolicy {
    let mut p = PollPolicy::default();
    p.max_attempts = max_attempts;
    p.max_total = max_total;
    p.default_delay = Duration::from_millis(10);
    p.max_delay = max_delay;
    p
}

// ---------------------------------------------------------------------------------------------
// HTTP messages
// ---------------------------------------------------------------------------------------------

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Index of the TLS connection it came on (0 for the first).
    pub connection: usize,
    /// The client certificate of that connection, if one was presented.
    pub client_cert: Option<CertificateDer<'static>>,
    /// The SNI host name the client sent on that connection.
    pub sni: Option<String>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response to send.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no headers and no body (Content-Length is added when sent).
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A 200 response with `content_type` and `body`.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response::new(200)
            .header("Content-Type", content_type)
            .body(body)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).into_bytes();
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            && self.status != 204
            && self.status != 304
        {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send this response and keep the connection open.
    Respond(Response),
    /// Send these bytes as they are, then close the connection.
    RawThenClose(Vec<u8>),
    /// Send this response, then close the connection cleanly (close_notify), so the client's
    /// next request needs a new connection (and a new handshake).
    RespondThenClose(Response),
    /// Never answer: hold the connection open, silent, until the server is dropped.
    Stall,
    /// Slowloris: send these bytes, then one more byte (`b'A'`) every 100 ms, forever (until
    /// the client gives up or the server is dropped).
    Trickle(Vec<u8>),
    /// Send these bytes, then reset the connection (TCP RST through SO_LINGER 0).
    ResetAfter(Vec<u8>),
    /// Send these bytes, then a fatal TLS alert record (handshake_failure) in the clear, then
    /// close: what a broken middlebox or TLS stack gives mid-response.
    AlertAfter(Vec<u8>),
}

impl From<Response> for Action {
    fn from(r: Response) -> Action {
        Action::Respond(r)
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// Whether the server asks for a client certificate.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// No CertificateRequest.
    None,
    /// Asks for a certificate issued by one of these roots; none is fine.
    Optional(Vec<CertificateDer<'static>>),
    /// Requires a certificate issued by one of these roots.
    Required(Vec<CertificateDer<'static>>),
}

/// How the test server is set up.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub identity: ServerIdentity,
    pub client_auth: ClientAuth,
    /// Only TLS 1.2 when set (otherwise 1.2 and 1.3, rustls preferring 1.3).
    pub tls12_only: bool,
    /// From connection index `n` on (0 is the first), present this identity instead: a server
    /// that switches certificates between the requests of one procedure.
    pub switch_identity: Option<(usize, ServerIdentity)>,
    /// Reset (TCP RST) the connections with these indexes once the ClientHello arrived,
    /// before any TLS answer.
    pub reset_handshakes: Vec<usize>,
    /// Accept the connections with these indexes and never answer the ClientHello (held open
    /// until the server is dropped).
    pub stall_handshakes: Vec<usize>,
}

impl ServerOptions {
    /// Server identity, no client authentication, TLS 1.2 and 1.3.
    pub fn new(identity: ServerIdentity) -> ServerOptions {
        ServerOptions {
            identity,
            client_auth: ClientAuth::None,
            tls12_only: false,
            switch_identity: None,
            reset_handshakes: Vec::new(),
            stall_handshakes: Vec::new(),
        }
    }
}

type Handler = dyn Fn(&Request) -> Action + Send + Sync;

#[derive(Default)]
struct State {
    /// Set when the server is dropped: stalling and trickling connections end.
    stopping: AtomicBool,
    handshakes: AtomicU32,
    handshake_failures: Mutex<Vec<String>>,
    requests: Mutex<Vec<Request>>,
    connections: AtomicUsize,
    /// A clone of each connection's socket (by connection index), to close them on drop.
    sockets: Mutex<Vec<(usize, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A scripted HTTPS server on 127.0.0.1 (see the module documentation).
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1 with a free port; `handler` answers every request.
    pub fn start(
        options: ServerOptions,
        handler: impl Fn(&Request) -> Action + Send + Sync + 'static,
    ) -> TestServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if options.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .expect("TLS versions");
        let builder = match &options.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(roots) | ClientAuth::Required(roots) => {
                let mut store = RootCertStore::empty();
                for r in roots {
                    store.add(r.clone()).expect("client root");
                }
                let b = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider);
                let b = if matches!(options.client_auth, ClientAuth::Optional(_)) {
                    b.allow_unauthenticated()
                } else {
                    b
                };
                builder.with_client_cert_verifier(b.build().expect("client verifier"))
            }
        };
        let config_for = |identity: &ServerIdentity| {
            Arc::new(
                builder
                    .clone()
                    .with_single_cert(identity.chain.clone(), identity.key.clone_key())
                    .expect("server certificate"),
            )
        };
        let config = config_for(&options.identity);
        let switched = options
            .switch_identity
            .as_ref()
            .map(|(from, id)| (*from, config_for(id)));
        let reset_handshakes = options.reset_handshakes.clone();
        let stall_handshakes = options.stall_handshakes.clone();

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let accept = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let index = state.connections.fetch_add(1, Ordering::SeqCst);
                    if reset_handshakes.contains(&index) {
                        reset_after_client_hello(stream);
                        continue;
                    }
                    if let Ok(clone) = stream.try_clone() {
                        state.sockets.lock().unwrap().push((index, clone));
                    }
                    if stall_handshakes.contains(&index) {
                        // Dropping this handle leaves the clone above open until Drop.
                        continue;
                    }
                    let config = match &switched {
                        Some((from, other)) if index >= *from => other.clone(),
                        _ => config.clone(),
                    };
                    let (state2, handler) = (state.clone(), handler.clone());
                    let t = std::thread::spawn(move || {
                        serve_connection(config, stream, index, &state2, &*handler)
                    });
                    state.threads.lock().unwrap().push(t);
                }
            })
        };
        TestServer {
            addr,
            state,
            stop,
            accept: Some(accept),
        }
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://localhost:PORT/.well-known/est` (for DNS-name tests).
    pub fn base_localhost(&self) -> String {
        format!("https://localhost:{}/.well-known/est", self.port())
    }

    /// `https://127.0.0.1:PORT/` (for IP-literal tests).
    pub fn base_ip(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port())
    }

    /// TLS handshakes completed.
    pub fn handshakes(&self) -> u32 {
        self.state.handshakes.load(Ordering::SeqCst)
    }

    /// Why failed handshakes failed (the server's view).
    pub fn handshake_failures(&self) -> Vec<String> {
        self.state.handshake_failures.lock().unwrap().clone()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop, then close every connection so its thread ends.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for (_, s) in self.state.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = self.state.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

fn serve_connection(
    config: Arc<ServerConfig>,
    mut tcp: TcpStream,
    index: usize,
    state: &State,
    handler: &Handler,
) {
    let mut conn = match ServerConnection::new(config) {
        Ok(c) => c,
        Err(e) => {
            state.handshake_failures.lock().unwrap().push(e.to_string());
            return;
        }
    };
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            state.handshake_failures.lock().unwrap().push(e.to_string());
            return;
        }
    }
    state.handshakes.fetch_add(1, Ordering::SeqCst);
    let client_cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned());
    let sni = conn.server_name().map(str::to_string);
    let mut tls = StreamOwned::new(conn, tcp);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(request) = read_request(&mut tls, &mut buf, index, &client_cert, &sni) else {
            return;
        };
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        state.requests.lock().unwrap().push(request.clone());
        match handler(&request) {
            Action::Respond(resp) => {
                if tls
                    .write_all(&resp.to_bytes())
                    .and_then(|_| tls.flush())
                    .is_err()
                {
                    return;
                }
                if close {
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                    return;
                }
            }
            Action::RawThenClose(bytes) => {
                let _ = tls.write_all(&bytes);
                let _ = tls.flush();
                // No close_notify: an abrupt end, as a crashed server gives.
                let _ = tls.sock.shutdown(Shutdown::Both);
                return;
            }
            Action::RespondThenClose(resp) => {
                let _ = tls.write_all(&resp.to_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let _ = tls.sock.shutdown(Shutdown::Write);
                return;
            }
            Action::Stall => {
                while !state.stopping.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                return;
            }
            Action::Trickle(head) => {
                if tls.write_all(&head).and_then(|_| tls.flush()).is_err() {
                    return;
                }
                while !state.stopping.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    if tls.write_all(b"A").and_then(|_| tls.flush()).is_err() {
                        return;
                    }
                }
                return;
            }
            Action::ResetAfter(bytes) => {
                let _ = tls.write_all(&bytes);
                let _ = tls.flush();
                // The clone kept for Drop must go too: the RST is sent when the last
                // descriptor of the socket closes.
                state.sockets.lock().unwrap().retain(|(i, _)| *i != index);
                reset(&tls.sock);
                return;
            }
            Action::AlertAfter(bytes) => {
                let _ = tls.write_all(&bytes);
                let _ = tls.flush();
                // A TLSPlaintext alert record: level fatal (2), handshake_failure (40).
                let _ = tls
                    .sock
                    .write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
                let _ = tls.sock.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// Sets SO_LINGER 0 on `tcp`: when its last descriptor closes (the caller then drops it), the
/// kernel sends a RST instead of a FIN.
fn reset(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_linger(Some(std::time::Duration::ZERO));
}

/// Waits for the ClientHello (up to 2 s), then resets the connection without answering.
fn reset_after_client_hello(mut tcp: TcpStream) {
    let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let mut buf = [0u8; 512];
    let _ = tcp.read(&mut buf);
    reset(&tcp);
}

/// Reads one request (head with httparse, body by Content-Length); `None` at end of stream.
fn read_request(
    tls: &mut StreamOwned<ServerConnection, TcpStream>,
    buf: &mut Vec<u8>,
    connection: usize,
    client_cert: &Option<CertificateDer<'static>>,
    sni: &Option<String>,
) -> Option<Request> {
    let mut chunk = [0u8; 4096];
    let (head_len, method, path, headers) = loop {
        let mut header_storage = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut header_storage);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (n, req.method?.to_string(), req.path?.to_string(), headers);
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return None,
        }
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_len + length {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_len..head_len + length].to_vec();
    buf.drain(..head_len + length);
    Some(Request {
        method,
        path,
        headers,
        body,
        connection,
        client_cert: client_cert.clone(),
        sni: sni.clone(),
    })
}

// ---------------------------------------------------------------------------------------------
// EST bodies
// ---------------------------------------------------------------------------------------------

/// A 200 certs-only response (DER CMS, one-line base64) with the usual Content-Type.
pub fn certs_only_response(certs: &[CertificateDer<'static>]) -> Response {
    let refs: Vec<&[u8]> = certs.iter().map(|c| c.as_ref()).collect();
    let der = onem2m_est::proto::certs_only::encode(&refs).expect("certs-only encoding");
    Response::ok(
        onem2m_est::proto::media::CERTS_ONLY_CONTENT_TYPE,
        onem2m_est::proto::base64body::encode(&der),
    )
}

// ---------------------------------------------------------------------------------------------
// A procedure server: a small MEF (EST server + CA) that can misbehave on purpose
// ---------------------------------------------------------------------------------------------

/// The CSE-ID the procedure server associates with its device (a dNSName, TS-0003 10.1.1.7).
pub const MEF_CSE_ID: &str = "cse01.sp.example.com";

/// The MEF side of the procedure server: its CA, the challengePassword it hands out in
/// /csrattrs and checks in the CSR, and the identity it associates with the device.
pub struct MefPki {
    pub ca: TestCa,
    pub challenge: String,
    pub identity: String,
}

impl MefPki {
    /// A MEF CA named `cn`, a fresh challengePassword, the identity [`MEF_CSE_ID`].
    pub fn new(cn: &str) -> MefPki {
        MefPki {
            ca: TestCa::new(cn),
            challenge: format!("challenge-{}", std::process::id()),
            identity: MEF_CSE_ID.into(),
        }
    }

    /// The MEF's TLS server identity (localhost, 127.0.0.1; serverAuth), issued by its CA.
    pub fn server_identity(&self) -> ServerIdentity {
        self.ca
            .server_identity(&["localhost", "127.0.0.1"], Eku::ServerAuth)
    }

    /// Credentials as a previous, successful provisioning would have installed them: a P-256
    /// key, a certificate for [`Self::identity`] issued by the CA, the CA as trust anchor.
    pub fn device_credentials(&self) -> onem2m_est::store::Credentials {
        let key = onem2m_est::keys::SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256)
            .expect("device key");
        let spki = rcgen::SubjectPublicKeyInfo::from_der(key.public_key_info()).expect("SPKI");
        let leaf = self
            .ca
            .issue("device", &[&self.identity], Eku::ClientAuth, &spki, |_| {});
        onem2m_est::store::Credentials {
            trust_anchors: vec![self.ca.cert.clone()],
            chain: vec![leaf],
            key: Arc::new(key),
        }
    }

    /// 200 /cacerts: the CA certificate.
    pub fn cacerts(&self) -> Response {
        certs_only_response(std::slice::from_ref(&self.ca.cert))
    }

    /// The CSR attributes a oneM2M MEF sends: the challengePassword to echo and the identity's
    /// subjectAltName.
    pub fn requirements(&self) -> onem2m_est::proto::csrattrs::CsrRequirements {
        use onem2m_est::proto::csrattrs::{ChallengePassword, CsrRequirements, RequestedExtension};
        use onem2m_est::proto::san::{self, GeneralName};
        CsrRequirements {
            challenge_password: ChallengePassword::Value(self.challenge.clone().into()),
            extensions: vec![RequestedExtension {
                oid: "2.5.29.17".into(),
                critical: false,
                value: san::encode(&[GeneralName::Dns(self.identity.clone())]).expect("SAN"),
            }],
            key: None,
            hash: None,
            unrecognized: Vec::new(),
        }
    }

    /// 200 /csrattrs with `requirements` (base64 DER).
    pub fn csrattrs_response(
        requirements: &onem2m_est::proto::csrattrs::CsrRequirements,
    ) -> Response {
        use onem2m_est::proto::{base64body, csrattrs, media};
        let der = csrattrs::encode(&requirements.to_items().expect("items")).expect("CsrAttrs");
        Response::ok(media::CSRATTRS, base64body::encode(&der))
    }

    /// Checks the CSR of an enrolment request like a MEF would (signature, echoed
    /// challengePassword) and returns its SubjectPublicKeyInfo DER; `Err` is the 400 answer.
    pub fn check_csr(&self, req: &Request) -> Result<Vec<u8>, Response> {
        use x509_parser::certification_request::X509CertificationRequest;
        use x509_parser::cri_attributes::ParsedCriAttribute;
        use x509_parser::prelude::FromDer;
        let refuse = |why: &str| Err(Response::new(400).body(why.to_string()));
        let Ok(der) = onem2m_est::proto::base64body::decode(&req.body) else {
            return refuse("the CSR is not base64");
        };
        let Ok((_, csr)) = X509CertificationRequest::from_der(&der) else {
            return refuse("the CSR does not parse");
        };
        if csr.verify_signature().is_err() {
            return refuse("the CSR signature does not verify");
        }
        let echoed = csr.certification_request_info.iter_attributes().any(|a| {
            matches!(a.parsed_attribute(), ParsedCriAttribute::ChallengePassword(p)
                if p.0 == self.challenge)
        });
        if !echoed {
            return refuse("the challengePassword is missing or wrong");
        }
        Ok(csr.certification_request_info.subject_pki.raw.to_vec())
    }

    /// Issues a client certificate for `spki` with `names` (dNSNames); `customize` may change
    /// the parameters (validity, ...).
    pub fn issue_for(
        &self,
        spki: &[u8],
        names: &[&str],
        customize: impl FnOnce(&mut CertificateParams),
    ) -> CertificateDer<'static> {
        let public = rcgen::SubjectPublicKeyInfo::from_der(spki).expect("SPKI");
        self.ca
            .issue("device", names, Eku::ClientAuth, &public, customize)
    }

    /// The answer of a well-behaved MEF to `req`.
    pub fn answer(&self, req: &Request) -> Response {
        let op = req.path.rsplit('/').next().unwrap_or_default();
        match (req.method.as_str(), op) {
            ("GET", "cacerts") => self.cacerts(),
            ("GET", "csrattrs") => Self::csrattrs_response(&self.requirements()),
            ("POST", "simpleenroll" | "simplereenroll") => match self.check_csr(req) {
                Ok(spki) => {
                    certs_only_response(&[self.issue_for(&spki, &[&self.identity], |_| {})])
                }
                Err(refusal) => refusal,
            },
            _ => Response::new(404),
        }
    }
}

/// A misbehaviour: given the MEF, the request and what a well-behaved MEF would answer, what
/// the server does instead.
pub type Misbehaviour = dyn Fn(&MefPki, &Request, Response) -> Action + Send + Sync;

/// A [`TestServer`] acting as a MEF ([`MefPki::answer`]) for whole procedures, with a
/// [`Misbehaviour`] hook on every request; [`ProcedureServer::behave`] removes the hook.
/// It requires a client certificate issued by the MEF CA (or by `extra_client_roots`).
pub struct ProcedureServer {
    pub server: TestServer,
    pub pki: Arc<MefPki>,
    hook: Arc<Mutex<Option<Box<Misbehaviour>>>>,
}

impl ProcedureServer {
    /// Starts the server; `options` may change the TLS setup (certificate switches, resets).
    pub fn start(
        pki: Arc<MefPki>,
        options: impl FnOnce(&mut ServerOptions),
        hook: impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static,
    ) -> ProcedureServer {
        let mut opts = ServerOptions::new(pki.server_identity());
        opts.client_auth = ClientAuth::Required(vec![pki.ca.cert.clone()]);
        options(&mut opts);
        let hook: Arc<Mutex<Option<Box<Misbehaviour>>>> =
            Arc::new(Mutex::new(Some(Box::new(hook))));
        let (p, h) = (pki.clone(), hook.clone());
        let server = TestServer::start(opts, move |req| {
            let good = p.answer(req);
            match &*h.lock().unwrap() {
                Some(misbehave) => misbehave(&p, req, good),
                None => Action::Respond(good),
            }
        });
        ProcedureServer { server, pki, hook }
    }

    /// From now on, answer like a well-behaved MEF.
    pub fn behave(&self) {
        *self.hook.lock().unwrap() = None;
    }

    /// `https://localhost:PORT/.well-known/est`.
    pub fn base(&self) -> String {
        self.server.base_localhost()
    }
}

/// The bytes of a response head and the first `n` bytes of its body (for truncation).
pub fn head_and_part(resp: &Response, n: usize) -> Vec<u8> {
    let bytes = resp.to_bytes();
    let head = bytes.len() - resp.body.len();
    bytes[..head + n.min(resp.body.len())].to_vec()
}
