//! Writes the seed corpora of the fuzz targets (`corpus/<target>/`) from real traffic: starts
//! the reference MEF in-process on 127.0.0.1 (manufacturer CA, a registered CSE identity: the
//! test kit's `Manufacturer`, as `tests/provisioning.rs` uses it), runs /cacerts, /csrattrs,
//! /simpleenroll, /serverkeygen and a manual-approval 202 over a plain rustls connection, and saves the response bodies and
//! header values as the targets' framings expect them; plus the OpenSSL fixtures of
//! `proto/tests/data/`. Run from `fuzz/`: `cargo run --example fuzz-seeds`.
//!
//! Enrollment uses the fixed test key `fixtures/device-key.p8`, the key the `validate` target
//! checks certificates against.

use est_fuzz::{frame_header_and_body, frame_records};
use onem2m_est::csr::build_csr;
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{PrivateKey, SoftwareKey};
use onem2m_est::store::certs_to_pem;
use onem2m_est_proto::csrattrs::{self, CsrRequirements};
use onem2m_est_proto::{base64body, certs_only, multipart, oids};
use onem2m_est_testkit::{Manufacturer, CSE_ID};
use onem2m_mef::RunningMef;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seed(target: &str, name: &str, bytes: &[u8]) -> Res<()> {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)?;
    println!("corpus/{target}/{name} ({} bytes)", bytes.len());
    Ok(())
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Seeds `mef_http` with the request `req` in that target's framing: first the byte choosing
/// the read sizes, `sizes`.
fn seed_mef_http(name: &str, sizes: u8, req: &[u8]) -> Res<()> {
    seed("mef_http", name, &[[sizes].as_slice(), req].concat())
}

/// Seeds `media_type` and `base64body` with a base64-bodied response (its Content-Type and
/// its body, both as `name`) and returns the decoded body: what the next target is seeded with.
fn seed_base64_response(name: &str, resp: &Response) -> Res<Vec<u8>> {
    let ct = resp.header("content-type").ok_or("no content type")?;
    seed("media_type", name, ct.as_bytes())?;
    seed("base64body", name, &resp.body)?;
    Ok(base64body::decode(&resp.body)?)
}

/// One EST client: a TLS client identity and the MEF's CA as the only trust anchor.
struct Client {
    tls: Arc<rustls::ClientConfig>,
    addr: std::net::SocketAddr,
}

impl Client {
    fn new(mef: &RunningMef, maker: &Manufacturer) -> Res<Client> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(mef.ca_cert_der())?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![maker.device_cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                maker.device_key.pkcs8_der().ok_or("no PKCS #8")?.to_vec(),
            )),
        )?;
        Ok(Client {
            tls: Arc::new(tls),
            addr: mef.local_addr(),
        })
    }

    /// The raw request bytes (also a `mef_http` seed).
    fn request_bytes(method: &str, op: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
        let mut head = format!(
            "{method} /.well-known/est/{op} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        );
        if let Some(ct) = content_type {
            head.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Transfer-Encoding: base64\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        out
    }

    /// Sends `request` and checks the response status is `status` (a failure names `what`
    /// and shows the body: the MEF's reason).
    fn send_expecting(&self, request: &[u8], status: u16, what: &str) -> Res<Response> {
        let resp = self.send(request)?;
        assert_eq!(
            resp.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        Ok(resp)
    }

    fn send(&self, request: &[u8]) -> Res<Response> {
        let conn =
            rustls::ClientConnection::new(self.tls.clone(), ServerName::try_from("localhost")?)?;
        let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(self.addr)?);
        tls.write_all(request)?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // The MEF closes after `Connection: close` without close_notify at times.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(e.into()),
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no end of response head")?;
        let head = std::str::from_utf8(&raw[..split])?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .ok_or("no status line")?
            .parse()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Ok(Response {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        })
    }
}

fn start_mef(dir: &Path, maker: &Manufacturer, approval_polls: u32) -> Res<RunningMef> {
    let mut config = maker.mef_config(dir);
    config.approval_polls = approval_polls;
    config.retry_after_secs = 2;
    Ok(maker.start_mef(config))
}

/// /csrattrs, then a CSR for `key` built by the client library from them.
fn csr_for(client: &Client, key: &SoftwareKey, tag: &str) -> Res<Vec<u8>> {
    let req = Client::request_bytes("GET", "csrattrs", None, b"");
    let resp = client.send_expecting(&req, 200, "csrattrs")?;
    seed_mef_http(&format!("get-csrattrs-{tag}"), 0, &req)?;
    let der = base64body::decode(&resp.body)?;
    let reqs = CsrRequirements::from_items(&csrattrs::decode(&der)?)?;
    let identity = SubjectIdentity::new(SubjectType::Cse, CSE_ID)?;
    Ok(build_csr(key, Some(&identity), &reqs, None)?.der)
}

fn san_of(cert_der: &[u8]) -> Res<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)?;
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == oids::SUBJECT_ALT_NAME)
        .ok_or("no subjectAltName")?;
    Ok(ext.value.to_vec())
}

