//! The in-process store: one process, nothing survives it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    Claim, ClaimToken, Intent, Outcome, PayerTurn, PaymentId, Record, SettlementStore, StoreCounts,
    StoreError, StoreOptions,
};
use crate::UnixTime;
use crate::clock::SharedClock;

#[derive(Debug, Clone)]
struct Entry {
    token: ClaimToken,
    claimed_at: Instant,
    expires: UnixTime,
    seq: u64,
    outcome: Option<Outcome>,
    intent: Option<Intent>,
}

impl Entry {
    fn record(&self) -> Record {
        Record {
            outcome: self.outcome.clone(),
            intent: self.intent.clone(),
        }
    }

    fn held_by(&self, token: &ClaimToken) -> bool {
        self.outcome.is_none() && self.token == *token
    }
}

#[derive(Debug, Default)]
struct Map {
    entries: HashMap<PaymentId, Entry>,
    seq: u64,
    /// Payer cool-downs: until when each payer is refused.
    throttles: HashMap<String, UnixTime>,
}

/// An in-process settlement store (named `memory` in the configuration): claims, intents and
/// outcomes live as long as the process. For tests and throw-away set-ups; a facilitator that
/// settles real payments uses a durable store.
///
/// Entries are kept until the payment's expiry plus a grace period, then dropped on a later
/// claim: an expired payment fails verification before it could be claimed again. Unresolved
/// entries are never dropped.
#[derive(Debug)]
pub struct MemoryStore {
    map: Mutex<Map>,
    options: StoreOptions,
    clock: SharedClock,
    payers: KeyedLocks,
    catalog: crate::extension::catalog::MemoryCatalog,
    sign_in: crate::extension::sign_in::MemorySignIn,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with the default [`StoreOptions`].
    pub fn new() -> Self {
        Self::with_options(StoreOptions::default(), crate::clock::system_clock())
    }

    /// A store with an explicit grace period and clock (for tests).
    pub fn with_clock(grace_seconds: u64, clock: SharedClock) -> Self {
        let options = StoreOptions {
            grace: Duration::from_secs(grace_seconds),
            ..StoreOptions::default()
        };
        Self::with_options(options, clock)
    }

    /// A store with `options` and `clock`.
    pub fn with_options(options: StoreOptions, clock: SharedClock) -> Self {
        Self {
            map: Mutex::new(Map::default()),
            options,
            clock,
            payers: KeyedLocks::default(),
            catalog: Default::default(),
            sign_in: Default::default(),
        }
    }

    /// How many entries the store holds.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // A poisoned lock only means another thread panicked while holding it; the map itself is
        // always left consistent (every mutation is a single insert, update or remove).
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn prune(&self, map: &mut Map) {
        let now = self.clock.now().0;
        let grace = self.options.grace.as_secs();
        map.entries.retain(|_, e| {
            let unresolved =
                e.intent.is_some() && e.outcome.as_ref().is_none_or(Outcome::is_unresolved);
            unresolved || e.expires.0.saturating_add(grace) >= now
        });
    }
}

#[async_trait]
impl SettlementStore for MemoryStore {
    async fn claim(&self, id: &PaymentId, expires: UnixTime) -> Result<Claim, StoreError> {
        let mut map = self.lock();
        let len = map.entries.len();
        if len >= 1024 && len.is_power_of_two() {
            self.prune(&mut map);
        }
        if let Some(e) = map.entries.get(id) {
            let abandoned = e.outcome.is_none()
                && e.intent.is_none()
                && e.claimed_at.elapsed() >= self.options.abandon_after;
            if !abandoned {
                return Ok(Claim::Taken(e.record()));
            }
        }
        map.seq += 1;
        let token = ClaimToken::random();
        let entry = Entry {
            token: token.clone(),
            claimed_at: Instant::now(),
            expires,
            seq: map.seq,
            outcome: None,
            intent: None,
        };
        map.entries.insert(id.clone(), entry);
        Ok(Claim::Acquired(token))
    }

    async fn write_ahead(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        intent: &Intent,
    ) -> Result<bool, StoreError> {
        let mut map = self.lock();
        Ok(match map.entries.get_mut(id) {
            Some(e) if e.held_by(token) => {
                e.intent = Some(intent.clone());
                true
            }
            _ => false,
        })
    }

    async fn release(&self, id: &PaymentId, token: &ClaimToken) -> Result<(), StoreError> {
        let mut map = self.lock();
        if map
            .entries
            .get(id)
            .is_some_and(|e| e.held_by(token) && e.intent.is_none())
        {
            map.entries.remove(id);
        }
        Ok(())
    }

    async fn complete(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        outcome: Outcome,
    ) -> Result<bool, StoreError> {
        let mut map = self.lock();
        Ok(match map.entries.get_mut(id) {
            Some(e) if e.held_by(token) => {
                e.outcome = Some(outcome);
                true
            }
            _ => false,
        })
    }

    async fn resolve(
        &self,
        id: &PaymentId,
        transaction: &str,
        outcome: Option<Outcome>,
    ) -> Result<bool, StoreError> {
        let mut map = self.lock();
        let matches = map.entries.get(id).is_some_and(|e| {
            e.record().is_unresolved()
                && e.intent
                    .as_ref()
                    .is_some_and(|i| i.transaction == transaction)
        });
        if !matches {
            return Ok(false);
        }
        match outcome {
            Some(outcome) => {
                if let Some(e) = map.entries.get_mut(id) {
                    e.outcome = Some(outcome);
                }
            }
            None => {
                map.entries.remove(id);
            }
        }
        Ok(true)
    }

