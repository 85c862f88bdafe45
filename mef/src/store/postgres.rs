//! The PostgreSQL backend of [`super::Store`] (`--database postgres://...`): the same records
//! and rules as the SQLite file, in a database that several MEF replicas share.
//!
//! Connections come from a bounded `r2d2` pool of synchronous `postgres` clients; one idle for
//! a second or more is checked before use and a failed one is dropped, so after an outage the
//! pool reconnects by itself. While the server
//! cannot be reached every operation fails with [`MefError::DatabaseUnavailable`] (the EST
//! layer answers 503 with Retry-After).
//!
//! SQLite serialises writers; PostgreSQL (READ COMMITTED) does not, so the rule that a
//! certificate is recorded only while its principal is valid is kept with table locks:
//! recording takes `issued_certs` in ROW EXCLUSIVE mode (recordings do not wait for each other)
//! before it checks the principal, and every revocation and removal takes it in SHARE ROW
//! EXCLUSIVE mode first, so each waits for the other and sees what the other committed.

use super::{now_secs, Registration, SCHEMA_VERSION};
use super::{parse_identity, ChallengeRow, IssuedCert, PskEntry, PskRecord, RegistryEntry};
use crate::identity::Identity;
use crate::MefError;
use ::postgres::types::{ToSql, Type};
use ::postgres::{self, NoTls, Row};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

type Pool = r2d2::Pool<Manager>;
type Conn = r2d2::PooledConnection<Manager>;

/// A pooled connection returned to the pool less than this long ago is handed out without a
/// check: the server cannot have restarted in between. An older one is checked with an empty
/// query first (one round trip), so that after an outage dead connections are replaced, not
/// used. Under load connections come back within milliseconds and are never checked.
const FRESH: Duration = Duration::from_secs(1);

/// Opens the pool's connections (plain TCP or a Unix socket, as the URL says).
struct Manager {
    config: postgres::Config,
}

/// A client and when it last came back to the pool.
struct PooledClient {
    client: postgres::Client,
    returned: Instant,
}

impl std::ops::Deref for PooledClient {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        &self.client
    }
}

impl std::ops::DerefMut for PooledClient {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PooledClient;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PooledClient, postgres::Error> {
        Ok(PooledClient {
            client: self.config.connect(NoTls)?,
            returned: Instant::now(),
        })
    }

    fn is_valid(&self, conn: &mut PooledClient) -> Result<(), postgres::Error> {
        if conn.returned.elapsed() < FRESH {
            return Ok(());
        }
        conn.client.simple_query("").map(|_| ())
    }

    /// Called as the connection comes back: a connection that failed is closed and dropped.
    fn has_broken(&self, conn: &mut PooledClient) -> bool {
        conn.returned = Instant::now();
        conn.client.is_closed()
    }
}

/// How long an operation waits for a connection (and a connection attempt for the server)
/// before it reports the database unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// `pg_advisory_xact_lock` key held by the migration (ASCII "m2mmefmg"): replicas starting at
/// once migrate one after the other.
const MIGRATION_LOCK: i64 = 0x6d32_6d6d_6566_6d67;
/// `pg_advisory_lock` key held while a replica loads or creates the CA and server key material
/// in a shared data directory (ASCII "m2mmefky").
const KEY_MATERIAL_LOCK: i64 = 0x6d32_6d6d_6566_6b79;

