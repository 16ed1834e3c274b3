//! Where a seller keeps the responses of `payment-identifier` payments
//! ([`super::payment_id`]): the [`IdempotencyStore`] trait and the in-memory
//! [`MemoryIdempotency`].
//!
//! An entry is keyed by the seller's cache key (the payment id bound to the request's method and
//! resource) and holds the payment's fingerprint (its settlement identity): a later request with
//! the same key and fingerprint replays the stored response, one with another fingerprint is a
//! conflict. An entry is first **claimed** (pending, for a bounded time: one request processes a
//! payment id at a time), then **completed** with the response of a settled success, or
//! **released** when the request failed and may be retried.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// A response as stored for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers, in order (names lowercase).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl CachedResponse {
    /// The headers as text for a store column: a JSON array of `[name, hex value]` pairs.
    pub fn headers_text(&self) -> String {
        let pairs: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.iter().map(|b| format!("{b:02x}")).collect()))
            .collect();
        serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".to_owned())
    }

    /// A response from its stored columns ([`CachedResponse::headers_text`]).
    pub fn from_stored(status: u16, headers: &str, body: Vec<u8>) -> Result<Self, String> {
        let pairs: Vec<(String, String)> =
            serde_json::from_str(headers).map_err(|e| format!("stored headers: {e}"))?;
        let mut out = Vec::with_capacity(pairs.len());
        for (name, hex) in pairs {
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| "stored headers: bad hex".to_owned())
                })
                .collect::<Result<Vec<u8>, String>>()?;
            out.push((name, bytes));
        }
        Ok(Self {
            status,
            headers: out,
            body,
        })
    }

    /// The bytes this response holds (headers and body), for size bounds.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: the caller processes the payment and then completes or releases it.
    Claimed,
    /// The same payment was already served: its response (`None` when it was not kept, being
    /// larger than the store keeps).
    Replay(Option<CachedResponse>),
    /// The key is held by another payment (another fingerprint): 409.
    Conflict,
    /// The same payment is being processed right now by another request.
    Busy,
}

/// A store of payment-id entries (see the module documentation). Implementations must make
/// [`IdempotencyStore::claim`] atomic: of two concurrent claims of one key, one gets
/// [`Claim::Claimed`].
#[async_trait]
pub trait IdempotencyStore: Send + Sync + Debug {
    /// Claims `key` for the payment `fingerprint`; a pending claim lapses after `hold` (so a
    /// crashed process does not hold an id forever).
    async fn claim(&self, key: &str, fingerprint: &str, hold: Duration) -> Result<Claim, String>;

    /// Completes the claim of `key` with `response` (`None`: served, but not kept), kept for
    /// `keep`.
    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response: Option<CachedResponse>,
        keep: Duration,
    ) -> Result<(), String>;

    /// Drops the pending claim of `key` by `fingerprint` (a completed entry stays).
    async fn release(&self, key: &str, fingerprint: &str) -> Result<(), String>;
}

#[derive(Debug)]
struct Entry {
    fingerprint: String,
    /// `None` while pending.
    done: Option<Option<CachedResponse>>,
    until: Instant,
    size: usize,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Entry>,
    bytes: usize,
}

impl Entries {
    fn remove(&mut self, key: &str) {
        if let Some(e) = self.map.remove(key) {
            self.bytes -= e.size;
        }
    }

    fn prune(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .map
            .iter()
            .filter(|(_, e)| e.until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.remove(&k);
        }
    }

    /// Evicts the completed entry closest to its expiry; `false` when none is completed.
    fn evict_one(&mut self) -> bool {
        let oldest = self
            .map
            .iter()
            .filter(|(_, e)| e.done.is_some())
            .min_by_key(|(_, e)| e.until)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                self.remove(&k);
                true
            }
            None => false,
        }
    }
}

