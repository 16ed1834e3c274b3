//! A store that fails, or loses a race, on demand: the faults tests inject into the settlement
//! path (a store down at the write-ahead or the outcome, a claim taken over, a reconciler that
//! resolves a record first, the chain changing right after a claim).

#![allow(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    Claim, ClaimToken, Intent, MemoryStore, Outcome, PayerTurn, PaymentId, Record, SettlementStore,
    StoreCounts, StoreError,
};
use crate::UnixTime;

/// An action run once: the first time a claim is acquired, or at the first write-ahead.
pub type ClaimHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A [`MemoryStore`] with switches for faults; every switch starts off.
#[derive(Default)]
pub struct FaultyStore {
    inner: MemoryStore,
    hook: tokio::sync::Mutex<Option<ClaimHook>>,
    /// Whether the hook runs at the first write-ahead instead of the first claim.
    hook_at_write_ahead: bool,
    /// Every write-ahead fails as an unreachable store would.
    pub write_ahead_fails: AtomicBool,
    /// Every write-ahead finds the claim taken over (`Ok(false)`).
    pub write_ahead_loses: AtomicBool,
    /// Every completion fails as an unreachable store would.
    pub complete_fails: AtomicBool,
    /// Right before a completion, a reconciler resolves the record as landed.
    pub reconciler_wins: AtomicBool,
}

impl std::fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn fault() -> StoreError {
    StoreError("connection refused (injected)".into())
}

impl FaultyStore {
    /// A store that runs `hook` the first time a claim is acquired: after the facilitator
    /// verified a payment and before it sends anything.
    pub fn with_claim_hook(hook: ClaimHook) -> Self {
        Self {
            hook: tokio::sync::Mutex::new(Some(hook)),
            ..Self::default()
        }
    }

    /// A store that runs `hook` at the first write-ahead: after the settle's last check (its
    /// simulation under the claim) and the signing, before the transaction is sent.
    pub fn with_write_ahead_hook(hook: ClaimHook) -> Self {
        Self {
            hook: tokio::sync::Mutex::new(Some(hook)),
            hook_at_write_ahead: true,
            ..Self::default()
        }
    }

    /// Whether the hook has run (or none was set).
    pub async fn hook_fired(&self) -> bool {
        self.hook.lock().await.is_none()
    }

    /// Turns a switch on or off.
    pub fn set(switch: &AtomicBool, on: bool) {
        switch.store(on, Ordering::SeqCst);
    }

    fn on(switch: &AtomicBool) -> bool {
        switch.load(Ordering::SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &MemoryStore {
        &self.inner
    }
}

#[async_trait]
impl SettlementStore for FaultyStore {
    async fn claim(&self, id: &PaymentId, expires: UnixTime) -> Result<Claim, StoreError> {
        let claim = self.inner.claim(id, expires).await?;
        if matches!(claim, Claim::Acquired(_)) && !self.hook_at_write_ahead {
            let hook = self.hook.lock().await.take();
            if let Some(hook) = hook {
                hook().await;
            }
        }
        Ok(claim)
    }

    async fn write_ahead(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        intent: &Intent,
    ) -> Result<bool, StoreError> {
        if Self::on(&self.write_ahead_fails) {
            return Err(fault());
        }
        if Self::on(&self.write_ahead_loses) {
            return Ok(false);
        }
        if self.hook_at_write_ahead {
            let hook = self.hook.lock().await.take();
            if let Some(hook) = hook {
                hook().await;
            }
        }
        self.inner.write_ahead(id, token, intent).await
    }

    async fn release(&self, id: &PaymentId, token: &ClaimToken) -> Result<(), StoreError> {
        self.inner.release(id, token).await
    }

    async fn complete(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        outcome: Outcome,
    ) -> Result<bool, StoreError> {
        if Self::on(&self.complete_fails) {
            return Err(fault());
        }
        if Self::on(&self.reconciler_wins) {
            let transaction = outcome.transaction().unwrap_or_default().to_owned();
            let landed = Outcome::Landed {
                transaction: transaction.clone(),
            };
            self.inner.resolve(id, &transaction, Some(landed)).await?;
        }
        self.inner.complete(id, token, outcome).await
    }

    async fn resolve(
        &self,
        id: &PaymentId,
        transaction: &str,
        outcome: Option<Outcome>,
    ) -> Result<bool, StoreError> {
        self.inner.resolve(id, transaction, outcome).await
    }

    async fn deliver(&self, id: &PaymentId) -> Result<bool, StoreError> {
        self.inner.deliver(id).await
    }

    async fn record(&self, id: &PaymentId) -> Result<Option<Record>, StoreError> {
        self.inner.record(id).await
    }

    async fn unresolved(
        &self,
        network: &str,
        limit: usize,
    ) -> Result<Vec<(PaymentId, Record)>, StoreError> {
        self.inner.unresolved(network, limit).await
    }

    async fn payer_turn(&self, key: &str, wait: Duration) -> Result<Option<PayerTurn>, StoreError> {
        self.inner.payer_turn(key, wait).await
    }

    async fn lease(&self, name: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.lease(name, ttl).await
    }

    async fn unlease(&self, name: &str) -> Result<(), StoreError> {
        self.inner.unlease(name).await
    }

    async fn throttle(&self, key: &str, until: UnixTime) -> Result<(), StoreError> {
        self.inner.throttle(key, until).await
    }

    async fn throttled(&self, key: &str) -> Result<Option<UnixTime>, StoreError> {
        self.inner.throttled(key).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.inner.health().await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.inner.counts().await
    }

    fn kind(&self) -> &'static str {
        "faulty"
    }
}
