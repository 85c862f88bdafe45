//! Quick start: a reference MEF on loopback, and a MEF Client provisioning through the library.
//!
//! `cargo run --example quickstart [-- DIR]`
//!
//! 1. Makes a "manufacturer" CA and a device certificate it signed: the third-party EST client
//!    certificate of the certificate-based RSPF (TS-0003 8.3.6.2.2 pre-condition B.ii).
//! 2. Starts the reference MEF (`onem2m-mef`) on 127.0.0.1 trusting that manufacturer CA, and
//!    associates the device certificate with a CSE-ID (the MEF's identity registry).
//! 3. Runs Initial Certificate Provisioning, then Certificate Re-Provisioning (rekey), through
//!    `onem2m_est::client::MefClient`, installing into DIR/device (DIR: default a new temporary
//!    directory).
//! 4. Leaves what it made in DIR (`manufacturer-ca.pem`, `device.pem`, `device.key`, the MEF's
//!    data directory `mef/`) and prints the CLI commands that provision again with them and
//!    inspect the result.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use onem2m_est::client::{Config, InitialAuth, KeySource, MefClient, Reprovision};
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::SoftwareKey;
use onem2m_est::store::FileStore;
use onem2m_est::tls::ClientIdentity;
use onem2m_est::uri::EstUri;
use onem2m_mef::{Mef, MefConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use zeroize::Zeroizing;

const CSE_ID: &str = "cse01.sp.example.com";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out: PathBuf = match std::env::args_os().nth(1) {
        Some(dir) => dir.into(),
        None => std::env::temp_dir().join(format!("onem2m-est-quickstart-{}", std::process::id())),
    };
    let mef_dir = out.join("mef");
    let device_dir = out.join("device");

    // 1. The manufacturer's CA and the device's third-party certificate.
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Example manufacturer CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let manufacturer = rcgen::Issuer::new(ca_params, ca_key);
    let device_key = KeyPair::generate()?;
    let mut device_params = CertificateParams::new(Vec::<String>::new())?;
    device_params
        .distinguished_name
        .push(DnType::CommonName, "Example device 0001");
    let device_cert = device_params.signed_by(&device_key, &manufacturer)?;
    // Kept for the CLI commands printed at the end (the key owner-only, as a key file should be).
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("manufacturer-ca.pem"), ca_cert.pem())?;
    std::fs::write(out.join("device.pem"), device_cert.pem())?;
    write_private(
        &out.join("device.key"),
        device_key.serialize_pem().as_bytes(),
    )?;

    // 2. The reference MEF.
    let mut config = MefConfig::new(&mef_dir);
    config.client_trust = vec![ca_cert.der().clone()];
    let mef = Mef::start(config)?;
    mef.add_identity(
        device_cert.der().as_ref(),
        onem2m_mef::SubjectType::Cse,
        CSE_ID,
    )?;
    println!("reference MEF listening on {}", mef.base_uri(None));

    // 3. The MEF Client.
    let client = MefClient::new(
        Config::new(EstUri::parse(&mef.base_uri(None))?)
            .identity(SubjectIdentity::new(SubjectType::Cse, CSE_ID)?),
    );
    let auth = InitialAuth::Certificate {
        trust_anchors: vec![mef.ca_cert_der()],
        client: ClientIdentity {
            chain: vec![device_cert.der().clone()],
            key: Arc::new(SoftwareKey::from_pkcs8_der(&Zeroizing::new(
                device_key.serialize_der(),
            ))?),
        },
    };
    let mut store = FileStore::new(&device_dir)?;

    let started = Instant::now();
    let done = client.provision(&auth, &mut store, KeySource::Generate)?;
    println!(
        "Initial Certificate Provisioning: OK in {:.1} ms, {} TLS handshake(s)",
        started.elapsed().as_secs_f64() * 1e3,
        done.connection.handshakes
    );

    let started = Instant::now();
    let done = client.reprovision(&mut store, Reprovision::Rekey)?;
    println!(
        "Certificate Re-Provisioning (rekey): OK in {:.1} ms, {} TLS handshake(s)",
        started.elapsed().as_secs_f64() * 1e3,
        done.connection.handshakes
    );
    for name in ["cert.pem", "key.pem", "trust-anchors.pem"] {
        println!("installed {}", device_dir.join(name).display());
    }
    mef.shutdown();

    // 4. Where to go from here: the same with the command-line tools.
    let o = out.display();
    println!(
        "\nkept in {o}: manufacturer-ca.pem, device.pem, device.key (the third-party client \
         credentials) and mef/ (the MEF's CA and registry, with the device registered as \
         {CSE_ID}).\n\
         Provision again with the command-line tools:\n\
         \n  cargo build --release -p onem2m-est-cli -p onem2m-mef   # target/release/\
         \n  target/release/onem2m-mef --data-dir {o}/mef --listen 127.0.0.1:8443 \\\
         \n      --client-trust {o}/manufacturer-ca.pem &\
         \n  target/release/onem2m-est provision --server https://localhost:8443/.well-known/est \\\
         \n      --trust-anchors {o}/mef/mef-ca.pem --tls-cert {o}/device.pem \\\
         \n      --tls-key {o}/device.key --out {o}/cli\
         \n  target/release/onem2m-est status --out {o}/cli          # identity, serial, days left\
         \n  target/release/onem2m-est reprovision --server https://localhost:8443/.well-known/est \\\
         \n      --out {o}/cli --rekey\
         \n  openssl x509 -in {o}/cli/cert.pem -noout -text         # the certificate itself"
    );
    Ok(())
}

/// Writes a private key file readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}
