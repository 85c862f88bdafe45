//! The MEF CA and the MEF's TLS server certificate: created on first start in the data
//! directory, reused afterwards. Certificates follow TS-0003 10.1.1.1/10.1.1.3 (P-256,
//! ecdsa-with-SHA256).

use crate::identity::{fingerprint, hex, Identity};
use crate::store::IssuedCert;
use crate::{MefError, ServerEku};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, PublicKeyData,
    SanType, SerialNumber,
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
/// The previous CA certificate during a rollover overlap (RFC 7030 4.1.3 OldWithOld).
pub const OLD_CA_CERT_FILE: &str = "mef-ca-old.pem";
/// The previous CA key during a rollover overlap (mode 0600).
pub const OLD_CA_KEY_FILE: &str = "mef-ca-old.key";
/// During the rollover of a CA whose key is in a PKCS #11 token: the RFC 7512 URI (with its
/// CKA_ID) of the previous CA key, which `ca retire-old` destroys in the token.
pub const OLD_CA_KEY_URI_FILE: &str = "mef-ca-old.uri";
/// The link certificate OldWithNew: the old CA's key and name, signed by the new CA.
pub const OLD_WITH_NEW_FILE: &str = "mef-ca-oldwithnew.pem";
/// The link certificate NewWithOld: the new CA's key and name, signed by the old CA.
pub const NEW_WITH_OLD_FILE: &str = "mef-ca-newwithold.pem";
/// TLS server certificate (PEM).
pub const SERVER_CERT_FILE: &str = "mef-server.pem";
/// TLS server private key (PKCS #8 PEM, mode 0600).
pub const SERVER_KEY_FILE: &str = "mef-server.key";
/// The current CRL (DER), rewritten on each regeneration (RFC 5280 5).
pub const CRL_FILE: &str = "mef-ca.crl";
/// The HTTP path the MEF serves its CRL at, anonymously (RFC 5280 4.2.1.13).
pub const CRL_PATH: &str = "/crl/mef-ca.crl";
/// How long a CRL is valid (nextUpdate - thisUpdate).
pub const CRL_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// A CRL is regenerated when less than this is left before its nextUpdate.
pub const CRL_REFRESH_BEFORE: Duration = Duration::from_secs(24 * 3600);
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

/// Writes a key pair (PEM, mode 0600) and then its certificate (PEM, 0644). Key first: a
/// certificate without its key would be useless on the next start.
fn write_key_and_cert(
    key_path: &Path,
    key: &KeyPair,
    cert_path: &Path,
    cert: &rcgen::Certificate,
) -> Result<(), MefError> {
    write_file(
        key_path,
        Zeroizing::new(key.serialize_pem()).as_bytes(),
        0o600,
    )?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)
}

/// Writes a file atomically (temporary file + rename) with the given Unix mode. The temporary
/// name is unique to this write (process, time, random), so replicas sharing the data directory
/// never write into each other's temporary file.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), MefError> {
    let mut unique = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut unique)
        .map_err(|_| MefError::Crypto("random number generator failed".into()))?;
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let tmp = path.with_file_name(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        u64::from_le_bytes(unique)
    ));
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

/// A signed CRL and what it was made from.
#[derive(Debug, Clone)]
pub struct Crl {
    /// The DER.
    pub der: Vec<u8>,
    /// Its nextUpdate, Unix seconds.
    pub next_update: i64,
    /// The (serial hex, revocation time) pairs it lists.
    pub revoked: Vec<(String, i64)>,
}

/// The MEF CA: its certificate and signing key.
pub struct MefCa {
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, CaKey>,
    cert_path: PathBuf,
    crl_url: Option<String>,
    /// During a rollover overlap: OldWithOld, OldWithNew, NewWithOld.
    overlap: Option<Overlap>,
}

/// The certificates of a rollover overlap (RFC 7030 4.1.3).
#[derive(Debug, Clone)]
pub struct Overlap {
    /// The previous CA's self-signed certificate (OldWithOld).
    pub old: CertificateDer<'static>,
    /// The old CA's key and name signed by the new CA.
    pub old_with_new: CertificateDer<'static>,
    /// The new CA's key and name signed by the old CA.
    pub new_with_old: CertificateDer<'static>,
}

/// The CA's signing key: the software key of `mef-ca.key`, or a key in a PKCS #11 token signing
/// through the shared token crate's `TokenKey` (CKM_ECDSA, DER signatures).
pub(crate) enum CaKey {
    Software(Box<KeyPair>),
    #[cfg(feature = "pkcs11")]
    Token {
        key: std::sync::Arc<onem2m_est_pkcs11::TokenKey>,
        /// The subjectPublicKey bits (the uncompressed point), what rcgen's `der_bytes` is.
        point: Vec<u8>,
    },
}