/// The in-memory store of one process: at most `max_entries` entries and `max_bytes` of kept
/// responses; when full, the completed entry nearest its expiry is evicted first (its id then
/// gets no replay), and a claim finding only pending entries fails.
#[derive(Debug)]
pub struct MemoryIdempotency {
    entries: Mutex<Entries>,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for MemoryIdempotency {
    /// 10 000 entries, 64 MiB of responses.
    fn default() -> Self {
        Self::new(10_000, 64 * 1024 * 1024)
    }
}

impl MemoryIdempotency {
    /// A store of at most `max_entries` entries and `max_bytes` of responses.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many entries are held (pending or completed, expired ones not yet pruned included).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotency {
    async fn claim(&self, key: &str, fingerprint: &str, hold: Duration) -> Result<Claim, String> {
        let now = Instant::now();
        let mut entries = self.lock();
        if let Some(e) = entries.map.get(key) {
            if e.until > now {
                return Ok(if e.fingerprint != fingerprint {
                    Claim::Conflict
                } else {
                    match &e.done {
                        Some(response) => Claim::Replay(response.clone()),
                        None => Claim::Busy,
                    }
                });
            }
            entries.remove(key);
        }
        if entries.map.len() >= self.max_entries {
            entries.prune(now);
            while entries.map.len() >= self.max_entries {
                if !entries.evict_one() {
                    return Err("the payment-id cache is full of payments in progress".into());
                }
            }
        }
        entries.map.insert(
            key.to_owned(),
            Entry {
                fingerprint: fingerprint.to_owned(),
                done: None,
                until: now + hold,
                size: 0,
            },
        );
        Ok(Claim::Claimed)
    }

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response: Option<CachedResponse>,
        keep: Duration,
    ) -> Result<(), String> {
        let now = Instant::now();
        let mut entries = self.lock();
        let mut response = response;
        let size = response.as_ref().map_or(0, CachedResponse::size);
        if size > self.max_bytes {
            response = None;
        }
        let size = response.as_ref().map_or(0, CachedResponse::size);
        entries.prune(now);
        while entries.bytes + size > self.max_bytes {
            if !entries.evict_one() {
                response = None;
                break;
            }
        }
        let size = response.as_ref().map_or(0, CachedResponse::size);
        entries.remove(key);
        entries.bytes += size;
        entries.map.insert(
            key.to_owned(),
            Entry {
                fingerprint: fingerprint.to_owned(),
                done: Some(response),
                until: now + keep,
                size,
            },
        );
        Ok(())
    }

    async fn release(&self, key: &str, fingerprint: &str) -> Result<(), String> {
        let mut entries = self.lock();
        let pending = entries
            .map
            .get(key)
            .is_some_and(|e| e.fingerprint == fingerprint && e.done.is_none());
        if pending {
            entries.remove(key);
        }
        Ok(())
    }
}

/// The conformance suite every [`IdempotencyStore`] backend's tests run.
#[cfg(any(test, feature = "testing"))]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test suite: a failure is a panic"
)]
pub mod conformance {
    use std::sync::Arc;

    use super::*;

    const HOLD: Duration = Duration::from_secs(600);

    fn response(n: usize) -> CachedResponse {
        CachedResponse {
            status: 201,
            headers: vec![
                ("content-type".into(), b"text/plain".to_vec()),
                ("x-bytes".into(), vec![0x80, 0xff, b'a']),
                ("x-bytes".into(), b"second".to_vec()),
            ],
            body: (0..n).map(|i| (i % 251) as u8).collect(),
        }
    }

