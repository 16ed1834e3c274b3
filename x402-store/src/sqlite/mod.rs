//! The embedded store: one SQLite file, one facilitator process.
//!
//! Every write is a transaction committed with `synchronous=FULL` in WAL mode: when a call
//! returns, its record is on disk and survives a crash or a power loss — a write-ahead is durable
//! before the transaction it names can be broadcast. The connection is used from
//! [`tokio::task::spawn_blocking`], behind a mutex, so SQLite's blocking I/O never stalls the
//! async runtime.

mod catalog;
mod lock;
mod payment_ids;
mod schema;
mod sign_in;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod throttle_tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use x402_core::settlement::random_hex;
use x402_core::{
    Claim, ClaimToken, Intent, KeyedLocks, Outcome, PayerTurn, PaymentId, SettlementStore,
    SharedClock, StoreCounts, StoreError, StoreOptions, UnixTime,
};

use self::lock::FileLock;
use crate::OpenError;
use crate::row::{self, UNRESOLVED};

/// How long a statement waits for SQLite's own file lock (a checkpoint, a backup tool reading
/// the file) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Expired entries are pruned once every this many claims (and at open).
const PRUNE_EVERY_CLAIMS: u64 = 1024;

/// The embedded settlement store (`sqlite:<path>`): one SQLite file in WAL mode with
/// `synchronous=FULL`, used by one process at a time.
///
/// - **One process per file.** [`SqliteStore::open`] takes an exclusive lock on `<path>.lock`
///   and fails with [`OpenError::Locked`] while another store holds it. Several replicas need
///   the PostgreSQL store.
/// - **Takeover after a restart.** Each store has a random process instance id, written into
///   the rows it claims. Since only one process uses the file, a claim without intent left by
///   an earlier instance (a crash before the write-ahead) is taken over at once; one of this
///   instance's own is taken over after [`StoreOptions::abandon_after`].
/// - **Payer turns** are in-process ([`KeyedLocks`]); **leases** are always granted (one
///   process), and recorded in the file.
/// - **Payer cool-downs** are rows of `x402_throttles`, compared with the store's clock.
/// - **Pruning:** resolved entries past their payment's expiry plus [`StoreOptions::grace`], and
///   lapsed cool-downs, are deleted at open and every 1024 claims; unresolved entries never.
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
    process: String,
    options: StoreOptions,
    clock: SharedClock,
    payers: KeyedLocks,
    claims: AtomicU64,
    lock: FileLock,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("lock", &self.inner.lock.path())
            .field("process", &self.inner.process)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

/// A failure inside a blocking call: SQLite's, or a stored value that does not read back.
enum Fail {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Sql(e) => StoreError(format!("sqlite: {e}")),
            Fail::Store(e) => e,
        }
    }
}

type Result<T, E = Fail> = std::result::Result<T, E>;

impl SqliteStore {
    /// Opens (creating it and its parent folders if needed) the store at `path`, with the system
    /// clock.
    ///
    /// # Errors
    /// [`OpenError::Locked`] while another store holds the file; [`OpenError::Sqlite`] when the
    /// file cannot be opened, put in WAL mode or migrated (a schema newer than this build, say).
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, OpenError> {
        Self::open_with_clock(path, options, x402_core::system_clock())
    }

    /// [`SqliteStore::open`] with the clock that decides which payments have expired (for tests).
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with_clock(
        path: impl AsRef<Path>,
        options: StoreOptions,
        clock: SharedClock,
    ) -> Result<Self, OpenError> {
        let path = path.as_ref().to_owned();
        let failed = |reason: String| OpenError::Sqlite {
            path: path.clone(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| failed(format!("cannot create {}: {e}", parent.display())))?;
        }
        let lock = FileLock::acquire(&path)?;
        let mut conn = Connection::open(&path).map_err(|e| failed(e.to_string()))?;
        configure(&conn).map_err(failed)?;
        schema::migrate(&mut conn).map_err(|e| failed(e.to_string()))?;
        let inner = Inner {
            conn: Mutex::new(conn),
            path: path.clone(),
            process: random_hex(),
            options,
            clock,
            payers: KeyedLocks::default(),
            claims: AtomicU64::new(0),
            lock,
        };
        {
            let conn = inner.connection();
            inner
                .prune(&conn)
                .map_err(|e| failed(StoreError::from(e).0))?;
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// This store's random process instance id, recorded in the rows it claims.
    pub fn process_id(&self) -> &str {
        &self.inner.process
    }

    /// Runs `f` with the connection on the blocking thread pool.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.connection();
            f(&inner, &mut conn)
        })
        .await
        .map_err(|e| StoreError(format!("sqlite: the blocking task failed: {e}")))?
        .map_err(StoreError::from)
    }
}