    async fn deliver(&self, id: &PaymentId) -> Result<bool, StoreError> {
        let mut map = self.lock();
        Ok(match map.entries.get_mut(id) {
            Some(Entry {
                outcome: Some(o @ Outcome::Landed { .. }),
                ..
            }) => {
                let transaction = o.transaction().unwrap_or_default().to_owned();
                *o = Outcome::Settled { transaction };
                true
            }
            _ => false,
        })
    }

    async fn record(&self, id: &PaymentId) -> Result<Option<Record>, StoreError> {
        Ok(self.lock().entries.get(id).map(Entry::record))
    }

    async fn unresolved(
        &self,
        network: &str,
        limit: usize,
    ) -> Result<Vec<(PaymentId, Record)>, StoreError> {
        let map = self.lock();
        let mut found: Vec<(u64, PaymentId, Record)> = map
            .entries
            .iter()
            .filter(|(_, e)| {
                e.record().is_unresolved()
                    && e.intent.as_ref().is_some_and(|i| i.network == network)
            })
            .map(|(id, e)| (e.seq, id.clone(), e.record()))
            .collect();
        found.sort_by_key(|(seq, _, _)| *seq);
        Ok(found
            .into_iter()
            .take(limit)
            .map(|(_, id, r)| (id, r))
            .collect())
    }

    async fn payer_turn(&self, key: &str, wait: Duration) -> Result<Option<PayerTurn>, StoreError> {
        Ok(tokio::time::timeout(wait, self.payers.lock(key))
            .await
            .ok()
            .map(PayerTurn::new))
    }

    async fn lease(&self, _name: &str, _ttl: Duration) -> Result<bool, StoreError> {
        // One process: every lease is this process's.
        Ok(true)
    }

    async fn unlease(&self, _name: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn throttle(&self, key: &str, until: UnixTime) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut map = self.lock();
        let len = map.throttles.len();
        if len >= 1024 && len.is_power_of_two() {
            map.throttles.retain(|_, t| *t > now);
        }
        let kept = map.throttles.entry(key.to_owned()).or_insert(until);
        *kept = (*kept).max(until);
        Ok(())
    }

    async fn throttled(&self, key: &str) -> Result<Option<UnixTime>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .lock()
            .throttles
            .get(key)
            .copied()
            .filter(|until| *until > now))
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let map = self.lock();
        let unresolved = map
            .entries
            .values()
            .filter(|e| e.record().is_unresolved())
            .count();
        Ok(StoreCounts {
            unresolved: u64::try_from(unresolved).unwrap_or(u64::MAX),
        })
    }

    fn catalog(&self) -> Option<&dyn crate::extension::catalog::ResourceCatalog> {
        Some(&self.catalog)
    }

    fn sign_in(&self) -> Option<&dyn crate::extension::sign_in::SignInStore> {
        Some(&self.sign_in)
    }

    fn kind(&self) -> &'static str {
        "memory"
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_memory_store_passes_the_conformance_suite() {
        super::super::conformance::run(|options| {
            Arc::new(MemoryStore::with_options(
                options,
                crate::clock::system_clock(),
            )) as Arc<dyn SettlementStore>
        })
        .await;
    }

    #[tokio::test]
    async fn keyed_locks_serialize_one_key_only() {
        let locks = Arc::new(KeyedLocks::default());
        let a = locks.lock("payer-a").await;
        // Another key is free.
        let b = tokio::time::timeout(Duration::from_millis(100), locks.lock("payer-b")).await;
        assert!(b.is_ok());
        // The same key waits until the holder is done.
        let l2 = Arc::clone(&locks);
        let waiter = tokio::spawn(async move { l2.lock("payer-a").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(a);
        waiter.await.unwrap();
    }

    #[tokio::test]
    async fn expired_entries_are_pruned_only_after_grace_and_unresolved_ones_never() {
        fn clock() -> UnixTime {
            UnixTime(10_000)
        }
        fn id(n: u32) -> PaymentId {
            PaymentId::new("eip3009", ["eip155:1", "0xtoken", "0xfrom", &n.to_string()])
        }
        let store = MemoryStore::with_clock(100, Arc::new(clock as fn() -> UnixTime));
        // 1022 stale entries (expired long ago), one stale but unresolved, one live one.
        for n in 0..1022 {
            store.claim(&id(n), UnixTime(1)).await.unwrap();
        }
        let Claim::Acquired(token) = store.claim(&id(4000), UnixTime(1)).await.unwrap() else {
            panic!("fresh id");
        };
        let intent = Intent {
            network: "eip155:1".into(),
            transaction: "0xabc".into(),
            detail: serde_json::Value::Null,
        };
        assert!(store.write_ahead(&id(4000), &token, &intent).await.unwrap());
        store.claim(&id(5000), UnixTime(9_950)).await.unwrap();
        assert_eq!(store.len(), 1024);
        store.claim(&id(6000), UnixTime(20_000)).await.unwrap();
        assert_eq!(
            store.len(),
            3,
            "stale entries dropped, live and unresolved ones kept"
        );
        assert!(matches!(
            store.claim(&id(5000), UnixTime(9_950)).await.unwrap(),
            Claim::Taken(_)
        ));
    }
}