impl PublicKeyData for CaKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            CaKey::Software(k) => k.der_bytes(),
            #[cfg(feature = "pkcs11")]
            CaKey::Token { point, .. } => point,
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            CaKey::Software(k) => k.algorithm(),
            // Token keys are P-256 only (the library refuses others): TS-0003 10.1.1.1.
            #[cfg(feature = "pkcs11")]
            CaKey::Token { .. } => &rcgen::PKCS_ECDSA_P256_SHA256,
        }
    }
}

impl rcgen::SigningKey for CaKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            CaKey::Software(k) => k.sign(msg),
            #[cfg(feature = "pkcs11")]
            CaKey::Token { key, .. } => key.sign(msg).map_err(|e| {
                log::error!("CA key in the token: {e}");
                rcgen::Error::RemoteKeyError
            }),
        }
    }
}

/// Opens the CA key a [`CaKeyInToken`] names.
#[cfg(feature = "pkcs11")]
fn token_ca_key(spec: &crate::CaKeyInToken) -> Result<CaKey, MefError> {
    use onem2m_est_pkcs11::{Pkcs11Uri, TokenKey};
    let config = |what: String| MefError::Config(format!("CA key {}: {what}", spec.uri));
    let uri = Pkcs11Uri::parse(&spec.uri).map_err(|e| config(e.to_string()))?;
    let key = TokenKey::open(&spec.module, &uri, &pin_source(spec)?)
        .map_err(|e| config(e.to_string()))?;
    let key = std::sync::Arc::new(key);
    let point = spki_point(key.public_key_info()).map_err(config)?;
    Ok(CaKey::Token { key, point })
}

/// Where the token PIN of `spec` comes from.
#[cfg(feature = "pkcs11")]
fn pin_source(spec: &crate::CaKeyInToken) -> Result<onem2m_est_pkcs11::PinSource, MefError> {
    use onem2m_est_pkcs11::PinSource;
    match (&spec.pin_file, &spec.pin_env) {
        (Some(f), _) => Ok(PinSource::File(f.clone())),
        (None, Some(v)) => Ok(PinSource::Env(v.clone())),
        (None, None) => Err(MefError::Config(format!(
            "CA key {}: no PIN file or PIN variable",
            spec.uri
        ))),
    }
}

/// Whether the certificate `der` (read from `path`) holds the public key of `key`.
fn certifies_key(der: &[u8], path: &Path, key: &CaKey) -> Result<bool, MefError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| MefError::Config(format!("{}: {e}", path.display())))?;
    Ok(cert.public_key().subject_public_key.data.as_ref() == key.der_bytes())
}

/// The subjectPublicKey bits of a DER SubjectPublicKeyInfo (what rcgen's `der_bytes` is).
#[cfg(feature = "pkcs11")]
fn spki_point(spki: &[u8]) -> Result<Vec<u8>, String> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
        .map_err(|e| format!("public key: {e}"))?;
    Ok(spki.subject_public_key.data.to_vec())
}

/// Without the MEF's `pkcs11` feature a token CA key is refused before any other work.
#[cfg(not(feature = "pkcs11"))]
fn token_ca_key(spec: &crate::CaKeyInToken) -> Result<CaKey, MefError> {
    Err(MefError::Config(format!(
        "CA key {}: this onem2m-mef has no PKCS #11 support (built without its `pkcs11` feature)",
        spec.uri
    )))
}