/// WAL journal, `synchronous=FULL`, a busy timeout; each checked, since a pragma that does not
/// take (WAL on a file system without shared memory, say) silently keeps the old mode.
fn configure(conn: &Connection) -> Result<(), String> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!(
            "cannot use the WAL journal (SQLite kept `{mode}`): put the file on a local file system"
        ));
    }
    conn.execute_batch("PRAGMA synchronous = FULL")
        .map_err(|e| e.to_string())?;
    let synchronous: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if synchronous != 2 {
        return Err(format!("synchronous is {synchronous}, not FULL (2)"));
    }
    Ok(())
}

impl Inner {
    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A poisoned lock only means a thread panicked while holding it; every change is a
        // transaction that rolled back when it was dropped, so the connection is consistent.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deletes resolved entries past their expiry plus the grace period, and expired leases.
    fn prune(&self, conn: &Connection) -> Result<()> {
        let now = self.clock.now().0;
        let cutoff =
            i64::try_from(now.saturating_sub(self.options.grace.as_secs())).unwrap_or(i64::MAX);
        conn.prepare_cached(&format!(
            "DELETE FROM x402_settlements WHERE expires < ?1 AND NOT ({UNRESOLVED})"
        ))?
        .execute(params![cutoff])?;
        conn.prepare_cached("DELETE FROM x402_leases WHERE expires_at_ms < ?1")?
            .execute(params![row::now_millis()])?;
        conn.prepare_cached("DELETE FROM x402_throttles WHERE refused_until <= ?1")?
            .execute(params![row::expires(UnixTime(now))])?;
        Ok(())
    }

    fn claim(&self, conn: &mut Connection, id: &str, expires: i64) -> Result<Claim> {
        if self.claims.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY_CLAIMS
            == PRUNE_EVERY_CLAIMS - 1
        {
            self.prune(conn)?;
        }
        let token = ClaimToken::random();
        let now = row::now_millis();
        let abandoned_before = now.saturating_sub(row::millis(self.options.abandon_after));
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // A new row, or a takeover of a claim without intent that is abandoned: left by an
        // earlier process instance (one process per file: it is gone), or older than
        // `abandon_after`.
        let acquired =
            tx.prepare_cached(
                "INSERT INTO x402_settlements (id, token, holder, claimed_at_ms, expires, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5,
                         (SELECT COALESCE(MAX(seq), 0) + 1 FROM x402_settlements))
                 ON CONFLICT (id) DO UPDATE SET
                     token = excluded.token, holder = excluded.holder,
                     claimed_at_ms = excluded.claimed_at_ms, expires = excluded.expires,
                     seq = excluded.seq, state = NULL, outcome = NULL, intent = NULL,
                     network = NULL, tx = NULL
                 WHERE x402_settlements.state IS NULL AND x402_settlements.intent IS NULL
                   AND (x402_settlements.holder <> excluded.holder
                        OR x402_settlements.claimed_at_ms <= ?6)",
            )?
            .execute(params![
                id,
                token.as_str(),
                self.process,
                now,
                expires,
                abandoned_before
            ])? == 1;
        let claim = if acquired {
            Claim::Acquired(token)
        } else {
            let record = select_record(&tx, id)?.ok_or_else(|| {
                StoreError(format!(
                    "sqlite: the claim of {id} neither inserted nor found"
                ))
            })?;
            Claim::Taken(record)
        };
        tx.commit()?;
        Ok(claim)
    }
}