/// The schema versions, in order, each applied in the migration transaction. PostgreSQL
/// support starts at version 5: its first schema is the SQLite schema of version 5 (issued
/// certificates with principal and revocation time, identities, PSKs, challengePasswords).
const MIGRATIONS: &[(i64, &str)] = &[(
    5,
    "CREATE TABLE issued_certs (
        serial TEXT PRIMARY KEY,
        subject_type TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        revoked BOOLEAN NOT NULL DEFAULT FALSE,
        issued_at BIGINT NOT NULL,
        cert_der BYTEA NOT NULL,
        authenticated_by TEXT,
        revoked_at BIGINT
    );
    CREATE INDEX issued_certs_authenticated_by ON issued_certs (authenticated_by);
    CREATE INDEX issued_certs_identity ON issued_certs (subject_type, subject_id);
    CREATE TABLE identities (
        fingerprint TEXT PRIMARY KEY,
        subject_type TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        added_at BIGINT NOT NULL
    );
    CREATE TABLE psk_keys (
        kpm_id TEXT PRIMARY KEY,
        kpm BYTEA NOT NULL,
        subject_type TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        added_at BIGINT NOT NULL
    );
    CREATE TABLE challenges (
        id BIGSERIAL PRIMARY KEY,
        client_fp TEXT NOT NULL,
        password_hash BYTEA NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX challenges_client ON challenges (client_fp);
    CREATE INDEX challenges_expiry ON challenges (expires_at);",
)];

/// A failure of the server or of the connection to it is an outage (SQLSTATE class 08
/// connection exception, class 57 operator intervention such as the admin_shutdown of a fast
/// stop, or no SQLSTATE at all with the connection closed or an I/O error); anything else is a
/// failure of the operation itself.
fn pg_err(context: &'static str) -> impl FnOnce(postgres::Error) -> MefError {
    move |e| {
        let outage = match e.code() {
            Some(code) => code.code().starts_with("08") || code.code().starts_with("57"),
            None => {
                e.is_closed()
                    || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
            }
        };
        if outage {
            MefError::DatabaseUnavailable {
                context,
                source: Box::new(e),
            }
        } else {
            MefError::Postgres { context, source: e }
        }
    }
}

fn identity(r: &Row, ty: usize) -> Result<Identity, MefError> {
    parse_identity(r.get(ty), r.get(ty + 1))
}

fn issued(r: &Row) -> Result<IssuedCert, MefError> {
    Ok(IssuedCert {
        serial: r.get(0),
        identity: identity(r, 1)?,
        fingerprint: r.get(3),
        not_before: r.get(4),
        not_after: r.get(5),
        revoked: r.get(6),
        issued_at: r.get(7),
    })
}

/// Revokes the certificates in `roots` (a SELECT of fingerprints with `params`) and all their
/// successors, now; returns how many. The revocation time is the parameter after `params`.
fn revoke_tree(
    tx: &mut postgres::Transaction<'_>,
    roots: &str,
    params: &[&(dyn ToSql + Sync)],
    context: &'static str,
) -> Result<usize, MefError> {
    let now_secs = now_secs();
    let mut all = params.to_vec();
    all.push(&now_secs);
    let now = all.len();
    let sql = format!(
        "WITH RECURSIVE tree(fp) AS ({roots}
             UNION SELECT c.fingerprint FROM issued_certs c JOIN tree t ON c.authenticated_by = t.fp)
         UPDATE issued_certs SET revoked = TRUE, revoked_at = ${now}
         WHERE NOT revoked AND fingerprint IN (SELECT fp FROM tree)"
    );
    let n = tx.execute(&sql, &all).map_err(pg_err(context))?;
    Ok(n as usize)
}

/// A parameter of a statement sent with its type (`*_typed`): one round trip, no separate
/// prepare, for the statements of every request.
type Param<'a> = (&'a (dyn ToSql + Sync), Type);

fn text(v: &(dyn ToSql + Sync)) -> Param<'_> {
    (v, Type::TEXT)
}

fn int8(v: &(dyn ToSql + Sync)) -> Param<'_> {
    (v, Type::INT8)
}

fn bytea(v: &(dyn ToSql + Sync)) -> Param<'_> {
    (v, Type::BYTEA)
}

/// Taken first by every revocation and removal (module documentation).
const LOCK_FOR_REVOCATION: &str = "LOCK TABLE issued_certs IN SHARE ROW EXCLUSIVE MODE";

pub(crate) struct Postgres {
    pool: Pool,
    config: postgres::Config,
}

