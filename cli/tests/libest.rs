//! Interop with Cisco libest's `estserver` (a widely deployed EST server nobody here wrote), on
//! 127.0.0.1, through the library and through the `onem2m-est` CLI: `/cacerts`, `/csrattrs`,
//! Initial Certificate Provisioning authenticated with a third-party client certificate from
//! libest's "external" CA (`extCA`), re-provisioning renew and rekey with the provisioned
//! certificate, and `/serverkeygen`. Each certificate obtained is checked with `openssl verify`
//! against libest's EST CA, and its public key against the private key written next to it.
//!
//! The server runs in the mode of the oneM2M procedure: HTTP authentication off (`-n`), TLS
//! client certificates required, from a writable copy of libest's `example/server` CA folder
//! (`createCA.sh`) switched to `copy_extensions = copyall` (a MEF CA honours the requested
//! identity). It is stopped when the test ends.
//!
//! libest comes from `scripts/libest.sh`, which builds it once from the source in
//! `../shared/third-party/libest` (or `$LIBEST_SRC`) into `target/libest/<hash>`. The test runs
//! the script itself (a cached build returns at once); `$LIBEST_DIR` names a ready build instead.
//! When libest can be neither found nor built, the test FAILS and says how to get it.
//!
//! # libest quirks met, and what we did about each
//!
//! 1. `/csrattrs`: the base64 body is followed by a NUL byte that Content-Length counts (a C
//!    string's terminator), and no line break. The client refused it ("incomplete padding (57
//!    characters after removing white space)"). Fixed: `proto::base64body::decode` skips NULs
//!    and white space after the base64 text (RFC 8951 section 3); a NUL inside the text is still
//!    an error. Unit tests in `proto/src/base64body.rs`, `tests/transport.rs`
//!    `every_body_with_a_trailing_nul_is_decoded`.
//! 2. `/cacerts` answers `Content-Type: application/pkcs7-mime` without `smime-type`. Already
//!    tolerated (RFC 7030 4.1.3 readers accept it); nothing changed.
//! 3. Request bodies: libest's base64 reader (OpenSSL's BIO_f_base64) refuses a CSR whose base64
//!    text does not end with a line break: "400 Invalid or corrupted pkcs10 request". The client
//!    always terminates its base64 with CRLF (`base64body::encode`), so nothing changed; this test
//!    pins it (every enrolment below goes through libest's reader).
//! 4. Every response carries a CGI-style `Status: 200 OK` header line. Ignored, nothing changed.
//! 5. The server certificate made by `createCA.sh` has subject CN=127.0.0.1, subjectAltName
//!    DNS:localhost, DNS:ip6-localhost, IP:127.0.0.1, IP:::1 and no extendedKeyUsage (RFC 5280
//!    4.2.1.12: any purpose). It satisfies RFC 7030 3.6.1 by host name when the client connects
//!    to `localhost` (what this test does) or `127.0.0.1`; no check was relaxed.
//! 6. `/serverkeygen`: estserver's key generation callback always makes an RSA-4096 key whatever
//!    the CSR asks for (there is no option for it; `estserver --help` has none), and libest
//!    encodes every server-generated key with OpenSSL's `i2d_PrivateKey`, the "traditional"
//!    form (PKCS #1 RSAPrivateKey for RSA, SEC1 ECPrivateKey for EC), under an
//!    `application/pkcs8` part header, where RFC 7030 4.4.2 wants a PKCS #8 PrivateKeyInfo. The
//!    client now reads the traditional forms too (`keys::SoftwareKey::from_server_key_der`): a
//!    SEC1 EC key (what a libest-based MEF with a P-256 callback sends) is wrapped into PKCS #8
//!    and used; an RSA key is refused with a clear error, because TS-0003 10.1.1.1 requires
//!    id-ecPublicKey/secp256r1 and the ring provider has no RSA keys. So against stock
//!    estserver, `/serverkeygen` ends in a server-side error with nothing installed (this test
//!    asserts that), and the response itself is checked below with `openssl verify` and the
//!    key/certificate match through the transport layer.
//! 7. The stock `estExampleCA.cnf` has `copy_extensions = none`: the certificate does not carry
//!    the requested subjectAltName, and the client refuses it (the identity is missing) with
//!    nothing installed. The test runs against a copy set to `copyall`, and checks the refusal
//!    with `none` once.
//! 8. `/csrattrs` lists bare OIDs: macAddress, emailAddress, secp384r1 and sha384 (not
//!    ecdsa-with-SHA384). The client does not act on OIDs it does not know, and estserver does
//!    not enforce them without `--enforce-csr`; nothing changed.
//! 9. libest logs `SSL_read error` / `SSL_shutdown failed` when the client closes a connection
//!    after its last response; harmless, nothing changed.
//! 10. After a 4xx answer libest closes the connection (`Connection: close`). The client opens a
//!     new one when it needs to; nothing changed.
//! 11. With `-n`, an enrolment over TLS without a client certificate gets `401 Unauthorized`
//!     with no `WWW-Authenticate` header (there is no HTTP scheme to offer). The client already
//!     reports it as HTTP authentication requested (class Server) and never sends credentials
//!     (TS-0003 8.3.6.2.1); the test checks it, nothing changed.
//!
//! 12. `-m SECONDS` (simulated manual enrolment: 202, then the certificate on the next request)
//!     refuses less than 60 s ("Minimum retry-after period is 60 seconds") and then keeps its
//!     default, `Retry-After: 300`; it also closes the connection after the 202. Tried by hand,
//!     not in this suite (a CI run would wait minutes): the client waited its `max_delay` of
//!     120 s, resent, and got the certificate on a second connection. Resending before
//!     Retry-After is the RFC 7030 4.2.3 point of issue #10 handled on another branch.
//!
//! Not exercised here: estserver's `-t` (PoP through tls-unique, which needs TLS 1.2 and a
//! challengePassword carrying the tls-unique value).

