//! The two procedures of TS-0003 clause 8.3.6.2, in the order the clause gives them.
//!
//! [`MefClient::provision`] is Initial Certificate Provisioning (8.3.6.2.2, CR 8.3.Z.2.2) and
//! [`MefClient::reprovision`] is Certificate Re-Provisioning (8.3.6.2.3, CR 8.3.Z.2.3). Both run
//! the same three steps on one TLS connection:
//!
//! 1. obtain the trust anchor CA certificates (`/cacerts`, RFC 7030 4.1);
//! 2. obtain the CSR attributes (`/csrattrs`, RFC 7030 4.5);
//! 3. obtain a key pair (generate, select an existing one, or let the MEF generate it with
//!    `/serverkeygen`, RFC 7030 4.4), build the CSR, enrol (`/simpleenroll` or
//!    `/simplereenroll`, RFC 7030 4.2), validate what came back, and install it.
//!
//! Nothing is installed until everything validated: the trust anchors, the certificate chain and
//! the key become current together through [`CredentialStore::install`], or nothing changes. A
//! key the store created for a procedure that then failed is handed back with
//! [`CredentialStore::discard_key`].

use std::sync::Arc;
use std::time::SystemTime;

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::csr::{build_csr, build_reenrol_csr, CurrentCertificate};
use crate::error::{decode_error, Error, Result};
use crate::identity::SubjectIdentity;
use crate::keys::{check_key_satisfies, key_algorithm_for, KeyAlgorithm, PrivateKey, SoftwareKey};
use crate::proto::csrattrs::CsrRequirements;
use crate::psk::PskCredential;
use crate::store::{CredentialStore, Credentials, KeyPlan};
use crate::tls::{client_config, ClientIdentity, TlsProfile};
use crate::transport::{EstConnection, TransportConfig};
use crate::uri::EstUri;
use crate::validate::{
    check_chain_algorithms, validate_ca_certs, validate_ca_certs_for, validate_issued,
};

/// What a MEF Client needs to know before it runs a procedure.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The estBaseURI (pre-condition A.ii: its FQDN is the MEF's), label included.
    pub base_uri: EstUri,
    /// The subject identity to put in subjectAltName (TS-0003 8.3.9.7 certSubjectType and
    /// certSubjectID). `None` takes the identity the MEF asks for in its CSR attributes (and, when
    /// re-provisioning, the identity of the current certificate).
    pub identity: Option<SubjectIdentity>,
    /// The key type generated when the server does not ask for one (TS-0003 10.1.1.1: P-256).
    /// It also names the certificate profile the issued chain is checked against
    /// ([`crate::validate::check_chain_algorithms`]).
    pub key_algorithm: KeyAlgorithm,
    /// Timeouts, body limits and polling bounds.
    pub transport: TransportConfig,
    /// The TLS profile of certificate-authenticated connections (default
    /// [`TlsProfile::Modern`]; [`TlsProfile::Ts0003`] for TS-0003 10.2.1/10.2.3).
    pub tls_profile: TlsProfile,
    /// The FQDN of the MEF that issued the CERT_PROV command (TS-0003 8.3.9.7). When set, the
    /// base URI and the identity are that command's arguments and are verified before any I/O
    /// ([`crate::certprov::verify_config`]); a failure is
    /// MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS. `None` skips the check (no command: the caller
    /// chose the MEF itself).
    pub mef_fqdn: Option<String>,
    /// The estBaseURI of Initial Certificate Provisioning over TLS-PSK, where the MEF serves
    /// TLS-PSK on another authority than its certificate listener (the reference MEF's
    /// `--psk-listen`). `None`: [`Config::base_uri`] for both. With it, a device whose
    /// bootstrap credential is a Kpm can re-bootstrap ([`MefClient::renew`]) with the same
    /// client that re-provisions.
    pub psk_base_uri: Option<EstUri>,
}

impl Config {
    /// A configuration with the defaults: no fixed identity, P-256, default transport bounds.
    pub fn new(base_uri: EstUri) -> Config {
        Config {
            base_uri,
            identity: None,
            key_algorithm: KeyAlgorithm::default(),
            transport: TransportConfig::default(),
            tls_profile: TlsProfile::default(),
            mef_fqdn: None,
            psk_base_uri: None,
        }
    }

    /// Sets the estBaseURI used over TLS-PSK (see [`Config::psk_base_uri`]).
    pub fn psk_base_uri(mut self, uri: EstUri) -> Config {
        self.psk_base_uri = Some(uri);
        self
    }