fn select_record(conn: &Connection, id: &str) -> Result<Option<x402_core::Record>> {
    let columns = conn
        .prepare_cached("SELECT outcome, intent FROM x402_settlements WHERE id = ?1")?
        .query_row(params![id], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
            ))
        })
        .optional()?;
    Ok(match columns {
        Some((outcome, intent)) => Some(row::record(outcome.as_deref(), intent.as_deref())?),
        None => None,
    })
}

#[async_trait]
impl SettlementStore for SqliteStore {
    async fn claim(&self, id: &PaymentId, expires: UnixTime) -> Result<Claim, StoreError> {
        let id = id.as_str().to_owned();
        let expires = row::expires(expires);
        self.call(move |inner, conn| inner.claim(conn, &id, expires))
            .await
    }

    async fn write_ahead(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        intent: &Intent,
    ) -> Result<bool, StoreError> {
        let (id, token) = (id.as_str().to_owned(), token.as_str().to_owned());
        let (network, tx, stored) = (
            intent.network.clone(),
            intent.transaction.clone(),
            intent.to_stored(),
        );
        self.call(move |_, conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE x402_settlements SET intent = ?3, network = ?4, tx = ?5
                     WHERE id = ?1 AND token = ?2 AND state IS NULL",
                )?
                .execute(params![id, token, stored, network, tx])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release(&self, id: &PaymentId, token: &ClaimToken) -> Result<(), StoreError> {
        let (id, token) = (id.as_str().to_owned(), token.as_str().to_owned());
        self.call(move |_, conn| {
            conn.prepare_cached(
                "DELETE FROM x402_settlements
                 WHERE id = ?1 AND token = ?2 AND state IS NULL AND intent IS NULL",
            )?
            .execute(params![id, token])?;
            Ok(())
        })
        .await
    }

    async fn complete(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        outcome: Outcome,
    ) -> Result<bool, StoreError> {
        let (id, token) = (id.as_str().to_owned(), token.as_str().to_owned());
        let (state, stored) = (row::state_of(&outcome), outcome.to_stored());
        self.call(move |_, conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE x402_settlements SET state = ?3, outcome = ?4
                     WHERE id = ?1 AND token = ?2 AND state IS NULL",
                )?
                .execute(params![id, token, state, stored])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn resolve(
        &self,
        id: &PaymentId,
        transaction: &str,
        outcome: Option<Outcome>,
    ) -> Result<bool, StoreError> {
        let (id, transaction) = (id.as_str().to_owned(), transaction.to_owned());
        self.call(move |_, conn| {
            let changed = match &outcome {
                Some(outcome) => conn
                    .prepare_cached(&format!(
                        "UPDATE x402_settlements SET state = ?3, outcome = ?4
                         WHERE id = ?1 AND tx = ?2 AND {UNRESOLVED}"
                    ))?
                    .execute(params![
                        id,
                        transaction,
                        row::state_of(outcome),
                        outcome.to_stored()
                    ])?,
                None => conn
                    .prepare_cached(&format!(
                        "DELETE FROM x402_settlements WHERE id = ?1 AND tx = ?2 AND {UNRESOLVED}"
                    ))?
                    .execute(params![id, transaction])?,
            };
            Ok(changed == 1)
        })
        .await
    }

    async fn deliver(&self, id: &PaymentId) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        self.call(move |_, conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let landed: Option<String> = tx
                .prepare_cached(
                    "SELECT outcome FROM x402_settlements WHERE id = ?1 AND state = 'landed'",
                )?
                .query_row(params![id], |r| r.get(0))
                .optional()?;
            let Some(settled) = landed.as_deref().map(row::delivered).transpose()?.flatten() else {
                return Ok(false);
            };
            let changed = tx
                .prepare_cached(
                    "UPDATE x402_settlements SET state = 'settled', outcome = ?2
                     WHERE id = ?1 AND state = 'landed' AND outcome = ?3",
                )?
                .execute(params![id, settled, landed])?;
            tx.commit()?;
            Ok(changed == 1)
        })
        .await
    }