use onem2m_est::client::Channel;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use onem2m_est::client::{Config, InitialAuth, KeySource, MefClient, Reprovision};
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::store::{read_pem_certs, read_pem_key, CredentialStore, FileStore};
use onem2m_est::tls::{client_config, ClientIdentity};
use onem2m_est::transport::{EstConnection, TransportConfig};
use onem2m_est::uri::EstUri;
use onem2m_est::{Error, ErrorClass};
use onem2m_est_testkit::openssl;
use onem2m_est_testkit::process::{self, assert_code, assert_stderr, assert_stdout, text};
use onem2m_est_testkit::{require, require_tool};
use tempfile::TempDir;

const CSE_ID: &str = "cse01.sp.example.com";

// --- libest itself --------------------------------------------------------------------------

/// Whether libest can be had: a ready build (LIBEST_DIR) or its source (LIBEST_SRC, default
/// ../shared/third-party/libest beside the repository, which scripts/libest.sh builds), and
/// the openssl CLI the checks use. Missing, the tests fail with ONEM2M_REQUIRE_TOOLS=1
/// (scripts/test.sh) and are skipped loudly without it (the test kit's `require`).
fn libest_available() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let source = std::env::var_os("LIBEST_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/third-party/libest"));
    require(
        std::env::var_os("LIBEST_DIR").is_some() || source.is_dir(),
        &format!(
            "libest (a build in LIBEST_DIR, or its source in {}; scripts/libest.sh)",
            source.display()
        ),
    ) && require_tool("openssl", "Debian package openssl")
        && require_tool("bash", "Debian package bash")
}

/// The libest build folder (bin/estserver, example/server), built once per test process.
fn libest() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("LIBEST_DIR") {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("bin/estserver").exists(),
                "LIBEST_DIR={} holds no bin/estserver: unset it or run scripts/libest.sh",
                dir.display()
            );
            return dir;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = Command::new("bash")
            .arg(root.join("scripts/libest.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("bash runs scripts/libest.sh");
        assert_ne!(
            out.status.code(),
            Some(3),
            "the libest source is not where scripts/libest.sh looks (above): this checkout is \
             not beside shared/. Set LIBEST_SRC to the folder holding libest-*.tar.gz and its \
             patches: LIBEST_SRC=/path/to/shared/third-party/libest cargo test -p \
             onem2m-est-cli --test libest"
        );
        assert!(
            out.status.success(),
            "libest could not be built: scripts/libest.sh failed (above). It needs the libest \
             source (default ../shared/third-party/libest beside the repository; set \
             LIBEST_SRC=/path/to/third-party/libest) and its build tools (build-essential \
             autoconf automake libtool pkg-config libssl-dev). Run `LIBEST_SRC=... \
             scripts/libest.sh` by hand to see why, or set LIBEST_DIR to a ready build."
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(
            stdout
                .lines()
                .last()
                .expect("the script prints its folder")
                .trim(),
        )
    })
}

