//! At most once per payment identity: the settlement store.
//!
//! Before a scheme signs or broadcasts anything for a payment it **claims** the payment's
//! identity — EIP-3009 `(chain, token, from, nonce)`, Permit2 `(chain, owner, nonce)`, Solana the
//! hash of the transaction message. The claim is atomic: of any number of concurrent settles of
//! one payment exactly one acquires it; the others see it in flight or see its recorded outcome,
//! and never broadcast.
//!
//! The holder of a claim ends it exactly one way: [`SettlementStore::release`] when nothing left
//! the process (a refused payment may be retried), or [`SettlementStore::complete`] with the
//! outcome once something was broadcast — success, failure, or pending with its transaction. A
//! claim that is never ended stays in flight until the payment's own expiry: the store fails
//! closed.
//!
//! [`MemoryStore`] serves one process; durable and shared stores implement the same trait.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::clock::SharedClock;
use crate::{Reason, UnixTime};

/// The identity of a payment: what may be settled at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentId(String);

impl PaymentId {
    /// Builds an identity from its parts, joined with `/` (parts should be canonical: lower-case
    /// hex, CAIP-2 networks, decimal numbers).
    pub fn new<I, S>(kind: &str, parts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut id = kind.to_owned();
        for p in parts {
            id.push('/');
            id.push_str(p.as_ref());
        }
        Self(id)
    }

    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened to a claimed payment once something was broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The facilitator's own transaction landed and moved the funds.
    Settled {
        /// The transaction.
        transaction: String,
    },
    /// It definitively did not settle (the transaction, if any, failed).
    Failed {
        /// Why.
        reason: Reason,
        /// The transaction, when one landed.
        transaction: Option<String>,
    },
    /// Broadcast, but its fate was not observed within the bound.
    Pending {
        /// The transaction to reconcile.
        transaction: String,
    },
}

impl Outcome {
    /// The transaction, if any.
    pub fn transaction(&self) -> Option<&str> {
        match self {
            Self::Settled { transaction } | Self::Pending { transaction } => Some(transaction),
            Self::Failed { transaction, .. } => transaction.as_deref(),
        }
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the claim and must end it with `release` or `complete`.
    Acquired,
    /// Another settle of the same payment holds the claim right now.
    InFlight,
    /// The payment was already settled or attempted; here is what happened.
    Recorded(Outcome),
}

/// The store itself failed (a shared store's backend, say).
#[derive(Debug, thiserror::Error)]
#[error("settlement store: {0}")]
pub struct StoreError(pub String);

/// Where claims and outcomes live.
#[async_trait]
pub trait SettlementStore: Send + Sync + fmt::Debug {
    /// Claims `id` atomically. `expires` is when the payment itself stops being settleable; the
    /// store may forget the entry after it.
    async fn claim(&self, id: &PaymentId, expires: UnixTime) -> Result<Claim, StoreError>;

    /// Ends a claim whose settle broadcast nothing; the payment may be claimed again.
    async fn release(&self, id: &PaymentId) -> Result<(), StoreError>;

    /// Ends a claim with the outcome of what was broadcast. Later claims see it.
    async fn complete(&self, id: &PaymentId, outcome: Outcome) -> Result<(), StoreError>;

    /// The recorded outcome of `id`, if any (for reconciliation and reporting).
    async fn outcome(&self, id: &PaymentId) -> Result<Option<Outcome>, StoreError>;
}

#[derive(Debug, Clone)]
enum Entry {
    InFlight { expires: UnixTime },
    Done { outcome: Outcome, expires: UnixTime },
}

impl Entry {
    fn expires(&self) -> UnixTime {
        match self {
            Self::InFlight { expires } | Self::Done { expires, .. } => *expires,
        }
    }
}

/// An in-process settlement store.
///
/// Entries are kept until the payment's expiry plus a grace period, then dropped on a later
/// claim: an expired payment fails verification before it could be claimed again.
#[derive(Debug)]
pub struct MemoryStore {
    entries: Mutex<HashMap<PaymentId, Entry>>,
    grace_seconds: u64,
    clock: SharedClock,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store that keeps entries an hour past their payment's expiry.
    pub fn new() -> Self {
        Self::with_clock(3600, crate::clock::system_clock())
    }

    /// A store with an explicit grace period and clock (for tests).
    pub fn with_clock(grace_seconds: u64, clock: SharedClock) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            grace_seconds,
            clock,
        }
    }

    /// How many entries the store holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PaymentId, Entry>> {
        // A poisoned lock only means another thread panicked while holding it; the map itself is
        // always left consistent (every mutation is a single insert or remove).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn prune(&self, map: &mut HashMap<PaymentId, Entry>) {
        let now = self.clock.now().0;
        let grace = self.grace_seconds;
        map.retain(|_, e| e.expires().0.saturating_add(grace) >= now);
    }
}

