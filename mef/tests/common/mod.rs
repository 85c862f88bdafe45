//! Helpers for the MEF integration tests: run the real binary, register identities, and HTTPS
//! clients (ureq, and raw rustls for keep-alive checks). The third-party CA, client
//! certificates and hand-made CSRs are the test kit's (`onem2m_est_testkit::pki`).
#![allow(dead_code)]

pub mod haproxy;
pub mod load;
pub mod postgres;
pub mod replica;

use onem2m_est_proto::{base64body, certs_only, csrattrs};
pub use onem2m_est_testkit::pki::{make_csr, ClientCreds, ThirdPartyCa};
use rcgen::{KeyPair, SanType};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

pub const BIN: &str = env!("CARGO_BIN_EXE_onem2m-mef");

/// The MEF binary the tests drive: this build's, or `ONEM2M_MEF_BIN` when set (to run a suite
/// against another build, e.g. to check that a test fails on the code before a fix).
pub fn bin() -> String {
    std::env::var("ONEM2M_MEF_BIN").unwrap_or_else(|_| BIN.to_owned())
}
/// Prints a finding of a test (the load runs' counts, the consistency checks) straight to
/// stderr, past libtest's capture of `print!`, so that the CI log shows it for passing tests.
pub fn say(line: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub const AE_ID: &str = "https://sp.example.com/cse01/CAE01";

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onem2m-mef-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `onem2m-mef` binary running on 127.0.0.1:0.
pub struct MefProc {
    pub host: String,
    child: Child,
    pub addr: SocketAddr,
    /// The TLS-PSK listener's address, when started with `--psk-listen`.
    pub psk_addr: Option<SocketAddr>,
    pub dir: PathBuf,
    pub ca_der: Vec<u8>,
}

impl MefProc {
    pub fn start(dir: &Path, extra: &[&str]) -> MefProc {
        let mut child = Command::new(bin())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn onem2m-mef");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        let psk_addr = extra.contains(&"--psk-listen").then(|| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix("psk listening on ")
                .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
                .parse()
                .unwrap()
        });
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            let _ = out.read_to_string(&mut sink);
        });
        let ca_pem = std::fs::read(dir.join("mef-ca.pem")).unwrap();
        let ca_der = pem::parse(ca_pem).unwrap().into_contents();
        // The host name of the server certificate clients connect to: the first --hostname.
        let host = extra
            .iter()
            .position(|a| *a == "--hostname")
            .map_or("localhost", |i| extra[i + 1])
            .to_string();
        MefProc {
            child,
            host,
            addr,
            psk_addr,
            dir: dir.to_path_buf(),
            ca_der,
        }
    }

    pub fn url(&self, op: &str) -> String {
        format!(
            "https://{}:{}/.well-known/est/{op}",
            self.host,
            self.addr.port()
        )
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MefProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with arguments (a subcommand); returns (success, stdout, stderr).
pub fn run_cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `command` to completion: whether it succeeded, and its stdout then its stderr (for
/// assertion messages). Fails (does not skip) when the program is missing: the suites that run
/// one require it (scripts/test.sh installs it).
pub fn run_text(command: &mut Command) -> (bool, String) {
    let out = command.output().unwrap_or_else(|e| {
        panic!(
            "{:?} runs (scripts/test.sh installs it): {e}",
            command.get_program()
        )
    });
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs `onem2m-mef COMMAND... --data-dir DIR ARGS...`, a subcommand on a data directory;
/// returns (success, stdout, stderr).
pub fn run_cli_on(
    data_dir: impl AsRef<Path>,
    command: &[&str],
    args: &[&str],
) -> (bool, String, String) {
    let dir = data_dir.as_ref().to_str().expect("a UTF-8 data directory");
    let all: Vec<&str> = command
        .iter()
        .copied()
        .chain(["--data-dir", dir])
        .chain(args.iter().copied())
        .collect();
    run_cli(&all)
}

/// `ca retire-old` on `data_dir` (with `args`) succeeds and removes what the rollover left: the
/// old CA certificate, the two link certificates and `old_key`, where the old CA key was
/// (`mef-ca-old.key`, or `mef-ca-old.uri` for a key in a token).
pub fn retire_old(data_dir: &Path, args: &[&str], old_key: &str) {
    let (ok, out, err) = run_cli_on(data_dir, &["ca", "retire-old"], args);
    assert!(ok, "{out}{err}");
    for f in [
        "mef-ca-old.pem",
        old_key,
        "mef-ca-newwithold.pem",
        "mef-ca-oldwithnew.pem",
    ] {
        assert!(!data_dir.join(f).exists(), "{f} removed");
    }
}

/// A ureq agent trusting only the MEF CA, with an optional client certificate.
pub fn agent(ca_der: &[u8], creds: Option<&ClientCreds>) -> ureq::Agent {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
    let mut tls =
        TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&[
                Certificate::from_der(ca_der).to_owned()
            ]));
    if let Some(c) = creds {
        tls = tls.client_cert(Some(ClientCert::new_with_certs(
            &[Certificate::from_der(&c.cert_der).to_owned()],
            PrivateKey::from_pem(c.key.serialize_pem().as_bytes()).unwrap(),
        )));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent()
}

/// A response, flattened.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Decodes a certs-only body.
    pub fn certs(&self) -> Vec<Vec<u8>> {
        assert_eq!(self.status, 200, "{}", self.text());
        certs_only::decode(&base64body::decode(&self.body).unwrap()).unwrap()
    }
    /// What a /csrattrs response handed out ([`Attrs::decode`]); asserts a 200.
    pub fn attrs(&self) -> Attrs {
        assert_eq!(self.status, 200, "{}", self.text());
        Attrs::decode(&self.body)
    }
    /// Asserts an error status with a text/plain body mentioning `needle`.
    pub fn assert_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert!(
            self.header("content-type")
                .unwrap_or("")
                .starts_with("text/plain"),
            "{:?}",
            self.headers
        );
        assert!(
            self.text().to_lowercase().contains(&needle.to_lowercase()),
            "expected {needle:?} in {:?}",
            self.text()
        );
        assert!(self.header("www-authenticate").is_none());
    }
}

