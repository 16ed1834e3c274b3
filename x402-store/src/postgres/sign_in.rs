//! Sign-in-with-x's payment history and spent nonces in PostgreSQL (tables
//! `x402_siwx_payments` and `x402_siwx_nonces`, migration 5), shared by every replica: a nonce
//! claim is one statement, so of two replicas claiming one nonce, one wins.

use async_trait::async_trait;
use x402_core::extension::sign_in::SignInStore;
use x402_core::{StoreError, UnixTime};

use super::PostgresStore;
use crate::row;

#[async_trait]
impl SignInStore for PostgresStore {
    async fn record_payment(
        &self,
        resource: &str,
        payer: &str,
        at: UnixTime,
    ) -> Result<(), StoreError> {
        let at = row::expires(at);
        self.inner
            .call("sign-in payment", |client| async move {
                client
                    .execute(
                        "INSERT INTO x402_siwx_payments (resource, payer, paid_at)
                         VALUES ($1, $2, $3)
                         ON CONFLICT (resource, payer) DO UPDATE
                             SET paid_at = GREATEST(x402_siwx_payments.paid_at, excluded.paid_at)",
                        &[&resource, &payer, &at],
                    )
                    .await?;
                Ok(())
            })
            .await
    }

    async fn last_payment(
        &self,
        resource: &str,
        payer: &str,
    ) -> Result<Option<UnixTime>, StoreError> {
        self.inner
            .call("sign-in history", |client| async move {
                let row = client
                    .query_opt(
                        "SELECT paid_at FROM x402_siwx_payments
                         WHERE resource = $1 AND payer = $2",
                        &[&resource, &payer],
                    )
                    .await?;
                Ok(row.map(|r| row::unix_time(r.get(0))))
            })
            .await
    }

    async fn claim_nonce(
        &self,
        nonce: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let (until, now) = (row::expires(until), row::expires(now));
        self.inner
            .call("sign-in nonce", |client| async move {
                client
                    .execute(
                        "DELETE FROM x402_siwx_nonces WHERE expires_at < $1",
                        &[&now],
                    )
                    .await?;
                let changed = client
                    .execute(
                        "INSERT INTO x402_siwx_nonces (nonce, expires_at) VALUES ($1, $2)
                         ON CONFLICT (nonce) DO UPDATE SET expires_at = excluded.expires_at
                             WHERE x402_siwx_nonces.expires_at < $3",
                        &[&nonce, &until, &now],
                    )
                    .await?;
                Ok(changed == 1)
            })
            .await
    }
}