#[async_trait]
impl SettlementStore for MemoryStore {
    async fn claim(&self, id: &PaymentId, expires: UnixTime) -> Result<Claim, StoreError> {
        let mut map = self.lock();
        if map.len() >= 1024 && map.len().is_power_of_two() {
            self.prune(&mut map);
        }
        Ok(match map.get(id) {
            Some(Entry::InFlight { .. }) => Claim::InFlight,
            Some(Entry::Done { outcome, .. }) => Claim::Recorded(outcome.clone()),
            None => {
                map.insert(id.clone(), Entry::InFlight { expires });
                Claim::Acquired
            }
        })
    }

    async fn release(&self, id: &PaymentId) -> Result<(), StoreError> {
        let mut map = self.lock();
        if let Some(Entry::InFlight { .. }) = map.get(id) {
            map.remove(id);
        }
        Ok(())
    }

    async fn complete(&self, id: &PaymentId, outcome: Outcome) -> Result<(), StoreError> {
        let mut map = self.lock();
        let expires = map
            .get(id)
            .map(Entry::expires)
            .unwrap_or_else(|| self.clock.now());
        map.insert(id.clone(), Entry::Done { outcome, expires });
        Ok(())
    }

    async fn outcome(&self, id: &PaymentId) -> Result<Option<Outcome>, StoreError> {
        Ok(match self.lock().get(id) {
            Some(Entry::Done { outcome, .. }) => Some(outcome.clone()),
            _ => None,
        })
    }
}

/// Per-key serialization (per payer, say): holders of the same key run one at a time, different
/// keys run in parallel. Entries of keys nobody holds are dropped as the map grows.
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// Waits for and takes the lock of `key`.
    pub async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() >= 1024 && map.len().is_power_of_two() {
                map.retain(|_, l| std::sync::Arc::strong_count(l) > 1);
            }
            std::sync::Arc::clone(map.entry(key.to_owned()).or_default())
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn id(n: u32) -> PaymentId {
        PaymentId::new("eip3009", ["eip155:1", "0xtoken", "0xfrom", &n.to_string()])
    }

    #[tokio::test]
    async fn exactly_one_of_many_concurrent_claims_acquires() {
        let store = Arc::new(MemoryStore::new());
        let far = UnixTime(u64::MAX / 2);
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let s = Arc::clone(&store);
                tokio::spawn(async move { s.claim(&id(1), far).await.unwrap() })
            })
            .collect();
        let mut acquired = 0;
        for t in tasks {
            match t.await.unwrap() {
                Claim::Acquired => acquired += 1,
                Claim::InFlight => {}
                Claim::Recorded(o) => panic!("nothing recorded yet: {o:?}"),
            }
        }
        assert_eq!(acquired, 1);
    }

    #[tokio::test]
    async fn release_allows_a_retry_and_complete_is_final() {
        let store = MemoryStore::new();
        let far = UnixTime(u64::MAX / 2);
        assert_eq!(store.claim(&id(2), far).await.unwrap(), Claim::Acquired);
        store.release(&id(2)).await.unwrap();
        assert_eq!(store.claim(&id(2), far).await.unwrap(), Claim::Acquired);
        let done = Outcome::Settled {
            transaction: "0xabc".into(),
        };
        store.complete(&id(2), done.clone()).await.unwrap();
        assert_eq!(
            store.claim(&id(2), far).await.unwrap(),
            Claim::Recorded(done.clone())
        );
        // A release after completion does not erase the record.
        store.release(&id(2)).await.unwrap();
        assert_eq!(store.outcome(&id(2)).await.unwrap(), Some(done));
        assert_eq!(store.claim(&id(3), far).await.unwrap(), Claim::Acquired);
    }

    #[tokio::test]
    async fn keyed_locks_serialize_one_key_only() {
        let locks = Arc::new(KeyedLocks::default());
        let a = locks.lock("payer-a").await;
        // Another key is free.
        let b = tokio::time::timeout(std::time::Duration::from_millis(100), locks.lock("payer-b"))
            .await;
        assert!(b.is_ok());
        // The same key waits until the holder is done.
        let l2 = Arc::clone(&locks);
        let waiter = tokio::spawn(async move { l2.lock("payer-a").await });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(a);
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn expired_entries_are_pruned_only_after_grace() {
        fn clock() -> UnixTime {
            UnixTime(10_000)
        }
        let store = MemoryStore::with_clock(100, Arc::new(clock as fn() -> UnixTime));
        // 1024 stale entries (expired long ago) and one live one.
        for n in 0..1023 {
            store.claim(&id(n), UnixTime(1)).await.unwrap();
        }
        store.claim(&id(5000), UnixTime(9_950)).await.unwrap();
        assert_eq!(store.len(), 1024);
        store.claim(&id(6000), UnixTime(20_000)).await.unwrap();
        assert_eq!(store.len(), 2, "stale entries dropped, live ones kept");
        assert_eq!(
            store.claim(&id(5000), UnixTime(9_950)).await.unwrap(),
            Claim::InFlight
        );
    }
}