    /// Runs the suite on `store` (keys are prefixed with `prefix`, so a shared database can run
    /// it more than once).
    pub async fn run(store: Arc<dyn IdempotencyStore>, prefix: &str) {
        let k = |s: &str| format!("{prefix}{s}");
        // Claim, busy, conflict, a foreign release, release, complete, replay.
        assert_eq!(
            store.claim(&k("a"), "f", HOLD).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(store.claim(&k("a"), "f", HOLD).await.unwrap(), Claim::Busy);
        assert_eq!(
            store.claim(&k("a"), "g", HOLD).await.unwrap(),
            Claim::Conflict
        );
        store.release(&k("a"), "g").await.unwrap();
        assert_eq!(store.claim(&k("a"), "f", HOLD).await.unwrap(), Claim::Busy);
        store.release(&k("a"), "f").await.unwrap();
        assert_eq!(
            store.claim(&k("a"), "g", HOLD).await.unwrap(),
            Claim::Claimed
        );
        let big = response(100 * 1024);
        store
            .complete(&k("a"), "g", Some(big.clone()), HOLD)
            .await
            .unwrap();
        assert_eq!(
            store.claim(&k("a"), "g", HOLD).await.unwrap(),
            Claim::Replay(Some(big)),
            "status, headers (repeated, non-UTF-8) and body kept exactly"
        );
        assert_eq!(
            store.claim(&k("a"), "f", HOLD).await.unwrap(),
            Claim::Conflict
        );
        store.release(&k("a"), "g").await.unwrap();
        assert!(matches!(
            store.claim(&k("a"), "g", HOLD).await.unwrap(),
            Claim::Replay(_)
        ));
        // Served but not kept.
        assert_eq!(
            store.claim(&k("b"), "f", HOLD).await.unwrap(),
            Claim::Claimed
        );
        store.complete(&k("b"), "f", None, HOLD).await.unwrap();
        assert_eq!(
            store.claim(&k("b"), "f", HOLD).await.unwrap(),
            Claim::Replay(None)
        );
        // Keys are independent.
        assert_eq!(
            store.claim(&k("c"), "f", HOLD).await.unwrap(),
            Claim::Claimed
        );
        // Lapsed claims and expired entries free the key.
        assert_eq!(
            store.claim(&k("d"), "f", Duration::ZERO).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            store.claim(&k("d"), "g", HOLD).await.unwrap(),
            Claim::Claimed
        );
        store
            .complete(&k("d"), "g", Some(response(1)), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            store.claim(&k("d"), "f", HOLD).await.unwrap(),
            Claim::Claimed
        );
        // Concurrent claims of one key: exactly one wins.
        let claims = (0..8).map(|_| {
            let store = store.clone();
            let key = k("e");
            tokio::spawn(async move { store.claim(&key, "f", HOLD).await.unwrap() })
        });
        let mut won = 0;
        for c in claims {
            match c.await.unwrap() {
                Claim::Claimed => won += 1,
                Claim::Busy => {}
                other => panic!("a concurrent claim answered {other:?}"),
            }
        }
        assert_eq!(won, 1);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_secs(60);

    fn response(n: usize) -> CachedResponse {
        CachedResponse {
            status: 200,
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            body: vec![b'x'; n],
        }
    }

    #[tokio::test]
    async fn the_memory_store_conforms() {
        super::conformance::run(std::sync::Arc::new(MemoryIdempotency::default()), "").await;
    }

    #[test]
    fn stored_headers_round_trip() {
        let r = response(2);
        let back =
            CachedResponse::from_stored(r.status, &r.headers_text(), r.body.clone()).unwrap();
        assert_eq!(back, r);
        assert!(CachedResponse::from_stored(200, r#"[["a","0"]]"#, Vec::new()).is_err());
        assert!(CachedResponse::from_stored(200, "{", Vec::new()).is_err());
    }

    #[tokio::test]
    async fn claim_replay_conflict_busy_release() {
        let s = MemoryIdempotency::default();
        assert_eq!(s.claim("k", "f", HOLD).await.unwrap(), Claim::Claimed);
        assert_eq!(s.claim("k", "f", HOLD).await.unwrap(), Claim::Busy);
        assert_eq!(s.claim("k", "g", HOLD).await.unwrap(), Claim::Conflict);
        s.release("k", "g").await.unwrap();
        assert_eq!(
            s.claim("k", "f", HOLD).await.unwrap(),
            Claim::Busy,
            "another payment cannot release it"
        );
        s.release("k", "f").await.unwrap();
        assert_eq!(s.claim("k", "g", HOLD).await.unwrap(), Claim::Claimed);
        s.complete("k", "g", Some(response(3)), HOLD).await.unwrap();
        assert_eq!(
            s.claim("k", "g", HOLD).await.unwrap(),
            Claim::Replay(Some(response(3)))
        );
        assert_eq!(s.claim("k", "f", HOLD).await.unwrap(), Claim::Conflict);
        s.release("k", "g").await.unwrap();
        assert!(
            matches!(s.claim("k", "g", HOLD).await.unwrap(), Claim::Replay(_)),
            "a release leaves a completed entry"
        );
    }

    #[tokio::test]
    async fn pending_claims_and_entries_expire() {
        let s = MemoryIdempotency::default();
        assert_eq!(
            s.claim("k", "f", Duration::ZERO).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(s.claim("k", "g", HOLD).await.unwrap(), Claim::Claimed);
        s.complete("k", "g", Some(response(1)), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(s.claim("k", "f", HOLD).await.unwrap(), Claim::Claimed);
    }

    #[tokio::test]
    async fn bounds_evict_completed_entries_and_drop_large_bodies() {
        let s = MemoryIdempotency::new(2, 100);
        for k in ["a", "b"] {
            assert_eq!(s.claim(k, "f", HOLD).await.unwrap(), Claim::Claimed);
            s.complete(k, "f", Some(response(10)), HOLD).await.unwrap();
        }
        assert_eq!(s.claim("c", "f", HOLD).await.unwrap(), Claim::Claimed);
        assert_eq!(s.len(), 2);
        // Too large to keep: served, replayed without a body.
        s.complete("c", "f", Some(response(500)), HOLD)
            .await
            .unwrap();
        assert_eq!(s.claim("c", "f", HOLD).await.unwrap(), Claim::Replay(None));
        // Only pending entries: a new claim fails rather than evicting a payment in progress.
        let p = MemoryIdempotency::new(1, 100);
        assert_eq!(p.claim("a", "f", HOLD).await.unwrap(), Claim::Claimed);
        assert!(p.claim("b", "f", HOLD).await.is_err());
    }
}
