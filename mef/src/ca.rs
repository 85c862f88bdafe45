//! The MEF CA and the MEF's TLS server certificate: created on first start in the data
//! directory, reused afterwards. Certificates follow TS-0003 10.1.1.1/10.1.1.3 (P-256,
//! ecdsa-with-SHA256).

use crate::identity::{fingerprint, hex, Identity};
use crate::store::IssuedCert;
use crate::{MefError, ServerEku};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// CA certificate (PEM) a client is given as its explicit trust anchor.
pub const CA_CERT_FILE: &str = "mef-ca.pem";
/// CA private key (PKCS #8 PEM, mode 0600).
pub const CA_KEY_FILE: &str = "mef-ca.key";
/// TLS server certificate (PEM).
pub const SERVER_CERT_FILE: &str = "mef-server.pem";
/// TLS server private key (PKCS #8 PEM, mode 0600).
pub const SERVER_KEY_FILE: &str = "mef-server.key";
/// What the server certificate was made for (host names and EKU), to re-issue it on change.
pub const SERVER_PROFILE_FILE: &str = "mef-server.profile";

const CA_LIFETIME_DAYS: i64 = 3650;
const SERVER_LIFETIME_DAYS: i64 = 825;

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> MefError {
    move |e| MefError::Io { context, source: e }
}

fn rcgen_err(context: &'static str) -> impl FnOnce(rcgen::Error) -> MefError {
    move |e| MefError::Crypto(format!("{context}: {e}"))
}

/// Writes a file atomically (temporary file + rename) with the given Unix mode.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), MefError> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts
            .open(&tmp)
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        f.write_all(contents)
            .and_then(|_| f.sync_all())
            .map_err(io_err(format!("writing {}", tmp.display())))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err(format!("renaming to {}", path.display())))
}

fn read_text(path: &Path) -> Result<Zeroizing<String>, MefError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(io_err(format!("reading {}", path.display())))
}

fn pem_cert_der(text: &str, path: &Path) -> Result<CertificateDer<'static>, MefError> {
    let p = pem::parse(text)
        .map_err(|e| MefError::Config(format!("{}: not a PEM certificate: {e}", path.display())))?;
    Ok(CertificateDer::from(p.into_contents()))
}

/// A random positive serial number of 16 bytes (RFC 5280 4.1.2.2: positive, <= 20 octets).
fn random_serial() -> Result<Vec<u8>, MefError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| MefError::Crypto("random number generator failed".into()))?;
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x40; // no leading zero octet: keeps the hex form canonical
    Ok(bytes.to_vec())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
}

/// The MEF CA: its certificate and signing key.
pub struct MefCa {
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, CaKey>,
    cert_path: PathBuf,
}

/// The CA's signing key: the software key of `mef-ca.key`, or a key in a PKCS #11 token signing
/// through the client library's `PrivateKey` (CKM_ECDSA, DER signatures).
pub(crate) enum CaKey {
    Software(Box<KeyPair>),
    Token {
        key: std::sync::Arc<dyn onem2m_est::keys::PrivateKey>,
        /// The subjectPublicKey bits (the uncompressed point), what rcgen's `der_bytes` is.
        point: Vec<u8>,
    },
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::Software(k) => k.der_bytes(),
            CaKey::Token { point, .. } => point,
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            CaKey::Software(k) => k.algorithm(),
            // Token keys are P-256 only (the library refuses others): TS-0003 10.1.1.1.
            CaKey::Token { .. } => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::Software(k) => k.sign(msg),
            CaKey::Token { key, .. } => key.sign(msg).map_err(|e| {
                log::error!("CA key in the token: {e}");
                rcgen::Error::RemoteKeyError
            }),
        }
    }
}