    async fn record(&self, id: &PaymentId) -> Result<Option<x402_core::Record>, StoreError> {
        let id = id.as_str().to_owned();
        self.call(move |_, conn| select_record(conn, &id)).await
    }

    async fn unresolved(
        &self,
        network: &str,
        limit: usize,
    ) -> Result<Vec<(PaymentId, x402_core::Record)>, StoreError> {
        let network = network.to_owned();
        self.call(move |_, conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT id, outcome, intent FROM x402_settlements
                 WHERE network = ?1 AND {UNRESOLVED} ORDER BY seq LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![network, row::limit(limit)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })?;
            let mut found = Vec::new();
            for columns in rows {
                let (id, outcome, intent) = columns?;
                let record = row::record(outcome.as_deref(), intent.as_deref())?;
                found.push((PaymentId::from_stored(id), record));
            }
            Ok(found)
        })
        .await
    }

    async fn payer_turn(&self, key: &str, wait: Duration) -> Result<Option<PayerTurn>, StoreError> {
        Ok(tokio::time::timeout(wait, self.inner.payers.lock(key))
            .await
            .ok()
            .map(PayerTurn::new))
    }

    async fn lease(&self, name: &str, ttl: Duration) -> Result<bool, StoreError> {
        // One process per file: every lease is this process's. Recorded for operators.
        let name = name.to_owned();
        self.call(move |inner, conn| {
            let expires_at = row::now_millis().saturating_add(row::millis(ttl));
            conn.prepare_cached(
                "INSERT INTO x402_leases (name, holder, expires_at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET
                     holder = excluded.holder, expires_at_ms = excluded.expires_at_ms",
            )?
            .execute(params![name, inner.process, expires_at])?;
            Ok(true)
        })
        .await
    }

    async fn unlease(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.call(move |inner, conn| {
            conn.prepare_cached("DELETE FROM x402_leases WHERE name = ?1 AND holder = ?2")?
                .execute(params![name, inner.process])?;
            Ok(())
        })
        .await
    }

    async fn throttle(&self, key: &str, until: UnixTime) -> Result<(), StoreError> {
        let (key, until) = (key.to_owned(), row::expires(until));
        self.call(move |_, conn| {
            conn.prepare_cached(
                "INSERT INTO x402_throttles (key, refused_until) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET
                     refused_until = max(x402_throttles.refused_until, excluded.refused_until)",
            )?
            .execute(params![key, until])?;
            Ok(())
        })
        .await
    }

    async fn throttled(&self, key: &str) -> Result<Option<UnixTime>, StoreError> {
        let key = key.to_owned();
        self.call(move |inner, conn| {
            let now = row::expires(inner.clock.now());
            let until: Option<i64> = conn
                .prepare_cached(
                    "SELECT refused_until FROM x402_throttles
                     WHERE key = ?1 AND refused_until > ?2",
                )?
                .query_row(params![key, now], |r| r.get(0))
                .optional()?;
            Ok(until.map(row::unix_time))
        })
        .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.call(|_, conn| {
            conn.prepare_cached("SELECT COUNT(*) FROM x402_leases")?
                .query_row([], |r| r.get::<_, i64>(0))?;
            Ok(())
        })
        .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.call(|_, conn| {
            let unresolved: i64 = conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM x402_settlements WHERE {UNRESOLVED}"
                ))?
                .query_row([], |r| r.get(0))?;
            Ok(StoreCounts {
                unresolved: u64::try_from(unresolved).unwrap_or(0),
            })
        })
        .await
    }

    fn catalog(&self) -> Option<&dyn x402_core::extension::catalog::ResourceCatalog> {
        Some(self)
    }

    fn sign_in(&self) -> Option<&dyn x402_core::extension::sign_in::SignInStore> {
        Some(self)
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}
