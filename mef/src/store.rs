//! Persistent state in SQLite (DIR/mef.sqlite): issued certificates, the identity registry of
//! third-party client certificates, the PSK registry of PPSK-based RSPF (KpmID -> Kpm and the
//! associated identity, TS-0003 8.3.2.1), and the schema version. Every write is one
//! transaction, so a crash never leaves a half-written record.
//!
//! Schema versions: 1 (issued certificates, identities), 2 (adds `psk_keys`), 3 (adds
//! `issued_certs.authenticated_by`: who authenticated the request a certificate was issued on,
//! so that revocation follows renewals and removing a registration reaches what it enrolled).
//! Opening an older database applies each migration in turn, in one transaction. The database
//! holds the Kpm keys in the clear (a reference MEF), so on Unix the file is made readable by
//! its owner only.
//!
//! Revocation: a certificate's successors are the certificates issued on requests it
//! authenticated (renewals with `/simplereenroll`, or `/simpleenroll` with it), recorded in
//! `authenticated_by`. Revoking a certificate revokes its successors, transitively, in the same
//! transaction; removing a registry entry or a PSK revokes every certificate enrolled through it
//! and their successors. A certificate is recorded only if its authenticating principal is
//! still valid at that moment (same transaction), so a revocation or removal that commits while
//! a request is being handled is not undone by that request. Certificates issued before schema
//! version 3 have no recorded principal: revoke them by identity
//! ([`Store::revoke_identity`]).
//!
//! Backends: [`Store`] is the one type the MEF uses; it holds either this SQLite file (the
//! default, one process) or a PostgreSQL database that several MEF replicas share
//! (`--database postgres://...`, [`Database`], module `postgres`). Both keep the same records
//! under the same rules and schema versions, including the pending challengePasswords
//! (schema version 5, [`crate::challenge`]) so that one issued by a replica is redeemable
//! once at any replica.

use crate::identity::{Identity, SubjectType};
use crate::MefError;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

mod postgres;
use std::time::Duration;
use zeroize::Zeroizing;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 5;

/// Schema version 3: the principal each certificate was issued to (see the module
/// documentation), indexed for the revocation walk.
const PRINCIPAL_COLUMN: &str = "ALTER TABLE issued_certs ADD COLUMN authenticated_by TEXT;
CREATE INDEX issued_certs_authenticated_by ON issued_certs (authenticated_by);";

/// The fingerprints of the certificates in `roots` (a SELECT of fingerprints) and of all their
/// successors.
fn with_successors(roots: &str) -> String {
    format!(
        "WITH RECURSIVE tree(fp) AS ({roots}
             UNION SELECT c.fingerprint FROM issued_certs c JOIN tree t ON c.authenticated_by = t.fp)
         UPDATE issued_certs SET revoked = 1, revoked_at = CAST(strftime('%s', 'now') AS INTEGER)
         WHERE revoked = 0 AND fingerprint IN tree"
    )
}

/// The column added by schema version 4: when a certificate was revoked (the CRL's
/// revocationDate, RFC 5280 5.3). NULL for revocations recorded before it existed.
const REVOKED_AT_COLUMN: &str = "ALTER TABLE issued_certs ADD COLUMN revoked_at INTEGER;";

/// The table added by schema version 2: the PSK registry.
const PSK_TABLE: &str = "CREATE TABLE psk_keys (
    kpm_id TEXT PRIMARY KEY,
    kpm BLOB NOT NULL,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    added_at INTEGER NOT NULL
);";

/// The table added by schema version 5: the pending challengePasswords (a SHA-256 of each,
/// never the password; [`crate::challenge`]), expiry in milliseconds since the Unix epoch.
const CHALLENGE_TABLE: &str = "CREATE TABLE challenges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_fp TEXT NOT NULL,
    password_hash BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX challenges_client ON challenges (client_fp);
CREATE INDEX challenges_expiry ON challenges (expires_at);";

/// The migrations after schema version 1, in order: the version each leads to, its SQL and
/// what it does (for errors).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (2, PSK_TABLE, "migrating to 2: creating the PSK table"),
    (
        3,
        PRINCIPAL_COLUMN,
        "migrating to 3: recording certificate principals",
    ),
    (
        4,
        REVOKED_AT_COLUMN,
        "migrating to 4: recording revocation times",
    ),
    (
        5,
        CHALLENGE_TABLE,
        "migrating to 5: storing challengePasswords",
    ),
];

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "mef.sqlite";

/// One certificate the MEF issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The identity it was issued for.
    pub identity: Identity,
    /// SHA-256 of the certificate DER, lower-case hex.
    pub fingerprint: String,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// Revoked by the operator: no longer accepted for /simplereenroll or /simpleenroll.
    pub revoked: bool,
    /// When it was issued, seconds since the Unix epoch.
    pub issued_at: i64,
}

/// One entry of the identity registry: a third-party client certificate and its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// SHA-256 of the client certificate DER, lower-case hex.
    pub fingerprint: String,
    pub identity: Identity,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: i64,
}

/// One entry of the PSK registry, without its key (listings never show keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PskEntry {
    /// The KpmID (TLS `psk_identity`).
    pub kpm_id: String,
    /// The identity certificates for this KpmID are issued for.
    pub identity: Identity,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: i64,
}

/// A PSK registry entry with its key: the Kpm (zeroized on drop) and the identity.
pub type PskRecord = (Zeroizing<Vec<u8>>, Identity);

/// The SQLite backend. Mutexes serialise access (SQLite connections are not `Sync`), and a busy
/// timeout lets the CLI edit the registry while the server runs.
struct Sqlite {
    conn: Mutex<Connection>,
    /// A second connection for the per-request lookups: in WAL mode readers do not wait for
    /// the writer, so they no longer queue behind another connection's commit and its fsync.
    /// Each lookup is its own read transaction and sees every commit made before it began.
    reader: Mutex<Connection>,
    /// Whether the file is in write-ahead-log mode (see [`Sqlite::ephemeral_write`]).
    wal: bool,
}

fn db_err(context: &'static str) -> impl FnOnce(rusqlite::Error) -> MefError {
    move |e| MefError::Database { context, source: e }
}

