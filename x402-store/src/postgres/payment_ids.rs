//! The seller's `payment-identifier` entries in PostgreSQL (table `x402_payment_ids`), shared by
//! every replica: a claim is one transaction holding a transaction-scoped advisory lock on the
//! key, so of two replicas claiming one id at once, one wins. Times are the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use x402_core::extension::idempotency::{CachedResponse, Claim, IdempotencyStore};

use super::PostgresStore;

/// The first key of the advisory locks of claims (`"x4pi"` as a big-endian integer).
const CLAIM_LOCK: i32 = 0x7834_7069;

/// The database's clock, in unix milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl IdempotencyStore for PostgresStore {
    async fn claim(&self, key: &str, fingerprint: &str, hold: Duration) -> Result<Claim, String> {
        let hold = millis(hold);
        self.inner
            .call("payment-id claim", |mut client| async move {
                let tx = client.transaction().await?;
                tx.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                    &[&CLAIM_LOCK, &key],
                )
                .await?;
                tx.execute(
                    &format!(
                        "DELETE FROM x402_payment_ids WHERE key = $1 AND expires_at <= {NOW_MS}"
                    ),
                    &[&key],
                )
                .await?;
                let row = tx
                    .query_opt(
                        "SELECT fingerprint, done, status, headers, body FROM x402_payment_ids
                         WHERE key = $1",
                        &[&key],
                    )
                    .await?;
                let claim = match row {
                    Some(r) if r.get::<_, String>(0) != fingerprint => Claim::Conflict,
                    Some(r) if !r.get::<_, bool>(1) => Claim::Busy,
                    Some(r) => {
                        let status: Option<i32> = r.get(2);
                        let headers: Option<String> = r.get(3);
                        let body: Option<Vec<u8>> = r.get(4);
                        match (status, headers, body) {
                            (Some(s), Some(h), Some(b)) => Claim::Replay(
                                CachedResponse::from_stored(u16::try_from(s).unwrap_or(500), &h, b)
                                    .ok(),
                            ),
                            _ => Claim::Replay(None),
                        }
                    }
                    None => {
                        tx.execute(
                            &format!(
                                "INSERT INTO x402_payment_ids (key, fingerprint, done, expires_at)
                                 VALUES ($1, $2, false, {NOW_MS} + $3)"
                            ),
                            &[&key, &fingerprint, &hold],
                        )
                        .await?;
                        Claim::Claimed
                    }
                };
                tx.commit().await?;
                Ok(claim)
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
        let keep = millis(keep);
        let (status, headers, body) = match &response {
            Some(r) => (
                Some(i32::from(r.status)),
                Some(r.headers_text()),
                Some(r.body.clone()),
            ),
            None => (None, None, None),
        };
        self.inner
            .call("payment-id complete", |client| async move {
                client
                    .execute(
                        &format!(
                            "INSERT INTO x402_payment_ids
                                 (key, fingerprint, done, status, headers, body, expires_at)
                             VALUES ($1, $2, true, $3, $4, $5, {NOW_MS} + $6)
                             ON CONFLICT (key) DO UPDATE SET
                                 fingerprint = excluded.fingerprint, done = true,
                                 status = excluded.status, headers = excluded.headers,
                                 body = excluded.body, expires_at = excluded.expires_at"
                        ),
                        &[&key, &fingerprint, &status, &headers, &body, &keep],
                    )
                    .await?;
                // Expired entries go with completions (claims remove their own key's).
                client
                    .execute(
                        &format!("DELETE FROM x402_payment_ids WHERE expires_at <= {NOW_MS}"),
                        &[],
                    )
                    .await?;
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())
    }

    async fn release(&self, key: &str, fingerprint: &str) -> Result<(), String> {
        self.inner
            .call("payment-id release", |client| async move {
                client
                    .execute(
                        "DELETE FROM x402_payment_ids
                         WHERE key = $1 AND fingerprint = $2 AND NOT done",
                        &[&key, &fingerprint],
                    )
                    .await?;
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())
    }
}
