//! The shared store of several facilitator replicas: one PostgreSQL database.
//!
//! Every state change is one conditional statement — `INSERT … ON CONFLICT DO UPDATE … WHERE`,
//! `UPDATE … WHERE token = $n AND state IS NULL`, `DELETE … WHERE …` — so concurrent replicas
//! compare and set in the database and never read, decide and write back. Times that decide
//! between replicas (abandoned claims, lease expiry) are the database's `now()`, never a
//! replica's clock.
//!
//! Every call is bounded: a pooled connection is awaited at most
//! [`PostgresSettings::pool_wait`], a new one is opened within
//! [`PostgresSettings::connect_timeout`], and the whole call (connection, statement, answer)
//! within [`PostgresSettings::call_timeout`]. A database that is down, stopped or cut off turns
//! into a [`StoreError`] within those bounds — settles fail closed — and calls work again once
//! it is back, without rebuilding the store.

mod catalog;
mod lease;
mod payment_ids;
mod schema;
mod sign_in;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use x402_core::settlement::random_hex;
use x402_core::{
    Claim, ClaimToken, Intent, KeyedLocks, Outcome, PayerTurn, PaymentId, Record, SettlementStore,
    StoreCounts, StoreError, StoreOptions, UnixTime,
};

use crate::OpenError;
use crate::redact::{redact_url, scrub};
use crate::row::{self, UNRESOLVED};

/// Connection and timing settings of a [`PostgresStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresSettings {
    /// How long opening one connection may take (TCP connect and start-up); a
    /// `connect_timeout` in the URL wins. Default 5 s (a loaded host forks a backend slowly).
    pub connect_timeout: Duration,
    /// How long a call waits for a free pooled connection. Default 5 s.
    pub pool_wait: Duration,
    /// The bound on a whole call: connection, statement and answer. Default 10 s.
    pub call_timeout: Duration,
    /// Connections in the pool. Default 16.
    pub pool_size: usize,
    /// How long a payer turn's lease row lives without renewal: a crashed replica's turn frees
    /// itself after it, so a crash blocks its payers' new payments at most this long. Default
    /// 15 s, renewed every third of it while held. (A turn lapses under a live settle only if
    /// the database is unreachable for that long — and then no replica can claim or write
    /// ahead anything.)
    pub payer_turn_ttl: Duration,
    /// How often resolved rows past their payment's expiry plus the grace period are pruned.
    /// Default 5 min.
    pub prune_every: Duration,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            pool_wait: Duration::from_secs(5),
            call_timeout: Duration::from_secs(10),
            pool_size: 16,
            payer_turn_ttl: Duration::from_secs(15),
            prune_every: Duration::from_secs(300),
        }
    }
}

/// How long start-up may take to migrate the schema (it may wait for another replica's
/// migration).
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a claim retries when the row it conflicted with was released before it could be
/// read (each retry means another settle ended meanwhile; a handful is plenty).
const CLAIM_ATTEMPTS: usize = 8;

/// The settlement store of several replicas (`postgres://…`): claims, intents, outcomes, payer
/// turns and leases in one PostgreSQL database, through a bounded `deadpool` pool of
/// `tokio-postgres` connections.
///
/// - **Claims** are one `INSERT … ON CONFLICT (id) DO UPDATE … WHERE` that takes over only a
///   claim without intent older than [`StoreOptions::abandon_after`] by the database's clock;
///   of any number of replicas claiming one payment, exactly one acquires it.
/// - **Payer turns** queue first on an in-process [`KeyedLocks`] (this replica's own waiters),
///   then take a lease row `payer:<key>` (polled with a short back-off until `wait` passes),
///   renewed while held and deleted when the turn is dropped; its expiry
///   ([`PostgresSettings::payer_turn_ttl`]) frees the turn of a crashed replica.
/// - **Leases** are rows `lease:<name>` held by this store's random process instance id.
/// - **Payer cool-downs** are rows of `x402_throttles`, compared with the database's clock.
/// - **Pruning** runs in the background every [`PostgresSettings::prune_every`] (lapsed
///   cool-downs too) and never deletes an unresolved row.
/// - The schema is created and migrated at start-up, versioned in `x402_schema_version`, under
///   an advisory lock.
///
/// The connection uses no TLS (`NoTls`): reach the database over a trusted network or a local
/// TLS proxy.
pub struct PostgresStore {
    inner: Arc<Inner>,
    pruner: JoinHandle<()>,
}

