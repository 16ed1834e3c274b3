//! What the seller remembers: the nonces of proofs already accepted (a proof is good once), and
//! who paid for what (the payment history a sign-in is checked against). In memory by default,
//! bounded; a seller with several replicas plugs in shared stores through the two traits.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use x402_core::UnixTime;

/// A store failed (the sign-in is refused; the buyer can still pay).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The nonces of accepted proofs.
#[async_trait]
pub trait NonceStore: Send + Sync + Debug {
    /// Claims `nonce` until `until`: `true` when it was free (now taken), `false` when it was
    /// used before. Atomic: of two concurrent claims of one nonce, one wins.
    async fn claim(&self, nonce: &str, until: UnixTime, now: UnixTime) -> Result<bool, StoreError>;
}

/// Who paid for which resource, and when.
#[async_trait]
pub trait PaymentHistory: Send + Sync + Debug {
    /// Records that `payer` paid for `resource` (a URL path) at `at`.
    async fn record(&self, resource: &str, payer: &str, at: UnixTime) -> Result<(), StoreError>;
    /// When `payer` last paid for `resource`, if ever (or since the history keeps it).
    async fn last_paid(&self, resource: &str, payer: &str) -> Result<Option<UnixTime>, StoreError>;
}

/// Nonces in memory: at most `capacity` live ones (a claim beyond is an error, never an
/// eviction, which would let a live proof be replayed); expired ones are dropped.
#[derive(Debug)]
pub struct MemoryNonces {
    capacity: usize,
    live: Mutex<HashMap<String, UnixTime>>,
}

impl MemoryNonces {
    /// The default capacity (live nonces).
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A store holding at most `capacity` live nonces.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            live: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for MemoryNonces {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl NonceStore for MemoryNonces {
    async fn claim(&self, nonce: &str, until: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(expiry) = live.get(nonce)
            && *expiry >= now
        {
            return Ok(false);
        }
        if live.len() >= self.capacity {
            live.retain(|_, expiry| *expiry >= now);
            if live.len() >= self.capacity {
                return Err(StoreError(format!(
                    "{} sign-ins are live; try again later",
                    self.capacity
                )));
            }
        }
        live.insert(nonce.to_owned(), until);
        Ok(true)
    }
}

/// A (resource, payer) pair.
type Pair = (String, String);

/// The payment history in memory: the latest payment per (resource, payer), at most
/// `capacity` pairs (the oldest recorded pair is forgotten first).
#[derive(Debug)]
pub struct MemoryHistory {
    capacity: usize,
    inner: Mutex<(HashMap<Pair, UnixTime>, VecDeque<Pair>)>,
}

impl MemoryHistory {
    /// The default capacity (pairs).
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A history of at most `capacity` (resource, payer) pairs.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }
}

impl Default for MemoryHistory {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

#[async_trait]
impl PaymentHistory for MemoryHistory {
    async fn record(&self, resource: &str, payer: &str, at: UnixTime) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, order) = &mut *inner;
        let key = (resource.to_owned(), payer.to_owned());
        if map.insert(key.clone(), at).is_none() {
            order.push_back(key);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        Ok(())
    }

    async fn last_paid(&self, resource: &str, payer: &str) -> Result<Option<UnixTime>, StoreError> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(inner
            .0
            .get(&(resource.to_owned(), payer.to_owned()))
            .copied())
    }
}

/// The payer as the history keys it: EVM addresses in lower case, others as written.
pub fn payer_key(payer: &str) -> String {
    if payer.starts_with("0x") || payer.starts_with("0X") {
        payer.to_ascii_lowercase()
    } else {
        payer.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_nonce_is_good_once_until_it_expires_and_the_store_is_bounded() {
        let nonces = MemoryNonces::new(2);
        let now = UnixTime(100);
        assert!(nonces.claim("a", UnixTime(200), now).await.unwrap());
        assert!(!nonces.claim("a", UnixTime(200), now).await.unwrap());
        assert!(nonces.claim("b", UnixTime(150), now).await.unwrap());
        // Full: refused, nothing evicted.
        assert!(nonces.claim("c", UnixTime(200), now).await.is_err());
        assert!(!nonces.claim("a", UnixTime(200), now).await.unwrap());
        // Once b expired, c fits; a is still taken.
        let later = UnixTime(160);
        assert!(nonces.claim("c", UnixTime(300), later).await.unwrap());
        assert!(!nonces.claim("a", UnixTime(300), later).await.unwrap());
    }

    #[tokio::test]
    async fn the_history_keeps_the_latest_payment_and_forgets_the_oldest_pair() {
        let history = MemoryHistory::new(2);
        history.record("/a", "x", UnixTime(1)).await.unwrap();
        history.record("/a", "x", UnixTime(5)).await.unwrap();
        assert_eq!(
            history.last_paid("/a", "x").await.unwrap(),
            Some(UnixTime(5))
        );
        assert_eq!(history.last_paid("/b", "x").await.unwrap(), None);
        history.record("/b", "x", UnixTime(2)).await.unwrap();
        history.record("/c", "x", UnixTime(3)).await.unwrap();
        assert_eq!(history.last_paid("/a", "x").await.unwrap(), None);
        assert_eq!(
            history.last_paid("/c", "x").await.unwrap(),
            Some(UnixTime(3))
        );
        assert_eq!(payer_key("0xAbC"), "0xabc");
        assert_eq!(payer_key("AbC"), "AbC");
    }
}

/// Sign-in-with-x's stores kept in a settlement store (its sign-in tables,
/// [`x402_core::extension::sign_in`]): the in-process store, or `x402-store`'s SQLite and
/// PostgreSQL, shared by every replica using the same database.
#[derive(Clone)]
pub struct SettlementBacked(std::sync::Arc<dyn x402_core::SettlementStore>);

impl SettlementBacked {
    /// The sign-in tables of `store`; an error when the backend keeps none.
    pub fn new(store: std::sync::Arc<dyn x402_core::SettlementStore>) -> Result<Self, StoreError> {
        if store.sign_in().is_none() {
            return Err(StoreError(format!(
                "the {} settlement store keeps no sign-in-with-x tables",
                store.kind()
            )));
        }
        Ok(Self(store))
    }

    fn tables(&self) -> Result<&dyn x402_core::extension::sign_in::SignInStore, StoreError> {
        self.0
            .sign_in()
            .ok_or_else(|| StoreError("the settlement store keeps no sign-in tables".to_owned()))
    }
}

impl Debug for SettlementBacked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SettlementBacked")
            .field(&self.0.kind())
            .finish()
    }
}

fn store_error(e: x402_core::StoreError) -> StoreError {
    StoreError(e.0)
}

#[async_trait]
impl NonceStore for SettlementBacked {
    async fn claim(&self, nonce: &str, until: UnixTime, now: UnixTime) -> Result<bool, StoreError> {
        self.tables()?
            .claim_nonce(nonce, until, now)
            .await
            .map_err(store_error)
    }
}

#[async_trait]
impl PaymentHistory for SettlementBacked {
    async fn record(&self, resource: &str, payer: &str, at: UnixTime) -> Result<(), StoreError> {
        self.tables()?
            .record_payment(resource, payer, at)
            .await
            .map_err(store_error)
    }

    async fn last_paid(&self, resource: &str, payer: &str) -> Result<Option<UnixTime>, StoreError> {
        self.tables()?
            .last_payment(resource, payer)
            .await
            .map_err(store_error)
    }
}