/// Key of a PSK principal in tables shared with certificate fingerprints (challengePasswords):
/// fingerprints are hex, so the prefix keeps the two apart.
pub(crate) fn psk_principal_key(kpm_id: &str) -> String {
    format!("psk:{kpm_id}")
}

/// A registration a client authenticates with, as removed by [`Store::remove_identity`] and
/// [`Store::remove_psk`].
#[derive(Clone, Copy)]
enum Registration<'a> {
    /// A third-party client certificate, by fingerprint.
    Identity(&'a str),
    /// A PSK, by KpmID.
    Psk(&'a str),
}

impl Registration<'_> {
    /// Its key in its registry (fingerprint or KpmID).
    fn key(&self) -> &str {
        match self {
            Registration::Identity(key) | Registration::Psk(key) => key,
        }
    }

    /// The principal the certificates enrolled through it record (`authenticated_by`).
    fn principal(&self) -> String {
        match self {
            Registration::Identity(fingerprint) => (*fingerprint).to_owned(),
            Registration::Psk(kpm_id) => psk_principal_key(kpm_id),
        }
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs `f` in one transaction on `conn` and commits it (`committing` names the commit in
/// errors), also when `f` changed nothing: the same as rolling it back.
fn in_transaction<T>(
    conn: &mut Connection,
    committing: &'static str,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, MefError>,
) -> Result<T, MefError> {
    let tx = conn.transaction().map_err(db_err("starting transaction"))?;
    let result = f(&tx)?;
    tx.commit().map_err(db_err(committing))?;
    Ok(result)
}

/// Every row of `sql` (with `params`), each made into a `T` by `row`.
fn all_rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    context: &'static str,
    row: impl FnMut(&rusqlite::Row<'_>) -> Result<T, rusqlite::Error>,
) -> Result<Vec<T>, MefError> {
    let mut stmt = conn.prepare(sql).map_err(db_err(context))?;
    let rows = stmt.query_map(params, row).map_err(db_err(context))?;
    rows.collect::<Result<_, _>>().map_err(db_err(context))
}

fn identity_from_row(ty: String, id: String) -> Result<Identity, rusqlite::Error> {
    let st: SubjectType = ty
        .parse()
        .map_err(|e: onem2m_est_proto::identity::IdError| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?;
    Identity::new(st, &id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl Sqlite {
    fn open(data_dir: &Path) -> Result<Sqlite, MefError> {
        std::fs::create_dir_all(data_dir).map_err(|e| MefError::Io {
            context: format!("creating data directory {}", data_dir.display()),
            source: e,
        })?;
        let mut conn =
            Connection::open(data_dir.join(DB_FILE)).map_err(db_err("opening database"))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(db_err("setting busy timeout"))?;
        let tx = conn.transaction().map_err(db_err("starting migration"))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        )
        .map_err(db_err("creating meta table"))?;
        let version: Option<i64> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err("reading schema version"))?;
        let mut version = match version {
            None => {
                tx.execute_batch(
                    "CREATE TABLE issued_certs (
                        serial TEXT PRIMARY KEY,
                        subject_type TEXT NOT NULL,
                        subject_id TEXT NOT NULL,
                        fingerprint TEXT NOT NULL UNIQUE,
                        not_before INTEGER NOT NULL,
                        not_after INTEGER NOT NULL,
                        revoked INTEGER NOT NULL DEFAULT 0,
                        issued_at INTEGER NOT NULL,
                        cert_der BLOB NOT NULL
                    );
                    CREATE TABLE identities (
                        fingerprint TEXT PRIMARY KEY,
                        subject_type TEXT NOT NULL,
                        subject_id TEXT NOT NULL,
                        added_at INTEGER NOT NULL
                    );",
                )
                .map_err(db_err("creating tables"))?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', 1)",
                    [],
                )
                .map_err(db_err("writing schema version"))?;
                1
            }
            Some(v) if (1..=SCHEMA_VERSION).contains(&v) => v,
            Some(v) => {
                return Err(MefError::Config(format!(
                    "database schema version {v} is not supported by this build (expects {SCHEMA_VERSION})"
                )))
            }
        };
        // The migrations, in order; a new database goes through all of them.
        for &(to, sql, context) in MIGRATIONS {
            if version < to {
                tx.execute_batch(sql).map_err(db_err(context))?;
                version = to;
            }
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [version],
        )
        .map_err(db_err("writing schema version"))?;
        tx.commit().map_err(db_err("committing migration"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = data_dir.join(DB_FILE);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| MefError::Io {
                    context: format!("restricting permissions of {}", path.display()),
                    source: e,
                },
            )?;
        }
        // Write-ahead log with synchronous=FULL: a commit appends to the WAL and fsyncs it once,
        // instead of the rollback journal's several fsyncs (journal, database, directory), and
        // still returns only once durable, so an issued certificate is on disk before it is
        // sent (BENCHMARKS.md). Switched after the permissions above, so that the -wal and -shm
        // files SQLite creates take the database file's 0600 mode (they hold the same data).
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db_err("enabling the write-ahead log"))?;
        let wal = mode.eq_ignore_ascii_case("wal");
        if !wal {
            log::warn!("SQLite kept journal mode {mode} (no write-ahead log on this file system)");
        }
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(db_err("setting synchronous = FULL"))?;
        // Opened after the migration and the switch to WAL (both persistent in the file).
        let reader = Connection::open(data_dir.join(DB_FILE))
            .map_err(db_err("opening the database for lookups"))?;
        reader
            .busy_timeout(Duration::from_secs(10))
            .map_err(db_err("setting busy timeout"))?;
        Ok(Sqlite {
            conn: Mutex::new(conn),
            reader: Mutex::new(reader),
            wal,
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Read-only use: a poisoned lock is safe to reuse.
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i64, MefError> {
        self.conn()
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .map_err(db_err("reading schema version"))
    }

    /// Adds (or replaces) a registration: `sql` takes `key` (the registry's own columns) first,
    /// then the identity's subject type and ID and the time it is added.
    fn register(
        &self,
        sql: &str,
        key: &[&dyn rusqlite::ToSql],
        identity: &Identity,
        context: &'static str,
        committing: &'static str,
    ) -> Result<(), MefError> {
        in_transaction(&mut self.conn(), committing, |tx| {
            let (subject_type, subject_id, now) = (
                identity.subject_type().as_str(),
                identity.subject_id(),
                now_secs(),
            );
            let identity_params: [&dyn rusqlite::ToSql; 3] = [&subject_type, &subject_id, &now];
            let params = [key, &identity_params].concat();
            tx.execute(sql, params.as_slice())
                .map_err(db_err(context))
                .map(drop)
        })
    }

    /// The identity (`subject_type, subject_id`) the row of `sql` for `key` holds, if any. Per
    /// request: prepared once per connection (statement cache), not parsed every time.
    fn identity_where(
        &self,
        sql: &str,
        key: &str,
        context: &'static str,
    ) -> Result<Option<Identity>, MefError> {
        self.reader()
            .prepare_cached(sql)
            .and_then(|mut stmt| {
                stmt.query_row([key], |r| identity_from_row(r.get(0)?, r.get(1)?))
                    .optional()
            })
            .map_err(db_err(context))
    }

    /// Adds (or replaces) the identity of a third-party client certificate.
    pub fn add_identity(&self, fingerprint: &str, identity: &Identity) -> Result<(), MefError> {
        self.register(
            "INSERT OR REPLACE INTO identities (fingerprint, subject_type, subject_id, added_at)
             VALUES (?1, ?2, ?3, ?4)",
            &[&fingerprint],
            identity,
            "adding identity",
            "committing identity",
        )
    }

    /// [`Store::remove_identity`] and [`Store::remove_psk`].
    fn remove_registration(&self, r: Registration<'_>) -> Result<Option<usize>, MefError> {
        let delete = match r {
            Registration::Identity(_) => "DELETE FROM identities WHERE fingerprint = ?1",
            Registration::Psk(_) => "DELETE FROM psk_keys WHERE kpm_id = ?1",
        };
        in_transaction(&mut self.conn(), "committing removal", |tx| {
            let n = tx
                .execute(delete, [r.key()])
                .map_err(db_err("removing a registration"))?;
            if n == 0 {
                return Ok(None);
            }
            tx.execute(
                &with_successors(
                    "SELECT fingerprint FROM issued_certs WHERE authenticated_by = ?1",
                ),
                [r.principal()],
            )
            .map(Some)
            .map_err(db_err("revoking what the registration enrolled"))
        })
    }

    /// The identity registered for a third-party client certificate fingerprint.
    pub fn lookup_identity(&self, fingerprint: &str) -> Result<Option<Identity>, MefError> {
        self.identity_where(
            "SELECT subject_type, subject_id FROM identities WHERE fingerprint = ?1",
            fingerprint,
            "looking up identity",
        )
    }

    /// All registry entries, ordered by fingerprint.
    pub fn list_identities(&self) -> Result<Vec<RegistryEntry>, MefError> {
        all_rows(
            &self.conn(),
            "SELECT fingerprint, subject_type, subject_id, added_at FROM identities
             ORDER BY fingerprint",
            [],
            "listing identities",
            |r| {
                Ok(RegistryEntry {
                    fingerprint: r.get(0)?,
                    identity: identity_from_row(r.get(1)?, r.get(2)?)?,
                    added_at: r.get(3)?,
                })
            },
        )
    }

    /// Adds (or replaces) a PSK: KpmID, Kpm and the associated identity (TS-0003 8.3.2.1).
    /// Validate first with [`crate::psk::validate`] (done by [`crate::add_psk`]).
    pub fn add_psk(&self, kpm_id: &str, kpm: &[u8], identity: &Identity) -> Result<(), MefError> {
        self.register(
            "INSERT OR REPLACE INTO psk_keys (kpm_id, kpm, subject_type, subject_id, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[&kpm_id, &kpm],
            identity,
            "adding PSK",
            "committing PSK",
        )
    }

    /// The Kpm and identity registered for a KpmID.
    pub fn lookup_psk(&self, kpm_id: &str) -> Result<Option<PskRecord>, MefError> {
        self.reader()
            .query_row(
                "SELECT kpm, subject_type, subject_id FROM psk_keys WHERE kpm_id = ?1",
                [kpm_id],
                |r| {
                    let key = Zeroizing::new(r.get::<_, Vec<u8>>(0)?);
                    Ok((key, identity_from_row(r.get(1)?, r.get(2)?)?))
                },
            )
            .optional()
            .map_err(db_err("looking up PSK"))
    }

    /// The identity registered for a KpmID (without reading its key).
    pub fn psk_identity(&self, kpm_id: &str) -> Result<Option<Identity>, MefError> {
        self.identity_where(
            "SELECT subject_type, subject_id FROM psk_keys WHERE kpm_id = ?1",
            kpm_id,
            "looking up PSK identity",
        )
    }

    /// Every PSK entry, ordered by KpmID, without keys.
    pub fn list_psks(&self) -> Result<Vec<PskEntry>, MefError> {
        all_rows(
            &self.conn(),
            "SELECT kpm_id, subject_type, subject_id, added_at FROM psk_keys ORDER BY kpm_id",
            [],
            "listing PSKs",
            |r| {
                Ok(PskEntry {
                    kpm_id: r.get(0)?,
                    identity: identity_from_row(r.get(1)?, r.get(2)?)?,
                    added_at: r.get(3)?,
                })
            },
        )
    }

    /// Records an issued certificate and the principal that authenticated its request (a
    /// certificate fingerprint, or `psk:KpmID`), in one transaction, if that principal is still
    /// valid: a MEF-issued certificate not revoked, a registered third-party certificate, a
    /// registered KpmID. Returns `false`, recording nothing, if it no longer is.
    pub(crate) fn insert_issued(
        &self,
        cert: &IssuedCert,
        der: &[u8],
        authenticated_by: &str,
    ) -> Result<bool, MefError> {
        in_transaction(&mut self.conn(), "committing issued certificate", |tx| {
            let valid: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM issued_certs WHERE fingerprint = ?1 AND revoked = 0)
                     OR (NOT EXISTS (SELECT 1 FROM issued_certs WHERE fingerprint = ?1)
                         AND EXISTS (SELECT 1 FROM identities WHERE fingerprint = ?1))
                     OR EXISTS (SELECT 1 FROM psk_keys WHERE 'psk:' || kpm_id = ?1)",
                )
                .and_then(|mut stmt| stmt.query_row([authenticated_by], |r| r.get(0)))
                .map_err(db_err("checking the principal"))?;
            if !valid {
                return Ok(false);
            }
            tx.prepare_cached(
                "INSERT INTO issued_certs (serial, subject_type, subject_id, fingerprint,
                     not_before, not_after, revoked, issued_at, cert_der, authenticated_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    cert.serial,
                    cert.identity.subject_type().as_str(),
                    cert.identity.subject_id(),
                    cert.fingerprint,
                    cert.not_before,
                    cert.not_after,
                    cert.revoked,
                    cert.issued_at,
                    der,
                    authenticated_by
                ])
            })
            .map_err(db_err("recording issued certificate"))?;
            Ok(true)
        })
    }

    /// The principal that authenticated the request a certificate (by fingerprint) was issued
    /// on, when recorded (schema version 3 on).
    pub fn authenticated_by(&self, fingerprint: &str) -> Result<Option<String>, MefError> {
        self.reader()
            .query_row(
                "SELECT authenticated_by FROM issued_certs WHERE fingerprint = ?1",
                [fingerprint],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(db_err("looking up a certificate's principal"))
    }

    fn issued_where(&self, clause: &str, value: &str) -> Result<Option<IssuedCert>, MefError> {
        let sql = format!(
            "SELECT serial, subject_type, subject_id, fingerprint, not_before, not_after, revoked,
                    issued_at FROM issued_certs WHERE {clause} = ?1"
        );
        self.reader()
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row([value], row_to_issued).optional())
            .map_err(db_err("looking up issued certificate"))
    }

    /// The issued certificate with this DER fingerprint, if the MEF issued it.
    pub fn issued_by_fingerprint(&self, fingerprint: &str) -> Result<Option<IssuedCert>, MefError> {
        self.issued_where("fingerprint", fingerprint)
    }

    /// The issued certificate with this serial (lower-case hex).
    pub fn issued_by_serial(&self, serial: &str) -> Result<Option<IssuedCert>, MefError> {
        self.issued_where("serial", &serial.to_ascii_lowercase())
    }

    /// Every issued certificate, oldest first.
    pub fn list_issued(&self) -> Result<Vec<IssuedCert>, MefError> {
        all_rows(
            &self.conn(),
            "SELECT serial, subject_type, subject_id, fingerprint, not_before, not_after,
                    revoked, issued_at FROM issued_certs ORDER BY issued_at, serial",
            [],
            "listing issued certificates",
            row_to_issued,
        )
    }

    pub fn revoke_counted(&self, serial_or_fingerprint: &str) -> Result<Option<usize>, MefError> {
        let key = serial_or_fingerprint.to_ascii_lowercase().replace(':', "");
        in_transaction(&mut self.conn(), "committing revocation", |tx| {
            let found: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM issued_certs WHERE serial = ?1 OR fingerprint = ?1)",
                    [&key],
                    |r| r.get(0),
                )
                .map_err(db_err("looking up the certificate to revoke"))?;
            if !found {
                return Ok(None);
            }
            tx.execute(
                &with_successors(
                    "SELECT fingerprint FROM issued_certs WHERE serial = ?1 OR fingerprint = ?1",
                ),
                [&key],
            )
            .map(Some)
            .map_err(db_err("revoking certificate"))
        })
    }

    /// The revoked certificates a CRL must list at `now` (RFC 5280 5.1.2.6: those not yet
    /// expired): serial (lower-case hex) and revocation time (Unix seconds; the issue time for
    /// revocations recorded before schema version 4), ordered by serial.
    pub fn revoked_for_crl(&self, now: i64) -> Result<Vec<(String, i64)>, MefError> {
        all_rows(
            &self.reader(),
            "SELECT serial, COALESCE(revoked_at, issued_at) FROM issued_certs
             WHERE revoked = 1 AND not_after >= ?1 ORDER BY serial",
            [now],
            "listing revoked certificates",
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Revokes every certificate issued for `identity`, and their successors. Returns how many
    /// it revoked now.
    pub fn revoke_identity(&self, identity: &Identity) -> Result<usize, MefError> {
        in_transaction(&mut self.conn(), "committing revocation", |tx| {
            tx.execute(
                &with_successors(
                    "SELECT fingerprint FROM issued_certs WHERE subject_type = ?1 AND subject_id = ?2",
                ),
                params![identity.subject_type().as_str(), identity.subject_id()],
            )
            .map_err(db_err("revoking by identity"))
        })
    }

    /// Runs a write of challengePasswords only with `synchronous = NORMAL` (no fsync of its
    /// own) in WAL mode: a pending password needs no durability (a restart may forget it; the
    /// client fetches /csrattrs again), WAL with NORMAL stays consistent (SQLite's
    /// documentation), and the next FULL commit, the issued certificate's, makes it durable
    /// with that certificate: a certificate is never on disk without its password's claim. One
    /// fsync per enrolment, as before the passwords moved into the database.
    fn ephemeral_write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, MefError>,
    ) -> Result<T, MefError> {
        let mut conn = self.conn();
        if !self.wal {
            return f(&mut conn);
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(db_err("setting synchronous = NORMAL"))?;
        let result = f(&mut conn);
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(db_err("setting synchronous = FULL"))?;
        result
    }

    fn insert_challenge(
        &self,
        client_fp: &str,
        password_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
        keep: usize,
    ) -> Result<(), MefError> {
        self.ephemeral_write(|conn| {
            in_transaction(conn, "committing a challengePassword", |tx| {
                tx.prepare_cached("DELETE FROM challenges WHERE expires_at <= ?1")
                    .and_then(|mut stmt| stmt.execute([now_ms]))
                    .map_err(db_err("forgetting expired challengePasswords"))?;
                tx.prepare_cached(
                    "INSERT INTO challenges (client_fp, password_hash, expires_at)
                     VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut stmt| stmt.execute(params![client_fp, password_hash, expires_ms]))
                .map_err(db_err("recording a challengePassword"))?;
                tx.prepare_cached(
                    "DELETE FROM challenges WHERE client_fp = ?1 AND id NOT IN
                     (SELECT id FROM challenges WHERE client_fp = ?1 ORDER BY id DESC LIMIT ?2)",
                )
                .and_then(|mut stmt| stmt.execute(params![client_fp, keep as i64]))
                .map_err(db_err("bounding a client's challengePasswords"))
                .map(drop)
            })
        })
    }

    fn challenges_for(&self, client_fp: &str) -> Result<Vec<ChallengeRow>, MefError> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, password_hash, expires_at FROM challenges WHERE client_fp = ?1",
            )
            .map_err(db_err("looking up challengePasswords"))?;
        let rows = stmt
            .query_map([client_fp], |r| {
                Ok(ChallengeRow {
                    id: r.get(0)?,
                    password_hash: r.get(1)?,
                    expires_ms: r.get(2)?,
                })
            })
            .map_err(db_err("looking up challengePasswords"))?;
        rows.collect::<Result<_, _>>()
            .map_err(db_err("looking up challengePasswords"))
    }

    fn claim_challenge(&self, id: i64) -> Result<bool, MefError> {
        // One writer at a time: of concurrent claims exactly one deletes the row.
        self.ephemeral_write(|conn| {
            let n = conn
                .prepare_cached("DELETE FROM challenges WHERE id = ?1")
                .and_then(|mut stmt| stmt.execute([id]))
                .map_err(db_err("claiming a challengePassword"))?;
            Ok(n == 1)
        })
    }
}