impl MefCa {
    /// Loads the CA from `data_dir`, creating it on first start. A CA created with SP domains
    /// carries a critical nameConstraints extension with one permitted dNSName subtree per
    /// domain (TS-0003 10.1.1.5, RFC 5280 4.2.1.10); one created without carries none. An
    /// existing CA is kept as it is. With `in_token`, the CA key is that token key: no
    /// `mef-ca.key` is read or written, and an existing `mef-ca.pem` must hold the token key's
    /// public key.
    pub fn load_or_create(
        data_dir: &Path,
        sp_domains: &[String],
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
                let cert = ca_params(sp_domains)?
                    .self_signed(&key)
                    .map_err(rcgen_err("signing CA certificate"))?;
                write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
            }
            let cert_der = pem_cert_der(&read_text(&cert_path)?, &cert_path)?;
            if !certifies_key(&cert_der, &cert_path, &key)? {
                return Err(MefError::Config(format!(
                    "{}: made with another key than {} (move it away to make a new CA)",
                    cert_path.display(),
                    spec.uri
                )));
            }
            let issuer = Issuer::from_ca_cert_der(&cert_der, key)
                .map_err(rcgen_err("loading CA certificate"))?;
            // A rollover overlap (`rollover_in_token`) is served as for a software CA key.
            return Ok(MefCa {
                cert_der,
                issuer,
                cert_path,
                crl_url: None,
                overlap: load_overlap(data_dir)?,
            });
        }
        if !cert_path.exists() || !key_path.exists() {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(rcgen_err("generating CA key"))?;
            let cert = ca_params(sp_domains)?
                .self_signed(&key)
                .map_err(rcgen_err("signing CA certificate"))?;
            write_key_and_cert(&key_path, &key, &cert_path, &cert)?;
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
            crl_url: None,
            overlap: load_overlap(data_dir)?,
        })
    }

    /// The URL issued certificates name in their cRLDistributionPoints (RFC 5280 4.2.1.13).
    pub fn set_crl_url(&mut self, url: Option<String>) {
        self.crl_url = url;
    }

    /// The URL issued certificates name in their cRLDistributionPoints, if set.
    pub fn crl_url(&self) -> Option<&str> {
        self.crl_url.as_deref()
    }

    /// Signs a CRL (RFC 5280 5) listing `revoked` (serial hex, revocation Unix time): thisUpdate
    /// now, nextUpdate [`CRL_VALIDITY`] later, a cRLNumber that grows with time (milliseconds
    /// since the epoch: monotonic across processes, 5.2.3), an authorityKeyIdentifier.
    /// Returns the DER and the nextUpdate (Unix seconds).
    pub fn crl(&self, revoked: &[(String, i64)]) -> Result<(Vec<u8>, i64), MefError> {
        let this_update = now();
        let next_update = this_update
            + time::Duration::try_from(CRL_VALIDITY)
                .map_err(|_| MefError::Config("CRL validity out of range".into()))?;
        let millis = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let number = u64::try_from(millis).unwrap_or(0).to_be_bytes();
        let mut revoked_certs = Vec::with_capacity(revoked.len());
        for (serial, at) in revoked {
            let bytes = unhex(serial).ok_or_else(|| {
                MefError::Crypto(format!("stored serial {serial:?} is not hexadecimal"))
            })?;
            revoked_certs.push(rcgen::RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: OffsetDateTime::from_unix_timestamp(*at)
                    .map_err(|_| MefError::Crypto("revocation time out of range".into()))?,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let params = rcgen::CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from_slice(&number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&self.issuer)
            .map_err(rcgen_err("signing the CRL"))?;
        Ok((crl.der().to_vec(), next_update.unix_timestamp()))
    }

    /// Regenerates the CRL from the store and writes it to [`CRL_FILE`] in `data_dir`
    /// (what `cert revoke` does after each revocation).
    pub fn write_crl(&self, store: &crate::Store, data_dir: &Path) -> Result<Crl, MefError> {
        let revoked = store.revoked_for_crl(crate::store::now_secs())?;
        let (der, next_update) = self.crl(&revoked)?;
        write_file(&data_dir.join(CRL_FILE), &der, 0o644)?;
        Ok(Crl {
            der,
            next_update,
            revoked,
        })
    }

    /// The rollover overlap in progress, if any.
    pub fn overlap(&self) -> Option<&Overlap> {
        self.overlap.as_ref()
    }

    /// What `/cacerts` serves (RFC 7030 4.1.3): the CA certificate, and during a rollover
    /// overlap also OldWithOld, OldWithNew and NewWithOld.
    pub fn cacerts(&self) -> Vec<CertificateDer<'static>> {
        let mut out = vec![self.cert_der.clone()];
        if let Some(o) = &self.overlap {
            out.extend([
                o.old.clone(),
                o.old_with_new.clone(),
                o.new_with_old.clone(),
            ]);
        }
        out
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
        // The issuing CA is part of the profile: a rollover re-issues the server certificate.
        let profile = format!(
            "eku={}\nhosts={}\nca={}\n",
            eku.as_str(),
            hostnames.join(","),
            fingerprint(&self.cert_der)
        );
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
            write_key_and_cert(&key_path, &key, &cert_path, &cert)?;
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
    /// (critical), extKeyUsage `purposes` (the issuance policy for the identity's subject type,
    /// CR 8.3.Z.2.3 step 3d), the identity as the only subjectAltName, CN = the
    /// identity when it fits (ub-common-name 64), a random positive serial, an
    /// authorityKeyIdentifier. Returns the DER and the record to store.
    pub fn issue(
        &self,
        identity: &Identity,
        public_key: &impl PublicKeyData,
        lifetime: Duration,
        purposes: &[crate::KeyPurpose],
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
        params.extended_key_usages = purposes
            .iter()
            .map(|p| match p {
                crate::KeyPurpose::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                crate::KeyPurpose::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            })
            .collect();
        params.use_authority_key_identifier_extension = true;
        // RFC 5280 4.2.1.13: where relying parties fetch the CRL covering this certificate.
        if let Some(url) = &self.crl_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![url.clone()],
            }];
        }
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        // Backdated against small clock differences between MEF and client: a minute, or a
        // tenth of a short lifetime (seconds-long test certificates must not be born half-used).
        let lifetime = time::Duration::try_from(lifetime)
            .map_err(|_| MefError::Config("certificate lifetime out of range".into()))?;
        let backdate: time::Duration = lifetime / 10;
        let nb = now() - backdate.min(time::Duration::minutes(1));
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

