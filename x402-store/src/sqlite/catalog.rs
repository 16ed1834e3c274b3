//! The bazaar's discovery catalogue in the SQLite file (table `x402_catalog`).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use x402_core::StoreError;
use x402_core::extension::catalog::{
    CatalogEntry, CatalogLimits, CatalogPage, CatalogQuery, Put, ResourceCatalog, normalize_pay_to,
};

use super::SqliteStore;
use crate::row;

/// The filter every listing query shares (`?1` now, `?2`..`?5` the optional filters).
const FILTER: &str = "expires_at > ?1 AND (?2 IS NULL OR kind = ?2)
    AND (?3 IS NULL OR network = ?3) AND (?4 IS NULL OR scheme = ?4)
    AND (?5 IS NULL OR pay_to = ?5)";

#[async_trait]
impl ResourceCatalog for SqliteStore {
    async fn put(&self, entry: &CatalogEntry, limits: CatalogLimits) -> Result<Put, StoreError> {
        let entry = entry.clone();
        self.call(move |_, conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = row::expires(entry.updated_at);
            tx.prepare_cached("DELETE FROM x402_catalog WHERE expires_at <= ?1")?
                .execute(params![now])?;
            let exists = tx
                .prepare_cached("SELECT 1 FROM x402_catalog WHERE resource = ?1")?
                .query_row(params![entry.resource], |_| Ok(()))
                .optional()?
                .is_some();
            if !exists {
                let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> rusqlite::Result<u64> {
                    let n: i64 = tx.prepare_cached(sql)?.query_row(p, |r| r.get(0))?;
                    Ok(u64::try_from(n).unwrap_or(0))
                };
                if count("SELECT COUNT(*) FROM x402_catalog", &[])? >= limits.max_entries {
                    return Ok(Put::Full);
                }
                let same = count(
                    "SELECT COUNT(*) FROM x402_catalog WHERE pay_to = ?1",
                    &[&entry.pay_to],
                )?;
                if same >= limits.max_per_pay_to {
                    return Ok(Put::RecipientFull);
                }
            }
            tx.prepare_cached(
                "INSERT INTO x402_catalog
                     (resource, kind, pay_to, network, scheme, item, updated_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (resource) DO UPDATE SET
                     kind = excluded.kind, pay_to = excluded.pay_to,
                     network = excluded.network, scheme = excluded.scheme,
                     item = excluded.item, updated_at = excluded.updated_at,
                     expires_at = excluded.expires_at",
            )?
            .execute(params![
                entry.resource,
                entry.kind,
                entry.pay_to,
                entry.network,
                entry.scheme,
                entry.item,
                now,
                row::expires(entry.expires_at),
            ])?;
            tx.commit()?;
            Ok(Put::Stored)
        })
        .await
    }

    async fn list(&self, query: &CatalogQuery) -> Result<CatalogPage, StoreError> {
        let query = query.clone();
        self.call(move |_, conn| {
            let pay_to = query.pay_to.as_deref().map(normalize_pay_to);
            let now = row::expires(query.now);
            let total: i64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM x402_catalog WHERE {FILTER}"))?
                .query_row(
                    params![now, query.kind, query.network, query.scheme, pay_to],
                    |r| r.get(0),
                )?;
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT item FROM x402_catalog WHERE {FILTER}
                 ORDER BY updated_at DESC, resource LIMIT ?6 OFFSET ?7"
            ))?;
            let rows = stmt.query_map(
                params![
                    now,
                    query.kind,
                    query.network,
                    query.scheme,
                    pay_to,
                    i64::from(query.limit),
                    i64::from(query.offset)
                ],
                |r| r.get::<_, String>(0),
            )?;
            let items = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(CatalogPage {
                items,
                total: u64::try_from(total).unwrap_or(0),
            })
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
    async fn the_sqlite_catalogue_conforms_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let store = SqliteStore::open(&path, Default::default()).unwrap();
        x402_core::extension::catalog::conformance::run(store.catalog().unwrap()).await;
        drop(store);
        let reopened = SqliteStore::open(&path, Default::default()).unwrap();
        let page = reopened
            .list(&CatalogQuery {
                limit: 10,
                now: x402_core::UnixTime(1112),
                ..CatalogQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.total, 3, "the catalogue is durable");
    }
}