struct Inner {
    pool: Pool,
    shown_url: String,
    password: Option<String>,
    process: String,
    options: StoreOptions,
    settings: PostgresSettings,
    payers: KeyedLocks,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.inner.pool.status();
        f.debug_struct("PostgresStore")
            .field("url", &self.inner.shown_url)
            .field("process", &self.inner.process)
            .field("options", &self.inner.options)
            .field("settings", &self.inner.settings)
            .field("connections", &status.size)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.pruner.abort();
    }
}

/// A failure inside a call.
enum Fail {
    Pool(PoolError),
    Pg(tokio_postgres::Error),
    Store(StoreError),
}

impl From<PoolError> for Fail {
    fn from(e: PoolError) -> Self {
        Self::Pool(e)
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl Fail {
    /// What failed, in words (tokio-postgres's own `Display` leaves out the cause).
    fn describe(&self) -> String {
        match self {
            Self::Pool(PoolError::Backend(e)) | Self::Pg(e) => describe_pg(e),
            Self::Pool(PoolError::Timeout(kind)) => format!("no connection in time ({kind:?})"),
            Self::Pool(e) => e.to_string(),
            Self::Store(e) => e.0.clone(),
        }
    }
}

fn describe_pg(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl PostgresStore {
    /// Connects to the database at `url` with the default [`PostgresSettings`], creating or
    /// migrating the schema.
    ///
    /// # Errors
    /// [`OpenError::Postgres`] when the URL does not parse, the database cannot be reached
    /// within the connect timeout, or the schema cannot be migrated (newer than this build,
    /// say). The text carries the redacted URL only.
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, OpenError> {
        Self::connect_with(url, options, PostgresSettings::default()).await
    }

    /// [`PostgresStore::connect`] with explicit settings.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`].
    pub async fn connect_with(
        url: &str,
        options: StoreOptions,
        settings: PostgresSettings,
    ) -> Result<Self, OpenError> {
        let shown_url = redact_url(url);
        let failed = |reason: String| OpenError::Postgres {
            url: shown_url.clone(),
            reason,
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| failed(describe_pg(&e)))?;
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(settings.connect_timeout);
        }
        if config.get_tcp_user_timeout().is_none() {
            // A peer cut off without a reset: the kernel drops the connection once sent data
            // stays unacknowledged this long, and the pool replaces it.
            config.tcp_user_timeout(settings.call_timeout.saturating_mul(2));
        }
        if config.get_application_name().is_none() {
            config.application_name("x402-facilitator");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.pool_wait))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .build()
            .map_err(|e| failed(e.to_string()))?;
        let inner = Arc::new(Inner {
            pool,
            shown_url: shown_url.clone(),
            password,
            process: random_hex(),
            options,
            settings,
            payers: KeyedLocks::default(),
        });
        let migrated = tokio::time::timeout(MIGRATION_TIMEOUT, async {
            let mut client = inner.pool.get().await?;
            schema::migrate(&mut client).await
        })
        .await;
        match migrated {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(failed(inner.scrub(e.describe()))),
            Err(_) => {
                return Err(failed(format!(
                    "the schema migration did not finish within {MIGRATION_TIMEOUT:?}"
                )));
            }
        }
        let pruner = tokio::spawn(lease::prune_loop(Arc::downgrade(&inner)));
        Ok(Self { inner, pruner })
    }

    /// This store's random process instance id: the holder of its leases.
    pub fn process_id(&self) -> &str {
        &self.inner.process
    }

    /// Deletes resolved rows past their payment's expiry plus the grace period, and long-expired
    /// lease rows, now (the background task does the same every
    /// [`PostgresSettings::prune_every`]). Returns how many settlement rows went.
    ///
    /// # Errors
    /// The database failed or did not answer in time.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        self.inner.prune().await
    }
}

impl Inner {
    fn scrub(&self, text: String) -> String {
        scrub(text, self.password.as_deref())
    }