/// The rollover overlap recorded in `data_dir` (OldWithOld and the link certificates), if any.
fn load_overlap(data_dir: &Path) -> Result<Option<Overlap>, MefError> {
    if !data_dir.join(OLD_CA_CERT_FILE).exists() {
        return Ok(None);
    }
    let read = |f: &str| {
        let path = data_dir.join(f);
        pem_cert_der(&read_text(&path)?, &path)
    };
    Ok(Some(Overlap {
        old: read(OLD_CA_CERT_FILE)?,
        old_with_new: read(OLD_WITH_NEW_FILE)?,
        new_with_old: read(NEW_WITH_OLD_FILE)?,
    }))
}

/// The self-signed MEF CA certificate's parameters (TS-0003 10.1.1.1: P-256, ecdsa-with-SHA256).
fn ca_params(sp_domains: &[String]) -> Result<CertificateParams, MefError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "oneM2M MEF CA");
    dn.push(DnType::OrganizationName, "onem2m-mef");
    let mut params = ca_profile(dn);
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    // dNSName subtrees only: they constrain CSE-IDs. A uniformResourceIdentifier subtree
    // (what 10.1.1.5 literally asks for AE-IDs) would make rustls-webpki, which fails
    // closed on URI constraints, refuse every AE certificate, and RFC 5280 4.2.1.10
    // would refuse every Node-ID URN (no host); the MEF enforces the AE-ID host itself
    // (`Identity::within_domains`). A documented deviation.
    if !sp_domains.is_empty() {
        params.name_constraints = Some(permitted_dns_names(sp_domains.to_vec()));
    }
    let nb = now() - time::Duration::minutes(5);
    params.not_before = nb;
    params.not_after = nb + time::Duration::days(CA_LIFETIME_DAYS);
    Ok(params)
}

/// What every MEF CA certificate has: the name `dn`, basicConstraints CA with pathLen 0, and
/// keyUsage keyCertSign, cRLSign, digitalSignature.
fn ca_profile(dn: DistinguishedName) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// nameConstraints permitting these dNSName subtrees only (RFC 5280 4.2.1.10).
fn permitted_dns_names(names: Vec<String>) -> NameConstraints {
    NameConstraints {
        permitted_subtrees: names.into_iter().map(GeneralSubtree::DnsName).collect(),
        excluded_subtrees: Vec::new(),
    }
}

/// The profile of a MEF CA certificate as rcgen parameters (to sign OldWithNew with the same
/// subject bytes, and to base the new CA on): the name (CN, O, OU as this module writes them),
/// basicConstraints, keyUsage, dNSName nameConstraints, validity.
fn ca_params_of(der: &CertificateDer<'_>) -> Result<CertificateParams, MefError> {
    use x509_parser::extensions::GeneralName as Gn;
    let bad = |why: &str| MefError::Config(format!("the MEF CA certificate: {why}"));
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| bad(&format!("does not parse: {e}")))?;
    let mut dn = DistinguishedName::new();
    for attr in cert.subject().iter_attributes() {
        let value = attr
            .as_str()
            .map_err(|_| bad("a subject attribute is not a string"))?;
        let ty = match attr.attr_type().to_id_string().as_str() {
            "2.5.4.3" => DnType::CommonName,
            "2.5.4.10" => DnType::OrganizationName,
            "2.5.4.11" => DnType::OrganizationalUnitName,
            other => return Err(bad(&format!("unexpected subject attribute {other}"))),
        };
        dn.push(ty, value);
    }
    let mut params = ca_profile(dn);
    if let Some(nc) = cert
        .name_constraints()
        .map_err(|_| bad("nameConstraints do not parse"))?
    {
        let mut permitted = Vec::new();
        for t in nc.value.permitted_subtrees.iter().flatten() {
            match &t.base {
                Gn::DNSName(d) => permitted.push(d.to_string()),
                _ => return Err(bad("a nameConstraints subtree is not a dNSName")),
            }
        }
        params.name_constraints = Some(permitted_dns_names(permitted));
    }
    let time = |t: x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|_| bad("validity out of range"))
    };
    params.not_before = time(cert.validity().not_before)?;
    params.not_after = time(cert.validity().not_after)?;
    Ok(params)
}

