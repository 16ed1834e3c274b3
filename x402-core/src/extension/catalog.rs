//! The discovery catalogue: what a facilitator's bazaar lists at `GET /discovery/resources`.
//!
//! A [`ResourceCatalog`] lives in the settlement store ([`SettlementStore::catalog`]), so every
//! replica sharing a durable store serves one catalogue and it survives restarts. One entry per
//! resource (its canonical URL): a later settlement for the same resource replaces the entry and
//! renews its expiry. Entries expire [`CatalogEntry::expires_at`] (the bazaar's TTL after their
//! last settlement): expired entries are never listed and are pruned on later writes.
//!
//! [`SettlementStore::catalog`]: crate::SettlementStore::catalog

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::UnixTime;
use crate::settlement::StoreError;

/// One cataloged resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The canonical resource URL (origin and route template or path): the key.
    pub resource: String,
    /// The resource type (`http`, `mcp`).
    pub kind: String,
    /// Who is paid (as the settled requirements wrote it; EVM addresses lower-cased).
    pub pay_to: String,
    /// The network paid on (CAIP-2).
    pub network: String,
    /// The scheme paid with.
    pub scheme: String,
    /// The discovery item, as JSON text (a [`crate::wire::DiscoveryItem`]).
    pub item: String,
    /// When it was last settled for.
    pub updated_at: UnixTime,
    /// When it stops being listed.
    pub expires_at: UnixTime,
}

/// Which entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogQuery {
    /// Only this resource type.
    pub kind: Option<String>,
    /// Only resources paid on this network.
    pub network: Option<String>,
    /// Only resources paid with this scheme.
    pub scheme: Option<String>,
    /// Only resources paying this recipient (compared as [`normalize_pay_to`] writes it).
    pub pay_to: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Entries skipped.
    pub offset: u32,
    /// Now: entries expired by then are not listed.
    pub now: UnixTime,
}

impl CatalogQuery {
    /// Whether `entry` is listed by this query.
    pub fn matches(&self, entry: &CatalogEntry) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        entry.expires_at > self.now
            && eq(&self.kind, &entry.kind)
            && eq(&self.network, &entry.network)
            && eq(&self.scheme, &entry.scheme)
            && self
                .pay_to
                .as_deref()
                .is_none_or(|p| normalize_pay_to(p) == entry.pay_to)
    }
}

/// One page of the catalogue: the items (JSON text), newest first, and how many match in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogPage {
    /// The items' JSON, most recently settled first (ties by resource).
    pub items: Vec<String>,
    /// How many entries match the query.
    pub total: u64,
}

/// What became of a [`ResourceCatalog::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Stored (new, or replacing the resource's earlier entry).
    Stored,
    /// Refused: the catalogue holds [`CatalogLimits::max_entries`] live entries already.
    Full,
    /// Refused: the recipient has [`CatalogLimits::max_per_pay_to`] live entries already.
    RecipientFull,
}

/// Bounds on what the catalogue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogLimits {
    /// Live entries in all.
    pub max_entries: u64,
    /// Live entries per recipient (`payTo`).
    pub max_per_pay_to: u64,
}

/// EVM addresses compare case-insensitively: they are stored and matched lower-cased; other
/// recipients (Solana base58) as written.
pub fn normalize_pay_to(pay_to: &str) -> String {
    if pay_to.starts_with("0x") || pay_to.starts_with("0X") {
        pay_to.to_ascii_lowercase()
    } else {
        pay_to.to_owned()
    }
}

/// Where the bazaar's catalogue lives: a part of the settlement store.
#[async_trait]
pub trait ResourceCatalog: Send + Sync {
    /// Stores `entry`, replacing the resource's earlier entry. A new resource is refused when the
    /// live entries reach the limits (a replacement is always stored). Expired entries (by
    /// `entry.updated_at`) are pruned.
    async fn put(&self, entry: &CatalogEntry, limits: CatalogLimits) -> Result<Put, StoreError>;

    /// The page `query` asks for.
    async fn list(&self, query: &CatalogQuery) -> Result<CatalogPage, StoreError>;
}

/// The catalogue of the in-process store.
#[derive(Debug, Default)]
pub struct MemoryCatalog {
    entries: Mutex<HashMap<String, CatalogEntry>>,
}

#[async_trait]
impl ResourceCatalog for MemoryCatalog {
    async fn put(&self, entry: &CatalogEntry, limits: CatalogLimits) -> Result<Put, StoreError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, e| e.expires_at > entry.updated_at);
        if !entries.contains_key(&entry.resource) {
            if entries.len() as u64 >= limits.max_entries {
                return Ok(Put::Full);
            }
            let same = entries
                .values()
                .filter(|e| e.pay_to == entry.pay_to)
                .count();
            if same as u64 >= limits.max_per_pay_to {
                return Ok(Put::RecipientFull);
            }
        }
        entries.insert(entry.resource.clone(), entry.clone());
        Ok(Put::Stored)
    }

    async fn list(&self, query: &CatalogQuery) -> Result<CatalogPage, StoreError> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut found: Vec<&CatalogEntry> = entries.values().filter(|e| query.matches(e)).collect();
        found.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.resource.cmp(&b.resource))
        });
        Ok(CatalogPage {
            total: found.len() as u64,
            items: found
                .into_iter()
                .skip(query.offset as usize)
                .take(query.limit as usize)
                .map(|e| e.item.clone())
                .collect(),
        })
    }
}