/// One HTTP request over TLS-PSK (`openssl` crate client, TLS 1.2 and 1.3); Err when the
/// handshake fails.
pub fn psk_request(port: u16, kpm_id: &str, kpm_hex: &str, request: &[u8]) -> Result<Resp, String> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let key = onem2m_mef::psk::decode_hex(kpm_hex).unwrap();
    let id = kpm_id.to_owned();
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_cipher_list("PSK").unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_psk_client_callback(move |_, _, id_out, psk_out| {
        id_out[..id.len()].copy_from_slice(id.as_bytes());
        id_out[id.len()] = 0;
        psk_out[..key.len()].copy_from_slice(&key);
        Ok(key.len())
    });
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut tls = b
        .build()
        .configure()
        .unwrap()
        .verify_hostname(false)
        .connect("localhost", tcp)
        .map_err(|e| e.to_string())?;
    tls.write_all(request).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no response head")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Ok(Resp {
        status: head[9..12].parse().unwrap(),
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

fn flatten(r: ureq::http::Response<ureq::Body>) -> Resp {
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = r.into_body().read_to_vec().unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

pub fn get(agent: &ureq::Agent, url: &str) -> Result<Resp, ureq::Error> {
    agent.get(url).call().map(flatten)
}

pub fn post(
    agent: &ureq::Agent,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Resp, ureq::Error> {
    let mut req = agent.post(url);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    req.send(body).map(flatten)
}

/// POSTs a CSR the usual way (application/pkcs10, one-line base64).
pub fn post_csr(agent: &ureq::Agent, url: &str, csr_der: &[u8]) -> Resp {
    post(
        agent,
        url,
        Some("application/pkcs10"),
        csr_b64(csr_der).as_bytes(),
    )
    .unwrap()
}

/// What /csrattrs answered: the challengePassword and the requested subjectAltName.
pub struct Attrs {
    pub password: String,
    pub requirements: csrattrs::CsrRequirements,
}

impl Attrs {
    /// Decodes a /csrattrs body (base64 of the DER); panics unless it hands out a
    /// challengePassword value.
    pub fn decode(body: &[u8]) -> Attrs {
        let items = csrattrs::decode(&base64body::decode(body).unwrap()).unwrap();
        let requirements = csrattrs::CsrRequirements::from_items(&items).unwrap();
        let password = match &requirements.challenge_password {
            csrattrs::ChallengePassword::Value(v) => v.to_string(),
            other => panic!("no challengePassword value: {other:?}"),
        };
        Attrs {
            password,
            requirements,
        }
    }
}

pub fn fetch_attrs(agent: &ureq::Agent, mef: &MefProc) -> Attrs {
    let r = get(agent, &mef.url("csrattrs")).unwrap();
    let attrs = r.attrs();
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/csrattrs"));
    attrs
}

pub fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

pub fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().unwrap())
}

