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
/// through the client library's `PrivateKey` (CKM_ECDSA, DER signatures).
pub(crate) enum CaKey {
    Software(Box<KeyPair>),
    #[cfg(feature = "pkcs11")]
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
            // No rollover overlap: `ca rollover` refuses a token CA key (see [`rollover`]).
            return Ok(MefCa {
                cert_der,
                issuer,
                cert_path,
                crl_url: None,
                overlap: None,
            });
        }
        if !cert_path.exists() || !key_path.exists() {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(rcgen_err("generating CA key"))?;
            let cert = ca_params(sp_domains)?
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
        let overlap = if data_dir.join(OLD_CA_CERT_FILE).exists() {
            let read = |f: &str| {
                let path = data_dir.join(f);
                pem_cert_der(&read_text(&path)?, &path)
            };
            Some(Overlap {
                old: read(OLD_CA_CERT_FILE)?,
                old_with_new: read(OLD_WITH_NEW_FILE)?,
                new_with_old: read(NEW_WITH_OLD_FILE)?,
            })
        } else {
            None
        };
        Ok(MefCa {
            cert_der,
            issuer,
            cert_path,
            crl_url: None,
            overlap,
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

/// The self-signed MEF CA certificate's parameters (TS-0003 10.1.1.1: P-256, ecdsa-with-SHA256).
fn ca_params(sp_domains: &[String]) -> Result<CertificateParams, MefError> {
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
    // dNSName subtrees only: they constrain CSE-IDs. A uniformResourceIdentifier subtree
    // (what 10.1.1.5 literally asks for AE-IDs) would make rustls-webpki, which fails
    // closed on URI constraints, refuse every AE certificate, and RFC 5280 4.2.1.10
    // would refuse every Node-ID URN (no host); the MEF enforces the AE-ID host itself
    // (`Identity::within_domains`). A documented deviation.
    if !sp_domains.is_empty() {
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: sp_domains
                .iter()
                .map(|d| GeneralSubtree::DnsName(d.clone()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
    }
    let nb = now() - time::Duration::minutes(5);
    params.not_before = nb;
    params.not_after = nb + time::Duration::days(CA_LIFETIME_DAYS);
    Ok(params)
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
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    if let Some(nc) = cert
        .name_constraints()
        .map_err(|_| bad("nameConstraints do not parse"))?
    {
        let mut permitted = Vec::new();
        for t in nc.value.permitted_subtrees.iter().flatten() {
            match &t.base {
                Gn::DNSName(d) => permitted.push(GeneralSubtree::DnsName(d.to_string())),
                _ => return Err(bad("a nameConstraints subtree is not a dNSName")),
            }
        }
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: Vec::new(),
        });
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
    if data_dir.join(OLD_CA_CERT_FILE).exists() {
        return Err(MefError::Config(
            "a CA rollover is already in progress: run `ca retire-old` first".into(),
        ));
    }
    let cert_path = data_dir.join(CA_CERT_FILE);
    let key_path = data_dir.join(CA_KEY_FILE);
    // A CA whose key is in a PKCS #11 token has mef-ca.pem and no mef-ca.key (`load_or_create`
    // never writes one). Rolling it over would need the new key generated in the token under a
    // new URI and the MEF's configuration switched to it: not supported, refused before any
    // change to the data directory.
    if cert_path.exists() && !key_path.exists() {
        return Err(MefError::Config(format!(
            "{}: {CA_KEY_FILE} is missing: a CA whose key is in a PKCS #11 token (--ca-key) \
             cannot be rolled over by `ca rollover` (not supported); nothing was changed",
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
    let old_params = ca_params_of(&old_der)?;
    let old_key = KeyPair::from_pem(&old_key_pem).map_err(rcgen_err("loading CA key"))?;
    // Every signature with a CA key goes through `CaKey`, as for issuing and the CRL.
    let old_issuer = Issuer::new(old_params.clone(), CaKey::Software(Box::new(old_key)));

    let new_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(rcgen_err("generating CA key"))?;
    let new_key_pem = Zeroizing::new(new_key.serialize_pem());
    let new_key = CaKey::Software(Box::new(new_key));
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

    // The old CA first (a crash leaves at worst an overlap with the old CA still current).
    write_file(
        &data_dir.join(OLD_CA_KEY_FILE),
        old_key_pem.as_bytes(),
        0o600,
    )?;
    write_file(
        &data_dir.join(OLD_CA_CERT_FILE),
        old_cert_pem.as_bytes(),
        0o644,
    )?;
    write_file(
        &data_dir.join(OLD_WITH_NEW_FILE),
        old_with_new.pem().as_bytes(),
        0o644,
    )?;
    write_file(
        &data_dir.join(NEW_WITH_OLD_FILE),
        new_with_old.pem().as_bytes(),
        0o644,
    )?;
    write_file(&key_path, new_key_pem.as_bytes(), 0o600)?;
    write_file(&cert_path, new_cert.pem().as_bytes(), 0o644)?;
    Ok(())
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
    // The key first: once it is gone nothing can be signed with the old CA.
    for f in [
        OLD_CA_KEY_FILE,
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
        let dir = std::env::temp_dir().join(format!("onem2m-mef-ca-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
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
