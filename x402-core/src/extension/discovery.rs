//! The bazaar on the facilitator: catalogs the resources it settles for and lists them.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::bazaar::{BAZAAR, catalog_entry};
use super::catalog::{CatalogLimits, CatalogQuery, Put, ResourceCatalog};
use super::{Extension, ExtensionConfig, ExtensionError};
use crate::X402Version;
use crate::clock::SharedClock;
use crate::settlement::{SettlementStore, StoreError};
use crate::wire::{
    DiscoveryItem, DiscoveryResponse, Pagination, PaymentPayload, PaymentRequirements, Raw,
    SettleRequest, SettleResponse,
};

/// The bazaar's settings (`[extensions.bazaar]` in the facilitator's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BazaarOptions {
    /// How long an entry is listed after its last settlement, in seconds (default 7 days).
    pub ttl_seconds: u64,
    /// Live entries in all (default 10 000): a new resource beyond it is not cataloged.
    pub max_entries: u64,
    /// Live entries per recipient (default 100): one seller, or one payer paying itself, cannot
    /// take the whole catalogue.
    pub max_per_pay_to: u64,
}

impl Default for BazaarOptions {
    fn default() -> Self {
        Self {
            ttl_seconds: 7 * 24 * 3600,
            max_entries: 10_000,
            max_per_pay_to: 100,
        }
    }
}

/// The largest page `GET /discovery/resources` serves (`limit` is 1 to this).
pub const MAX_LIMIT: u32 = 100;
/// The page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 20;

/// The facilitator's bazaar: after each successful settlement of a v2 payment that carries a
/// bazaar declaration, validates it ([`super::bazaar::catalog_entry`]) and stores the resource
/// in the settlement store's catalogue; answers `{"status": "success"}` or
/// `{"status": "rejected", "rejectedReason": …}` under `bazaar` in the settle response's
/// `extensions`. A refused or pending settlement catalogs nothing.
#[derive(Debug, Clone)]
pub struct BazaarFacilitator {
    store: Arc<dyn SettlementStore>,
    clock: SharedClock,
    options: BazaarOptions,
}

impl BazaarFacilitator {
    /// A bazaar over `store`'s catalogue; `None` when the store has none.
    pub fn new(
        store: Arc<dyn SettlementStore>,
        clock: SharedClock,
        options: BazaarOptions,
    ) -> Option<Self> {
        store.catalog()?;
        Some(Self {
            store,
            clock,
            options,
        })
    }

    /// The settings.
    pub fn options(&self) -> BazaarOptions {
        self.options
    }

    fn catalog(&self) -> Result<&dyn ResourceCatalog, StoreError> {
        self.store
            .catalog()
            .ok_or_else(|| StoreError("the settlement store has no catalogue".to_owned()))
    }

    /// The page of the catalogue `query` asks for (its `now` is set from the clock), as
    /// `GET /discovery/resources` answers it.
    pub async fn list(&self, mut query: CatalogQuery) -> Result<DiscoveryResponse, StoreError> {
        query.now = self.clock.now();
        let page = self.catalog()?.list(&query).await?;
        let items = page
            .items
            .iter()
            .filter_map(|text| serde_json::from_str::<DiscoveryItem>(text).ok())
            .collect();
        Ok(DiscoveryResponse {
            x402_version: X402Version::V2,
            items,
            pagination: Pagination {
                limit: query.limit,
                offset: query.offset,
                total: u32::try_from(page.total).unwrap_or(u32::MAX),
            },
        })
    }

    fn answer(status: &str, reason: Option<&str>) -> Raw {
        let mut answer = super::JsonObject::new().with("status", status);
        if let Some(r) = reason {
            answer.set_value("rejectedReason", r);
        }
        answer.to_raw()
    }
}

#[async_trait]
impl Extension for BazaarFacilitator {
    fn key(&self) -> &'static str {
        BAZAAR
    }

    async fn settled(&self, request: &SettleRequest, response: &SettleResponse) -> Option<Raw> {
        let (PaymentPayload::V2(payload), PaymentRequirements::V2(requirements)) =
            (&request.payment_payload, &request.payment_requirements)
        else {
            return None;
        };
        if !response.success {
            return None;
        }
        let ttl = Duration::from_secs(self.options.ttl_seconds);
        let entry = match catalog_entry(payload, requirements, self.clock.now(), ttl) {
            Ok(Some(entry)) => entry,
            Ok(None) => return None,
            Err(reason) => return Some(Self::answer("rejected", Some(&reason))),
        };
        let limits = CatalogLimits {
            max_entries: self.options.max_entries,
            max_per_pay_to: self.options.max_per_pay_to,
        };
        let put = match self.catalog() {
            Ok(catalog) => catalog.put(&entry, limits).await,
            Err(e) => Err(e),
        };
        Some(match put {
            Ok(Put::Stored) => Self::answer("success", None),
            Ok(Put::Full) => Self::answer("rejected", Some("the catalogue is full")),
            Ok(Put::RecipientFull) => Self::answer(
                "rejected",
                Some("the recipient has too many cataloged resources"),
            ),
            Err(_) => Self::answer("rejected", Some("the catalogue is unavailable")),
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn build(config: &ExtensionConfig) -> Result<Arc<dyn Extension>, ExtensionError> {
    let failed = |message: String| ExtensionError {
        key: BAZAAR.to_owned(),
        message,
    };
    let options = if config.options.is_null() {
        BazaarOptions::default()
    } else {
        BazaarOptions::deserialize(&config.options).map_err(|e| failed(e.to_string()))?
    };
    if options.ttl_seconds == 0 || options.max_entries == 0 || options.max_per_pay_to == 0 {
        return Err(failed(
            "ttl_seconds, max_entries and max_per_pay_to must be positive".to_owned(),
        ));
    }
    let bazaar = BazaarFacilitator::new(config.store.clone(), config.clock.clone(), options)
        .ok_or_else(|| {
            failed(format!(
                "the {} store keeps no catalogue",
                config.store.kind()
            ))
        })?;
    Ok(Arc::new(bazaar))
}

#[cfg(feature = "bazaar")]
crate::register_extension!(BAZAAR, build);

/// The bazaar's builder, for explicit registration (libraries and tests).
pub fn build_bazaar(config: &ExtensionConfig) -> Result<Arc<dyn Extension>, ExtensionError> {
    build(config)
}
