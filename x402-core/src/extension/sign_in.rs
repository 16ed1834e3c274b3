//! What a seller's sign-in-with-x keeps in a settlement store (crate `x402-siwx`): who paid for
//! which resource, and the nonces of accepted proofs. A store that keeps them (the in-process
//! one, and `x402-store`'s SQLite and PostgreSQL, tables `x402_siwx_payments` and
//! `x402_siwx_nonces`) answers [`crate::SettlementStore::sign_in`], so every replica sharing the
//! store sees one history and a proof is good once across all of them.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::UnixTime;
use crate::settlement::StoreError;

/// The payment history and the spent nonces of sign-in-with-x.
#[async_trait]
pub trait SignInStore: Send + Sync {
    /// Records that `payer` paid for `resource` at `at` (a later payment replaces an earlier
    /// one; an earlier one never replaces a later).
    async fn record_payment(
        &self,
        resource: &str,
        payer: &str,
        at: UnixTime,
    ) -> Result<(), StoreError>;

    /// When `payer` last paid for `resource`, if the store holds a payment.
    async fn last_payment(
        &self,
        resource: &str,
        payer: &str,
    ) -> Result<Option<UnixTime>, StoreError>;

    /// Claims `nonce` until `until` (inclusive): `true` when it was free or its earlier claim
    /// had expired by `now`, `false` when it is held. Atomic: of concurrent claims of one
    /// nonce, one wins.
    async fn claim_nonce(
        &self,
        nonce: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
}

/// The in-process store's sign-in tables.
#[derive(Debug, Default)]
pub struct MemorySignIn {
    payments: Mutex<HashMap<(String, String), UnixTime>>,
    nonces: Mutex<HashMap<String, UnixTime>>,
}

#[async_trait]
impl SignInStore for MemorySignIn {
    async fn record_payment(
        &self,
        resource: &str,
        payer: &str,
        at: UnixTime,
    ) -> Result<(), StoreError> {
        let mut payments = self.payments.lock().unwrap_or_else(|p| p.into_inner());
        let slot = payments
            .entry((resource.to_owned(), payer.to_owned()))
            .or_insert(at);
        *slot = (*slot).max(at);
        Ok(())
    }

    async fn last_payment(
        &self,
        resource: &str,
        payer: &str,
    ) -> Result<Option<UnixTime>, StoreError> {
        let payments = self.payments.lock().unwrap_or_else(|p| p.into_inner());
        Ok(payments
            .get(&(resource.to_owned(), payer.to_owned()))
            .copied())
    }

    async fn claim_nonce(
        &self,
        nonce: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|p| p.into_inner());
        nonces.retain(|_, expires| *expires >= now);
        if nonces.contains_key(nonce) {
            return Ok(false);
        }
        nonces.insert(nonce.to_owned(), until);
        Ok(true)
    }
}

/// The sign-in conformance suite every backend's tests run.
#[cfg(any(test, feature = "testing"))]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test suite: a failure is a panic"
)]
pub mod conformance {
    use super::*;

    /// Runs every check against `store` (empty sign-in tables).
    pub async fn run(store: &dyn SignInStore) {
        // The history: the latest payment per (resource, payer), exact keys.
        assert_eq!(store.last_payment("/a", "0xabc").await.unwrap(), None);
        store
            .record_payment("/a", "0xabc", UnixTime(100))
            .await
            .unwrap();
        store
            .record_payment("/a", "0xabc", UnixTime(300))
            .await
            .unwrap();
        store
            .record_payment("/a", "0xabc", UnixTime(200))
            .await
            .unwrap();
        assert_eq!(
            store.last_payment("/a", "0xabc").await.unwrap(),
            Some(UnixTime(300))
        );
        assert_eq!(store.last_payment("/a", "0xABC").await.unwrap(), None);
        assert_eq!(store.last_payment("/b", "0xabc").await.unwrap(), None);
        assert_eq!(store.last_payment("/a/", "0xabc").await.unwrap(), None);
        store
            .record_payment("/b", "Sol1", UnixTime(5))
            .await
            .unwrap();
        assert_eq!(
            store.last_payment("/b", "Sol1").await.unwrap(),
            Some(UnixTime(5))
        );

        // Nonces: good once while held, free again once expired.
        let now = UnixTime(1000);
        assert!(store.claim_nonce("n1", UnixTime(1100), now).await.unwrap());
        assert!(!store.claim_nonce("n1", UnixTime(1100), now).await.unwrap());
        assert!(
            !store
                .claim_nonce("n1", UnixTime(9999), UnixTime(1100))
                .await
                .unwrap()
        );
        assert!(store.claim_nonce("n2", UnixTime(1100), now).await.unwrap());
        assert!(
            store
                .claim_nonce("n1", UnixTime(1200), UnixTime(1101))
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_nonce("n1", UnixTime(1200), UnixTime(1150))
                .await
                .unwrap()
        );

        // Concurrent claims of one nonce: exactly one wins.
        let claims = (0..8).map(|_| store.claim_nonce("race", UnixTime(2000), now));
        let won = futures::future::join_all(claims)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(won, 1);
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_sign_in_tables_conform() {
        super::conformance::run(&super::MemorySignIn::default()).await;
    }
}