/// Opens the CA key a [`CaKeyInToken`] names.
fn token_ca_key(spec: &crate::CaKeyInToken) -> Result<CaKey, MefError> {
    use onem2m_est::pkcs11::{open_key, PinSource, Pkcs11Uri};
    use x509_parser::prelude::FromDer;
    let config = |what: String| MefError::Config(format!("CA key {}: {what}", spec.uri));
    let uri = Pkcs11Uri::parse(&spec.uri).map_err(|e| config(e.to_string()))?;
    let pin = match (&spec.pin_file, &spec.pin_env) {
        (Some(f), _) => PinSource::File(f.clone()),
        (None, Some(v)) => PinSource::Env(v.clone()),
        (None, None) => return Err(config("no PIN file or PIN variable".into())),
    };
    let key = open_key(&spec.module, &uri, &pin).map_err(|e| config(e.to_string()))?;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(key.public_key_info())
        .map_err(|e| config(format!("public key: {e}")))?;
    let point = spki.subject_public_key.data.to_vec();
    Ok(CaKey::Token { key, point })
}

impl MefCa {
    /// Loads the CA from `data_dir`, creating it on first start. With `in_token`, the CA key is
    /// that token key: no `mef-ca.key` is read or written, and an existing `mef-ca.pem` must
    /// hold the token key's public key.
    pub fn load_or_create(
        data_dir: &Path,
        in_token: Option<&crate::CaKeyInToken>,
    ) -> Result<MefCa, MefError> {
        std::fs::create_dir_all(data_dir).map_err(io_err(format!(
            "creating data directory {}",
            data_dir.display()
        )))?;
        let cert_path = data_dir.join(CA_CERT_FILE);
        let key_path = data_dir.join(CA_KEY_FILE);
        if let Some(spec) = in_token {
            let key = token_ca_key(spec)?;
            if !cert_path.exists() {
                let cert = ca_params()?
                    .self_signed(&key)
                    .map_err(rcgen_err("signing CA certificate"))?;
                write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
            }
            let cert_der = pem_cert_der(&read_text(&cert_path)?, &cert_path)?;
            let (_, cert) = x509_parser::parse_x509_certificate(&cert_der)
                .map_err(|e| MefError::Config(format!("{}: {e}", cert_path.display())))?;
            if cert.public_key().subject_public_key.data.as_ref() != key.der_bytes() {
                return Err(MefError::Config(format!(
                    "{}: made with another key than {} (move it away to make a new CA)",
                    cert_path.display(),
                    spec.uri
                )));
            }
            let issuer = Issuer::from_ca_cert_der(&cert_der, key)
                .map_err(rcgen_err("loading CA certificate"))?;
            return Ok(MefCa {
                cert_der,
                issuer,
                cert_path,
            });
        }
        if !cert_path.exists() || !key_path.exists() {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(rcgen_err("generating CA key"))?;
            let cert = ca_params()?
                .self_signed(&key)
                .map_err(rcgen_err("signing CA certificate"))?;
            // Key first: a certificate without its key would be useless on the next start.
            write_file(
                &key_path,
                Zeroizing::new(key.serialize_pem()).as_bytes(),
                0o600,
            )?;
            write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
        }
        let key_pem = read_text(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(rcgen_err("loading CA key"))?;
        let cert_pem = read_text(&cert_path)?;
        let cert_der = pem_cert_der(&cert_pem, &cert_path)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, CaKey::Software(Box::new(key)))
            .map_err(rcgen_err("loading CA certificate"))?;
        Ok(MefCa {
            cert_der,
            issuer,
            cert_path,
        })
    }

