//! Lease rows (payer turns and signer-key leases) and background pruning.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedMutexGuard, oneshot};
use tokio::task::JoinHandle;
use x402_core::settlement::random_hex;
use x402_core::{PayerTurn, StoreError};

use super::Inner;
use crate::row;

/// The first pause between two attempts at a busy payer's turn; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// The longest pause between two attempts at a busy payer's turn.
const MAX_BACKOFF: Duration = Duration::from_millis(200);

impl Inner {
    /// Takes (or renews) lease `name` for `holder` for `ttl`: free, expired by the database's
    /// clock, or already `holder`'s. Whether `holder` holds it now.
    pub(super) async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl = row::millis(ttl);
        self.call("lease", |client| async move {
            let stmt = client
                .prepare_cached(
                    "INSERT INTO x402_leases AS l (name, holder, expires_at)
                     VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')
                     ON CONFLICT (name) DO UPDATE SET
                         holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                     WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
                     RETURNING l.holder",
                )
                .await?;
            Ok(client
                .query_opt(&stmt, &[&name, &holder, &ttl])
                .await?
                .is_some())
        })
        .await
    }

    /// Extends `holder`'s lease `name` to `ttl` from now; `false` when it is not `holder`'s
    /// any more.
    async fn renew_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let ttl = row::millis(ttl);
        let changed = self
            .change(
                "lease renewal",
                "UPDATE x402_leases SET expires_at = now() + $3::bigint * interval '1 millisecond'
                 WHERE name = $1 AND holder = $2",
                &[&name, &holder, &ttl],
            )
            .await?;
        Ok(changed == 1)
    }

    /// Gives lease `name` back if `holder` holds it.
    pub(super) async fn give_back(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.change(
            "unlease",
            "DELETE FROM x402_leases WHERE name = $1 AND holder = $2",
            &[&name, &holder],
        )
        .await?;
        Ok(())
    }
}

/// Waits up to `wait` for payer `key`'s turn: first this replica's own queue, then the
/// database's lease row `payer:<key>`.
pub(super) async fn payer_turn(
    inner: &Arc<Inner>,
    key: &str,
    wait: Duration,
) -> Result<Option<PayerTurn>, StoreError> {
    let deadline = Instant::now() + wait;
    let Ok(local) = tokio::time::timeout(wait, inner.payers.lock(key)).await else {
        return Ok(None);
    };
    // The database part runs in its own task: if the caller gives up (its future is dropped)
    // right after a row was taken, the unclaimed turn is dropped there and gives the row back,
    // instead of blocking the payer until the row expires.
    let (answer, answered) = oneshot::channel();
    let task_inner = Arc::clone(inner);
    let name = format!("payer:{key}");
    tokio::spawn(async move {
        let taken = take_turn(task_inner, name, deadline, &answer).await;
        let _ = answer.send(taken);
    });
    match answered.await {
        Ok(Ok(Some(held))) => Ok(Some(PayerTurn::new(Turn {
            held,
            _local: local,
        }))),
        Ok(Ok(None)) => Ok(None),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(StoreError(
            "postgres payer turn: the waiting task ended without an answer".into(),
        )),
    }
}

type Answer = oneshot::Sender<Result<Option<HeldRow>, StoreError>>;

/// Polls the lease row until it is taken, `deadline` passes or the caller is gone.
async fn take_turn(
    inner: Arc<Inner>,
    name: String,
    deadline: Instant,
    answer: &Answer,
) -> Result<Option<HeldRow>, StoreError> {
    let holder = random_hex();
    let ttl = inner.settings.payer_turn_ttl;
    let mut backoff = FIRST_BACKOFF;
    loop {
        if inner.take_lease(&name, &holder, ttl).await? {
            return Ok(Some(HeldRow::new(inner, name, holder, ttl)));
        }
        let now = Instant::now();
        if now >= deadline || answer.is_closed() {
            return Ok(None);
        }
        tokio::time::sleep(backoff.min(deadline - now)).await;
        backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
    }
}

/// A payer's turn: the database row, then this replica's queue (dropped in that order).
struct Turn {
    held: HeldRow,
    _local: OwnedMutexGuard<()>,
}

/// A lease row held for a payer turn: renewed in the background, deleted when dropped.
struct HeldRow {
    inner: Arc<Inner>,
    name: String,
    holder: String,
    renewer: JoinHandle<()>,
}

impl HeldRow {
    fn new(inner: Arc<Inner>, name: String, holder: String, ttl: Duration) -> Self {
        let renewer = tokio::spawn({
            let (inner, name, holder) = (Arc::clone(&inner), name.clone(), holder.clone());
            async move {
                let every = (ttl / 3).max(Duration::from_millis(100));
                loop {
                    tokio::time::sleep(every).await;
                    match inner.renew_lease(&name, &holder, ttl).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(%name, "a payer turn's lease row was taken over while held");
                            break;
                        }
                        Err(e) => tracing::warn!(%name, error = %e, "cannot renew a payer turn"),
                    }
                }
            }
        });
        Self {
            inner,
            name,
            holder,
            renewer,
        }
    }
}

impl Drop for HeldRow {
    fn drop(&mut self) {
        self.renewer.abort();
        let inner = Arc::clone(&self.inner);
        let (name, holder) = (
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.holder),
        );
        // Dropped outside a runtime (at shutdown): the row's expiry frees the turn.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = inner.give_back(&name, &holder).await {
                    tracing::warn!(%name, error = %e, "cannot give a payer turn back; it expires by itself");
                }
            });
        }
    }
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("name", &self.held.name)
            .finish()
    }
}

/// Prunes every [`super::PostgresSettings::prune_every`] while the store lives.
pub(super) async fn prune_loop(inner: Weak<Inner>) {
    let every = match inner.upgrade() {
        Some(inner) => inner.settings.prune_every.max(Duration::from_secs(1)),
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        match inner.prune().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "settlement store pruned"),
            Err(e) => tracing::warn!(error = %e, "settlement store pruning failed"),
        }
    }
}