/// One pending challengePassword as stored: its row, the SHA-256 of the password and its
/// expiry (milliseconds since the Unix epoch).
pub(crate) struct ChallengeRow {
    pub(crate) id: i64,
    pub(crate) password_hash: Vec<u8>,
    pub(crate) expires_ms: i64,
}

/// An identity as stored (subject type and ID columns).
fn parse_identity(ty: String, id: String) -> Result<Identity, MefError> {
    let st: SubjectType = ty
        .parse()
        .map_err(|e: onem2m_est_proto::identity::IdError| {
            MefError::InvalidIdentity(e.reason().to_owned())
        })?;
    Identity::new(st, &id)
}

/// Where the MEF keeps its records.
#[derive(Clone, Debug, Default)]
pub enum Database {
    /// The SQLite file [`DB_FILE`] in the data directory (the default).
    #[default]
    Sqlite,
    /// A PostgreSQL database (shared by replicas), with a pool of at most `pool_size`
    /// connections. The configuration's `Debug` output hides the password.
    Postgres {
        config: Box<::postgres::Config>,
        pool_size: u32,
    },
}

/// The connection pool size of `--database postgres://...` unless `--database-pool` says
/// otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 16;

impl std::str::FromStr for Database {
    type Err = MefError;
    /// `sqlite`, or a PostgreSQL connection URL (`postgres://` or `postgresql://`) or
    /// key=value string (`host=... dbname=...`).
    fn from_str(s: &str) -> Result<Database, MefError> {
        if s == "sqlite" {
            return Ok(Database::Sqlite);
        }
        let looks_pg =
            s.starts_with("postgres://") || s.starts_with("postgresql://") || s.contains('=');
        if !looks_pg {
            return Err(MefError::Config(
                "the database is `sqlite` or a PostgreSQL URL (postgres://USER@HOST:PORT/DB)"
                    .into(),
            ));
        }
        // Its error text never repeats the string (which may hold a password).
        let config = s.parse::<::postgres::Config>().map_err(|e| {
            MefError::Config(format!("the PostgreSQL connection string is invalid: {e}"))
        })?;
        Ok(Database::Postgres {
            config: Box::new(config),
            pool_size: DEFAULT_POOL_SIZE,
        })
    }
}

