//! The bazaar's discovery catalogue in PostgreSQL (table `x402_catalog`), shared by every
//! replica: writes are serialized by a transaction-scoped advisory lock, so the limits hold
//! across replicas.

use async_trait::async_trait;
use x402_core::StoreError;
use x402_core::extension::catalog::{
    CatalogEntry, CatalogLimits, CatalogPage, CatalogQuery, Put, ResourceCatalog, normalize_pay_to,
};

use super::PostgresStore;
use crate::row;

/// The advisory lock key of catalogue writes (`"x402cat\0"` as a big-endian integer).
const CATALOG_LOCK: i64 = 0x7834_3032_6361_7400;

/// The filter every listing query shares (`$1` now, `$2`..`$5` the optional filters).
const FILTER: &str = "expires_at > $1 AND ($2::text IS NULL OR kind = $2)
    AND ($3::text IS NULL OR network = $3) AND ($4::text IS NULL OR scheme = $4)
    AND ($5::text IS NULL OR pay_to = $5)";

#[async_trait]
impl ResourceCatalog for PostgresStore {
    async fn put(&self, entry: &CatalogEntry, limits: CatalogLimits) -> Result<Put, StoreError> {
        let now = row::expires(entry.updated_at);
        let expires = row::expires(entry.expires_at);
        let max_entries = i64::try_from(limits.max_entries).unwrap_or(i64::MAX);
        let max_per = i64::try_from(limits.max_per_pay_to).unwrap_or(i64::MAX);
        self.inner
            .call("catalog put", |mut client| async move {
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK])
                    .await?;
                tx.execute("DELETE FROM x402_catalog WHERE expires_at <= $1", &[&now])
                    .await?;
                let exists = tx
                    .query_opt(
                        "SELECT 1 FROM x402_catalog WHERE resource = $1",
                        &[&entry.resource],
                    )
                    .await?
                    .is_some();
                if !exists {
                    let all: i64 = tx
                        .query_one("SELECT COUNT(*) FROM x402_catalog", &[])
                        .await?
                        .get(0);
                    if all >= max_entries {
                        return Ok(Put::Full);
                    }
                    let same: i64 = tx
                        .query_one(
                            "SELECT COUNT(*) FROM x402_catalog WHERE pay_to = $1",
                            &[&entry.pay_to],
                        )
                        .await?
                        .get(0);
                    if same >= max_per {
                        return Ok(Put::RecipientFull);
                    }
                }
                tx.execute(
                    "INSERT INTO x402_catalog
                         (resource, kind, pay_to, network, scheme, item, updated_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (resource) DO UPDATE SET
                         kind = excluded.kind, pay_to = excluded.pay_to,
                         network = excluded.network, scheme = excluded.scheme,
                         item = excluded.item, updated_at = excluded.updated_at,
                         expires_at = excluded.expires_at",
                    &[
                        &entry.resource,
                        &entry.kind,
                        &entry.pay_to,
                        &entry.network,
                        &entry.scheme,
                        &entry.item,
                        &now,
                        &expires,
                    ],
                )
                .await?;
                tx.commit().await?;
                Ok(Put::Stored)
            })
            .await
    }

    async fn list(&self, query: &CatalogQuery) -> Result<CatalogPage, StoreError> {
        let now = row::expires(query.now);
        let pay_to = query.pay_to.as_deref().map(normalize_pay_to);
        let (limit, offset) = (i64::from(query.limit), i64::from(query.offset));
        self.inner
            .call("catalog list", |client| async move {
                let filters: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                    [&now, &query.kind, &query.network, &query.scheme, &pay_to];
                let total: i64 = client
                    .query_one(
                        &format!("SELECT COUNT(*) FROM x402_catalog WHERE {FILTER}"),
                        &filters,
                    )
                    .await?
                    .get(0);
                let mut params = filters.to_vec();
                params.push(&limit);
                params.push(&offset);
                let rows = client
                    .query(
                        &format!(
                            "SELECT item FROM x402_catalog WHERE {FILTER}
                             ORDER BY updated_at DESC, resource LIMIT $6 OFFSET $7"
                        ),
                        &params,
                    )
                    .await?;
                Ok(CatalogPage {
                    items: rows.iter().map(|r| r.get(0)).collect(),
                    total: u64::try_from(total).unwrap_or(0),
                })
            })
            .await
    }
}