    /// Runs `f` with a pooled connection, the whole within the call timeout.
    async fn call<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Object) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        let attempt = async {
            let client = self.pool.get().await?;
            f(client).await
        };
        match tokio::time::timeout(self.settings.call_timeout, attempt).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError(format!(
                "postgres {what}: {}",
                self.scrub(e.describe())
            ))),
            Err(_) => Err(StoreError(format!(
                "postgres {what}: no answer within {:?}",
                self.settings.call_timeout
            ))),
        }
    }

    /// Runs one statement that changes rows; how many it changed.
    async fn change(
        &self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.call(what, |client| async move {
            let stmt = client.prepare_cached(sql).await?;
            Ok(client.execute(&stmt, params).await?)
        })
        .await
    }

    async fn prune(&self) -> Result<u64, StoreError> {
        let grace = row::seconds(self.options.grace);
        let pruned = self
            .change(
                "prune",
                &format!(
                    "DELETE FROM x402_settlements
                     WHERE expires < extract(epoch FROM now())::bigint - $1
                       AND NOT ({UNRESOLVED})"
                ),
                &[&grace],
            )
            .await?;
        self.change(
            "prune",
            "DELETE FROM x402_leases WHERE expires_at < now() - interval '1 minute'",
            &[],
        )
        .await?;
        self.change(
            "prune",
            "DELETE FROM x402_throttles WHERE refused_until <= floor(extract(epoch FROM now()))::bigint",
            &[],
        )
        .await?;
        Ok(pruned)
    }
}

async fn select_record(client: &Object, id: &str) -> Result<Option<Record>, Fail> {
    let stmt = client
        .prepare_cached("SELECT outcome, intent FROM x402_settlements WHERE id = $1")
        .await?;
    Ok(match client.query_opt(&stmt, &[&id]).await? {
        Some(found) => Some(row::record(
            found.get::<_, Option<&str>>(0),
            found.get::<_, Option<&str>>(1),
        )?),
        None => None,
    })
}

#[async_trait]
impl SettlementStore for PostgresStore {
    async fn claim(&self, id: &PaymentId, expires: UnixTime) -> Result<Claim, StoreError> {
        let id = id.as_str();
        let expires = row::expires(expires);
        let abandon = row::millis(self.inner.options.abandon_after);
        let holder = self.inner.process.as_str();
        self.inner
            .call("claim", |client| async move {
                let stmt = client
                    .prepare_cached(
                        "INSERT INTO x402_settlements AS s (id, token, holder, expires)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (id) DO UPDATE SET
                             token = EXCLUDED.token, holder = EXCLUDED.holder,
                             claimed_at = now(), expires = EXCLUDED.expires,
                             seq = nextval('x402_settlement_seq'), state = NULL,
                             outcome = NULL, intent = NULL, network = NULL, tx = NULL
                         WHERE s.state IS NULL AND s.intent IS NULL
                           AND s.claimed_at <= now() - $5::bigint * interval '1 millisecond'
                         RETURNING s.token",
                    )
                    .await?;
                for _ in 0..CLAIM_ATTEMPTS {
                    let token = ClaimToken::random();
                    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                        [&id, &token.as_str(), &holder, &expires, &abandon];
                    if client.query_opt(&stmt, &params).await?.is_some() {
                        return Ok(Claim::Acquired(token));
                    }
                    if let Some(record) = select_record(&client, id).await? {
                        return Ok(Claim::Taken(record));
                    }
                    // Released between the two statements: claim again.
                }
                Err(Fail::Store(StoreError(format!(
                    "the claim of {id} kept changing under it"
                ))))
            })
            .await
    }