    /// Sets the TLS profile.
    pub fn tls_profile(mut self, profile: TlsProfile) -> Config {
        self.tls_profile = profile;
        self
    }

    /// Sets the FQDN of the MEF issuing the CERT_PROV command (see [`Config::mef_fqdn`]).
    pub fn mef_fqdn(mut self, fqdn: impl Into<String>) -> Config {
        self.mef_fqdn = Some(fqdn.into());
        self
    }

    /// Sets the subject identity.
    pub fn identity(mut self, identity: SubjectIdentity) -> Config {
        self.identity = Some(identity);
        self
    }

    /// Sets the default key algorithm.
    pub fn key_algorithm(mut self, algorithm: KeyAlgorithm) -> Config {
        self.key_algorithm = algorithm;
        self
    }

    /// Sets the transport bounds.
    pub fn transport(mut self, transport: TransportConfig) -> Config {
        self.transport = transport;
        self
    }
}

/// How the MEF Client authenticates the TLS connection of Initial Certificate Provisioning
/// (pre-condition B of TS-0003 8.3.6.2.2).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum InitialAuth {
    /// Certificate-based RSPF (B.ii): the EST client explicit trust anchor database that
    /// authenticates the MEF, and the third-party client certificate with its key.
    Certificate {
        /// The explicit TA database for the MEF's server certificate (RFC 7030 3.6.1).
        trust_anchors: Vec<CertificateDer<'static>>,
        /// The third-party EST client certificate and key (RFC 7030 3.3.2).
        client: ClientIdentity,
    },
    /// PPSK-based RSPF (B.i, TS-0003 8.3.2.1): certificate-less TLS mutual authentication
    /// (RFC 7030 3.3.3) with `psk_identity = KpmID` and `psk = Kpm`. The PSK alone authenticates
    /// both ends; the MEF CA certificates from `/cacerts` on this channel become the explicit
    /// TA database (RFC 7030 4.1.1). Needs the cargo feature `psk` (OpenSSL); without it
    /// [`MefClient::provision`] refuses it with [`Error::InvalidArgument`] before any I/O.
    Psk(PskCredential),
}

/// How a request on its own (`/cacerts`, `/csrattrs`) authenticates its TLS connection.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Channel<'a> {
    /// Certificate-based: the explicit trust anchors that authenticate the MEF (RFC 7030
    /// 3.6.1) and, optionally, a client certificate with its key (RFC 7030 3.3.2).
    Certificate {
        /// The explicit TA database for the MEF's server certificate.
        trust_anchors: &'a [CertificateDer<'static>],
        /// The client identity, if any.
        client: Option<ClientIdentity>,
    },
    /// TLS-PSK with the pre-provisioned (KpmID, Kpm) (TS-0003 8.3.2.1, RFC 7030 3.3.3). Needs
    /// the cargo feature `psk`.
    Psk(&'a PskCredential),
}

impl<'a> Channel<'a> {
    /// A certificate channel (see [`Channel::Certificate`]).
    pub fn certificate(
        trust_anchors: &'a [CertificateDer<'static>],
        client: Option<ClientIdentity>,
    ) -> Channel<'a> {
        Channel::Certificate {
            trust_anchors,
            client,
        }
    }
}

/// How the key pair of step 3.a is obtained.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum KeySource {
    /// Ask the store for a new key of the type the MEF requires (or the configured default).
    #[default]
    Generate,
    /// Use this existing key pair (it must satisfy the MEF's key-type requirements).
    Existing(Arc<dyn PrivateKey>),
    /// Let the MEF generate the key pair: `/serverkeygen` (RFC 7030 4.4; CR 8.3.Z.2.1 "the MEF
    /// Client and MEF shall use server-side key generation").
    ServerGenerated,
}

/// Renew or rekey, for Certificate Re-Provisioning (TS-0003 8.3.6.2.3, RFC 7030 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Reprovision {
    /// Same key, new certificate.
    #[default]
    Renew,
    /// New key generated on this device, new certificate.
    Rekey,
    /// New key generated by the MEF (`/serverkeygen`), new certificate.
    ServerKeygen,
}