/// RFC 7030 4.1.3 CA key update, step one (`onem2m-mef ca rollover`): a new CA key and
/// self-signed certificate (NewWithNew) with the old CA's profile (keyUsage, basicConstraints,
/// nameConstraints) and a distinct name, and the two link certificates: OldWithNew (the old
/// CA's name and key, signed by the new key) and NewWithOld (the new CA's name and key, signed
/// by the old key, valid no longer than the old CA). The new CA becomes `mef-ca.pem`/`.key`
/// and issues from the next start on; the old one is kept for the overlap, during which
/// `/cacerts` serves all four, the TLS server sends NewWithOld to clients that still trust
/// only the old CA, and client certificates issued under the old CA are still accepted.
/// Refused while an overlap is in progress. The MEF must be restarted to use the new CA.
pub fn rollover(data_dir: &Path) -> Result<(), MefError> {
    refuse_overlap(data_dir)?;
    let cert_path = data_dir.join(CA_CERT_FILE);
    let key_path = data_dir.join(CA_KEY_FILE);
    // A CA whose key is in a PKCS #11 token has mef-ca.pem and no mef-ca.key (`load_or_create`
    // never writes one): `rollover_in_token` rolls it over, with the token keys.
    if cert_path.exists() && !key_path.exists() {
        return Err(MefError::Config(format!(
            "{}: {CA_KEY_FILE} is missing: the CA key is in a PKCS #11 token; give --ca-key \
             (the current key) and --new-ca-key with --pkcs11-module and --pin-file or \
             --pin-env; nothing was changed",
            data_dir.display()
        )));
    }
    if !cert_path.exists() || !key_path.exists() {
        return Err(MefError::Config(format!(
            "{}: no MEF CA to roll over",
            data_dir.display()
        )));
    }
    let old_key_pem = read_text(&key_path)?;
    let old_cert_pem = read_text(&cert_path)?;
    let old_der = pem_cert_der(&old_cert_pem, &cert_path)?;
    let old_key = KeyPair::from_pem(&old_key_pem).map_err(rcgen_err("loading CA key"))?;
    let new_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(rcgen_err("generating CA key"))?;
    let new_key_pem = Zeroizing::new(new_key.serialize_pem());
    let rolled = sign_rollover(
        &old_der,
        CaKey::Software(Box::new(old_key)),
        CaKey::Software(Box::new(new_key)),
    )?;
    // The old CA first (a crash leaves at worst an overlap with the old CA still current).
    write_file(
        &data_dir.join(OLD_CA_KEY_FILE),
        old_key_pem.as_bytes(),
        0o600,
    )?;
    write_overlap(data_dir, &old_cert_pem, &rolled)?;
    write_file(&key_path, new_key_pem.as_bytes(), 0o600)?;
    write_file(&cert_path, rolled.new_cert.as_bytes(), 0o644)?;
    Ok(())
}

fn refuse_overlap(data_dir: &Path) -> Result<(), MefError> {
    if data_dir.join(OLD_CA_CERT_FILE).exists() {
        return Err(MefError::Config(
            "a CA rollover is already in progress: run `ca retire-old` first".into(),
        ));
    }
    Ok(())
}

/// The certificates of a rollover, PEM: NewWithNew, OldWithNew, NewWithOld.
struct Rolled {
    new_cert: String,
    old_with_new: String,
    new_with_old: String,
}