pub fn csr_b64(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// Registers a third-party client certificate with the CLI (`identity add`).
pub fn register(mef_dir: &Path, creds: &ClientCreds, subject_type: &str, subject_id: &str) {
    let certs = mef_dir.join(format!("client-{}.pem", &creds.fingerprint()[..16]));
    register_with(mef_dir, None, &certs, creds, subject_type, subject_id);
}

/// `identity add` of `creds`' certificate, written to `cert_file` first, with `--database URL`
/// when given.
pub fn register_with(
    mef_dir: &Path,
    database: Option<&str>,
    cert_file: &Path,
    creds: &ClientCreds,
    subject_type: &str,
    subject_id: &str,
) {
    std::fs::write(cert_file, creds.cert_pem())
        .unwrap_or_else(|e| panic!("writing {}: {e}", cert_file.display()));
    let mut args = vec![
        "--client-cert",
        cert_file.to_str().unwrap(),
        "--subject-type",
        subject_type,
        "--subject-id",
        subject_id,
    ];
    if let Some(url) = database {
        args.extend(["--database", url]);
    }
    let (ok, out, err) = run_cli_on(mef_dir, &["identity", "add"], &args);
    assert!(ok, "identity add failed: {out} {err}");
}

/// The arguments of `psk add` for data directory `d`: the KpmID, its key (`key_flag` is
/// `--kpm-hex` or `--kpm-file`) and the identity.
pub fn psk_add_args<'a>(
    d: &'a str,
    kpm_id: &'a str,
    key_flag: &'a str,
    key: &'a str,
    subject_type: &'a str,
    subject_id: &'a str,
) -> [&'a str; 12] {
    [
        "psk",
        "add",
        "--data-dir",
        d,
        "--kpm-id",
        kpm_id,
        key_flag,
        key,
        "--subject-type",
        subject_type,
        "--subject-id",
        subject_id,
    ]
}

/// The whole initial procedure: csrattrs, CSR with the password and SAN, simpleenroll.
/// Returns the new credentials.
pub fn enroll(agent: &ureq::Agent, mef: &MefProc, san: SanType) -> ClientCreds {
    enroll_at(agent, mef, "simpleenroll", san)
}

/// [`enroll`] through the operation `op` (`simpleenroll`, `simplereenroll`).
pub fn enroll_at(agent: &ureq::Agent, mef: &MefProc, op: &str, san: SanType) -> ClientCreds {
    let attrs = fetch_attrs(agent, mef);
    let key = KeyPair::generate().unwrap();
    let csr = make_csr(&key, &[san], Some(&attrs.password), None);
    let r = post_csr(agent, &mef.url(op), &csr);
    let certs = r.certs();
    assert_eq!(certs.len(), 1);
    ClientCreds {
        cert_der: certs[0].clone(),
        key,
    }
}