/// What a successful procedure installed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Provisioned {
    /// The MEF-provisioned certificate, then its issuers (DER).
    pub chain: Vec<CertificateDer<'static>>,
    /// The MEF CA certificates now installed as the explicit trust anchor database.
    pub trust_anchors: Vec<CertificateDer<'static>>,
    /// The certificate's notAfter.
    pub not_after: UnixTime,
    /// What the procedure's connection did: handshakes, bytes, cipher suite.
    pub connection: ConnectionStats,
}

/// Counters of a procedure's TLS connection, for sizing, logs and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// TLS handshakes the procedure made (one when the server keeps the connection alive).
    pub handshakes: u32,
    /// Bytes the procedure sent on the wire (TLS records included).
    pub bytes_written: u64,
    /// Bytes the procedure received on the wire (TLS records included).
    pub bytes_read: u64,
    /// The cipher suite of the procedure's latest TLS handshake (see
    /// [`crate::transport::TlsSession::cipher_suite`] for the naming).
    pub cipher_suite: Option<&'static str>,
}

/// The trust anchors that authenticate the MEF for `/cacerts` and `/csrattrs` on their own:
/// the `configured` ones, else the ones installed in `store` (a provisioned device asks its own
/// MEF, RFC 7030 3.6.1). The one rule for the C API, Python and Rust callers; neither is a bad
/// argument.
pub fn query_trust_anchors(
    configured: Option<&[CertificateDer<'static>]>,
    store: &dyn CredentialStore,
) -> Result<Vec<CertificateDer<'static>>> {
    if let Some(configured) = configured {
        return Ok(configured.to_vec());
    }
    store.load()?.map(|c| c.trust_anchors).ok_or_else(|| {
        Error::invalid(
            "trust anchors",
            "none configured and no credentials installed",
        )
    })
}

/// A MEF Client: runs the certificate provisioning procedures against one MEF.
///
/// Synchronous: every call blocks until the procedure ends, bounded by the timeouts and polling
/// limits of [`TransportConfig`]. A `MefClient` holds only configuration, so it can be shared.
#[derive(Debug, Clone)]
pub struct MefClient {
    config: Config,
}