/// A running estserver over its own CA folder; killed on drop.
struct Libest {
    ca: TempDir,
    child: Child,
    port: u16,
}

impl Libest {
    /// [`Libest::start`] when libest can be had ([`libest_available`]); `None` otherwise (the
    /// test returns).
    fn start_if_available(copy_extensions: &str) -> Option<Libest> {
        libest_available().then(|| Libest::start(copy_extensions))
    }

    /// Copies example/server, runs createCA.sh, sets `copy_extensions` and starts estserver
    /// with `-n` (no HTTP authentication: TLS client certificates required) on 127.0.0.1.
    fn start(copy_extensions: &str) -> Libest {
        let ca = TempDir::new().unwrap();
        let status = Command::new("cp")
            .arg("-R")
            .arg(libest().join("example/server/."))
            .arg(ca.path())
            .status()
            .unwrap();
        assert!(status.success(), "copying libest's example/server");
        let mut create = Command::new("bash")
            .arg("./createCA.sh")
            .current_dir(ca.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs createCA.sh");
        // It waits for a key press once. (A script that dies first closes its stdin: the
        // failure is reported below with its output.)
        let _ = create.stdin.take().unwrap().write_all(b"\n\n");
        let out = create.wait_with_output().unwrap();
        assert!(
            out.status.success() && ca.path().join("estCA/cacert.crt").exists(),
            "createCA.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cnf = ca.path().join("estExampleCA.cnf");
        let text = std::fs::read_to_string(&cnf).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("copy_extensions"))
            .expect("estExampleCA.cnf sets copy_extensions")
            .to_string();
        std::fs::write(
            &cnf,
            text.replace(&line, &format!("copy_extensions = {copy_extensions}")),
        )
        .unwrap();

        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(ca.path().join("estserver.log")).unwrap();
        let child = Command::new(libest().join("bin/estserver"))
            .args([
                "-c",
                "estCA/private/estservercertandkey.pem",
                "-k",
                "estCA/private/estservercertandkey.pem",
                "-r",
                "estrealm",
                "-p",
                &port.to_string(),
                "-n",
                "-v",
            ])
            .current_dir(ca.path())
            // runserver.sh's environment; its enrolment runs `openssl ca` in this folder.
            .env("EST_TRUSTED_CERTS", "./trustedcerts.crt")
            .env("EST_CACERTS_RESP", "./estCA/cacert.crt")
            .env("EST_OPENSSL_CACONFIG", "./estExampleCA.cnf")
            // 0002-simple-server-listen-addr.patch: loopback only.
            .env("EST_LISTEN_ADDR", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("estserver starts");
        let mut server = Libest { ca, child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("estserver exited ({status}):\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "estserver did not listen:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn path(&self, name: &str) -> PathBuf {
        self.ca.path().join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("estserver.log")).unwrap_or_default()
    }

    /// By the name its certificate carries (quirk 5): RFC 7030 3.6.1 by host name.
    fn base(&self) -> String {
        format!("https://localhost:{}/.well-known/est", self.port)
    }

    /// libest's EST CA: the explicit trust anchor of the device (RFC 7030 3.6.1).
    fn est_ca(&self) -> PathBuf {
        self.path("estCA/cacert.crt")
    }

    /// A third-party device certificate and its P-256 key, issued by libest's "external" CA
    /// (which estserver accepts as TLS client certificates): `extdevice.crt`, `extdevice.key`.
    fn external_device(&self) -> (PathBuf, PathBuf) {
        let dir = self.ca.path();
        openssl::p256_key_and_csr(dir, "extdevice", "/CN=libest interop device 0001");
        openssl::run_in(
            dir,
            &[
                "ca",
                "-batch",
                "-config",
                "extExampleCA.cnf",
                "-in",
                "extdevice.csr",
                "-out",
                "extdevice.crt",
            ],
        );
        (self.path("extdevice.crt"), self.path("extdevice.key"))
    }
}

impl Drop for Libest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- estserver log ---\n{}", self.log());
        }
    }
}

// --- checks on what was obtained ------------------------------------------------------------

/// `openssl verify` against libest's EST CA, and the private key matches the certificate.
fn check_credentials(server: &Libest, cert: &Path, key: &Path) {
    let dir = server.ca.path();
    let ca = server.est_ca();
    let out = openssl::run_in(
        dir,
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            cert.to_str().unwrap(),
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": OK"),
        "openssl verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let from_cert = openssl::run_in(
        dir,
        &["x509", "-in", cert.to_str().unwrap(), "-noout", "-pubkey"],
    )
    .stdout;
    let from_key = openssl::run_in(dir, &["pkey", "-in", key.to_str().unwrap(), "-pubout"]).stdout;
    assert_eq!(
        String::from_utf8_lossy(&from_cert),
        String::from_utf8_lossy(&from_key),
        "the private key of {} matches the certificate",
        cert.display()
    );
}