// One per process: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
/// What [`Store::pool_state`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolState {
    /// Connections open (idle or in use).
    pub connections: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most the pool opens (`--database-pool`); requests wait for one beyond that.
    pub max: u32,
}

enum Backend {
    Sqlite(Sqlite),
    Postgres(postgres::Postgres),
}

/// The MEF's records (module documentation), in SQLite or PostgreSQL. Cheap to share behind an
/// `Arc`.
pub struct Store {
    backend: Backend,
}

/// Calls the same method on whichever backend this store has. Every store call passes here:
/// it is timed and its failure counted for `/metrics` (crate::metrics).
macro_rules! dispatch {
    ($self:ident, $b:ident => $call:expr) => {{
        let call = crate::metrics::StoreCall::start();
        let result = match &$self.backend {
            Backend::Sqlite($b) => $call,
            Backend::Postgres($b) => $call,
        };
        call.end(result.is_err());
        result
    }};
}

impl Store {
    /// Opens (creating if needed) the SQLite database in `data_dir` and migrates it to
    /// [`SCHEMA_VERSION`]. A database with a newer schema is refused.
    pub fn open(data_dir: &Path) -> Result<Store, MefError> {
        Ok(Store {
            backend: Backend::Sqlite(Sqlite::open(data_dir)?),
        })
    }