    /// The CA certificate DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Path of the CA certificate PEM file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Loads the TLS server certificate, (re-)issuing it when missing or when the host names or
    /// EKU choice changed. Returns the certificate DER and its PKCS #8 key DER.
    pub fn server_cert(
        &self,
        data_dir: &Path,
        hostnames: &[String],
        eku: ServerEku,
    ) -> Result<(CertificateDer<'static>, Zeroizing<Vec<u8>>), MefError> {
        let cert_path = data_dir.join(SERVER_CERT_FILE);
        let key_path = data_dir.join(SERVER_KEY_FILE);
        let profile_path = data_dir.join(SERVER_PROFILE_FILE);
        let profile = format!("eku={}\nhosts={}\n", eku.as_str(), hostnames.join(","));
        let current = std::fs::read_to_string(&profile_path).unwrap_or_default();
        if current != profile || !cert_path.exists() || !key_path.exists() {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(rcgen_err("generating server key"))?;
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(
                DnType::CommonName,
                hostnames.first().map(String::as_str).unwrap_or("localhost"),
            );
            params.distinguished_name = dn;
            params.subject_alt_names = hostnames
                .iter()
                .map(|h| match h.parse::<std::net::IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => h
                        .as_str()
                        .try_into()
                        .map(SanType::DnsName)
                        .map_err(|e| MefError::Config(format!("host name {h:?}: {e}"))),
                })
                .collect::<Result<_, _>>()?;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = match eku {
                ServerEku::ServerAuth => vec![ExtendedKeyUsagePurpose::ServerAuth],
                // RFC 7030 3.6.1: id-kp-cmcRA authorises the EST server as an RA.
                ServerEku::CmcRa => vec![ExtendedKeyUsagePurpose::Other(CMC_RA.to_vec())],
                ServerEku::Both => vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::Other(CMC_RA.to_vec()),
                ],
            };
            params.use_authority_key_identifier_extension = true;
            params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
            let nb = now() - time::Duration::minutes(5);
            params.not_before = nb;
            params.not_after = nb + time::Duration::days(SERVER_LIFETIME_DAYS);
            let cert = params
                .signed_by(&key, &self.issuer)
                .map_err(rcgen_err("signing server certificate"))?;
            write_file(
                &key_path,
                Zeroizing::new(key.serialize_pem()).as_bytes(),
                0o600,
            )?;
            write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
            write_file(&profile_path, profile.as_bytes(), 0o644)?;
        }
        let key_pem = read_text(&key_path)?;
        let key = pem::parse(key_pem.as_bytes())
            .map_err(|e| MefError::Config(format!("{}: not a PEM key: {e}", key_path.display())))?;
        let key_der = Zeroizing::new(key.contents().to_vec());
        let cert_der = pem_cert_der(&read_text(&cert_path)?, &cert_path)?;
        Ok((cert_der, key_der))
    }

    /// Issues an end-entity certificate for `identity` over `public_key` (TS-0003 10.1.1.1,
    /// 10.1.1.3 and the subject type profiles 10.1.1.5/7/8): keyUsage digitalSignature
    /// (critical), extKeyUsage clientAuth, the identity as the only subjectAltName, CN = the
    /// identity when it fits (ub-common-name 64), a random positive serial, an
    /// authorityKeyIdentifier. Returns the DER and the record to store.
    pub fn issue(
        &self,
        identity: &Identity,
        public_key: &impl PublicKeyData,
        lifetime: Duration,
    ) -> Result<(CertificateDer<'static>, IssuedCert), MefError> {
        let serial = random_serial()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if identity.subject_id().len() <= 64 {
            dn.push(DnType::CommonName, identity.subject_id());
        }
        params.distinguished_name = dn;
        let ia5 = identity
            .subject_id()
            .try_into()
            .map_err(|e| MefError::InvalidIdentity(format!("{identity}: {e}")))?;
        params.subject_alt_names = vec![match identity.general_name() {
            onem2m_est_proto::san::GeneralName::Dns(_) => SanType::DnsName(ia5),
            _ => SanType::URI(ia5),
        }];
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        // Backdated a minute against small clock differences between MEF and client.
        let nb = now() - time::Duration::minutes(1);
        let lifetime = time::Duration::try_from(lifetime)
            .map_err(|_| MefError::Config("certificate lifetime out of range".into()))?;
        params.not_before = nb;
        params.not_after = nb + lifetime;
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(rcgen_err("signing certificate"))?;
        let der = cert.der().clone();
        let record = IssuedCert {
            serial: hex(&serial),
            identity: identity.clone(),
            fingerprint: fingerprint(&der),
            not_before: params.not_before.unix_timestamp(),
            not_after: params.not_after.unix_timestamp(),
            revoked: false,
            issued_at: crate::store::now_secs(),
        };
        Ok((der, record))
    }
}

/// The self-signed MEF CA certificate's parameters (TS-0003 10.1.1.1: P-256, ecdsa-with-SHA256).
fn ca_params() -> Result<CertificateParams, MefError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "oneM2M MEF CA");
    dn.push(DnType::OrganizationName, "onem2m-mef");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    let nb = now() - time::Duration::minutes(5);
    params.not_before = nb;
    params.not_after = nb + time::Duration::days(CA_LIFETIME_DAYS);
    Ok(params)
}

/// id-kp-cmcRA (RFC 6402 2.10).
const CMC_RA: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 3, 28];