/// Checks the credentials in `cred` against the server and that the certificate names the
/// CSE; returns its serial.
fn issued_serial(server: &Libest, dir: &Path, cred: &Path) -> String {
    check_credentials(server, &cred.join("cert.pem"), &cred.join("key.pem"));
    let (san, serial) = san_and_serial(dir, &cred.join("cert.pem"));
    assert!(san.contains(&format!("DNS:{CSE_ID}")), "{san}");
    serial
}

/// Checks the provisioned credentials in `cred` ([`issued_serial`]), then renews and rekeys them
/// with `reprovision(rekey)` and checks each outcome, the same through the library and the CLI:
/// a new certificate from `server` each time, key.pem kept by the renew and replaced by the
/// rekey.
fn check_renew_then_rekey(server: &Libest, cred: &Path, mut reprovision: impl FnMut(bool)) {
    let mut serial = issued_serial(server, server.ca.path(), cred);
    for rekey in [false, true] {
        let key_before = std::fs::read(cred.join("key.pem")).unwrap();
        reprovision(rekey);
        let next = issued_serial(server, server.ca.path(), cred);
        assert_ne!(serial, next, "rekey={rekey}: a new certificate");
        serial = next;
        assert_eq!(
            std::fs::read(cred.join("key.pem")).unwrap() == key_before,
            !rekey,
            "rekey={rekey}: renew keeps the key, rekey replaces it"
        );
    }
}

/// The subjectAltName and serial of a certificate, as openssl prints them.
fn san_and_serial(dir: &Path, cert: &Path) -> (String, String) {
    let text = String::from_utf8(
        openssl::run_in(
            dir,
            &[
                "x509",
                "-in",
                cert.to_str().unwrap(),
                "-noout",
                "-ext",
                "subjectAltName",
                "-serial",
            ],
        )
        .stdout,
    )
    .unwrap();
    let serial = text
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .unwrap()
        .to_string();
    (text, serial)
}

fn client(server: &Libest) -> MefClient {
    let config = Config::new(EstUri::parse(&server.base()).unwrap())
        .identity(SubjectIdentity::new(SubjectType::Cse, CSE_ID).unwrap())
        .transport(
            TransportConfig::default()
                .with_timeouts(
                    Duration::from_secs(10),
                    Duration::from_secs(10),
                    Duration::from_secs(60),
                )
                .unwrap(),
        );
    MefClient::new(config)
}

