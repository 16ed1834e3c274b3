//! Sign-in-with-x's payment history and spent nonces in the SQLite file (tables
//! `x402_siwx_payments` and `x402_siwx_nonces`, migration 5).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use x402_core::extension::sign_in::SignInStore;
use x402_core::{StoreError, UnixTime};

use super::SqliteStore;
use crate::row;

#[async_trait]
impl SignInStore for SqliteStore {
    async fn record_payment(
        &self,
        resource: &str,
        payer: &str,
        at: UnixTime,
    ) -> Result<(), StoreError> {
        let (resource, payer, at) = (resource.to_owned(), payer.to_owned(), row::expires(at));
        self.call(move |_, conn| {
            conn.prepare_cached(
                "INSERT INTO x402_siwx_payments (resource, payer, paid_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (resource, payer) DO UPDATE
                     SET paid_at = MAX(paid_at, excluded.paid_at)",
            )?
            .execute(params![resource, payer, at])?;
            Ok(())
        })
        .await
    }

    async fn last_payment(
        &self,
        resource: &str,
        payer: &str,
    ) -> Result<Option<UnixTime>, StoreError> {
        let (resource, payer) = (resource.to_owned(), payer.to_owned());
        self.call(move |_, conn| {
            let at: Option<i64> = conn
                .prepare_cached(
                    "SELECT paid_at FROM x402_siwx_payments WHERE resource = ?1 AND payer = ?2",
                )?
                .query_row(params![resource, payer], |r| r.get(0))
                .optional()?;
            Ok(at.map(row::unix_time))
        })
        .await
    }

    async fn claim_nonce(
        &self,
        nonce: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let (nonce, until, now) = (nonce.to_owned(), row::expires(until), row::expires(now));
        self.call(move |_, conn| {
            conn.prepare_cached("DELETE FROM x402_siwx_nonces WHERE expires_at < ?1")?
                .execute(params![now])?;
            // One statement: a held nonce is left alone (nothing changes, 0 rows).
            let changed = conn
                .prepare_cached(
                    "INSERT INTO x402_siwx_nonces (nonce, expires_at) VALUES (?1, ?2)
                     ON CONFLICT (nonce) DO UPDATE SET expires_at = excluded.expires_at
                         WHERE x402_siwx_nonces.expires_at < ?3",
                )?
                .execute(params![nonce, until, now])?;
            Ok(changed == 1)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use x402_core::SettlementStore;

    use super::*;

    #[tokio::test]
    async fn the_sqlite_sign_in_tables_conform_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("siwx.db");
        let store = SqliteStore::open(&path, Default::default()).unwrap();
        x402_core::extension::sign_in::conformance::run(store.sign_in().unwrap()).await;
        drop(store);
        let reopened = SqliteStore::open(&path, Default::default()).unwrap();
        let sign_in = reopened.sign_in().unwrap();
        assert_eq!(
            sign_in.last_payment("/a", "0xabc").await.unwrap(),
            Some(UnixTime(300)),
            "the history is durable"
        );
        assert!(
            !sign_in
                .claim_nonce("race", UnixTime(2000), UnixTime(1000))
                .await
                .unwrap(),
            "a spent nonce stays spent"
        );
    }
}