/// Signs the certificates of a rollover from the old CA certificate and the two keys (software
/// or token: every CA signature goes through `CaKey`, as for issuing and the CRL).
fn sign_rollover(
    old_der: &CertificateDer<'_>,
    old_key: CaKey,
    new_key: CaKey,
) -> Result<Rolled, MefError> {
    let old_params = ca_params_of(old_der)?;
    let old_issuer = Issuer::new(old_params.clone(), old_key);
    let mut new_params = old_params.clone();
    // A distinct name, so that paths and anchors are never ambiguous between the generations.
    let generation = now();
    new_params.distinguished_name.push(
        DnType::OrganizationalUnitName,
        format!("generation {}", generation.unix_timestamp()),
    );
    new_params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    let nb = generation - time::Duration::minutes(5);
    new_params.not_before = nb;
    new_params.not_after = nb + time::Duration::days(CA_LIFETIME_DAYS);
    new_params.use_authority_key_identifier_extension = false;
    let new_cert = new_params
        .self_signed(&new_key)
        .map_err(rcgen_err("signing the new CA certificate"))?;

    // NewWithOld: the new name and key, issued by the old CA, within the old CA's validity.
    let mut nwo = new_params.clone();
    nwo.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    nwo.not_after = new_params.not_after.min(old_params.not_after);
    nwo.use_authority_key_identifier_extension = true;
    let new_with_old = nwo
        .signed_by(&new_key, &old_issuer)
        .map_err(rcgen_err("signing NewWithOld"))?;

    // OldWithNew: the old name and key, issued by the new CA, with the old CA's validity.
    let new_issuer = Issuer::new(new_params.clone(), new_key);
    let mut own = old_params.clone();
    own.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    own.use_authority_key_identifier_extension = true;
    let old_with_new = own
        .signed_by(old_issuer.key(), &new_issuer)
        .map_err(rcgen_err("signing OldWithNew"))?;
    Ok(Rolled {
        new_cert: new_cert.pem(),
        old_with_new: old_with_new.pem(),
        new_with_old: new_with_old.pem(),
    })
}

/// The overlap files: OldWithOld, then the link certificates.
fn write_overlap(data_dir: &Path, old_cert_pem: &str, rolled: &Rolled) -> Result<(), MefError> {
    write_file(
        &data_dir.join(OLD_CA_CERT_FILE),
        old_cert_pem.as_bytes(),
        0o644,
    )?;
    write_file(
        &data_dir.join(OLD_WITH_NEW_FILE),
        rolled.old_with_new.as_bytes(),
        0o644,
    )?;
    write_file(
        &data_dir.join(NEW_WITH_OLD_FILE),
        rolled.new_with_old.as_bytes(),
        0o644,
    )
}

/// [`rollover`] for a CA whose key is in a PKCS #11 token (`current`, what the MEF runs with as
/// `--ca-key`): the new CA key pair is generated in the token `new_uri` names (its `object` the
/// new label, unused so far; the same module and PIN), P-256, sensitive and never extractable
/// (RFC 7030 4.1.3; TS-0003 10.1.1.1), and the link certificates are signed in the token by the
/// old and the new key. The URI of the old key is recorded in [`OLD_CA_KEY_URI_FILE`] for
/// `ca retire-old`. All or nothing: on any failure the new key is destroyed and the overlap
/// files removed. Returns the new key's URI (with its CKA_ID), the MEF's `--ca-key` from its
/// next start.
#[cfg(feature = "pkcs11")]
pub fn rollover_in_token(
    data_dir: &Path,
    current: &crate::CaKeyInToken,
    new_uri: &str,
) -> Result<String, MefError> {
    use onem2m_est_pkcs11::{Pkcs11Uri, TokenKey};
    refuse_overlap(data_dir)?;
    let cert_path = data_dir.join(CA_CERT_FILE);
    if data_dir.join(CA_KEY_FILE).exists() {
        return Err(MefError::Config(format!(
            "{}: the CA key is {CA_KEY_FILE}, not in a token: run `ca rollover` without \
             --ca-key; nothing was changed",
            data_dir.display()
        )));
    }
    if !cert_path.exists() {
        return Err(MefError::Config(format!(
            "{}: no MEF CA to roll over",
            data_dir.display()
        )));
    }
    let old_cert_pem = read_text(&cert_path)?;
    let old_der = pem_cert_der(&old_cert_pem, &cert_path)?;
    let old_key = token_ca_key(current)?;
    if !certifies_key(&old_der, &cert_path, &old_key)? {
        return Err(MefError::Config(format!(
            "{}: made with another key than {}; nothing was changed",
            cert_path.display(),
            current.uri
        )));
    }
    let CaKey::Token {
        key: old_token_key, ..
    } = &old_key
    else {
        unreachable!("token_ca_key opens token keys")
    };
    let old_uri = old_token_key.uri().to_string();
    let config = |what: String| MefError::Config(format!("new CA key {new_uri}: {what}"));
    let uri = Pkcs11Uri::parse(new_uri).map_err(|e| config(e.to_string()))?;
    let pin = pin_source(current)?;
    // The new label must name no key yet: the MEF opens its CA key by this URI.
    if TokenKey::open(&current.module, &uri, &pin).is_ok() {
        return Err(config(
            "the token already holds a key with this label: give a new object= label; nothing \
             was changed"
                .into(),
        ));
    }
    let new = std::sync::Arc::new(
        TokenKey::generate(&current.module, &uri, &pin).map_err(|e| config(e.to_string()))?,
    );
    let new_key_uri = new.uri().to_string();
    let undo = |e: MefError| {
        for f in [
            OLD_CA_KEY_URI_FILE,
            NEW_WITH_OLD_FILE,
            OLD_WITH_NEW_FILE,
            OLD_CA_CERT_FILE,
        ] {
            let _ = std::fs::remove_file(data_dir.join(f));
        }
        if let Err(d) = new.destroy() {
            log::warn!("cannot destroy the unused new CA key {new_key_uri}: {d}");
        }
        e
    };
    let point = spki_point(new.public_key_info()).map_err(|e| undo(config(e)))?;
    let new_key = CaKey::Token {
        key: new.clone(),
        point,
    };
    let rolled = sign_rollover(&old_der, old_key, new_key).map_err(undo)?;
    write_file(
        &data_dir.join(OLD_CA_KEY_URI_FILE),
        format!("{old_uri}\n").as_bytes(),
        0o644,
    )
    .and_then(|()| write_overlap(data_dir, &old_cert_pem, &rolled))
    .and_then(|()| write_file(&cert_path, rolled.new_cert.as_bytes(), 0o644))
    .map_err(undo)?;
    Ok(new_key_uri)
}