fn third_party(server: &Libest) -> InitialAuth {
    let (cert, key) = server.external_device();
    InitialAuth::Certificate {
        trust_anchors: read_pem_certs(server.est_ca()).unwrap(),
        client: ClientIdentity {
            chain: read_pem_certs(cert).unwrap(),
            key: Arc::new(read_pem_key(key).unwrap()),
        },
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    ["cert.pem", "key.pem", "trust-anchors.pem"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
        .collect()
}

// --- through the library --------------------------------------------------------------------

#[test]
fn library_against_libest() {
    let Some(server) = Libest::start_if_available("copyall") else {
        return;
    };
    let dir = server.ca.path();
    let client = client(&server);
    let auth = third_party(&server);
    let InitialAuth::Certificate {
        trust_anchors,
        client: device,
    } = &auth
    else {
        unreachable!()
    };

    // /cacerts: libest's EST CA.
    let cacerts = client
        .cacerts(Channel::certificate(trust_anchors, None))
        .unwrap();
    assert_eq!(cacerts, *trust_anchors);
    // /csrattrs: the NUL-terminated body (quirk 1) decodes; nothing we must act on (quirk 8).
    let reqs = client
        .csrattrs(Channel::certificate(trust_anchors, Some(device.clone())))
        .unwrap()
        .expect("libest has CSR attributes");
    assert!(reqs.key.is_none() && reqs.hash.is_none(), "{reqs:?}");
    let items = client
        .csrattrs_items(Channel::certificate(trust_anchors, Some(device.clone())))
        .unwrap()
        .unwrap();
    assert_eq!(items.len(), 4, "{items:?}");

    // Initial Certificate Provisioning with the extCA certificate.
    let cred = dir.join("lib-cred");
    let mut store = FileStore::new(&cred).unwrap();
    let first = client
        .provision(&auth, &mut store, KeySource::Generate)
        .unwrap();
    assert_eq!(
        first.connection.handshakes, 1,
        "cacerts, csrattrs, simpleenroll on one connection"
    );

    // Renew: same key, new certificate, authenticated with the provisioned one. Rekey: a new
    // key and certificate.
    check_renew_then_rekey(&server, &cred, |rekey| {
        let mode = if rekey {
            Reprovision::Rekey
        } else {
            Reprovision::Renew
        };
        client.reprovision(&mut store, mode).unwrap();
    });

    // /serverkeygen (quirk 6): libest's RSA-4096 key is refused (TS-0003 10.1.1.1), class
    // Server, nothing installed.
    let before = files(&cred);
    let err = client
        .reprovision(&mut store, Reprovision::ServerKeygen)
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Server, "{err}");
    let text = err.to_string();
    assert!(text.contains("RSA") && text.contains("10.1.1.1"), "{text}");
    assert_eq!(files(&cred), before, "nothing changed");
    assert!(store.load().unwrap().is_some());

    // The /serverkeygen response itself, through the transport: the key libest generated
    // (PKCS #1 under an application/pkcs8 header) and the certificate it issued for it.
    let current = store.load().unwrap().unwrap();
    let base = EstUri::parse(&server.base()).unwrap();
    let tls = client_config(
        &current.trust_anchors,
        Some(ClientIdentity {
            chain: current.chain.clone(),
            key: current.key.clone(),
        }),
        &base,
    )
    .unwrap();
    let conn = EstConnection::new(&base, tls, &TransportConfig::default()).unwrap();
    let csr = onem2m_est::csr::build_csr(
        current.key.as_ref(),
        Some(&SubjectIdentity::new(SubjectType::Cse, CSE_ID).unwrap()),
        &reqs,
        None,
    )
    .unwrap();
    let generated = conn.server_keygen(&csr.der).unwrap();

    // TLS client certificates are required (quirk 11): without one, libest answers the
    // enrolment with a 401 that names no HTTP authentication scheme; the client sends no
    // credentials and reports it, class Server.
    let anonymous = EstConnection::new(
        &base,
        client_config(&current.trust_anchors, None, &base).unwrap(),
        &TransportConfig::default(),
    )
    .unwrap();
    let err = anonymous.simple_enroll(&csr.der).unwrap_err();
    assert!(
        matches!(err, Error::HttpAuthenticationRequested { .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Server);
    assert_eq!(generated.certificates.len(), 1);
    std::fs::write(
        dir.join("skg.key.der"),
        generated.private_key_pkcs8.as_slice(),
    )
    .unwrap();
    openssl::run_in(
        dir,
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            "skg.key.der",
            "-out",
            "skg.key.pem",
        ],
    );
    let cert_pem = onem2m_est::store::certs_to_pem(&[generated.certificates[0].clone().into()]);
    std::fs::write(dir.join("skg.crt"), cert_pem).unwrap();
    check_credentials(&server, &dir.join("skg.crt"), &dir.join("skg.key.pem"));
    let text = String::from_utf8(
        openssl::run_in(dir, &["pkey", "-in", "skg.key.pem", "-noout", "-text_pub"]).stdout,
    )
    .unwrap();
    assert!(
        text.contains("4096 bit"),
        "libest generates RSA-4096: {text}"
    );
}

/// Quirk 7: with the stock `copy_extensions = none` the certificate lacks the requested
/// identity; the client refuses it before install and nothing is written.
#[test]
fn library_refuses_a_certificate_without_the_identity() {
    let Some(server) = Libest::start_if_available("none") else {
        return;
    };
    let cred = server.path("cred");
    let mut store = FileStore::new(&cred).unwrap();
    let err = client(&server)
        .provision(&third_party(&server), &mut store, KeySource::Generate)
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Server, "{err}");
    assert!(matches!(err, Error::CertificateRejected { .. }), "{err:?}");
    assert!(store.load().unwrap().is_none(), "nothing installed");
}

// --- through the CLI ------------------------------------------------------------------------

fn cli(args: &[&str]) -> Output {
    process::run(env!("CARGO_BIN_EXE_onem2m-est"), args)
}

#[test]
fn cli_against_libest() {
    let Some(server) = Libest::start_if_available("copyall") else {
        return;
    };
    let dir = server.ca.path();
    let base = server.base();
    let ca = server.est_ca();
    let ca = ca.to_str().unwrap();
    let (cert, key) = server.external_device();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    let o = cli(&["cacerts", "--server", &base, "--trust-anchors", ca, "--pem"]);
    assert_code(&o, 0);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        std::fs::read_to_string(ca).unwrap().trim(),
        "/cacerts is libest's EST CA"
    );

    // The bootstrap connection: libest's EST CA as trust anchor, the extCA device certificate.
    let bootstrap = [
        "--server",
        &base,
        "--trust-anchors",
        ca,
        "--tls-cert",
        cert,
        "--tls-key",
        key,
    ];
    let o = cli(&[&["csrattrs"], &bootstrap[..]].concat());
    assert_code(&o, 0);
    assert_stdout(&o, "challengePassword: not requested");
    assert_stdout(&o, "1.3.132.0.34");

    let cred = dir.join("cli-cred");
    let out = cred.to_str().unwrap();
    let identity = [
        "--subject-type",
        "cse",
        "--subject-id",
        CSE_ID,
        "--out",
        out,
    ];
    let o = cli(&[&["provision"], &bootstrap[..], &identity[..]].concat());
    assert_code(&o, 0);
    check_renew_then_rekey(&server, &cred, |rekey| {
        let mut args = vec!["reprovision", "--server", &base, "--out", out];
        args.extend(rekey.then_some("--rekey"));
        let o = cli(&args);
        assert_eq!(o.status.code(), Some(0), "rekey={rekey}: {}", text(&o));
    });

    // Quirk 6: libest's RSA-4096 server-generated key, refused; exit 4, nothing changed.
    let before = files(&cred);
    let o = cli(&[
        "reprovision",
        "--server",
        &base,
        "--out",
        out,
        "--server-keygen",
    ]);
    assert_code(&o, 4);
    assert_stderr(&o, "RSA");
    assert_stderr(&o, "10.1.1.1");
    assert!(!process::stderr(&o).contains("panicked"), "{}", text(&o));
    assert_eq!(files(&cred), before, "nothing changed");
}

