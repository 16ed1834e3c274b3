//! The seller's `payment-identifier` entries in the SQLite file (table `x402_payment_ids`):
//! each claim is one immediate transaction, so one of two concurrent claims of a key wins.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use x402_core::extension::idempotency::{CachedResponse, Claim, IdempotencyStore};

use super::SqliteStore;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn later(now: i64, by: Duration) -> i64 {
    now.saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX))
}

/// A stored row: fingerprint, done, status, headers, body.
type Row = (String, bool, Option<i64>, Option<String>, Option<Vec<u8>>);

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn claim(&self, key: &str, fingerprint: &str, hold: Duration) -> Result<Claim, String> {
        let (key, fingerprint) = (key.to_owned(), fingerprint.to_owned());
        self.call(move |_, conn| {
            let now = now_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached("DELETE FROM x402_payment_ids WHERE expires_at <= ?1")?
                .execute(params![now])?;
            let row: Option<Row> = tx
                .prepare_cached(
                    "SELECT fingerprint, done, status, headers, body FROM x402_payment_ids
                     WHERE key = ?1",
                )?
                .query_row(params![key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            let claim = match row {
                Some((f, _, _, _, _)) if f != fingerprint => Ok(Claim::Conflict),
                Some((_, false, _, _, _)) => Ok(Claim::Busy),
                Some((_, true, Some(status), Some(headers), Some(body))) => {
                    let status = u16::try_from(status).unwrap_or(500);
                    Ok(CachedResponse::from_stored(status, &headers, body)
                        .map_or(Claim::Replay(None), |r| Claim::Replay(Some(r))))
                }
                Some((_, true, _, _, _)) => Ok(Claim::Replay(None)),
                None => {
                    tx.prepare_cached(
                        "INSERT INTO x402_payment_ids (key, fingerprint, done, expires_at)
                         VALUES (?1, ?2, 0, ?3)",
                    )?
                    .execute(params![key, fingerprint, later(now, hold)])?;
                    Ok(Claim::Claimed)
                }
            };
            tx.commit()?;
            claim
        })
        .await
        .map_err(|e| e.to_string())
    }

    async fn complete(
        &self,
        key: &str,
        fingerprint: &str,
        response: Option<CachedResponse>,
        keep: Duration,
    ) -> Result<(), String> {
        let (key, fingerprint) = (key.to_owned(), fingerprint.to_owned());
        self.call(move |_, conn| {
            let expires = later(now_ms(), keep);
            let (status, headers, body) = match &response {
                Some(r) => (
                    Some(i64::from(r.status)),
                    Some(r.headers_text()),
                    Some(r.body.clone()),
                ),
                None => (None, None, None),
            };
            conn.prepare_cached(
                "INSERT INTO x402_payment_ids
                     (key, fingerprint, done, status, headers, body, expires_at)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6)
                 ON CONFLICT (key) DO UPDATE SET
                     fingerprint = excluded.fingerprint, done = 1, status = excluded.status,
                     headers = excluded.headers, body = excluded.body,
                     expires_at = excluded.expires_at",
            )?
            .execute(params![key, fingerprint, status, headers, body, expires])?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
    }

    async fn release(&self, key: &str, fingerprint: &str) -> Result<(), String> {
        let (key, fingerprint) = (key.to_owned(), fingerprint.to_owned());
        self.call(move |_, conn| {
            conn.prepare_cached(
                "DELETE FROM x402_payment_ids WHERE key = ?1 AND fingerprint = ?2 AND done = 0",
            )?
            .execute(params![key, fingerprint])?;
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_sqlite_payment_ids_conform_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.db");
        let store = Arc::new(SqliteStore::open(&path, Default::default()).unwrap());
        x402_core::extension::idempotency::conformance::run(store.clone(), "").await;
        drop(store);
        let reopened = SqliteStore::open(&path, Default::default()).unwrap();
        assert!(
            matches!(
                reopened
                    .claim("a", "g", Duration::from_secs(60))
                    .await
                    .unwrap(),
                Claim::Replay(Some(_))
            ),
            "a stored response is durable"
        );
    }
}