    /// Opens `database`: the SQLite file in `data_dir`, or PostgreSQL (nothing in `data_dir`).
    /// Either is migrated to [`SCHEMA_VERSION`] (PostgreSQL: under an advisory lock, so that
    /// replicas starting at once migrate one after the other); a newer schema is refused.
    pub fn open_database(database: &Database, data_dir: &Path) -> Result<Store, MefError> {
        match database {
            Database::Sqlite => Store::open(data_dir),
            Database::Postgres { config, pool_size } => Ok(Store {
                backend: Backend::Postgres(postgres::Postgres::open(config, *pool_size)?),
            }),
        }
    }

    /// Whether the records are in PostgreSQL (shared by replicas).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The PostgreSQL connection pool at this moment (for monitoring its saturation); `None`
    /// with SQLite.
    pub fn pool_state(&self) -> Option<PoolState> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(p) => Some(p.pool_state()),
        }
    }

    /// Runs `f` (loading or creating the CA and server key material in the data directory)
    /// while no other replica on the same PostgreSQL database does (a session advisory lock),
    /// so that replicas sharing a data directory never create or re-issue those files at once.
    /// SQLite: a single MEF, `f` runs as is.
    pub(crate) fn with_key_material_lock<T>(
        &self,
        f: impl FnOnce() -> Result<T, MefError>,
    ) -> Result<T, MefError> {
        match &self.backend {
            Backend::Sqlite(_) => f(),
            Backend::Postgres(p) => p.with_key_material_lock(f),
        }
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> Result<i64, MefError> {
        dispatch!(self, b => b.schema_version())
    }

    /// Adds (or replaces) the identity of a third-party client certificate.
    pub fn add_identity(&self, fingerprint: &str, identity: &Identity) -> Result<(), MefError> {
        dispatch!(self, b => b.add_identity(fingerprint, identity))
    }

    /// Removes a registry entry and revokes every certificate enrolled with that third-party
    /// certificate, and their successors, in one transaction. Returns `None` if there was no
    /// such entry, else how many certificates it revoked.
    pub fn remove_identity(&self, fingerprint: &str) -> Result<Option<usize>, MefError> {
        dispatch!(self, b => b.remove_registration(Registration::Identity(fingerprint)))
    }

    /// The identity registered for a third-party client certificate fingerprint.
    pub fn lookup_identity(&self, fingerprint: &str) -> Result<Option<Identity>, MefError> {
        dispatch!(self, b => b.lookup_identity(fingerprint))
    }

    /// All registry entries, ordered by fingerprint.
    pub fn list_identities(&self) -> Result<Vec<RegistryEntry>, MefError> {
        dispatch!(self, b => b.list_identities())
    }

    /// Adds (or replaces) a PSK: KpmID, Kpm and the associated identity (TS-0003 8.3.2.1).
    /// Validate first with [`crate::psk::validate`] (done by [`crate::add_psk`]).
    pub fn add_psk(&self, kpm_id: &str, kpm: &[u8], identity: &Identity) -> Result<(), MefError> {
        dispatch!(self, b => b.add_psk(kpm_id, kpm, identity))
    }

    /// Removes a PSK and revokes every certificate enrolled with it, and their successors, in
    /// one transaction. Returns `None` if there was no such KpmID, else how many certificates
    /// it revoked.
    pub fn remove_psk(&self, kpm_id: &str) -> Result<Option<usize>, MefError> {
        dispatch!(self, b => b.remove_registration(Registration::Psk(kpm_id)))
    }

    /// The Kpm (zeroized on drop) and identity registered for a KpmID.
    pub fn lookup_psk(&self, kpm_id: &str) -> Result<Option<PskRecord>, MefError> {
        dispatch!(self, b => b.lookup_psk(kpm_id))
    }

    /// The identity registered for a KpmID (without reading its key).
    pub fn psk_identity(&self, kpm_id: &str) -> Result<Option<Identity>, MefError> {
        dispatch!(self, b => b.psk_identity(kpm_id))
    }

    /// Every PSK entry, ordered by KpmID, without keys.
    pub fn list_psks(&self) -> Result<Vec<PskEntry>, MefError> {
        dispatch!(self, b => b.list_psks())
    }

    /// Records an issued certificate and the principal that authenticated its request (a
    /// certificate fingerprint, or `psk:KpmID`), in one transaction, if that principal is still
    /// valid (module documentation). Returns `false`, recording nothing, if it no longer is.
    pub(crate) fn insert_issued(
        &self,
        cert: &IssuedCert,
        der: &[u8],
        authenticated_by: &str,
    ) -> Result<bool, MefError> {
        dispatch!(self, b => b.insert_issued(cert, der, authenticated_by))
    }

    /// The principal that authenticated the request a certificate (by fingerprint) was issued
    /// on, when recorded (schema version 3 on).
    pub fn authenticated_by(&self, fingerprint: &str) -> Result<Option<String>, MefError> {
        dispatch!(self, b => b.authenticated_by(fingerprint))
    }

    /// The issued certificate with this DER fingerprint, if the MEF issued it.
    pub fn issued_by_fingerprint(&self, fingerprint: &str) -> Result<Option<IssuedCert>, MefError> {
        dispatch!(self, b => b.issued_by_fingerprint(fingerprint))
    }

    /// The issued certificate with this serial (lower-case hex).
    pub fn issued_by_serial(&self, serial: &str) -> Result<Option<IssuedCert>, MefError> {
        dispatch!(self, b => b.issued_by_serial(serial))
    }

    /// Every issued certificate, oldest first.
    pub fn list_issued(&self) -> Result<Vec<IssuedCert>, MefError> {
        dispatch!(self, b => b.list_issued())
    }

    /// Marks an issued certificate revoked, by serial (hex) or fingerprint (hex), with all its
    /// successors (module documentation). Returns whether a certificate matched.
    pub fn revoke(&self, serial_or_fingerprint: &str) -> Result<bool, MefError> {
        Ok(self.revoke_counted(serial_or_fingerprint)?.is_some())
    }

    /// [`Store::revoke`], returning `None` if no certificate matched, else how many
    /// certificates it revoked now (the one named and its successors not revoked before).
    pub fn revoke_counted(&self, serial_or_fingerprint: &str) -> Result<Option<usize>, MefError> {
        dispatch!(self, b => b.revoke_counted(serial_or_fingerprint))
    }

    /// The revoked certificates a CRL must list at `now` (RFC 5280 5.1.2.6: those not yet
    /// expired): serial (lower-case hex) and revocation time (Unix seconds; the issue time for
    /// revocations recorded before schema version 4), ordered by serial.
    pub fn revoked_for_crl(&self, now: i64) -> Result<Vec<(String, i64)>, MefError> {
        dispatch!(self, b => b.revoked_for_crl(now))
    }

    /// Revokes every certificate issued for `identity`, and their successors. Returns how many
    /// it revoked now.
    pub fn revoke_identity(&self, identity: &Identity) -> Result<usize, MefError> {
        dispatch!(self, b => b.revoke_identity(identity))
    }

    /// Records a pending challengePassword (its hash) for a client; in the same transaction
    /// forgets every expired one and keeps only the client's newest `keep`.
    pub(crate) fn insert_challenge(
        &self,
        client_fp: &str,
        password_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
        keep: usize,
    ) -> Result<(), MefError> {
        dispatch!(self, b => b.insert_challenge(client_fp, password_hash, expires_ms, now_ms, keep))
    }

    /// The pending challengePasswords of a client.
    pub(crate) fn challenges_for(&self, client_fp: &str) -> Result<Vec<ChallengeRow>, MefError> {
        dispatch!(self, b => b.challenges_for(client_fp))
    }

    /// Deletes a pending challengePassword; `true` for exactly one of any number of concurrent
    /// claims, in this process or another replica.
    pub(crate) fn claim_challenge(&self, id: i64) -> Result<bool, MefError> {
        dispatch!(self, b => b.claim_challenge(id))
    }
}