/// A checkout that is not beside `shared/` (no LIBEST_SRC): scripts/libest.sh exits 3 and says
/// to set LIBEST_SRC, naming the folder it looked in (the newcomer's first failure, issue #14).
#[test]
fn a_missing_libest_source_says_to_set_libest_src() {
    let tmp = tempfile::tempdir().unwrap();
    // A copy of the script in a folder with no shared/ beside it: its default source is absent.
    std::fs::create_dir(tmp.path().join("scripts")).unwrap();
    let script = tmp.path().join("scripts/libest.sh");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(root.join("scripts/libest.sh"), &script).unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .env_remove("LIBEST_SRC")
        .env("LIBEST_CACHE", tmp.path().join("cache"))
        .output()
        .expect("bash runs scripts/libest.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let expected = tmp
        .path()
        .parent()
        .unwrap()
        .join("shared/third-party/libest");
    assert!(stderr.contains(&expected.display().to_string()), "{stderr}");
    assert!(stderr.contains("set LIBEST_SRC"), "{stderr}");

    // A LIBEST_SRC that names no folder: exit 3, the variable's value named.
    let out = Command::new("bash")
        .arg(&script)
        .env("LIBEST_SRC", tmp.path().join("nope"))
        .env("LIBEST_CACHE", tmp.path().join("cache"))
        .output()
        .expect("bash runs scripts/libest.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
}