impl Postgres {
    /// Connects (a pool of at most `pool_size` connections) and migrates the schema to
    /// [`SCHEMA_VERSION`]; a newer schema is refused.
    pub(crate) fn open(config: &postgres::Config, pool_size: u32) -> Result<Postgres, MefError> {
        let mut config = config.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("onem2m-mef");
        }
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            .build(Manager {
                config: config.clone(),
            })
            .map_err(|e| MefError::DatabaseUnavailable {
                context: "connecting to PostgreSQL",
                source: Box::new(e),
            })?;
        let store = Postgres { pool, config };
        store.migrate()?;
        Ok(store)
    }

    pub(crate) fn pool_state(&self) -> super::PoolState {
        let state = self.pool.state();
        super::PoolState {
            connections: state.connections,
            idle: state.idle_connections,
            max: self.pool.max_size(),
        }
    }

    fn conn(&self) -> Result<Conn, MefError> {
        self.pool.get().map_err(|e| MefError::DatabaseUnavailable {
            context: "connecting to PostgreSQL",
            source: Box::new(e),
        })
    }

    /// Runs `f` in a transaction that takes [`LOCK_FOR_REVOCATION`] first, as every revocation
    /// and removal does (module documentation), and commits it (`committing` names the commit
    /// in errors), also when `f` changed nothing: the same as rolling it back.
    fn revoking<T>(
        &self,
        committing: &'static str,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, MefError>,
    ) -> Result<T, MefError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(pg_err("starting transaction"))?;
        tx.batch_execute(LOCK_FOR_REVOCATION)
            .map_err(pg_err("locking issued certificates"))?;
        let result = f(&mut tx)?;
        tx.commit().map_err(pg_err(committing))?;
        Ok(result)
    }

    /// Adds (or replaces) a registration: `sql` takes `key` (the registry's own columns) first,
    /// then the identity's subject type and ID and the time it is added.
    fn register(
        &self,
        sql: &str,
        key: &[&(dyn ToSql + Sync)],
        identity: &Identity,
        context: &'static str,
    ) -> Result<(), MefError> {
        let (subject_type, subject_id, now) = (
            identity.subject_type().as_str(),
            identity.subject_id(),
            now_secs(),
        );
        let identity_params: [&(dyn ToSql + Sync); 3] = [&subject_type, &subject_id, &now];
        let params = [key, &identity_params].concat();
        self.conn()?
            .execute(sql, &params)
            .map_err(pg_err(context))?;
        Ok(())
    }

    /// Every row of `sql` (with `params`), each made into a `T` by `row`.
    fn all_rows<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        context: &'static str,
        row: impl FnMut(&Row) -> Result<T, MefError>,
    ) -> Result<Vec<T>, MefError> {
        self.conn()?
            .query(sql, params)
            .map_err(pg_err(context))?
            .iter()
            .map(row)
            .collect()
    }

    /// The identity (`subject_type, subject_id`) the row of `sql` for `key` holds, if any.
    fn identity_where(
        &self,
        sql: &str,
        key: &str,
        context: &'static str,
    ) -> Result<Option<Identity>, MefError> {
        self.conn()?
            .query_typed_opt(sql, &[text(&key)])
            .map_err(pg_err(context))?
            .map(|r| identity(&r, 0))
            .transpose()
    }

    fn migrate(&self) -> Result<(), MefError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(pg_err("starting migration"))?;
        // Held until commit: a replica starting meanwhile waits, then finds the schema current.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(pg_err("locking the schema for migration"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        )
        .map_err(pg_err("creating meta table"))?;
        let version: i64 = tx
            .query_opt("SELECT value FROM meta WHERE key = 'schema_version'", &[])
            .map_err(pg_err("reading schema version"))?
            .map_or(0, |r| r.get(0));
        if version > SCHEMA_VERSION {
            return Err(MefError::Config(format!(
                "database schema version {version} is not supported by this build (expects {SCHEMA_VERSION})"
            )));
        }
        for (v, sql) in MIGRATIONS {
            if *v > version {
                tx.batch_execute(sql)
                    .map_err(pg_err("migrating the schema"))?;
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&SCHEMA_VERSION],
        )
        .map_err(pg_err("writing schema version"))?;
        tx.commit().map_err(pg_err("committing migration"))
    }

    pub(crate) fn with_key_material_lock<T>(
        &self,
        f: impl FnOnce() -> Result<T, MefError>,
    ) -> Result<T, MefError> {
        // A session lock on a connection of its own, not the pool's: closing it releases the
        // lock whatever `f` did (and the server drops it if this process dies).
        let mut session = self
            .config
            .connect(NoTls)
            .map_err(pg_err("connecting to PostgreSQL"))?;
        session
            .execute("SELECT pg_advisory_lock($1)", &[&KEY_MATERIAL_LOCK])
            .map_err(pg_err("locking the key material"))?;
        let result = f();
        drop(session);
        result
    }

    pub(crate) fn schema_version(&self) -> Result<i64, MefError> {
        let row = self
            .conn()?
            .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
            .map_err(pg_err("reading schema version"))?;
        Ok(row.get(0))
    }

    pub(crate) fn add_identity(
        &self,
        fingerprint: &str,
        identity: &Identity,
    ) -> Result<(), MefError> {
        self.register(
            "INSERT INTO identities (fingerprint, subject_type, subject_id, added_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (fingerprint) DO UPDATE SET subject_type = EXCLUDED.subject_type,
                 subject_id = EXCLUDED.subject_id, added_at = EXCLUDED.added_at",
            &[&fingerprint],
            identity,
            "adding identity",
        )
    }

    pub(crate) fn remove_registration(
        &self,
        r: Registration<'_>,
    ) -> Result<Option<usize>, MefError> {
        let delete = match r {
            Registration::Identity(_) => "DELETE FROM identities WHERE fingerprint = $1",
            Registration::Psk(_) => "DELETE FROM psk_keys WHERE kpm_id = $1",
        };
        self.revoking("committing removal", |tx| {
            let n = tx
                .execute(delete, &[&r.key()])
                .map_err(pg_err("removing a registration"))?;
            if n == 0 {
                return Ok(None);
            }
            revoke_tree(
                tx,
                "SELECT fingerprint FROM issued_certs WHERE authenticated_by = $1",
                &[&r.principal()],
                "revoking what the registration enrolled",
            )
            .map(Some)
        })
    }

    pub(crate) fn lookup_identity(&self, fingerprint: &str) -> Result<Option<Identity>, MefError> {
        self.identity_where(
            "SELECT subject_type, subject_id FROM identities WHERE fingerprint = $1",
            fingerprint,
            "looking up identity",
        )
    }

    pub(crate) fn list_identities(&self) -> Result<Vec<RegistryEntry>, MefError> {
        self.all_rows(
            "SELECT fingerprint, subject_type, subject_id, added_at FROM identities
             ORDER BY fingerprint",
            &[],
            "listing identities",
            |r| {
                Ok(RegistryEntry {
                    fingerprint: r.get(0),
                    identity: identity(r, 1)?,
                    added_at: r.get(3),
                })
            },
        )
    }

    pub(crate) fn add_psk(
        &self,
        kpm_id: &str,
        kpm: &[u8],
        identity: &Identity,
    ) -> Result<(), MefError> {
        self.register(
            "INSERT INTO psk_keys (kpm_id, kpm, subject_type, subject_id, added_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (kpm_id) DO UPDATE SET kpm = EXCLUDED.kpm,
                 subject_type = EXCLUDED.subject_type, subject_id = EXCLUDED.subject_id,
                 added_at = EXCLUDED.added_at",
            &[&kpm_id, &kpm],
            identity,
            "adding PSK",
        )
    }

    pub(crate) fn lookup_psk(&self, kpm_id: &str) -> Result<Option<PskRecord>, MefError> {
        let Some(row) = self
            .conn()?
            .query_typed_opt(
                "SELECT kpm, subject_type, subject_id FROM psk_keys WHERE kpm_id = $1",
                &[text(&kpm_id)],
            )
            .map_err(pg_err("looking up PSK"))?
        else {
            return Ok(None);
        };
        // Copied straight from the row buffer into a zeroized one.
        let key = Zeroizing::new(row.get::<_, &[u8]>(0).to_vec());
        Ok(Some((key, identity(&row, 1)?)))
    }

    pub(crate) fn psk_identity(&self, kpm_id: &str) -> Result<Option<Identity>, MefError> {
        self.identity_where(
            "SELECT subject_type, subject_id FROM psk_keys WHERE kpm_id = $1",
            kpm_id,
            "looking up PSK identity",
        )
    }

    pub(crate) fn list_psks(&self) -> Result<Vec<PskEntry>, MefError> {
        self.all_rows(
            "SELECT kpm_id, subject_type, subject_id, added_at FROM psk_keys ORDER BY kpm_id",
            &[],
            "listing PSKs",
            |r| {
                Ok(PskEntry {
                    kpm_id: r.get(0),
                    identity: identity(r, 1)?,
                    added_at: r.get(3),
                })
            },
        )
    }

    pub(crate) fn insert_issued(
        &self,
        cert: &IssuedCert,
        der: &[u8],
        authenticated_by: &str,
    ) -> Result<bool, MefError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(pg_err("starting transaction"))?;
        // Before the check: a revocation committing meanwhile is either seen or waits for us.
        tx.batch_execute("LOCK TABLE issued_certs IN ROW EXCLUSIVE MODE")
            .map_err(pg_err("locking issued certificates"))?;
        // The check and the insert in one statement: no row when the principal is not valid.
        let recorded = tx
            .execute_typed(
                "INSERT INTO issued_certs (serial, subject_type, subject_id, fingerprint,
                     not_before, not_after, revoked, issued_at, cert_der, authenticated_by)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                 WHERE EXISTS (SELECT 1 FROM issued_certs WHERE fingerprint = $10 AND NOT revoked)
                     OR (NOT EXISTS (SELECT 1 FROM issued_certs WHERE fingerprint = $10)
                         AND EXISTS (SELECT 1 FROM identities WHERE fingerprint = $10))
                     OR EXISTS (SELECT 1 FROM psk_keys WHERE 'psk:' || kpm_id = $10)",
                &[
                    text(&cert.serial),
                    text(&cert.identity.subject_type().as_str()),
                    text(&cert.identity.subject_id()),
                    text(&cert.fingerprint),
                    int8(&cert.not_before),
                    int8(&cert.not_after),
                    (&cert.revoked, Type::BOOL),
                    int8(&cert.issued_at),
                    bytea(&der),
                    text(&authenticated_by),
                ],
            )
            .map_err(pg_err("recording issued certificate"))?;
        if recorded == 0 {
            return Ok(false);
        }
        tx.commit()
            .map_err(pg_err("committing issued certificate"))?;
        Ok(true)
    }

    pub(crate) fn authenticated_by(&self, fingerprint: &str) -> Result<Option<String>, MefError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT authenticated_by FROM issued_certs WHERE fingerprint = $1",
                &[&fingerprint],
            )
            .map_err(pg_err("looking up a certificate's principal"))?
            .and_then(|r| r.get(0)))
    }

    fn issued_where(&self, clause: &str, value: &str) -> Result<Option<IssuedCert>, MefError> {
        let sql = format!(
            "SELECT serial, subject_type, subject_id, fingerprint, not_before, not_after, revoked,
                    issued_at FROM issued_certs WHERE {clause} = $1"
        );
        self.conn()?
            .query_typed_opt(&sql, &[text(&value)])
            .map_err(pg_err("looking up issued certificate"))?
            .map(|r| issued(&r))
            .transpose()
    }

    pub(crate) fn issued_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<IssuedCert>, MefError> {
        self.issued_where("fingerprint", fingerprint)
    }

    pub(crate) fn issued_by_serial(&self, serial: &str) -> Result<Option<IssuedCert>, MefError> {
        self.issued_where("serial", &serial.to_ascii_lowercase())
    }

    pub(crate) fn list_issued(&self) -> Result<Vec<IssuedCert>, MefError> {
        self.all_rows(
            "SELECT serial, subject_type, subject_id, fingerprint, not_before, not_after,
                    revoked, issued_at FROM issued_certs ORDER BY issued_at, serial",
            &[],
            "listing issued certificates",
            issued,
        )
    }

    pub(crate) fn revoke_counted(
        &self,
        serial_or_fingerprint: &str,
    ) -> Result<Option<usize>, MefError> {
        let key = serial_or_fingerprint.to_ascii_lowercase().replace(':', "");
        self.revoking("committing revocation", |tx| {
            let found: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM issued_certs WHERE serial = $1 OR fingerprint = $1)",
                    &[&key],
                )
                .map_err(pg_err("looking up the certificate to revoke"))?
                .get(0);
            if !found {
                return Ok(None);
            }
            revoke_tree(
                tx,
                "SELECT fingerprint FROM issued_certs WHERE serial = $1 OR fingerprint = $1",
                &[&key],
                "revoking certificate",
            )
            .map(Some)
        })
    }

    pub(crate) fn revoked_for_crl(&self, now: i64) -> Result<Vec<(String, i64)>, MefError> {
        self.all_rows(
            "SELECT serial, COALESCE(revoked_at, issued_at) FROM issued_certs
             WHERE revoked AND not_after >= $1 ORDER BY serial",
            &[&now],
            "listing revoked certificates",
            |r| Ok((r.get(0), r.get(1))),
        )
    }

    pub(crate) fn revoke_identity(&self, identity: &Identity) -> Result<usize, MefError> {
        self.revoking("committing revocation", |tx| {
            revoke_tree(
                tx,
                "SELECT fingerprint FROM issued_certs WHERE subject_type = $1 AND subject_id = $2",
                &[&identity.subject_type().as_str(), &identity.subject_id()],
                "revoking by identity",
            )
        })
    }

    pub(crate) fn insert_challenge(
        &self,
        client_fp: &str,
        password_hash: &[u8],
        expires_ms: i64,
        now_ms: i64,
        keep: usize,
    ) -> Result<(), MefError> {
        // One statement (one round trip, atomic): the deletions see the table as it was before
        // the insert, so the client keeps its newest `keep - 1` and the new one. Concurrent
        // issues for one client may leave a few more, until the next issue.
        self.conn()?
            .execute_typed(
                "WITH expired AS (DELETE FROM challenges WHERE expires_at <= $4),
                      capped AS (DELETE FROM challenges WHERE client_fp = $1 AND id NOT IN
                          (SELECT id FROM challenges WHERE client_fp = $1
                           ORDER BY id DESC LIMIT $5))
                 INSERT INTO challenges (client_fp, password_hash, expires_at)
                 VALUES ($1, $2, $3)",
                &[
                    text(&client_fp),
                    bytea(&password_hash),
                    int8(&expires_ms),
                    int8(&now_ms),
                    int8(&(keep.saturating_sub(1) as i64)),
                ],
            )
            .map_err(pg_err("recording a challengePassword"))?;
        Ok(())
    }

    pub(crate) fn challenges_for(&self, client_fp: &str) -> Result<Vec<ChallengeRow>, MefError> {
        Ok(self
            .conn()?
            .query_typed(
                "SELECT id, password_hash, expires_at FROM challenges WHERE client_fp = $1",
                &[text(&client_fp)],
            )
            .map_err(pg_err("looking up challengePasswords"))?
            .iter()
            .map(|r| ChallengeRow {
                id: r.get(0),
                password_hash: r.get(1),
                expires_ms: r.get(2),
            })
            .collect())
    }

    pub(crate) fn claim_challenge(&self, id: i64) -> Result<bool, MefError> {
        // Row-locked: of concurrent claims exactly one deletes the row.
        let n = self
            .conn()?
            .execute_typed("DELETE FROM challenges WHERE id = $1", &[int8(&id)])
            .map_err(pg_err("claiming a challengePassword"))?;
        Ok(n == 1)
    }
}