fn row_to_issued(r: &rusqlite::Row<'_>) -> Result<IssuedCert, rusqlite::Error> {
    Ok(IssuedCert {
        serial: r.get(0)?,
        identity: identity_from_row(r.get(1)?, r.get(2)?)?,
        fingerprint: r.get(3)?,
        not_before: r.get(4)?,
        not_after: r.get(5)?,
        revoked: r.get(6)?,
        issued_at: r.get(7)?,
    })
}

// The throw-away PostgreSQL server of the integration tests.
#[cfg(test)]
#[path = "../tests/common/postgres.rs"]
mod pg_fixture;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_and_refuses_newer_schemas() {
        let dir = crate::scratch_dir("store");
        let id = Identity::new(SubjectType::Cse, "cse01.sp.example.com").unwrap();
        {
            let s = Store::open(&dir).unwrap();
            assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
            s.add_identity(&"ab".repeat(32), &id).unwrap();
            let rec = IssuedCert {
                serial: "41".into(),
                identity: id.clone(),
                fingerprint: "cd".repeat(32),
                not_before: 1,
                not_after: 2,
                revoked: false,
                issued_at: 1,
            };
            assert!(s.insert_issued(&rec, b"der", &"ab".repeat(32)).unwrap());
            // A duplicate serial is refused as a whole: no half-written record.
            assert!(s.insert_issued(&rec, b"der", &"ab".repeat(32)).is_err());
        }
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.lookup_identity(&"ab".repeat(32)).unwrap(), Some(id));
        assert_eq!(s.list_issued().unwrap().len(), 1);
        assert!(s.revoke(&"CD".repeat(32)).unwrap());
        assert!(s.issued_by_serial("41").unwrap().unwrap().revoked);
        assert_eq!(s.remove_identity(&"ab".repeat(32)).unwrap(), Some(0));
        drop(s);
        Connection::open(dir.join(DB_FILE))
            .unwrap()
            .execute(
                "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
                [],
            )
            .unwrap();
        assert!(Store::open(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn revocation_follows_renewals_and_registrations() {
        let dir = crate::scratch_dir("store-rev");
        revocation_rules(&Store::open(&dir).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The same rules on PostgreSQL (a throw-away server: fails when PostgreSQL is missing).
    #[test]
    fn postgres_keeps_the_same_rules() {
        let pg = super::pg_fixture::PgServer::start();
        let db: Database = pg.create_database("rules").parse().unwrap();
        let s = Store::open_database(&db, Path::new("/nonexistent")).unwrap();
        assert!(s.is_shared());
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        revocation_rules(&s);
        // Registry and PSK records, replaced in place, listed in order.
        let id = Identity::new(SubjectType::Ae, "https://sp.example.com/cse01/CAE01").unwrap();
        s.add_identity("bb", &id).unwrap();
        s.add_identity("bb", &id).unwrap();
        assert_eq!(s.list_identities().unwrap().len(), 1);
        assert_eq!(s.lookup_identity("bb").unwrap(), Some(id.clone()));
        s.add_psk("kpm-02", &[7u8; 16], &id).unwrap();
        let (key, found) = s.lookup_psk("kpm-02").unwrap().unwrap();
        assert_eq!((&key[..], &found), (&[7u8; 16][..], &id));
        assert_eq!(s.psk_identity("kpm-02").unwrap(), Some(id));
        assert!(s.lookup_psk("kpm-03").unwrap().is_none());
        // A duplicate serial is refused as a whole.
        let rec = s.list_issued().unwrap().remove(0);
        assert!(s.insert_issued(&rec, b"d", "psk:kpm-02").is_err());
        // CRL inputs: revoked, not expired (not_after 2 is long past).
        assert!(s.revoked_for_crl(0).unwrap().len() >= 6);
        assert!(s.revoked_for_crl(3).unwrap().is_empty());
        drop(s);
        // Reopening is idempotent; a newer schema is refused with a clear error.
        let s = Store::open_database(&db, Path::new("/nonexistent")).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        drop(s);
        pg.execute(
            "rules",
            "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
        );
        let e = Store::open_database(&db, Path::new("/nonexistent"))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("schema version 99 is not supported"),
            "{e}"
        );
    }

    #[test]
    fn database_option_parses_and_hides_the_password() {
        assert!(matches!("sqlite".parse::<Database>(), Ok(Database::Sqlite)));
        assert!("mysql://h/db".parse::<Database>().is_err());
        let db: Database = "postgres://mef:s3cr3t-pw@db.example:5433/mef"
            .parse()
            .unwrap();
        assert!(matches!(
            db,
            Database::Postgres {
                pool_size: DEFAULT_POOL_SIZE,
                ..
            }
        ));
        assert!(!format!("{db:?}").contains("s3cr3t-pw"), "{db:?}");
        let e = "postgres://mef:s3cr3t-pw@db.example:notaport/mef"
            .parse::<Database>()
            .err()
            .unwrap();
        assert!(!e.to_string().contains("s3cr3t-pw"), "{e}");
    }

    /// PostgreSQL runs writers concurrently: a revocation racing with recordings on the
    /// revoked certificate's word leaves none of them unrevoked (the table locks).
    #[test]
    fn postgres_revocation_is_not_undone_by_concurrent_recordings() {
        let pg = super::pg_fixture::PgServer::start();
        let db: Database = pg.create_database("race").parse().unwrap();
        let open = || Store::open_database(&db, Path::new("/nonexistent")).unwrap();
        let s = open();
        let id = Identity::new(SubjectType::Cse, "cse01.sp.example.com").unwrap();
        let tp = "aa".repeat(32);
        s.add_identity(&tp, &id).unwrap();
        let rec = |serial: String| IssuedCert {
            serial: serial.clone(),
            identity: id.clone(),
            fingerprint: format!("fp{serial}"),
            not_before: 1,
            not_after: i64::MAX,
            revoked: false,
            issued_at: 1,
        };
        let (recorder, revoker) = (open(), open());
        for round in 0..30 {
            let root = rec(format!("{round}"));
            assert!(s.insert_issued(&root, b"d", &tp).unwrap());
            let barrier = std::sync::Barrier::new(2);
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    barrier.wait();
                    for i in 0..10 {
                        let _ = recorder
                            .insert_issued(&rec(format!("{round}-{i}")), b"d", &root.fingerprint)
                            .unwrap();
                    }
                });
                scope.spawn(|| {
                    barrier.wait();
                    std::thread::sleep(std::time::Duration::from_micros(300 * (round % 5)));
                    assert!(revoker.revoke(&root.serial).unwrap());
                });
            });
            let unrevoked: Vec<_> = s
                .list_issued()
                .unwrap()
                .into_iter()
                .filter(|c| !c.revoked && c.serial.starts_with(&format!("{round}")))
                .map(|c| c.serial)
                .collect();
            assert!(
                unrevoked.is_empty(),
                "round {round}: left unrevoked {unrevoked:?}"
            );
        }
    }

    fn revocation_rules(s: &Store) {
        let id = Identity::new(SubjectType::Cse, "cse01.sp.example.com").unwrap();
        let third_party = "aa".repeat(32);
        s.add_identity(&third_party, &id).unwrap();
        let rec = |n: u8| IssuedCert {
            serial: format!("{n:02x}"),
            identity: id.clone(),
            fingerprint: format!("{n:02x}").repeat(32),
            not_before: 1,
            not_after: 2,
            revoked: false,
            issued_at: 1,
        };
        let fp = |n: u8| rec(n).fingerprint;
        // 01 enrolled with the third-party certificate, 02 renewed from 01, 03 from 02.
        assert!(s.insert_issued(&rec(1), b"d", &third_party).unwrap());
        assert!(s.insert_issued(&rec(2), b"d", &fp(1)).unwrap());
        assert!(s.insert_issued(&rec(3), b"d", &fp(2)).unwrap());
        assert_eq!(s.authenticated_by(&fp(2)).unwrap(), Some(fp(1)));
        // Revoking 02 revokes its successor 03, not its predecessor 01.
        assert_eq!(s.revoke_counted("02").unwrap(), Some(2));
        assert!(s.issued_by_serial("03").unwrap().unwrap().revoked);
        assert!(!s.issued_by_serial("01").unwrap().unwrap().revoked);
        assert_eq!(s.revoke_counted("99").unwrap(), None);
        // Nothing is recorded on the word of a revoked or unknown principal.
        assert!(!s.insert_issued(&rec(4), b"d", &fp(3)).unwrap());
        assert!(!s.insert_issued(&rec(4), b"d", &"ee".repeat(32)).unwrap());
        assert!(!s.insert_issued(&rec(4), b"d", "psk:nobody").unwrap());
        // Removing the registration revokes what it enrolled (01; 02 and 03 already were).
        assert_eq!(s.remove_identity(&third_party).unwrap(), Some(1));
        assert_eq!(s.remove_identity(&third_party).unwrap(), None);
        assert!(!s.insert_issued(&rec(4), b"d", &third_party).unwrap());
        // A PSK's enrolments, and revocation by identity.
        s.add_psk("kpm", &[1u8; 16], &id).unwrap();
        assert!(s.insert_issued(&rec(5), b"d", "psk:kpm").unwrap());
        assert!(s.insert_issued(&rec(6), b"d", &fp(5)).unwrap());
        assert_eq!(s.revoke_identity(&id).unwrap(), 2);
        assert!(s.list_issued().unwrap().iter().all(|c| c.revoked));
        assert!(s.insert_issued(&rec(7), b"d", "psk:kpm").unwrap());
        assert_eq!(s.remove_psk("kpm").unwrap(), Some(1));
        assert!(s.list_issued().unwrap().iter().all(|c| c.revoked));
    }

    #[test]
    fn migrates_version_1_and_keeps_psks() {
        let dir = crate::scratch_dir("store-v1");
        std::fs::create_dir_all(&dir).unwrap();
        {
            // A version 1 database as the previous build wrote it.
            let c = Connection::open(dir.join(DB_FILE)).unwrap();
            c.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                 INSERT INTO meta VALUES ('schema_version', 1);
                 CREATE TABLE issued_certs (serial TEXT PRIMARY KEY, subject_type TEXT NOT NULL,
                     subject_id TEXT NOT NULL, fingerprint TEXT NOT NULL UNIQUE,
                     not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
                     revoked INTEGER NOT NULL DEFAULT 0, issued_at INTEGER NOT NULL,
                     cert_der BLOB NOT NULL);
                 CREATE TABLE identities (fingerprint TEXT PRIMARY KEY, subject_type TEXT NOT NULL,
                     subject_id TEXT NOT NULL, added_at INTEGER NOT NULL);
                 INSERT INTO identities VALUES ('ab', 'cse', 'cse01.sp.example.com', 1);
                 INSERT INTO issued_certs VALUES ('41', 'cse', 'cse01.sp.example.com', 'cd', 1, 2,
                     0, 1, x'00');",
            )
            .unwrap();
        }
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        // Migrated through 2 and 3: the old certificate has no recorded principal and can
        // still be revoked.
        assert_eq!(s.authenticated_by("cd").unwrap(), None);
        assert_eq!(s.revoke_counted("41").unwrap(), Some(1));
        let id = Identity::new(SubjectType::Cse, "cse01.sp.example.com").unwrap();
        assert_eq!(s.lookup_identity("ab").unwrap(), Some(id.clone()));
        s.add_psk("kpm-01", &[9u8; 16], &id).unwrap();
        drop(s);
        let s = Store::open(&dir).unwrap();
        let (key, found) = s.lookup_psk("kpm-01").unwrap().unwrap();
        assert_eq!((&key[..], &found), (&[9u8; 16][..], &id));
        assert_eq!(s.psk_identity("kpm-01").unwrap(), Some(id));
        assert_eq!(s.list_psks().unwrap()[0].kpm_id, "kpm-01");
        assert!(s.lookup_psk("kpm-02").unwrap().is_none());
        assert_eq!(s.remove_psk("kpm-01").unwrap(), Some(0));
        assert_eq!(s.remove_psk("kpm-01").unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(DB_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