fn main() -> Res<()> {
    let data = fuzz_dir().join("../proto/tests/data");
    let dir = tempfile::tempdir()?;
    let maker = Manufacturer::new("acme");
    let mef = start_mef(&dir.path().join("mef"), &maker, 0)?;
    let client = Client::new(&mef, &maker)?;
    let key =
        SoftwareKey::from_pkcs8_der(&std::fs::read(fuzz_dir().join("fixtures/device-key.p8"))?)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();

    // /cacerts (RFC 7030 4.1.3).
    let req = Client::request_bytes("GET", "cacerts", None, b"");
    seed_mef_http("get-cacerts", 7, &req)?;
    let resp = client.send_expecting(&req, 200, "cacerts")?;
    let cacerts_der = seed_base64_response("cacerts", &resp)?;
    seed("certs_only", "mef-cacerts", &cacerts_der)?;
    let ca_certs = certs_only::decode(&cacerts_der)?;
    let ca_refs: Vec<&[u8]> = ca_certs.iter().map(Vec::as_slice).collect();
    let ca_pem = certs_to_pem(
        &ca_certs
            .iter()
            .cloned()
            .map(CertificateDer::from)
            .collect::<Vec<_>>(),
    );
    seed("pem_certs", "mef-ca", ca_pem.as_bytes())?;

    // /csrattrs (RFC 7030 4.5.2).
    let req = Client::request_bytes("GET", "csrattrs", None, b"");
    let resp = client.send_expecting(&req, 200, "csrattrs")?;
    let attrs_der = seed_base64_response("csrattrs", &resp)?;
    seed("csrattrs", "mef-csrattrs", &attrs_der)?;
    for control in [0u8, 8] {
        seed(
            "csr_builder",
            &format!("mef-csrattrs-{control}"),
            &[[control].as_slice(), &attrs_der].concat(),
        )?;
    }
    let reqs = CsrRequirements::from_items(&csrattrs::decode(&attrs_der)?)?;
    if let Some(san) = reqs.subject_alt_name() {
        seed("san", "mef-requested", san)?;
    }

    // /simpleenroll (RFC 7030 4.2) with the client library's CSR for the fixture key.
    let identity = SubjectIdentity::new(SubjectType::Cse, CSE_ID)?;
    let csr = build_csr(&key, Some(&identity), &reqs, None)?.der;
    let csr_b64 = base64body::encode(&csr);
    seed(
        "mef_csr",
        "client-csr",
        &frame_header_and_body("application/pkcs10", csr_b64.as_bytes()),
    )?;
    let req = Client::request_bytes(
        "POST",
        "simpleenroll",
        Some("application/pkcs10"),
        csr_b64.as_bytes(),
    );
    seed_mef_http("post-simpleenroll", 0x40, &req)?;
    let resp = client.send_expecting(&req, 200, "simpleenroll")?;
    let issued_der = seed_base64_response("simpleenroll", &resp)?;
    seed("certs_only", "mef-simpleenroll", &issued_der)?;
    let issued = certs_only::decode(&issued_der)?;
    seed("san", "mef-issued", &san_of(&issued[0])?)?;
    let issued_refs: Vec<&[u8]> = issued.iter().map(Vec::as_slice).collect();
    let mut validate = vec![0b0000_0001u8];
    validate.extend_from_slice(&now.to_be_bytes());
    validate.extend(frame_records(
        &[ca_refs.as_slice(), issued_refs.as_slice()].concat(),
    ));
    seed("validate", "mef-enrolled", &validate)?;
    let mut cacerts_only = vec![0u8];
    cacerts_only.extend_from_slice(&now.to_be_bytes());
    cacerts_only.extend(frame_records(&ca_refs));
    seed("validate", "mef-cacerts", &cacerts_only)?;
    seed(
        "pem_certs",
        "mef-issued-and-ca",
        certs_to_pem(
            &[issued_refs.as_slice(), ca_refs.as_slice()]
                .concat()
                .into_iter()
                .map(|c| CertificateDer::from(c.to_vec()))
                .collect::<Vec<_>>(),
        )
        .as_bytes(),
    )?;

    // /serverkeygen (RFC 7030 4.4.2): multipart/mixed with the key and the certificate.
    let skg_key = SoftwareKey::generate(onem2m_est::keys::KeyAlgorithm::EcdsaP256Sha256)?;
    let csr = csr_for(&client, &skg_key, "skg")?;
    let req = Client::request_bytes(
        "POST",
        "serverkeygen",
        Some("application/pkcs10"),
        base64body::encode(&csr).as_bytes(),
    );
    let resp = client.send_expecting(&req, 200, "serverkeygen")?;
    let ct = resp
        .header("content-type")
        .ok_or("no content type")?
        .to_owned();
    seed("media_type", "serverkeygen", ct.as_bytes())?;
    seed(
        "multipart",
        "mef-serverkeygen",
        &frame_header_and_body(&ct, &resp.body),
    )?;
    let skg = multipart::decode_serverkeygen(&ct, &resp.body)?;
    // The MEF's generated key (a throwaway test key) as DER and as the PEM a store writes.
    seed(
        "pem_key",
        "mef-serverkeygen-pkcs8.der",
        &skg.private_key_pkcs8,
    )?;
    let generated = SoftwareKey::from_pkcs8_der(&skg.private_key_pkcs8)?;
    seed(
        "pem_key",
        "mef-serverkeygen.pem",
        generated.to_pkcs8_pem().as_bytes(),
    )?;
    for alg in [
        onem2m_est::keys::KeyAlgorithm::EcdsaP384Sha384,
        onem2m_est::keys::KeyAlgorithm::Ed25519,
    ] {
        let k = SoftwareKey::generate(alg)?;
        let name: String = alg
            .name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        seed(
            "pem_key",
            &format!("{name}.pem"),
            k.to_pkcs8_pem().as_bytes(),
        )?;
    }
    let _ = key.public_key_info();

    // A 202 with Retry-After (RFC 7030 4.2.3): a second MEF simulating manual approval.
    let mef2 = start_mef(&dir.path().join("mef2"), &maker, 1)?;
    let client2 = Client::new(&mef2, &maker)?;
    let csr = csr_for(&client2, &skg_key, "approval")?;
    let resp = client2.send_expecting(
        &Client::request_bytes(
            "POST",
            "simpleenroll",
            Some("application/pkcs10"),
            base64body::encode(&csr).as_bytes(),
        ),
        202,
        "manual approval",
    )?;
    seed(
        "retry_after",
        "mef-202",
        resp.header("retry-after")
            .ok_or("no Retry-After")?
            .as_bytes(),
    )?;
    seed(
        "retry_after",
        "imf-fixdate",
        b"Sun, 06 Nov 1994 08:49:37 GMT",
    )?;
    seed("retry_after", "rfc850", b"Sunday, 06-Nov-94 08:49:37 GMT")?;
    seed("retry_after", "asctime", b"Sun Nov  6 08:49:37 1994")?;
    mef2.shutdown();
    mef.shutdown();

    // The OpenSSL fixtures (proto/tests/data/README.md).
    let p7b = std::fs::read(data.join("certs-only-openssl.p7b"))?;
    seed("certs_only", "openssl.p7b", &p7b)?;
    seed(
        "base64body",
        "openssl-p7b-wrapped",
        {
            let b64 = base64body::encode(&p7b);
            // Line-wrapped at 64 like `openssl base64` (RFC 8951 3.1 tolerance).
            let wrapped: Vec<u8> = b64
                .trim_end()
                .as_bytes()
                .chunks(64)
                .flat_map(|c| [c, b"\n"].concat())
                .collect();
            wrapped
        }
        .as_slice(),
    )?;
    let ca_der = std::fs::read(data.join("ca.der"))?;
    let ee_der = std::fs::read(data.join("ee.der"))?;
    seed("san", "openssl-ee", &san_of(&ee_der)?)?;
    let pem = certs_to_pem(&[
        CertificateDer::from(ee_der.clone()),
        CertificateDer::from(ca_der.clone()),
    ]);
    seed("pem_certs", "openssl-ee-ca", pem.as_bytes())?;
    let mut v = vec![0b0000_0101u8];
    v.extend_from_slice(&now.to_be_bytes());
    v.extend(frame_records(&[&ca_der, &ee_der]));
    seed("validate", "openssl-ee-ca", &v)?;
    Ok(())
}