/// Without the MEF's `pkcs11` feature a token CA key is refused before any change.
#[cfg(not(feature = "pkcs11"))]
pub fn rollover_in_token(
    _data_dir: &Path,
    current: &crate::CaKeyInToken,
    _new_uri: &str,
) -> Result<String, MefError> {
    token_ca_key(current).map(|_| String::new())
}

/// RFC 7030 4.1.3 CA key update, step two (`onem2m-mef ca retire-old`): ends the overlap. The
/// old CA's key, certificate and the link certificates are removed; from the next start
/// `/cacerts` serves the new CA alone and certificates issued under the old CA no longer
/// authenticate (a device that missed the overlap is re-bootstrapped with its third-party
/// credential and the new CA as trust anchor). Refused when no overlap is in progress.
pub fn retire_old(data_dir: &Path) -> Result<(), MefError> {
    if !data_dir.join(OLD_CA_CERT_FILE).exists() {
        return Err(MefError::Config(
            "no CA rollover in progress: nothing to retire".into(),
        ));
    }
    if data_dir.join(OLD_CA_KEY_URI_FILE).exists() {
        return Err(MefError::Config(format!(
            "the old CA key is in a PKCS #11 token ({OLD_CA_KEY_URI_FILE}): give \
             --pkcs11-module with --pin-file or --pin-env, so that it is destroyed; nothing was \
             changed"
        )));
    }
    remove_overlap(data_dir)
}

/// [`retire_old`] for a CA rolled over by [`rollover_in_token`]: the old CA key is destroyed in
/// the token first (through `module` and the PIN of `pin_file`/`pin_env`), then the files of
/// the overlap are removed. Run again after an interruption between the two (the key gone, the
/// files left), it finishes the retirement. Without the MEF's `pkcs11` feature it is refused
/// before any change.
pub fn retire_old_in_token(
    data_dir: &Path,
    module: &Path,
    pin_file: Option<&Path>,
    pin_env: Option<&str>,
) -> Result<(), MefError> {
    let spec = |uri: String| crate::CaKeyInToken {
        module: module.to_path_buf(),
        uri,
        pin_file: pin_file.map(Path::to_path_buf),
        pin_env: pin_env.map(str::to_string),
    };
    // The key first: once it is gone nothing can be signed with the old CA.
    destroy_old_token_key(data_dir, spec)?;
    remove_overlap(data_dir)
}

