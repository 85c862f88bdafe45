//! Where provisioned credentials live: the [`CredentialStore`] trait, the default
//! [`FileStore`] (a directory of PEM files installed atomically as a set), and PEM helpers.
//!
//! CR 8.3.Z.2.2 step 1c and 3f: the MEF Client installs the trust anchor CA certificates and
//! the issued certificate "and associates it with the corresponding private key". The three
//! must change together: a device left with a new certificate and an old key (or new trust
//! anchors and an old certificate) could no longer re-provision (8.3.Z.2.3 pre-condition B).

use crate::error::{Error, Result};
use crate::keys::{KeyAlgorithm, PrivateKey, SoftwareKey};
use rustls_pki_types::CertificateDer;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A complete credential set.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The explicit trust anchor database (RFC 7030 3.6.1), from /cacerts.
    pub trust_anchors: Vec<CertificateDer<'static>>,
    /// The client certificate first, then its issuers.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key of the client certificate.
    pub key: Arc<dyn PrivateKey>,
}

/// Storage for credentials, replaceable by a caller whose keys live in an HSM, a TPM or a
/// secure element.
pub trait CredentialStore: Send {
    /// The current credentials, or `None` if nothing was ever installed.
    fn load(&self) -> Result<Option<Credentials>>;

    /// Creates a new key pair for a CSR (CR 8.3.Z.2.2 step 3a). The default generates a
    /// [`SoftwareKey`].
    fn create_key(&mut self, algorithm: KeyAlgorithm) -> Result<Arc<dyn PrivateKey>> {
        Ok(Arc::new(SoftwareKey::generate(algorithm)?))
    }

    /// Makes `credentials` current, atomically: all of it becomes current, or nothing
    /// changes.
    fn install(&mut self, credentials: &Credentials) -> Result<()>;

    /// Releases a key from [`CredentialStore::create_key`] that the procedure did not install
    /// (it failed after creating the key). The default does nothing.
    fn discard_key(&mut self, key: &Arc<dyn PrivateKey>) {
        let _ = key;
    }

    /// Why this store cannot hold the key `plan` describes, or `None` when it can. The
    /// procedures ask before any network I/O (with the configured key algorithm), and again,
    /// before any key is made, with the algorithm /csrattrs requires. The default holds any key.
    fn cannot_hold(&self, plan: KeyPlan<'_>) -> Option<String> {
        let _ = plan;
        None
    }
}

/// The key a procedure will install, as [`CredentialStore::cannot_hold`] is asked about it.
#[derive(Debug, Clone, Copy)]
pub enum KeyPlan<'a> {
    /// A new key pair of this algorithm from [`CredentialStore::create_key`].
    Generate(KeyAlgorithm),
    /// A key pair the caller supplies.
    Existing(&'a dyn PrivateKey),
    /// A key pair the MEF generates (`/serverkeygen`, RFC 7030 4.4), installed from memory.
    ServerGenerated,
}

/// File name of the certificate chain (leaf first), PEM.
pub const CERT_FILE: &str = "cert.pem";
/// File name of the private key, PKCS #8 PEM, mode 0600.
pub const KEY_FILE: &str = "key.pem";
/// File name recording, instead of [`KEY_FILE`], the RFC 7512 URI of a key held in a PKCS #11
/// token ([`PrivateKey::pkcs11_uri`]): the key itself never reaches the disk.
pub const KEY_URI_FILE: &str = "key.uri";
/// File name of the trust anchors, PEM.
pub const TRUST_ANCHORS_FILE: &str = "trust-anchors.pem";
/// The symlink (Unix) or pointer file (elsewhere) naming the current generation.
const CURRENT: &str = "current";
const GEN_PREFIX: &str = ".gen-";
const FILES: [&str; 3] = [CERT_FILE, KEY_FILE, TRUST_ANCHORS_FILE];

// Fault injection for tests, with the `test-hooks` feature only (the workspace's tests enable it
// through dev-dependency features; a normal build has no way to make an install fail).
#[cfg(feature = "test-hooks")]
pub use failpoints::{FailPoint, Fault};
#[cfg(not(feature = "test-hooks"))]
use failpoints::{FailPoint, Fault};

#[cfg_attr(not(any(test, feature = "test-hooks")), allow(dead_code))]
mod failpoints {
    /// Fault injection for tests (`test-hooks` feature): a step of [`crate::store::FileStore`]'s install at
    /// which `FileStore::inject_fault` makes it fail.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum FailPoint {
        /// Creating the new generation directory.
        CreateGeneration,
        /// After the key file of the new generation is written.
        AfterKey,
        /// After the certificate file of the new generation is written.
        AfterCert,
        /// After every file of the new generation is written and synced.
        AfterFiles,
        /// After the temporary `current` link (pointer file off Unix) is created, before it
        /// replaces `current`.
        BeforeSwap,
        /// After the new generation became `current`, before the store directory (the pointer
        /// file off Unix) is synced.
        AfterSwap,
    }

    impl FailPoint {
        /// Every point of the install, in order.
        pub const ALL: &'static [FailPoint] = &[
            FailPoint::CreateGeneration,
            FailPoint::AfterKey,
            FailPoint::AfterCert,
            FailPoint::AfterFiles,
            FailPoint::BeforeSwap,
            FailPoint::AfterSwap,
        ];
    }

    /// Fault injection for tests (`test-hooks` feature): how the step fails.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Fault {
        /// The process dies here: the install stops without any clean-up.
        Crash,
        /// The step's system call fails with ENOSPC (disk full); the install cleans up as usual.
        DiskFull,
        /// The step's system call fails with EACCES (permission denied); the install cleans up.
        PermissionDenied,
    }
}