/// Raw HTTPS over one TLS connection: sends each request in turn and reads each response.
/// Fails if the server closes the connection early (so it proves keep-alive).
pub fn raw_exchange(
    ca_der: &[u8],
    creds: Option<&ClientCreds>,
    port: u16,
    requests: &[Vec<u8>],
) -> Vec<Resp> {
    raw_exchange_versions(ca_der, creds, port, requests, rustls::DEFAULT_VERSIONS)
}

/// [`raw_exchange`] restricted to the given TLS versions.
pub fn raw_exchange_versions(
    ca_der: &[u8],
    creds: Option<&ClientCreds>,
    port: u16,
    requests: &[Vec<u8>],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Vec<Resp> {
    let chain = creds.map(|c| vec![c.cert_der.clone()]);
    let client = creds
        .zip(chain.as_deref())
        .map(|(c, chain)| (chain, &c.key));
    let mut conn = RawConn::open_versions(ca_der, client, port, versions).unwrap();
    requests
        .iter()
        .map(|req| {
            let r = conn
                .request(req)
                .expect("connection closed before a full response");
            assert!(r.header("content-length").is_some(), "no Content-Length");
            r
        })
        .collect()
}

/// One TLS connection to the MEF kept open across requests (keep-alive), with an optional
/// client certificate chain; errors (a refused handshake, a closed connection) are returned.
pub struct RawConn {
    tls: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    buf: Vec<u8>,
}

impl RawConn {
    /// Connects and completes the handshake.
    pub fn open(
        ca_der: &[u8],
        client: Option<(&[Vec<u8>], &KeyPair)>,
        port: u16,
    ) -> std::io::Result<RawConn> {
        RawConn::open_versions(ca_der, client, port, rustls::DEFAULT_VERSIONS)
    }

    /// [`RawConn::open`] restricted to the given TLS versions.
    pub fn open_versions(
        ca_der: &[u8],
        client: Option<(&[Vec<u8>], &KeyPair)>,
        port: u16,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> std::io::Result<RawConn> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_der.to_vec().into()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let config = match client {
            Some((chain, key)) => builder
                .with_client_auth_cert(
                    chain.iter().map(|c| c.clone().into()).collect(),
                    rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let conn = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap())
            .unwrap();
        let sock = std::net::TcpStream::connect(("127.0.0.1", port))?;
        sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(RawConn {
            tls,
            buf: Vec::new(),
        })
    }

    /// Sends raw request bytes and reads one response.
    pub fn request(&mut self, raw: &[u8]) -> std::io::Result<Resp> {
        self.tls.write_all(raw)?;
        self.tls.flush()?;
        loop {
            let mut hdrs = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut hdrs);
            if let Ok(httparse::Status::Complete(n)) = resp.parse(&self.buf) {
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map(|(_, v)| v.parse().unwrap())
                    .unwrap_or(0);
                if self.buf.len() >= n + len {
                    let body = self.buf[n..n + len].to_vec();
                    let status = resp.code.unwrap();
                    self.buf.drain(..n + len);
                    return Ok(Resp {
                        status,
                        headers,
                        body,
                    });
                }
            }
            let mut chunk = [0u8; 4096];
            let k = self.tls.read(&mut chunk)?;
            if k == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..k]);
        }
    }
}

/// A GET request for an EST operation (keep-alive).
pub fn get_request(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// A POST of a CSR (application/pkcs10, base64) with extra header lines (each ending in CRLF);
/// `length` replaces the Content-Length line when given.
pub fn csr_request(path: &str, csr_der: &[u8], extra: &str, length: Option<&str>) -> Vec<u8> {
    let body = csr_b64(csr_der);
    let length = length
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Content-Length: {}\r\n", body.len()));
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/pkcs10\r\n\
         {length}{extra}\r\n{body}"
    )
    .into_bytes()
}