/// Destroys the old CA key of a rollover in a token (its URI in `data_dir`, opened as `spec`
/// of that URI names it).
#[cfg(feature = "pkcs11")]
fn destroy_old_token_key(
    data_dir: &Path,
    spec: impl FnOnce(String) -> crate::CaKeyInToken,
) -> Result<(), MefError> {
    use onem2m_est_pkcs11::{Pkcs11Uri, TokenKey};
    let uri_path = data_dir.join(OLD_CA_KEY_URI_FILE);
    if !data_dir.join(OLD_CA_CERT_FILE).exists() || !uri_path.exists() {
        return Err(MefError::Config(format!(
            "no rollover of a CA key in a PKCS #11 token in progress ({} missing)",
            uri_path.display()
        )));
    }
    let spec = spec(read_text(&uri_path)?.trim().to_string());
    let config = |what: String| MefError::Config(format!("old CA key {}: {what}", spec.uri));
    let uri = Pkcs11Uri::parse(&spec.uri).map_err(|e| config(e.to_string()))?;
    // Absent: an earlier retire-old destroyed it and was interrupted before it removed the
    // files; going on finishes that run instead of leaving the overlap to be removed by hand.
    match TokenKey::open_if_present(&spec.module, &uri, &pin_source(&spec)?)
        .map_err(|e| config(e.to_string()))?
    {
        Some(old) => old.destroy().map_err(|e| config(e.to_string())),
        None => {
            log::warn!(
                "old CA key {}: no longer in the token (destroyed by an interrupted retire-old); \
                 removing the rollover's files",
                spec.uri
            );
            Ok(())
        }
    }
}

/// Without the `pkcs11` feature: refused (as [`token_ca_key`] refuses), nothing changed.
#[cfg(not(feature = "pkcs11"))]
fn destroy_old_token_key(
    _data_dir: &Path,
    spec: impl FnOnce(String) -> crate::CaKeyInToken,
) -> Result<(), MefError> {
    token_ca_key(&spec(OLD_CA_KEY_URI_FILE.into())).map(|_| ())
}

fn remove_overlap(data_dir: &Path) -> Result<(), MefError> {
    // The key first: once it is gone nothing can be signed with the old CA.
    for f in [
        OLD_CA_KEY_FILE,
        OLD_CA_KEY_URI_FILE,
        NEW_WITH_OLD_FILE,
        OLD_WITH_NEW_FILE,
        OLD_CA_CERT_FILE,
    ] {
        let path = data_dir.join(f);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(format!("removing {}", path.display()))(e)),
        }
    }
    Ok(())
}

/// After a revocation by the command line: rewrites [`CRL_FILE`] of the MEF in `data_dir` from
/// `store`, if it has a CA (a running MEF also regenerates its served CRL when the revoked set
/// changes).
pub fn refresh_crl_file(data_dir: &Path, store: &crate::Store) -> Result<(), MefError> {
    if !data_dir.join(CA_CERT_FILE).exists() || !data_dir.join(CA_KEY_FILE).exists() {
        return Ok(());
    }
    let ca = MefCa::load_or_create(data_dir, &[], None)?;
    ca.write_crl(store, data_dir).map(|_| ())
}

/// Whether the CA of `data_dir` signs with a key in a PKCS #11 token (`mef-ca.pem` and no
/// `mef-ca.key`): [`refresh_crl_file`] cannot sign its CRL, [`refresh_crl_file_in_token`] can.
pub fn ca_key_in_token(data_dir: &Path) -> bool {
    data_dir.join(CA_CERT_FILE).exists() && !data_dir.join(CA_KEY_FILE).exists()
}

/// [`refresh_crl_file`] for a CA whose key is in a PKCS #11 token (`in_token`, what the MEF
/// runs with as `--ca-key`): the CRL (RFC 5280 5) is signed in the token, so the file is current
/// right after `cert revoke`, without a running MEF. The key must be the CA certificate's.
pub fn refresh_crl_file_in_token(
    data_dir: &Path,
    store: &crate::Store,
    in_token: &crate::CaKeyInToken,
) -> Result<(), MefError> {
    if !data_dir.join(CA_CERT_FILE).exists() {
        return Err(MefError::Config(format!(
            "{}: no MEF CA",
            data_dir.display()
        )));
    }
    let ca = MefCa::load_or_create(data_dir, &[], Some(in_token))?;
    ca.write_crl(store, data_dir).map(|_| ())
}

/// Lower-case or upper-case hex text to bytes.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// id-kp-cmcRA (RFC 6402 2.10).
const CMC_RA: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 3, 28];

#[cfg(test)]
mod tests {
    use super::*;

    /// Replicas sharing a data directory write its files at the same time (the CRL after
    /// each revocation): every write succeeds and leaves a whole file, no temporary one.
    #[test]
    fn concurrent_writers_of_one_data_directory_do_not_collide() {
        let dir = crate::scratch_dir("ca-race");
        let ca = MefCa::load_or_create(&dir, &[], None).unwrap();
        let store = crate::Store::open(&dir).unwrap();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..25 {
                        ca.write_crl(&store, &dir).unwrap();
                    }
                });
            }
        });
        let der = std::fs::read(dir.join(CRL_FILE)).unwrap();
        assert!(x509_parser::parse_x509_crl(&der).is_ok());
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