/// The default credential store: a directory of PEM files.
///
/// ```text
/// DIR/cert.pem           -> current/cert.pem           (leaf, then chain)
/// DIR/key.pem            -> current/key.pem            (PKCS #8, mode 0600)
/// DIR/trust-anchors.pem  -> current/trust-anchors.pem
/// DIR/current            -> .gen-<n>                   (the installed set)
/// DIR/.gen-<n>/{cert.pem,key.pem,trust-anchors.pem}
/// ```
///
/// Installation (Unix) writes a new generation directory (every file fsynced, then the
/// directory), then replaces the `current` symlink with one naming it in a single
/// `rename(2)` and fsyncs `DIR`: a crash leaves either the old or the new complete set. The
/// top-level names are convenience links into `current/`; older generations are removed.
///
/// Loading reads `DIR/current/` when `current` exists, else plain files `DIR/cert.pem`,
/// `DIR/key.pem`, `DIR/trust-anchors.pem` (a directory prepared by hand, e.g. third-party
/// credentials for the initial provisioning), and checks the key matches the certificate.
///
/// On other platforms (Windows: no unprivileged symlinks, no directory fsync) `current` is a
/// pointer file holding the generation's name (`.gen-<n>`). Installation writes the new
/// generation as above, writes and flushes `.current.tmp` naming it, and replaces `current`
/// with it in one `std::fs::rename` (`MoveFileExW(MOVEFILE_REPLACE_EXISTING)`, an atomic
/// replace on NTFS), then flushes `current` (`FlushFileBuffers`) before older generations
/// are removed: a crash leaves `current` naming the old or the new complete set. Loading
/// reads the pointer once and then every file from that generation. The top-level files are
/// copies of the current generation's, refreshed after each install, and the key file's
/// protection comes from the directory's ACL (there is no mode 0600).
///
/// One process installs into a directory at a time (a store is used through `&mut`); loads may
/// run concurrently with an install.
///
/// The store holds keys with a PKCS #8 encoding ([`PrivateKey::pkcs8_der`]) in `key.pem`; for
/// a key in a PKCS #11 token ([`PrivateKey::pkcs11_uri`]) a generation holds `key.uri` instead,
/// which only a store that can open the token loads (`pkcs11::Pkcs11Store`). Other keys held
/// outside the process need a store of their own.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    fail_at: Option<(FailPoint, Fault)>,
}

fn store_error(operation: &'static str, reason: impl Into<String>) -> Error {
    Error::store(operation, reason)
}

/// An I/O failure on `path`: the error and the path are kept (source, `path`), and the reason
/// says what was being done.
fn io_error(operation: &'static str, path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Store {
        operation,
        reason: format!("{}: {what}: {e}", path.display()),
        path: Some(path.to_path_buf()),
        source: Some(e),
    }
}