    async fn write_ahead(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        intent: &Intent,
    ) -> Result<bool, StoreError> {
        let stored = intent.to_stored();
        let changed = self
            .inner
            .change(
                "write-ahead",
                "UPDATE x402_settlements SET intent = $3, network = $4, tx = $5
                 WHERE id = $1 AND token = $2 AND state IS NULL",
                &[
                    &id.as_str(),
                    &token.as_str(),
                    &stored,
                    &intent.network,
                    &intent.transaction,
                ],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn release(&self, id: &PaymentId, token: &ClaimToken) -> Result<(), StoreError> {
        self.inner
            .change(
                "release",
                "DELETE FROM x402_settlements
                 WHERE id = $1 AND token = $2 AND state IS NULL AND intent IS NULL",
                &[&id.as_str(), &token.as_str()],
            )
            .await?;
        Ok(())
    }

    async fn complete(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        outcome: Outcome,
    ) -> Result<bool, StoreError> {
        let (state, stored) = (row::state_of(&outcome), outcome.to_stored());
        let changed = self
            .inner
            .change(
                "complete",
                "UPDATE x402_settlements SET state = $3, outcome = $4
                 WHERE id = $1 AND token = $2 AND state IS NULL",
                &[&id.as_str(), &token.as_str(), &state, &stored],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn resolve(
        &self,
        id: &PaymentId,
        transaction: &str,
        outcome: Option<Outcome>,
    ) -> Result<bool, StoreError> {
        let changed = match &outcome {
            Some(outcome) => {
                let (state, stored) = (row::state_of(outcome), outcome.to_stored());
                self.inner
                    .change(
                        "resolve",
                        &format!(
                            "UPDATE x402_settlements SET state = $3, outcome = $4
                             WHERE id = $1 AND tx = $2 AND {UNRESOLVED}"
                        ),
                        &[&id.as_str(), &transaction, &state, &stored],
                    )
                    .await?
            }
            None => self
                .inner
                .change(
                    "resolve",
                    &format!(
                        "DELETE FROM x402_settlements WHERE id = $1 AND tx = $2 AND {UNRESOLVED}"
                    ),
                    &[&id.as_str(), &transaction],
                )
                .await?,
        };
        Ok(changed == 1)
    }

    async fn deliver(&self, id: &PaymentId) -> Result<bool, StoreError> {
        let id = id.as_str();
        self.inner
            .call("deliver", |client| async move {
                let stmt = client
                    .prepare_cached(
                        "SELECT outcome FROM x402_settlements WHERE id = $1 AND state = 'landed'",
                    )
                    .await?;
                let Some(found) = client.query_opt(&stmt, &[&id]).await? else {
                    return Ok(false);
                };
                let Some(landed) = found.get::<_, Option<&str>>(0) else {
                    return Ok(false);
                };
                let Some(settled) = row::delivered(landed)? else {
                    return Ok(false);
                };
                // Compare-and-set on the state: of concurrent deliveries exactly one changes it.
                let stmt = client
                    .prepare_cached(
                        "UPDATE x402_settlements SET state = 'settled', outcome = $2
                         WHERE id = $1 AND state = 'landed' AND outcome = $3",
                    )
                    .await?;
                Ok(client.execute(&stmt, &[&id, &settled, &landed]).await? == 1)
            })
            .await
    }

    async fn record(&self, id: &PaymentId) -> Result<Option<Record>, StoreError> {
        let id = id.as_str();
        self.inner
            .call("record", |client| async move {
                select_record(&client, id).await
            })
            .await
    }

    async fn unresolved(
        &self,
        network: &str,
        limit: usize,
    ) -> Result<Vec<(PaymentId, Record)>, StoreError> {
        let limit = row::limit(limit);
        self.inner
            .call("unresolved", |client| async move {
                let stmt = client
                    .prepare_cached(&format!(
                        "SELECT id, outcome, intent FROM x402_settlements
                         WHERE network = $1 AND {UNRESOLVED} ORDER BY seq LIMIT $2"
                    ))
                    .await?;
                let mut found = Vec::new();
                for r in client.query(&stmt, &[&network, &limit]).await? {
                    let record = row::record(r.get(1), r.get(2))?;
                    found.push((PaymentId::from_stored(r.get(0)), record));
                }
                Ok(found)
            })
            .await
    }

    async fn payer_turn(&self, key: &str, wait: Duration) -> Result<Option<PayerTurn>, StoreError> {
        lease::payer_turn(&self.inner, key, wait).await
    }

    async fn lease(&self, name: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner
            .take_lease(&format!("lease:{name}"), &self.inner.process, ttl)
            .await
    }

    async fn unlease(&self, name: &str) -> Result<(), StoreError> {
        self.inner
            .give_back(&format!("lease:{name}"), &self.inner.process)
            .await
    }

    async fn throttle(&self, key: &str, until: UnixTime) -> Result<(), StoreError> {
        let until = row::expires(until);
        self.inner
            .change(
                "throttle",
                "INSERT INTO x402_throttles AS t (key, refused_until) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET
                     refused_until = GREATEST(t.refused_until, EXCLUDED.refused_until)",
                &[&key, &until],
            )
            .await?;
        Ok(())
    }

    async fn throttled(&self, key: &str) -> Result<Option<UnixTime>, StoreError> {
        self.inner
            .call("throttled", |client| async move {
                let stmt = client
                    .prepare_cached(
                        "SELECT refused_until FROM x402_throttles
                         WHERE key = $1 AND refused_until > floor(extract(epoch FROM now()))::bigint",
                    )
                    .await?;
                Ok(client
                    .query_opt(&stmt, &[&key])
                    .await?
                    .map(|r| row::unix_time(r.get(0))))
            })
            .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.inner
            .call("health", |client| async move {
                client.simple_query("SELECT 1").await?;
                Ok(())
            })
            .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.inner
            .call("counts", |client| async move {
                let stmt = client
                    .prepare_cached(&format!(
                        "SELECT COUNT(*) FROM x402_settlements WHERE {UNRESOLVED}"
                    ))
                    .await?;
                let unresolved: i64 = client.query_one(&stmt, &[]).await?.get(0);
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
        "postgres"
    }
}