impl MefClient {
    /// A client for `config`.
    pub fn new(config: Config) -> MefClient {
        MefClient { config }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Initial Certificate Provisioning (TS-0003 8.3.6.2.2): on success the new certificate,
    /// its key and the MEF CA trust anchors are installed in `store`, together.
    pub fn provision(
        &self,
        auth: &InitialAuth,
        store: &mut dyn CredentialStore,
        key: KeySource,
    ) -> Result<Provisioned> {
        crate::certprov::verify_config(&self.config)?;
        self.refuse_up_front(store, &key)?;
        let conn = match auth {
            InitialAuth::Certificate {
                trust_anchors,
                client,
            } => self.connect(trust_anchors, Some(client.clone()))?,
            InitialAuth::Psk(credential) => self.connect_psk(credential)?,
        };
        let tls_anchors = match auth {
            InitialAuth::Certificate { trust_anchors, .. } => Some(trust_anchors.as_slice()),
            InitialAuth::Psk(_) => None,
        };
        self.run(&conn, store, key, Enrol::Initial, None, tls_anchors)
    }

    /// Certificate Re-Provisioning (TS-0003 8.3.6.2.3): authenticates with the credentials in
    /// `store` (pre-condition B/C) and replaces them only on success; on failure they stay
    /// current and usable.
    pub fn reprovision(
        &self,
        store: &mut dyn CredentialStore,
        mode: Reprovision,
    ) -> Result<Provisioned> {
        crate::certprov::verify_config(&self.config)?;
        let current = store.load()?.ok_or_else(|| Error::NotProvisioned {
            reason: "the credential store holds no certificate".into(),
        })?;
        if current.trust_anchors.is_empty() {
            return Err(Error::NotProvisioned {
                reason: "the credential store holds no trust anchors".into(),
            });
        }
        let identity = ClientIdentity {
            chain: current.chain.clone(),
            key: current.key.clone(),
        };
        let key = match mode {
            Reprovision::Renew => KeySource::Existing(current.key.clone()),
            Reprovision::Rekey => KeySource::Generate,
            Reprovision::ServerKeygen => KeySource::ServerGenerated,
        };
        self.refuse_up_front(store, &key)?;
        let conn = self.connect(&current.trust_anchors, Some(identity))?;
        self.run(
            &conn,
            store,
            key,
            Enrol::Re,
            Some(&current),
            Some(&current.trust_anchors),
        )
    }

    /// `/cacerts` on its own (RFC 7030 4.1), validated as CA certificates, not installed.
    /// Over a certificate channel the client identity is optional (RFC 7030 4.1.1 lets a
    /// server answer without client authentication) and the answer must be authorised by the
    /// trust anchors; over TLS-PSK (PPSK-based RSPF) the PSK-authenticated channel makes it
    /// authentic (RFC 7030 4.1.1).
    pub fn cacerts(&self, channel: Channel<'_>) -> Result<Vec<CertificateDer<'static>>> {
        match channel {
            Channel::Certificate {
                trust_anchors,
                client,
            } => {
                let conn = self.connect(trust_anchors, client)?;
                let certs = conn.cacerts()?;
                validate_ca_certs_for(
                    &certs,
                    trust_anchors,
                    &conn.server_certificates(),
                    UnixTime::now(),
                )
            }
            Channel::Psk(credential) => {
                validate_ca_certs(&self.connect_psk(credential)?.cacerts()?)
            }
        }
    }

    /// `/csrattrs` on its own (RFC 7030 4.5), interpreted. `None` when the server has none
    /// (204 or 404).
    pub fn csrattrs(&self, channel: Channel<'_>) -> Result<Option<CsrRequirements>> {
        self.csrattrs_items(channel)?
            .map(|items| {
                CsrRequirements::from_items(&items)
                    .map_err(decode_error(crate::Operation::CsrAttrs))
            })
            .transpose()
    }

    /// `/csrattrs` on its own (RFC 7030 4.5), decoded but not interpreted (for callers that
    /// hand the attributes on, e.g. the C API). `None` when the server has none (204 or 404).
    pub fn csrattrs_items(
        &self,
        channel: Channel<'_>,
    ) -> Result<Option<Vec<crate::proto::csrattrs::AttrOrOid>>> {
        match channel {
            Channel::Certificate {
                trust_anchors,
                client,
            } => self.connect(trust_anchors, client)?.csrattrs(),
            Channel::Psk(credential) => self.connect_psk(credential)?.csrattrs(),
        }
    }

    /// What `store` cannot hold is refused before any network I/O, as a bad argument: a key
    /// from `/serverkeygen` or the caller for a store that keeps keys in a token, a configured
    /// key algorithm it cannot generate. Only the algorithm /csrattrs requires is left for
    /// later (step 3, before any key is made).
    fn refuse_up_front(&self, store: &dyn CredentialStore, key: &KeySource) -> Result<()> {
        let plan = match key {
            KeySource::Generate => KeyPlan::Generate(self.config.key_algorithm),
            KeySource::Existing(key) => KeyPlan::Existing(key.as_ref()),
            KeySource::ServerGenerated => KeyPlan::ServerGenerated,
        };
        match store.cannot_hold(plan) {
            Some(reason) => Err(Error::invalid("key", reason)),
            None => Ok(()),
        }
    }

    /// A certificate-authenticated connection in the configured TLS profile. Everything the
    /// stacks can refuse without I/O (anchors, identity, a build without OpenSSL) is refused
    /// here, before any connection is made.
    fn connect(
        &self,
        trust_anchors: &[CertificateDer<'static>],
        client: Option<ClientIdentity>,
    ) -> Result<EstConnection> {
        match self.config.tls_profile {
            TlsProfile::Modern => {
                let tls = client_config(trust_anchors, client, &self.config.base_uri)?;
                EstConnection::new(&self.config.base_uri, tls, &self.config.transport)
            }
            TlsProfile::Ts0003 => self.connect_ts0003(trust_anchors, client.as_ref()),
        }
    }

    /// The ts0003 profile (TS-0003 10.2.1/10.2.3) over OpenSSL, same server verifier.
    #[cfg(feature = "psk")]
    fn connect_ts0003(
        &self,
        trust_anchors: &[CertificateDer<'static>],
        client: Option<&ClientIdentity>,
    ) -> Result<EstConnection> {
        let stack =
            crate::ts0003::OpenSslCertStack::new(trust_anchors, client, &self.config.base_uri)?;
        EstConnection::with_stack(
            &self.config.base_uri,
            std::sync::Arc::new(stack),
            &self.config.transport,
        )
    }

    #[cfg(not(feature = "psk"))]
    fn connect_ts0003(
        &self,
        _trust_anchors: &[CertificateDer<'static>],
        _client: Option<&ClientIdentity>,
    ) -> Result<EstConnection> {
        Err(Error::invalid(
            "tls profile",
            crate::ts0003::OPENSSL_MISSING,
        ))
    }

    /// A connection authenticated by the PSK (TS-0003 8.3.2.1) over the OpenSSL stack.
    #[cfg(feature = "psk")]
    fn connect_psk(&self, credential: &PskCredential) -> Result<EstConnection> {
        let stack = crate::psk::OpenSslPskStack::new(credential)?;
        EstConnection::with_stack(
            self.config
                .psk_base_uri
                .as_ref()
                .unwrap_or(&self.config.base_uri),
            std::sync::Arc::new(stack),
            &self.config.transport,
        )
    }

    #[cfg(not(feature = "psk"))]
    fn connect_psk(&self, _credential: &PskCredential) -> Result<EstConnection> {
        Err(Error::invalid(
            "psk",
            "this build of onem2m-est has no TLS-PSK support (PPSK-based RSPF): rebuild with \
             the cargo feature `psk`",
        ))
    }

    /// Steps 1 to 3 of 8.3.6.2.2 / 8.3.6.2.3 on an established connection. `tls_anchors`: the
    /// explicit trust anchors the connection's TLS server verifier was built with (`None` over
    /// TLS-PSK).
    fn run(
        &self,
        conn: &EstConnection,
        store: &mut dyn CredentialStore,
        key_source: KeySource,
        enrol: Enrol,
        current: Option<&Credentials>,
        tls_anchors: Option<&[CertificateDer<'static>]>,
    ) -> Result<Provisioned> {
        // Step 1: the MEF CA certificates become the explicit TA database (RFC 7030 4.1.3),
        // but only once everything else succeeded.
        // Root key rollover (RFC 7030 4.1.3): link certificates are checked against the
        // newest root, or a NewWithOld against the anchors the device holds now.
        let certs = conn.cacerts()?;
        let trust_anchors = validate_ca_certs_for(
            &certs,
            tls_anchors.unwrap_or_default(),
            &conn.server_certificates(),
            UnixTime::now(),
        )?;
        // The TLS verifier of this connection is the same check (EstServerVerifier: chain, then
        // host name or id-kp-cmcRA); over the same anchors it has accepted every chain seen so
        // far, and verifying them again would change nothing.
        let verified_by_tls = tls_anchors.is_some_and(|tls| same_certificates(tls, &trust_anchors));
        let chains_checked = if verified_by_tls {
            conn.server_certificates().len()
        } else {
            self.check_anchors_authorise_server(conn, &trust_anchors, 0)?
        };
        log::info!(
            "{}: /cacerts gave {} CA certificate(s)",
            self.config.base_uri,
            trust_anchors.len()
        );
        let trust_anchors = NewAnchors {
            certs: trust_anchors,
            chains_checked,
        };

        // Step 2: CSR attributes. 204/404 means the server has none (RFC 7030 4.5.2); a oneM2M
        // MEF always sends them, and will refuse a CSR without its challengePassword.
        let reqs = match conn.csrattrs()? {
            Some(items) => CsrRequirements::from_items(&items)
                .map_err(decode_error(crate::Operation::CsrAttrs))?,
            None => empty_requirements(),
        };
        // Re-enrolment keeps the subject, subjectAltName and extendedKeyUsage of the certificate
        // being renewed or rekeyed (RFC 7030 4.2.2; csr::build_reenrol_csr).
        let renewed = match (enrol, current.and_then(|c| c.chain.first())) {
            (Enrol::Re, Some(leaf)) => Some(CurrentCertificate::from_der(leaf.as_ref())?),
            _ => None,
        };
        let renewed = renewed.as_ref();
        let identity = self.config.identity.as_ref();
        log::info!(
            "/csrattrs: challengePassword {}, key {}, hash {}, {} extension(s), {} unrecognised",
            match reqs.challenge_password {
                crate::proto::csrattrs::ChallengePassword::NotRequested => "not requested",
                crate::proto::csrattrs::ChallengePassword::ChannelBinding => "as channel binding",
                crate::proto::csrattrs::ChallengePassword::Value(_) => "supplied",
            },
            reqs.key
                .map_or("not requested".into(), crate::keys::key_requirement_name),
            reqs.hash.map_or("not requested", crate::keys::hash_name),
            reqs.extensions.len(),
            reqs.unrecognized.len()
        );

        // What the CSR needs that does not depend on the key (identity, extensions,
        // challengePassword) is checked before any key is made or generated.
        crate::csr::check_reenrol_requirements(identity, &reqs, None, renewed)?;
        let build_csr = |key: &dyn PrivateKey| match renewed {
            Some(current) => build_reenrol_csr(key, identity, &reqs, None, current),
            None => build_csr(key, identity, &reqs, None),
        };

        // Step 3.
        match key_source {
            KeySource::ServerGenerated => {
                // The CSR of /serverkeygen only carries the request (RFC 7030 4.4.1); its key
                // proves nothing we keep, so it is an ephemeral software key, never stored.
                let alg = key_algorithm_for(reqs.key, reqs.hash, self.config.key_algorithm)?;
                let ephemeral = SoftwareKey::generate(alg)?;
                let csr = build_csr(&ephemeral)?;
                let response = conn.server_keygen(&csr.der)?;
                let key: Arc<dyn PrivateKey> = Arc::new(
                    SoftwareKey::from_server_key_der(&response.private_key_pkcs8).map_err(|e| {
                        Error::BadResponse {
                            operation: crate::Operation::ServerKeygen,
                            reason: format!("server-generated key unusable: {e}"),
                        }
                    })?,
                );
                let certs: Vec<CertificateDer<'static>> = response
                    .certificates
                    .into_iter()
                    .map(CertificateDer::from)
                    .collect();
                check_key_satisfies(key.as_ref(), &reqs).map_err(|e| {
                    Error::CertificateRejected {
                        reason: format!(
                            "server-generated key does not meet its own requirements: {e}"
                        ),
                    }
                })?;
                self.finish(conn, store, &certs, key, &csr.san, trust_anchors)
            }
            KeySource::Existing(key) => {
                check_key_satisfies(key.as_ref(), &reqs)?;
                let csr = build_csr(key.as_ref())?;
                let certs = enrol.send(conn, &csr.der)?;
                self.finish(conn, store, &certs, key, &csr.san, trust_anchors)
            }
            KeySource::Generate => {
                let alg = key_algorithm_for(reqs.key, reqs.hash, self.config.key_algorithm)?;
                // The MEF's requirement (RFC 7030 4.5.2) is known only now: refused before a
                // key is made and before /simpleenroll.
                if let Some(reason) = store.cannot_hold(KeyPlan::Generate(alg)) {
                    return Err(Error::Unsupported {
                        what: format!("the CSR attributes require a {alg} key: {reason}"),
                    });
                }
                let key = store.create_key(alg)?;
                let result = build_csr(key.as_ref())
                    .and_then(|csr| {
                        let certs = enrol.send(conn, &csr.der)?;
                        Ok((csr, certs))
                    })
                    .and_then(|(csr, certs)| {
                        self.finish(conn, store, &certs, key.clone(), &csr.san, trust_anchors)
                    });
                if let Err(e) = &result {
                    log::warn!("procedure failed, discarding the new key: {e}");
                    store.discard_key(&key);
                }
                result
            }
        }
    }

    /// Step 3.f: validate, then install everything at once.
    fn finish(
        &self,
        conn: &EstConnection,
        store: &mut dyn CredentialStore,
        certs: &[CertificateDer<'static>],
        key: Arc<dyn PrivateKey>,
        expected_san: &[crate::proto::san::GeneralName],
        anchors: NewAnchors,
    ) -> Result<Provisioned> {
        let trust_anchors = anchors.certs;
        let now = UnixTime::since_unix_epoch(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let issued = validate_issued(certs, key.as_ref(), expected_san, &trust_anchors, now)?;
        // The certificate profile this client claims (TS-0003 10.1.1.3), before anything is
        // installed.
        check_chain_algorithms(&issued.chain, self.config.key_algorithm)?;
        // Again, for servers met on later connections of this procedure (the chains checked in
        // step 1 against these same anchors are not verified twice).
        self.check_anchors_authorise_server(conn, &trust_anchors, anchors.chains_checked)?;
        let credentials = Credentials {
            trust_anchors: trust_anchors.clone(),
            chain: issued.chain.clone(),
            key,
        };
        store.install(&credentials)?;
        log::info!(
            "installed the provisioned certificate and {} trust anchor(s) ({} TLS handshake(s))",
            trust_anchors.len(),
            conn.handshakes()
        );
        Ok(Provisioned {
            chain: issued.chain,
            trust_anchors,
            not_after: issued.not_after,
            connection: ConnectionStats {
                handshakes: conn.handshakes(),
                bytes_written: conn.bytes_written(),
                bytes_read: conn.bytes_read(),
                cipher_suite: conn.cipher_suite(),
            },
        })
    }
}

impl MefClient {
    /// RFC 7030 4.1.3 and 3.6.1: the /cacerts answer becomes the explicit TA database that
    /// authenticates the MEF from now on, so it must authorise the server that sent it: every
    /// server certificate this procedure's connections saw, under the same rules as the TLS
    /// verifier (chain, then host name or id-kp-cmcRA). Otherwise the device would install
    /// anchors under which it can never reach its MEF again, or that hand it over to whoever
    /// holds the other CA. Over TLS-PSK no certificate is presented: the PSK authenticated the
    /// answer (RFC 7030 4.1.1), so there is nothing to check.
    ///
    /// The first `from` chains (of [`EstConnection::server_certificates`], which only grows)
    /// were already checked against these anchors. Returns how many chains are now checked.
    fn check_anchors_authorise_server(
        &self,
        conn: &EstConnection,
        trust_anchors: &[CertificateDer<'static>],
        from: usize,
    ) -> Result<usize> {
        use rustls::client::danger::ServerCertVerifier;
        let refused = |reason: String| Error::BadResponse {
            operation: crate::Operation::CaCerts,
            reason: format!(
                "the CA certificates do not authorise the EST server that sent them \
                 (RFC 7030 4.1.3, 3.6.1): {reason}"
            ),
        };
        let chains = conn.server_certificates();
        if chains.len() <= from {
            return Ok(chains.len());
        }
        let verifier = crate::tls::EstServerVerifier::new(trust_anchors, &self.config.base_uri)
            .map_err(|e| refused(e.to_string()))?;
        let name = self.config.base_uri.server_name();
        for chain in &chains[from..] {
            let Some((end_entity, intermediates)) = chain.split_first() else {
                continue;
            };
            verifier
                .verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now())
                .map_err(|e| refused(crate::tls::map_rustls_error(&e).to_string()))?;
        }
        Ok(chains.len())
    }
}

/// The trust anchors from `/cacerts` (step 1), and how many of the connection's server chains
/// were already checked against them.
struct NewAnchors {
    certs: Vec<CertificateDer<'static>>,
    chains_checked: usize,
}

#[derive(Debug, Clone, Copy)]
enum Enrol {
    Initial,
    Re,
}

impl Enrol {
    fn send(self, conn: &EstConnection, csr: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
        match self {
            Enrol::Initial => conn.simple_enroll(csr),
            Enrol::Re => conn.simple_reenroll(csr),
        }
    }
}

fn empty_requirements() -> CsrRequirements {
    CsrRequirements {
        challenge_password: crate::proto::csrattrs::ChallengePassword::NotRequested,
        extensions: Vec::new(),
        key: None,
        hash: None,
        unrecognized: Vec::new(),
    }
}

/// Whether two certificate lists hold the same certificates (DER), in any order.
fn same_certificates(a: &[CertificateDer<'_>], b: &[CertificateDer<'_>]) -> bool {
    a.iter().all(|c| b.contains(c)) && b.iter().all(|c| a.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that holds `installed` and counts its loads.
    struct Installed(Option<Vec<CertificateDer<'static>>>, std::cell::Cell<u32>);

    impl CredentialStore for Installed {
        fn load(&self) -> Result<Option<Credentials>> {
            self.1.set(self.1.get() + 1);
            Ok(self.0.clone().map(|trust_anchors| Credentials {
                trust_anchors,
                chain: vec![],
                key: Arc::new(SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap()),
            }))
        }
        fn install(&mut self, _: &Credentials) -> Result<()> {
            unreachable!("queries install nothing")
        }
    }

    #[test]
    fn query_trust_anchors_are_the_configured_else_the_installed() {
        let configured = [CertificateDer::from(vec![1u8])];
        let installed = vec![CertificateDer::from(vec![2u8])];
        let store = Installed(Some(installed.clone()), Default::default());
        let got = query_trust_anchors(Some(&configured), &store).unwrap();
        assert_eq!(got, configured);
        assert_eq!(
            store.1.get(),
            0,
            "the store is not read when anchors are configured"
        );
        assert_eq!(query_trust_anchors(None, &store).unwrap(), installed);
        let err = query_trust_anchors(None, &Installed(None, Default::default())).unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::BadArguments, "{err}");
    }
}