impl FileStore {
    /// A store in `dir`, created (mode 0700) on the first install. Nothing is read or
    /// written here; an existing `dir` that is not a directory is an [`Error::Store`].
    pub fn new(dir: impl Into<PathBuf>) -> Result<FileStore> {
        let dir = dir.into();
        if dir.exists() && !dir.is_dir() {
            return Err(store_error(
                "open",
                format!("{}: not a directory", dir.display()),
            ));
        }
        Ok(FileStore { dir, fail_at: None })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fault injection for tests (`test-hooks` feature): the next installs fail at `at` the
    /// way `fault` says; `None` stops injecting.
    #[cfg(feature = "test-hooks")]
    pub fn inject_fault(&mut self, fault: Option<(FailPoint, Fault)>) {
        self.fail_at = fault;
    }

    fn check_fail_point(&self, at: FailPoint, path: &Path) -> Result<()> {
        use std::io::{Error as IoError, ErrorKind};
        match self.fail_at {
            Some((point, fault)) if point == at => Err(match fault {
                Fault::Crash => store_error("install", format!("injected crash at {at:?}")),
                Fault::DiskFull => io_error(
                    "install",
                    path,
                    "cannot write",
                    IoError::new(ErrorKind::StorageFull, "no space left on device (injected)"),
                ),
                Fault::PermissionDenied => io_error(
                    "install",
                    path,
                    "cannot write",
                    IoError::new(ErrorKind::PermissionDenied, "permission denied (injected)"),
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Whether an injected crash is in effect (a crash leaves its debris: no clean-up).
    fn crash_injected(&self) -> bool {
        matches!(self.fail_at, Some((_, Fault::Crash)))
    }

    /// The directory holding the set to load, if any.
    ///
    /// `current` is resolved once, so every file is read from the same generation even if an
    /// install swaps `current` meanwhile (the old generation then vanishes and the read fails
    /// rather than mixing two sets).
    fn source_dir(&self) -> Result<Option<PathBuf>> {
        let current = self.dir.join(CURRENT);
        #[cfg(not(unix))]
        if fs::symlink_metadata(&current).is_ok() {
            let name = self.current_target().ok_or_else(|| {
                store_error(
                    "load",
                    format!("{}: not a generation pointer", current.display()),
                )
            })?;
            let resolved = self.dir.join(name);
            return if resolved.is_dir() {
                Ok(Some(resolved))
            } else {
                Err(store_error(
                    "load",
                    format!(
                        "{}: names {}, which is not a directory",
                        current.display(),
                        resolved.display()
                    ),
                ))
            };
        }
        #[cfg(unix)]
        if fs::symlink_metadata(&current).is_ok() {
            return match fs::canonicalize(&current) {
                Ok(resolved) if resolved.is_dir() => Ok(Some(resolved)),
                Ok(_) => Err(store_error(
                    "load",
                    format!("{}: not a directory", current.display()),
                )),
                Err(e) => Err(io_error("load", &current, "cannot resolve", e)),
            };
        }
        if FILES
            .iter()
            .any(|f| fs::symlink_metadata(self.dir.join(f)).is_ok())
        {
            return Ok(Some(self.dir.clone()));
        }
        Ok(None)
    }

    /// The name of the generation `current` names, if it names one: the symlink's target
    /// (Unix) or the pointer file's `.gen-<n>` (elsewhere; anything else is not a pointer).
    #[cfg(unix)]
    fn current_target(&self) -> Option<PathBuf> {
        fs::read_link(self.dir.join(CURRENT)).ok()
    }

    #[cfg(not(unix))]
    fn current_target(&self) -> Option<PathBuf> {
        let text = fs::read_to_string(self.dir.join(CURRENT)).ok()?;
        let name = text.strip_suffix('\n').unwrap_or(&text);
        let n = name.strip_prefix(GEN_PREFIX)?;
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| PathBuf::from(name))
    }

    /// The current generation's directory: through the `current` symlink (Unix) or the
    /// generation the pointer file names (elsewhere; `DIR/current` itself when it names none).
    pub(crate) fn current_dir(&self) -> PathBuf {
        #[cfg(not(unix))]
        if let Some(name) = self.current_target() {
            return self.dir.join(name);
        }
        self.dir.join(CURRENT)
    }

    /// Generation numbers of the entries `DIR/<prefix><n>`.
    fn generations(&self, prefix: &str) -> Result<Vec<(u64, PathBuf)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("install", &self.dir, "cannot list", e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error("install", &self.dir, "cannot list", e))?;
            let name = entry.file_name();
            if let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|n| n.parse::<u64>().ok())
            {
                out.push((n, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Writes the set into a new generation directory; returns its name.
    fn write_generation(&self, credentials: &Credentials, key: &KeyRecord) -> Result<String> {
        let next = self
            .generations(GEN_PREFIX)?
            .last()
            .map_or(1, |(n, _)| n + 1);
        let name = format!("{GEN_PREFIX}{next}");
        let gen_dir = self.dir.join(&name);
        self.check_fail_point(FailPoint::CreateGeneration, &gen_dir)?;
        create_private_dir(&gen_dir)?;
        write_file(&gen_dir.join(key.file_name()), key.contents(), key.secret())?;
        // The two PEM files, each after the fail point that follows the file written before it.
        for (fail_point, file, certs) in [
            (FailPoint::AfterKey, CERT_FILE, &credentials.chain),
            (
                FailPoint::AfterCert,
                TRUST_ANCHORS_FILE,
                &credentials.trust_anchors,
            ),
        ] {
            let path = gen_dir.join(file);
            self.check_fail_point(fail_point, &path)?;
            write_file(&path, certs_to_pem(certs).as_bytes(), false)?;
        }
        sync_dir(&gen_dir)?;
        self.check_fail_point(FailPoint::AfterFiles, &self.dir.join(".current.tmp"))?;
        Ok(name)
    }

    /// Makes generation `name` current (Unix: one rename of a symlink).
    #[cfg(unix)]
    fn swap_current(&self, name: &str) -> Result<()> {
        let tmp = self.dir.join(".current.tmp");
        remove_if_exists(&tmp)?;
        std::os::unix::fs::symlink(name, &tmp)
            .map_err(|e| io_error("install", &tmp, "cannot create link", e))?;
        self.check_fail_point(FailPoint::BeforeSwap, &self.dir.join(CURRENT))?;
        let current = self.dir.join(CURRENT);
        fs::rename(&tmp, &current)
            .map_err(|e| io_error("install", &current, "cannot replace", e))?;
        self.sync_after_swap()
    }

    /// Syncs the store directory after the swap. The rename already made the new set current
    /// for every reader, and after a power loss the directory holds the old or the new
    /// `current`, both complete: a failure here is logged, not returned. Returning it would
    /// report a failed install that took effect, and the procedure would discard the key
    /// that is now current (CR 8.3.Z.2.2 step 3f: the key must stay with its certificate).
    fn sync_after_swap(&self) -> Result<()> {
        let synced = self
            .check_fail_point(FailPoint::AfterSwap, &self.dir)
            .and_then(|()| self.sync_swap());
        match synced {
            Err(e) if self.crash_injected() => Err(e),
            Err(e) => {
                log::warn!("credential store: installed, but not yet durable: {e}");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    /// Unix: the rename of `current` is durable once the store directory is synced.
    #[cfg(unix)]
    fn sync_swap(&self) -> Result<()> {
        sync_dir(&self.dir)
    }

    /// Makes generation `name` current (other platforms: a pointer file replaced by one
    /// rename, `MoveFileExW(MOVEFILE_REPLACE_EXISTING)` on Windows).
    #[cfg(not(unix))]
    fn swap_current(&self, name: &str) -> Result<()> {
        let tmp = self.dir.join(".current.tmp");
        remove_if_exists(&tmp)?;
        // Written and flushed before it can become `current`: never an empty pointer.
        write_file(&tmp, format!("{name}\n").as_bytes(), false)?;
        self.check_fail_point(FailPoint::BeforeSwap, &self.dir.join(CURRENT))?;
        let current = self.dir.join(CURRENT);
        fs::rename(&tmp, &current)
            .map_err(|e| io_error("install", &current, "cannot replace", e))?;
        self.sync_after_swap()
    }

    /// Windows cannot open a directory to flush it; FlushFileBuffers on the renamed pointer
    /// file commits its metadata (NTFS journals the rename) before older generations go.
    #[cfg(not(unix))]
    fn sync_swap(&self) -> Result<()> {
        let current = self.dir.join(CURRENT);
        fs::OpenOptions::new()
            .write(true)
            .open(&current)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error("install", &current, "cannot sync", e))
    }

    /// After a successful swap: top-level links and removal of older generations. Failures
    /// here do not undo the install, so they are logged, not returned.
    fn tidy(&self, current_name: &str) {
        #[cfg(unix)]
        for file in self.installed_files() {
            let link = self.dir.join(file);
            let target = Path::new(CURRENT).join(file);
            if fs::read_link(&link).is_ok_and(|t| t == target) {
                continue;
            }
            let tmp = self.dir.join(format!(".{file}.tmp"));
            let result = remove_if_exists(&tmp)
                .and_then(|()| {
                    std::os::unix::fs::symlink(&target, &tmp)
                        .map_err(|e| io_error("install", &tmp, "cannot create link", e))
                })
                .and_then(|()| {
                    fs::rename(&tmp, &link)
                        .map_err(|e| io_error("install", &link, "cannot replace", e))
                });
            if let Err(e) = result {
                log::warn!("credential store: {e}");
            }
        }
        // Without symlinks the top-level names are copies, each replaced by one rename.
        #[cfg(not(unix))]
        for file in self.installed_files() {
            let source = self.dir.join(current_name).join(file);
            let tmp = self.dir.join(format!(".{file}.tmp"));
            let result = remove_if_exists(&tmp)
                .and_then(|()| {
                    fs::read(&source)
                        .map(zeroize::Zeroizing::new)
                        .map_err(|e| io_error("install", &source, "cannot read", e))
                })
                .and_then(|contents| write_file(&tmp, &contents, file == KEY_FILE))
                .and_then(|()| {
                    fs::rename(&tmp, self.dir.join(file))
                        .map_err(|e| io_error("install", &tmp, "cannot rename", e))
                });
            if let Err(e) = result {
                log::warn!("credential store: {e}");
            }
        }
        let mut stale = Vec::new();
        if let Ok(gens) = self.generations(GEN_PREFIX) {
            stale.extend(gens);
        }
        // Keep what `current` names now (normally `current_name`).
        let keep = self
            .current_target()
            .and_then(|t| t.file_name().map(|n| n.to_owned()))
            .unwrap_or_else(|| current_name.into());
        for (_, path) in stale {
            if path.file_name().is_some_and(|n| n == keep) {
                continue;
            }
            if let Err(e) = fs::remove_dir_all(&path) {
                log::warn!(
                    "credential store: cannot remove old generation {}: {e}",
                    path.display()
                );
            }
        }
        if let Err(e) = sync_dir(&self.dir) {
            log::warn!("credential store: {e}");
        }
    }
}

/// What a generation holds for its key: the PKCS #8 PEM, or the URI of a key in a token.
enum KeyRecord {
    Pem(zeroize::Zeroizing<String>),
    Uri(String),
}

impl KeyRecord {
    fn file_name(&self) -> &'static str {
        match self {
            KeyRecord::Pem(_) => KEY_FILE,
            KeyRecord::Uri(_) => KEY_URI_FILE,
        }
    }
    fn contents(&self) -> &[u8] {
        match self {
            KeyRecord::Pem(pem) => pem.as_bytes(),
            KeyRecord::Uri(uri) => uri.as_bytes(),
        }
    }
    fn secret(&self) -> bool {
        matches!(self, KeyRecord::Pem(_))
    }
}

/// Opens the key a `key.uri` names (a PKCS #11 store passes one to [`FileStore::load_with`]).
pub(crate) type KeyUriOpener<'a> = &'a dyn Fn(&str) -> Result<Arc<dyn PrivateKey>>;

impl FileStore {
    /// The files of the current generation, for the top-level links: the key file it has
    /// (`key.pem` or `key.uri`); a top-level link to the other one is removed.
    fn installed_files(&self) -> Vec<&'static str> {
        let current = self.current_dir();
        let (key, other) = if fs::symlink_metadata(current.join(KEY_URI_FILE)).is_ok() {
            (KEY_URI_FILE, KEY_FILE)
        } else {
            (KEY_FILE, KEY_URI_FILE)
        };
        if let Err(e) = remove_if_exists(&self.dir.join(other)) {
            log::warn!("credential store: {e}");
        }
        vec![CERT_FILE, key, TRUST_ANCHORS_FILE]
    }

    /// The URI recorded in the current generation (a key this store installed), if any.
    #[cfg(feature = "pkcs11")]
    pub(crate) fn installed_key_uri(&self) -> Option<String> {
        let text = fs::read_to_string(self.current_dir().join(KEY_URI_FILE)).ok()?;
        Some(text.trim().to_string())
    }

    /// [`CredentialStore::load`], opening a `key.uri` with `open_uri`; without one, a set whose
    /// key is in a token is a [`Error::Store`] saying so.
    pub(crate) fn load_with(&self, open_uri: Option<KeyUriOpener>) -> Result<Option<Credentials>> {
        let Some(dir) = self.source_dir()? else {
            return Ok(None);
        };
        let read = |file: &str| -> Result<(PathBuf, String)> {
            let path = dir.join(file);
            match fs::read_to_string(&path) {
                Ok(text) => Ok((path, text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(store_error(
                    "load",
                    format!(
                        "{}: missing (an installed set has {CERT_FILE}, {KEY_FILE} and \
                         {TRUST_ANCHORS_FILE})",
                        path.display()
                    ),
                )),
                Err(e) => Err(io_error("load", &path, "cannot read", e)),
            }
        };
        let (cert_path, cert_text) = read(CERT_FILE)?;
        let chain = parse_pem_certs(&cert_text)
            .map_err(|e| store_error("load", format!("{}: {e}", cert_path.display())))?;
        let (ta_path, ta_text) = read(TRUST_ANCHORS_FILE)?;
        let trust_anchors = parse_pem_certs(&ta_text)
            .map_err(|e| store_error("load", format!("{}: {e}", ta_path.display())))?;
        let uri_path = dir.join(KEY_URI_FILE);
        let (key_path, key): (PathBuf, Arc<dyn PrivateKey>) =
            if fs::symlink_metadata(&uri_path).is_ok() {
                let uri = fs::read_to_string(&uri_path)
                    .map_err(|e| io_error("load", &uri_path, "cannot read", e))?;
                let open = open_uri.ok_or_else(|| {
                    store_error(
                        "load",
                        format!(
                            "{}: the key is held in a PKCS #11 token; open the store with its \
                             module and PIN (Pkcs11Store, `pkcs11` feature)",
                            uri_path.display()
                        ),
                    )
                })?;
                let key = open(uri.trim())
                    .map_err(|e| store_error("load", format!("{}: {e}", uri_path.display())))?;
                (uri_path, key)
            } else {
                let (key_path, key_text) = read(KEY_FILE)?;
                let key_text = zeroize::Zeroizing::new(key_text);
                let key = SoftwareKey::from_pem(&key_text)
                    .map_err(|e| store_error("load", format!("{}: {e}", key_path.display())))?;
                (key_path, Arc::new(key))
            };
        if !crate::keys::is_key_of(key.as_ref(), &chain[0]).unwrap_or(false) {
            return Err(store_error(
                "load",
                format!(
                    "{}: the private key does not match the certificate in {}",
                    key_path.display(),
                    cert_path.display()
                ),
            ));
        }
        Ok(Some(Credentials {
            trust_anchors,
            chain,
            key,
        }))
    }
}

impl CredentialStore for FileStore {
    fn load(&self) -> Result<Option<Credentials>> {
        self.load_with(None)
    }

    fn install(&mut self, credentials: &Credentials) -> Result<()> {
        let leaf = credentials
            .chain
            .first()
            .ok_or_else(|| store_error("install", "the certificate chain is empty"))?;
        if !crate::keys::is_key_of(credentials.key.as_ref(), leaf).unwrap_or(false) {
            return Err(store_error(
                "install",
                "the private key does not match the certificate",
            ));
        }
        let key_record = match (credentials.key.pkcs8_der(), credentials.key.pkcs11_uri()) {
            (Some(pkcs8), _) => KeyRecord::Pem(zeroize::Zeroizing::new(
                der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &pkcs8)
                    .map_err(|e| store_error("install", format!("cannot encode the key: {e}")))?,
            )),
            // A key in a PKCS #11 token: the generation records where it is (key.uri).
            (None, Some(uri)) => KeyRecord::Uri(uri),
            (None, None) => {
                return Err(store_error(
                    "install",
                    "the key is held outside the process (no PKCS #8, no PKCS #11 URI); a \
                     FileStore cannot store it",
                ))
            }
        };
        create_private_dir_all(&self.dir)?;

        let name = self
            .write_generation(credentials, &key_record)
            .inspect_err(|_| {
                if !self.crash_injected() {
                    self.remove_uncommitted(); // a simulated crash leaves its debris
                }
            })?;
        if let Err(e) = self.swap_current(&name) {
            if !self.crash_injected() {
                self.remove_uncommitted();
            }
            return Err(e);
        }
        self.tidy(&name);
        Ok(())
    }
}

impl FileStore {
    /// Removes generation directories that are not current (after a failed install).
    fn remove_uncommitted(&self) {
        let current = self.current_target();
        if let Ok(gens) = self.generations(GEN_PREFIX) {
            for (_, path) in gens {
                let is_current = current
                    .as_deref()
                    .is_some_and(|c| path.file_name() == c.file_name());
                if !is_current {
                    let _ = fs::remove_dir_all(&path);
                }
            }
        }
        let _ = fs::remove_file(self.dir.join(".current.tmp"));
    }
}

fn create_private_dir(path: &Path) -> Result<()> {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .map_err(|e| io_error("install", path, "cannot create directory", e))
}

fn create_private_dir_all(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .map_err(|e| io_error("install", path, "cannot create directory", e))
}

/// Creates `path` (which must not exist), writes `contents` and fsyncs it. Secret files are
/// created with mode 0600 from the start, so the key is never readable by others.
fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if secret { 0o600 } else { 0o644 });
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .map_err(|e| io_error("install", path, "cannot create", e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error("install", path, "cannot write", e))
}

/// fsync a directory so entries created or renamed in it are durable (Unix; elsewhere
/// directories cannot be opened for syncing and this does nothing).
fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("install", path, "cannot sync directory", e))?;
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("install", path, "cannot remove", e)),
    }
}

/// Why PEM text does not hold certificates.
#[derive(Debug, thiserror::Error)]
enum PemCertsError {
    #[error("malformed PEM: {0}")]
    Pem(#[source] pem::PemError),
    #[error("no CERTIFICATE block")]
    NoCertificate,
    #[error("certificate #{index} does not parse: {source}")]
    Certificate {
        index: usize,
        #[source]
        source: der::Error,
    },
}

/// The CERTIFICATE blocks of PEM text (other blocks are ignored); at least one.
fn parse_pem_certs(text: &str) -> Result<Vec<CertificateDer<'static>>, PemCertsError> {
    let blocks = pem::parse_many(text).map_err(PemCertsError::Pem)?;
    let certs: Vec<CertificateDer<'static>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| CertificateDer::from(b.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err(PemCertsError::NoCertificate);
    }
    for (i, cert) in certs.iter().enumerate() {
        crate::x509::parse_certificate(cert).map_err(|source| PemCertsError::Certificate {
            index: i + 1,
            source,
        })?;
    }
    Ok(certs)
}

/// The certificates of PEM text (CERTIFICATE blocks, in order; other blocks are ignored), at
/// least one, each parsed as X.509. Errors are [`Error::InvalidArgument`].
pub fn parse_certs_pem(text: &str) -> Result<Vec<CertificateDer<'static>>> {
    parse_pem_certs(text).map_err(|e| Error::invalid("certificates", e.to_string()))
}

/// Reads the certificates of a PEM file (CERTIFICATE blocks, in file order). Errors are
/// [`Error::InvalidArgument`] naming the file.
pub fn read_pem_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let text = fs::read_to_string(path).map_err(|e| {
        Error::invalid(
            "certificate file",
            format!("{}: cannot read: {e}", path.display()),
        )
    })?;
    parse_pem_certs(&text)
        .map_err(|e| Error::invalid("certificate file", format!("{}: {e}", path.display())))
}