/// The catalogue conformance suite every backend's tests run.
#[cfg(any(test, feature = "testing"))]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test suite: a failure is a panic"
)]
pub mod conformance {
    use super::*;

    fn entry(resource: &str, pay_to: &str, network: &str, at: u64) -> CatalogEntry {
        CatalogEntry {
            resource: resource.to_owned(),
            kind: if resource.contains("mcp") {
                "mcp"
            } else {
                "http"
            }
            .to_owned(),
            pay_to: pay_to.to_owned(),
            network: network.to_owned(),
            scheme: "exact".to_owned(),
            item: format!(r#"{{"resource":"{resource}","at":{at}}}"#),
            updated_at: UnixTime(at),
            expires_at: UnixTime(at + 100),
        }
    }

    fn query(now: u64) -> CatalogQuery {
        CatalogQuery {
            limit: 20,
            now: UnixTime(now),
            ..CatalogQuery::default()
        }
    }

    const LIMITS: CatalogLimits = CatalogLimits {
        max_entries: 1000,
        max_per_pay_to: 1000,
    };

    /// Runs every catalogue check on `catalog` (empty at the start). Panics on a failure.
    pub async fn run(catalog: &dyn ResourceCatalog) {
        // Ordering, paging and totals.
        for i in 0..5u64 {
            let e = entry(
                &format!("https://a.example/r{i}"),
                "0xaa",
                "eip155:1",
                1000 + i,
            );
            assert_eq!(catalog.put(&e, LIMITS).await.unwrap(), Put::Stored);
        }
        let page = catalog
            .list(&CatalogQuery {
                limit: 2,
                offset: 1,
                ..query(1010)
            })
            .await
            .unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(
            page.items,
            [
                r#"{"resource":"https://a.example/r3","at":1003}"#,
                r#"{"resource":"https://a.example/r2","at":1002}"#
            ]
        );
        let past_end = catalog
            .list(&CatalogQuery {
                offset: 9,
                ..query(1010)
            })
            .await
            .unwrap();
        assert_eq!((past_end.total, past_end.items.len()), (5, 0));

        // A later settlement replaces the entry (no duplicate) and moves it first.
        let renewed = entry("https://a.example/r0", "0xaa", "eip155:8453", 1020);
        catalog.put(&renewed, LIMITS).await.unwrap();
        let page = catalog.list(&query(1021)).await.unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(page.items[0], renewed.item);

        // Filters.
        let mcp = entry("https://b.example/mcp", "0xbb", "eip155:1", 1030);
        catalog.put(&mcp, LIMITS).await.unwrap();
        let only = |q: CatalogQuery| async move { catalog.list(&q).await.unwrap() };
        let by_kind = only(CatalogQuery {
            kind: Some("mcp".into()),
            ..query(1031)
        })
        .await;
        assert_eq!(by_kind.items, std::slice::from_ref(&mcp.item));
        let by_network = only(CatalogQuery {
            network: Some("eip155:8453".into()),
            ..query(1031)
        })
        .await;
        assert_eq!(by_network.items, std::slice::from_ref(&renewed.item));
        let by_pay_to = only(CatalogQuery {
            pay_to: Some("0xBB".into()),
            ..query(1031)
        })
        .await;
        assert_eq!(by_pay_to.total, 1);
        let by_scheme = only(CatalogQuery {
            scheme: Some("upto".into()),
            ..query(1031)
        })
        .await;
        assert_eq!(by_scheme.total, 0);

        // Expiry: r1..r4 (settled at 1001..1004) expire at 1101..1104.
        let later = catalog.list(&query(1103)).await.unwrap();
        assert_eq!(
            later.total, 3,
            "r4, r0 (renewed) and the mcp entry are left"
        );
        assert!(
            !later
                .items
                .iter()
                .any(|i| i.contains("/r1\"") || i.contains("/r2\""))
        );

        // Limits: a new resource is refused when full, a replacement is always stored.
        let tight = CatalogLimits {
            max_entries: 3,
            max_per_pay_to: 1000,
        };
        let fresh = entry("https://c.example/new", "0xcc", "eip155:1", 1110);
        // At 1110 r3 and r4 have expired too: live are r0 and mcp (2 < 3).
        assert_eq!(catalog.put(&fresh, tight).await.unwrap(), Put::Stored);
        let another = entry("https://c.example/other", "0xcc", "eip155:1", 1111);
        assert_eq!(catalog.put(&another, tight).await.unwrap(), Put::Full);
        assert_eq!(catalog.put(&fresh, tight).await.unwrap(), Put::Stored);
        let per = CatalogLimits {
            max_entries: 1000,
            max_per_pay_to: 1,
        };
        assert_eq!(
            catalog.put(&another, per).await.unwrap(),
            Put::RecipientFull
        );
        let listed = catalog.list(&query(1112)).await.unwrap();
        assert_eq!(listed.total, 3);
        assert!(!listed.items.iter().any(|i| i.contains("/other")));
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_catalog_conforms() {
        super::conformance::run(&super::MemoryCatalog::default()).await;
    }
}
