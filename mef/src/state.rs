//! The state every connection shares ([`Shared`]) and the per-request classification of the
//! client ([`Shared::classify`]).

use crate::ca::MefCa;
use crate::challenge::Challenges;
use crate::conn::{ConnInfo, Peer, Principal};
use crate::identity::fingerprint;
use crate::store::Store;
use crate::{MefConfig, MefError};
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::sync::Arc;

/// State shared by every connection.
pub(crate) struct Shared {
    pub config: MefConfig,
    pub ca: MefCa,
    pub store: Arc<Store>,
    pub challenges: Challenges,
    /// Approval-mode attempt counters per client and CSR (RFC 7030 4.2.3 simulation).
    pub approvals: crate::approval::Approvals,
    /// Verifier against `--client-trust` only: tells third-party certificates apart.
    pub third_party: Option<Arc<dyn ClientCertVerifier>>,
    /// The CRL served at [`crate::ca::CRL_PATH`]: its DER, nextUpdate and the revoked set it
    /// lists, regenerated when the set changes or nextUpdate nears.
    pub crl: std::sync::Mutex<Option<crate::ca::Crl>>,
    /// What `/metrics` reports (crate::metrics).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Shared {
    /// The current CRL DER (RFC 5280 5): regenerated on each revocation (the revoked set in the
    /// store differs from the one listed, whichever process revoked) and before nextUpdate.
    pub(crate) fn current_crl(&self) -> Result<Vec<u8>, MefError> {
        let now = crate::store::now_secs();
        let revoked = self.store.revoked_for_crl(now)?;
        let mut cached = self.crl.lock().unwrap_or_else(|p| p.into_inner());
        let refresh_at = |next: i64| next - crate::ca::CRL_REFRESH_BEFORE.as_secs() as i64;
        match cached.as_ref() {
            Some(crl) if crl.revoked == revoked && now < refresh_at(crl.next_update) => {
                Ok(crl.der.clone())
            }
            _ => {
                let crl = self.ca.write_crl(&self.store, &self.config.data_dir)?;
                let der = crl.der.clone();
                *cached = Some(crl);
                Ok(der)
            }
        }
    }
}

impl Shared {
    /// Classifies the client certificate. Done per request, so registry edits and revocations
    /// made while a connection is open take effect at once.
    pub(crate) fn classify(&self, conn: &ConnInfo) -> Result<Peer, MefError> {
        let certs = match &conn.principal {
            Principal::Psk(kpm_id) => {
                return Ok(Peer::Psk {
                    kpm_id: kpm_id.clone(),
                    identity: self.store.psk_identity(kpm_id)?,
                })
            }
            Principal::Certificates(certs) => certs,
        };
        let Some(ee) = certs.first() else {
            return Ok(Peer::Anonymous);
        };
        let fp = fingerprint(ee);
        if let Some(record) = self.store.issued_by_fingerprint(&fp)? {
            return Ok(Peer::Issued {
                fingerprint: fp,
                record,
            });
        }
        if let Some(v) = &self.third_party {
            let window = *conn.third_party_chain.get_or_init(|| {
                v.verify_client_cert(ee, &certs[1..], UnixTime::now())
                    .ok()
                    .and_then(|_| validity_window(certs))
            });
            if let Some((not_before, not_after)) = window {
                let now = crate::store::now_secs();
                let identity = self.store.lookup_identity(&fp)?;
                return Ok(Peer::ThirdParty {
                    fingerprint: fp,
                    identity,
                    within_validity: not_before <= now && now <= not_after,
                });
            }
        }
        Ok(Peer::Unknown)
    }
}

/// The validity window every presented certificate shares: (latest notBefore, earliest
/// notAfter), seconds since the epoch. `None` if one does not parse.
fn validity_window(certs: &[CertificateDer<'_>]) -> Option<(i64, i64)> {
    let mut window = (i64::MIN, i64::MAX);
    for c in certs {
        let (_, cert) = x509_parser::parse_x509_certificate(c).ok()?;
        let v = cert.validity();
        window.0 = window.0.max(v.not_before.timestamp());
        window.1 = window.1.min(v.not_after.timestamp());
    }
    Some(window)
}