/// Reads a private key PEM file (PKCS #8 "PRIVATE KEY" or SEC1 "EC PRIVATE KEY"). Errors are
/// [`Error::InvalidArgument`] naming the file (never its contents).
pub fn read_pem_key(path: impl AsRef<Path>) -> Result<SoftwareKey> {
    let path = path.as_ref();
    let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(|e| {
        Error::invalid("key file", format!("{}: cannot read: {e}", path.display()))
    })?);
    SoftwareKey::from_pem(&text)
        .map_err(|e| Error::invalid("key file", format!("{}: {e}", path.display())))
}

/// Certificates as concatenated PEM CERTIFICATE blocks (LF line endings).
pub fn certs_to_pem(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| {
            der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, c.as_ref())
                .expect("PEM encoding of an in-memory buffer cannot fail")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::test_pki::{LeafSpec, TestPki};

    const AE: &str = "https://sp.example.com/cse01/CAE01";

    fn credentials(pki: &TestPki) -> Credentials {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let leaf = pki.leaf(&key, &LeafSpec::uri(AE));
        Credentials {
            trust_anchors: vec![pki.root_der()],
            chain: vec![leaf, pki.intermediate_der()],
            key: Arc::new(key),
        }
    }

    fn assert_same(a: &Credentials, b: &Credentials) {
        assert_eq!(a.chain, b.chain);
        assert_eq!(a.trust_anchors, b.trust_anchors);
        assert_eq!(a.key.public_key_info(), b.key.public_key_info());
        assert_eq!(*a.key.pkcs8_der().unwrap(), *b.key.pkcs8_der().unwrap());
    }

    /// Generation directories (`.gen-<n>`).
    fn generation_dirs(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(GEN_PREFIX))
            .collect();
        names.sort();
        names
    }

    /// A store for the directory `creds` (not there yet) in a fresh temporary directory, which
    /// lives as long as the `TempDir` returned.
    fn new_store() -> (tempfile::TempDir, PathBuf, FileStore) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("creds");
        let store = FileStore::new(&dir).unwrap();
        (tmp, dir, store)
    }

    #[test]
    fn empty_store_loads_none() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(FileStore::new(tmp.path().join("absent"))
            .unwrap()
            .load()
            .unwrap()
            .is_none());
        assert!(FileStore::new(tmp.path())
            .unwrap()
            .load()
            .unwrap()
            .is_none());
    }

    #[test]
    fn install_then_load_round_trip() {
        let (_tmp, dir, mut store) = new_store();
        let pki = TestPki::new("store");
        let creds = credentials(&pki);
        store.install(&creds).unwrap();
        let loaded = store.load().unwrap().unwrap();
        assert_same(&creds, &loaded);
        // The top-level names are usable files for other tools.
        assert_eq!(read_pem_certs(dir.join(CERT_FILE)).unwrap(), creds.chain);
        assert_eq!(
            read_pem_certs(dir.join(TRUST_ANCHORS_FILE)).unwrap(),
            creds.trust_anchors
        );
        let key = read_pem_key(dir.join(KEY_FILE)).unwrap();
        assert_eq!(key.public_key_info(), creds.key.public_key_info());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_mode_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let (_tmp, dir, mut store) = new_store();
        store.install(&credentials(&TestPki::new("perm"))).unwrap();
        let mode = fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o077, 0, "store directory must be private");
    }

    #[test]
    fn second_install_replaces_and_removes_old_generation() {
        let (_tmp, dir, mut store) = new_store();
        let pki = TestPki::new("two");
        let first = credentials(&pki);
        let second = credentials(&pki);
        // `current` names the one generation left (a symlink on Unix, a pointer elsewhere).
        let expected = |n: &str| vec![n.to_string()];
        store.install(&first).unwrap();
        assert_eq!(generation_dirs(&dir), expected(".gen-1"));
        store.install(&second).unwrap();
        assert_same(&second, &store.load().unwrap().unwrap());
        assert_eq!(generation_dirs(&dir), expected(".gen-2"));
        // A fresh store on the same directory sees the same.
        assert_same(
            &second,
            &FileStore::new(&dir).unwrap().load().unwrap().unwrap(),
        );
    }

    #[test]
    fn crash_at_any_point_leaves_the_old_set() {
        let points = [
            FailPoint::AfterKey,
            FailPoint::AfterFiles,
            FailPoint::BeforeSwap,
        ];
        for at in points {
            let (_tmp, dir, mut store) = new_store();
            let pki = TestPki::new("crash");
            let old = credentials(&pki);
            let new = credentials(&pki);
            store.install(&old).unwrap();

            store.fail_at = Some((at, Fault::Crash));
            let err = store.install(&new).unwrap_err();
            assert!(matches!(err, Error::Store { .. }), "{at:?}: {err}");
            // Whatever the crash left, the old set is what loads, intact.
            let loaded = FileStore::new(&dir).unwrap().load().unwrap().unwrap();
            assert_same(&old, &loaded);

            // The next install succeeds and clears the debris.
            store.fail_at = None;
            store.install(&new).unwrap();
            assert_same(&new, &store.load().unwrap().unwrap());
            assert_eq!(generation_dirs(&dir).len(), 1, "{at:?}");
            assert!(!dir.join(".current.tmp").exists());
        }
    }

    /// A store error on an I/O failure keeps the io::Error (its source) and the path (#13).
    #[test]
    fn io_failures_keep_the_error_and_the_path() {
        let (_tmp, dir, mut store) = new_store();
        let pki = TestPki::new("io");
        store.fail_at = Some((FailPoint::BeforeSwap, Fault::DiskFull));
        let err = store.install(&credentials(&pki)).unwrap_err();
        let Error::Store { path, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            path.as_deref().is_some_and(|p| p.starts_with(&dir)),
            "{path:?}"
        );
        let source = std::error::Error::source(&err).expect("the I/O error is kept");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
        // The message quotes it once (a chain printer skips a cause its parent quotes).
        assert_eq!(err.to_string().matches("no space left").count(), 1, "{err}");
    }

    #[test]
    fn crash_on_first_install_leaves_nothing_loadable() {
        let (_tmp, _, mut store) = new_store();
        store.fail_at = Some((FailPoint::BeforeSwap, Fault::Crash));
        store
            .install(&credentials(&TestPki::new("first")))
            .unwrap_err();
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn refuses_mismatched_set() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = TestPki::new("mismatch");
        let mut creds = credentials(&pki);
        creds.key = Arc::new(SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap());
        let mut store = FileStore::new(tmp.path()).unwrap();
        let err = store.install(&creds).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Store {
                    operation: "install",
                    ..
                }
            ),
            "{err}"
        );
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn hand_prepared_directory_loads_and_mismatch_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let pki = TestPki::new("hand");
        let creds = credentials(&pki);
        fs::write(dir.join(CERT_FILE), certs_to_pem(&creds.chain)).unwrap();
        fs::write(
            dir.join(TRUST_ANCHORS_FILE),
            certs_to_pem(&creds.trust_anchors),
        )
        .unwrap();
        // A SEC1 key as OpenSSL writes it would do too; PKCS #8 here.
        let key = SoftwareKey::from_pkcs8_der(&creds.key.pkcs8_der().unwrap()).unwrap();
        fs::write(dir.join(KEY_FILE), key.to_pkcs8_pem().as_bytes()).unwrap();
        let mut store = FileStore::new(dir).unwrap();
        assert_same(&creds, &store.load().unwrap().unwrap());

        // Installing over plain files converts the directory to the generation layout.
        let next = credentials(&pki);
        store.install(&next).unwrap();
        assert_same(&next, &store.load().unwrap().unwrap());
        assert_eq!(read_pem_certs(dir.join(CERT_FILE)).unwrap(), next.chain);

        // A key that does not match the certificate is a Store error naming the file.
        let other = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let gen = dir.join(store.current_target().unwrap());
        fs::remove_file(gen.join(KEY_FILE)).unwrap();
        fs::write(gen.join(KEY_FILE), other.to_pkcs8_pem().as_bytes()).unwrap();
        match store.load() {
            Err(Error::Store {
                operation, reason, ..
            }) => {
                assert_eq!(operation, "load");
                assert!(
                    reason.contains(KEY_FILE) && reason.contains("does not match"),
                    "{reason}"
                );
                assert!(!reason.contains("PRIVATE KEY"));
            }
            other => panic!("expected a Store error, got {other:?}"),
        }
    }

    #[test]
    fn dangling_current_is_an_error_not_an_empty_store() {
        let (_tmp, dir, mut store) = new_store();
        store
            .install(&credentials(&TestPki::new("dangling")))
            .unwrap();
        let target = store.current_target().unwrap();
        fs::remove_dir_all(dir.join(target)).unwrap();
        match store.load() {
            Err(Error::Store {
                operation, reason, ..
            }) => {
                assert_eq!(operation, "load");
                assert!(reason.contains(CURRENT), "{reason}");
            }
            other => panic!("expected a Store error, got {other:?}"),
        }
    }

    #[test]
    fn incomplete_directory_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = TestPki::new("incomplete");
        fs::write(tmp.path().join(CERT_FILE), certs_to_pem(&[pki.root_der()])).unwrap();
        match FileStore::new(tmp.path()).unwrap().load() {
            Err(Error::Store { reason, .. }) => assert!(reason.contains("missing"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pem_helpers() {
        let tmp = tempfile::tempdir().unwrap();
        let pki = TestPki::new("pem");
        let certs = vec![pki.intermediate_der(), pki.root_der()];
        let path = tmp.path().join("c.pem");
        fs::write(&path, format!("# comment\n{}", certs_to_pem(&certs))).unwrap();
        assert_eq!(read_pem_certs(&path).unwrap(), certs);

        let missing = tmp.path().join("nope.pem");
        match read_pem_certs(&missing) {
            Err(Error::InvalidArgument { reason, .. }) => assert!(reason.contains("nope.pem")),
            other => panic!("{other:?}"),
        }
        match read_pem_key(&path) {
            Err(Error::InvalidArgument { argument, reason }) => {
                assert_eq!(argument, "key file");
                assert!(reason.contains("c.pem"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
