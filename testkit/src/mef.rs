//! The reference MEF (`onem2m-mef`) started in-process on 127.0.0.1, trusting a manufacturer CA,
//! with the manufacturer's device registered as a CSE (TS-0003 8.3.6.2 pre-conditions B.ii.2
//! and the MEF's Enrolment Target association).

use crate::pki::Manufacturer;
use onem2m_est::client::InitialAuth;
use onem2m_est::store::{CredentialStore, Credentials};
use onem2m_est::transport::TransportConfig;
use onem2m_mef::{Mef, MefConfig, RunningMef, SubjectType};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

/// The CSE-ID the MEF associates with the manufacturer's device.
pub const CSE_ID: &str = "cse01.sp.example.com";

impl Manufacturer {
    /// A MEF configuration with its data in `data_dir` that trusts this manufacturer's CA for
    /// client certificates.
    pub fn mef_config(&self, data_dir: &Path) -> MefConfig {
        let mut config = MefConfig::new(data_dir);
        config.client_trust = vec![self.ca_cert.clone()];
        config
    }

    /// Starts a MEF with `config` and registers this manufacturer's device as CSE [`CSE_ID`].
    pub fn start_mef(&self, config: MefConfig) -> RunningMef {
        let mef = Mef::start(config).expect("the MEF starts");
        mef.add_identity(self.device_cert.as_ref(), SubjectType::Cse, CSE_ID)
            .expect("the device is registered");
        mef
    }
}

/// A MEF configuration with its data in `data_dir` and a TLS-PSK listener on 127.0.0.1 at a
/// port the OS picks.
pub fn psk_mef_config(data_dir: &Path) -> MefConfig {
    let mut config = MefConfig::new(data_dir);
    config.psk_listen = Some("127.0.0.1:0".parse().expect("a socket address"));
    config
}

/// Starts a MEF with `config` and registers the Kpm `kpm` under the KpmID `kpm_id` for the CSE
/// [`CSE_ID`] (PPSK-based RSPF, TS-0003 8.3.2.1).
pub fn start_psk_mef(config: MefConfig, kpm_id: &str, kpm: &[u8]) -> RunningMef {
    let mef = Mef::start(config).expect("the MEF starts");
    mef.add_psk(kpm_id, kpm, SubjectType::Cse, CSE_ID)
        .expect("the Kpm is registered");
    mef
}

/// The transport of clients of an in-process MEF: 5 s to connect and for the TLS handshake,
/// 10 s for a response (a loaded CI machine), the default polling policy.
pub fn transport() -> TransportConfig {
    crate::server::test_transport(
        Duration::from_secs(5),
        Duration::from_secs(10),
        onem2m_est::transport::PollPolicy::default(),
    )
}

/// A running MEF, the manufacturer whose device it knows, and a scratch directory (the MEF's
/// data is in `dir/mef`; tests put their own files beside it). The MEF stops when dropped.
pub struct MefFixture {
    pub mef: RunningMef,
    pub maker: Manufacturer,
    pub dir: TempDir,
}

impl MefFixture {
    /// A MEF trusting the manufacturer `name` ([`Manufacturer::new`]).
    pub fn start(name: &str) -> MefFixture {
        Self::start_with(name, |_| {})
    }

    /// Like [`MefFixture::start`], with `tweak` applied to the MEF's configuration.
    pub fn start_with(name: &str, tweak: impl FnOnce(&mut MefConfig)) -> MefFixture {
        let dir = TempDir::new().expect("scratch directory");
        let maker = Manufacturer::new(name);
        let mut config = maker.mef_config(&dir.path().join("mef"));
        tweak(&mut config);
        let mef = maker.start_mef(config);
        MefFixture { mef, maker, dir }
    }

    /// `name` in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Third-party certificate authentication (TS-0003 8.3.6.2 B.ii.2): the MEF's CA as the
    /// only trust anchor, the device's certificate and key as the client identity.
    pub fn auth(&self) -> InitialAuth {
        InitialAuth::Certificate {
            trust_anchors: vec![self.mef.ca_cert_der()],
            client: self.maker.identity(),
        }
    }
}

/// A credential store in memory, for clients whose installation on disk is not what a test or
/// benchmark is about (the file system's fsyncs are measured with a `FileStore` where they are).
#[derive(Default)]
pub struct MemStore(pub Option<Credentials>);

impl CredentialStore for MemStore {
    fn load(&self) -> onem2m_est::Result<Option<Credentials>> {
        Ok(self.0.clone())
    }

    fn install(&mut self, credentials: &Credentials) -> onem2m_est::Result<()> {
        self.0 = Some(credentials.clone());
        Ok(())
    }
}
