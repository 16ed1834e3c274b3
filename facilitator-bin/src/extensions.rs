//! Facilitator extensions: which are linked, how they are configured, and the bazaar's
//! `GET /discovery/resources`.
//!
//! Extensions register at link time ([`x402_core::extension`]); a build links those its Cargo
//! features name (`bazaar`, on by default). A linked extension is enabled unless its table says
//! `enabled = false`:
//!
//! ```toml
//! [extensions.bazaar]
//! ttl_seconds = 604800     # an entry is listed this long after its last settlement (7 days)
//! max_entries = 10000      # live entries in all; new resources beyond are not cataloged
//! max_per_pay_to = 100     # live entries per recipient
//! ```
//!
//! A table naming an extension this build does not link, or an option it does not know, is a
//! start-up error. Enabled extensions are listed in `/supported.extensions`, run after every
//! verify and settle, and their answers are added to the response's `extensions` and sent as the
//! `EXTENSION-RESPONSES` header (base64 JSON).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use x402_core::SettlementStore;
use x402_core::extension::catalog::CatalogQuery;
use x402_core::extension::discovery::{BazaarFacilitator, DEFAULT_LIMIT, MAX_LIMIT};
use x402_core::extension::{Extension, ExtensionConfig, linked_extensions};

use crate::server::AppState;

/// Builds every linked extension that the configuration does not disable; the error names the
/// configuration key (a start-up error, [`crate::StartError::Extension`]).
pub fn build(
    tables: &std::collections::BTreeMap<String, serde_json::Value>,
    store: &Arc<dyn SettlementStore>,
) -> Result<Vec<Arc<dyn Extension>>, String> {
    let linked = linked_extensions().map_err(|e| e.to_string())?;
    for key in tables.keys() {
        if !linked.contains_key(key.as_str()) {
            let names: Vec<&str> = linked.keys().copied().collect();
            return Err(format!(
                "extensions.{key}: no extension {key:?} is in this build (linked: {})",
                names.join(", ")
            ));
        }
    }
    let mut built = Vec::new();
    for (key, descriptor) in linked {
        let mut options = tables
            .get(key)
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        let enabled = match options.as_object_mut().and_then(|o| o.remove("enabled")) {
            None => true,
            Some(serde_json::Value::Bool(b)) => b,
            Some(_) => {
                return Err(format!("extensions.{key}.enabled: must be true or false"));
            }
        };
        if !enabled {
            continue;
        }
        let config = ExtensionConfig {
            options,
            store: Arc::clone(store),
            clock: x402_core::system_clock(),
        };
        let extension =
            (descriptor.build)(&config).map_err(|e| format!("extensions.{key}: {}", e.message))?;
        tracing::info!(
            extension = key,
            crate_name = descriptor.crate_name,
            "extension enabled"
        );
        built.push(extension);
    }
    Ok(built)
}

/// `[extensions.erc20ApprovalGasSponsoring]` (feature `gas-sponsoring`): unlike the others, off
/// unless `enabled = true` (it spends the facilitator's ether, threat-model S42). Taken out of
/// `tables`; when enabled, its settings ([`x402_evm::facilitator::Erc20SponsorConfig`]) are put
/// in `shared` for the EVM schemes built after, and the extension listing the key is returned.
#[cfg(feature = "gas-sponsoring")]
pub fn take_erc20(
    tables: &mut std::collections::BTreeMap<String, serde_json::Value>,
    shared: &x402_core::Shared,
    store: &Arc<dyn SettlementStore>,
) -> Result<Option<Arc<dyn Extension>>, String> {
    use x402_evm::facilitator::approval::{SHARED_CONFIG_KEY, build_erc20};
    use x402_evm::sponsor::ERC20_APPROVAL_GAS_SPONSORING as KEY;
    let Some(mut options) = tables.remove(KEY) else {
        return Ok(None);
    };
    let enabled = match options.as_object_mut().and_then(|o| o.remove("enabled")) {
        None | Some(serde_json::Value::Bool(false)) => false,
        Some(serde_json::Value::Bool(true)) => true,
        Some(_) => return Err(format!("extensions.{KEY}.enabled: must be true or false")),
    };
    let config = ExtensionConfig {
        options,
        store: Arc::clone(store),
        clock: x402_core::system_clock(),
    };
    // Options are checked even when disabled: a typo fails start-up either way.
    let (extension, settings) =
        build_erc20(&config).map_err(|e| format!("extensions.{KEY}: {}", e.message))?;
    if !enabled {
        return Ok(None);
    }
    tracing::info!(
        extension = KEY,
        fund_gas = settings.fund_gas,
        max_funding_per_payer_wei = %settings.max_funding_per_payer,
        max_funding_per_day_wei = %settings.max_funding_per_day,
        "extension enabled"
    );
    shared
        .get_or_try_init::<_, ()>(SHARED_CONFIG_KEY, || Ok(settings))
        .map_err(|_| format!("extensions.{KEY}: configured twice"))?;
    Ok(Some(extension))
}

fn bad_request(message: String) -> Response {
    crate::server::error_response(StatusCode::BAD_REQUEST, &message)
}

/// Reads the listing query: `type`, `network`, `scheme`, `payTo`, `limit` (1 to 100, default
/// 20), `offset` (default 0). Anything else is ignored, as a reference client's `extensions`
/// filter is.
pub fn read_query(params: &HashMap<String, String>) -> Result<CatalogQuery, String> {
    let number = |key: &str, default: u32| -> Result<u32, String> {
        match params.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .map_err(|_| format!("{key} must be a non-negative integer, got {v:?}")),
        }
    };
    let limit = number("limit", DEFAULT_LIMIT)?;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        ));
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match params.get(key) {
            Some(v) if v.len() > 256 => Err(format!("{key} is longer than 256 characters")),
            Some(v) if !v.is_empty() => Ok(Some(v.clone())),
            _ => Ok(None),
        }
    };
    Ok(CatalogQuery {
        kind: text("type")?,
        network: text("network")?,
        scheme: text("scheme")?,
        pay_to: text("payTo")?,
        limit,
        offset: number("offset", 0)?,
        now: x402_core::UnixTime(0),
    })
}

/// `GET /discovery/resources`: the bazaar's catalogue, a page at a time (404 when the bazaar is
/// not enabled, 400 for a bad query, 503 when the store does not answer).
pub async fn discovery_resources(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(bazaar) = state
        .facilitator
        .extension(x402_core::extension::bazaar::BAZAAR)
        .and_then(|e| e.as_any().downcast_ref::<BazaarFacilitator>())
    else {
        return crate::server::error_response(
            StatusCode::NOT_FOUND,
            "discovery is not enabled on this facilitator",
        );
    };
    let query = match read_query(&params) {
        Ok(q) => q,
        Err(message) => return bad_request(message),
    };
    match bazaar.list(query).await {
        Ok(list) => crate::server::json_ok(&list),
        Err(e) => {
            tracing::error!(error = %e, "discovery catalogue unavailable");
            crate::server::error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the discovery catalogue is unavailable, retry later",
            )
        }
    }
}

#[cfg(test)]
#[path = "extensions_tests.rs"]
mod http_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<CatalogQuery, String> {
        read_query(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn extensions_are_configured_by_their_tables() {
        use std::collections::BTreeMap;
        let store: Arc<dyn SettlementStore> = Arc::new(x402_core::MemoryStore::new());
        let tables = |pairs: &[(&str, serde_json::Value)]| -> BTreeMap<String, serde_json::Value> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        #[cfg(feature = "bazaar")]
        {
            // The bazaar's keys (other linked extensions are checked below).
            let keys = |built: Vec<Arc<dyn Extension>>| -> Vec<&'static str> {
                built
                    .iter()
                    .map(|e| e.key())
                    .filter(|k| *k == "bazaar")
                    .collect()
            };
            assert_eq!(keys(build(&tables(&[]), &store).unwrap()), ["bazaar"]);
            let tuned = tables(&[("bazaar", serde_json::json!({"ttl_seconds": 60}))]);
            assert_eq!(keys(build(&tuned, &store).unwrap()), ["bazaar"]);
            let off = tables(&[("bazaar", serde_json::json!({"enabled": false}))]);
            assert!(keys(build(&off, &store).unwrap()).is_empty());
            for (table, named) in [
                (serde_json::json!({"ttl_secs": 60}), "ttl_secs"),
                (serde_json::json!({"ttl_seconds": 0}), "must be positive"),
                (serde_json::json!({"enabled": "no"}), "enabled"),
            ] {
                let e = build(&tables(&[("bazaar", table)]), &store).unwrap_err();
                assert!(
                    e.starts_with("extensions.bazaar") && e.contains(named),
                    "{e}"
                );
            }
        }
        #[cfg(feature = "gas-sponsoring")]
        {
            let key = "eip2612GasSponsoring";
            let has = |built: Vec<Arc<dyn Extension>>| built.iter().any(|e| e.key() == key);
            assert!(has(build(&tables(&[]), &store).unwrap()));
            let off = tables(&[(key, serde_json::json!({"enabled": false}))]);
            assert!(!has(build(&off, &store).unwrap()));
            let unknown = tables(&[(key, serde_json::json!({"cap": 1}))]);
            let e = build(&unknown, &store).unwrap_err();
            assert!(e.contains("unknown option \"cap\""), "{e}");
        }
        let e = build(&tables(&[("nope", serde_json::json!({}))]), &store).unwrap_err();
        assert!(e.contains("no extension \"nope\" is in this build"), "{e}");
    }

    /// `erc20ApprovalGasSponsoring` is off unless `enabled = true`; its options are checked
    /// either way, and enabled it hands the schemes its settings through `Shared`.
    #[cfg(feature = "gas-sponsoring")]
    #[test]
    fn erc20_approval_sponsoring_is_off_unless_enabled() {
        use std::collections::BTreeMap;
        use x402_evm::facilitator::approval::{SHARED_CONFIG_KEY, from_shared};
        let store: Arc<dyn SettlementStore> = Arc::new(x402_core::MemoryStore::new());
        let key = "erc20ApprovalGasSponsoring";
        let network = x402_core::Network::eip155(8453);
        let take = |table: Option<serde_json::Value>| {
            let mut tables = BTreeMap::new();
            if let Some(t) = table {
                tables.insert(key.to_owned(), t);
            }
            let shared = x402_core::Shared::default();
            let taken = take_erc20(&mut tables, &shared, &store);
            assert!(!tables.contains_key(key), "the table is taken out");
            taken.map(|e| (e.map(|e| e.key()), from_shared(&shared, &network)))
        };
        let (ext, sponsor) = take(None).unwrap();
        assert!(ext.is_none() && sponsor.is_none());
        let (ext, sponsor) = take(Some(serde_json::json!({"fund_gas": true}))).unwrap();
        assert!(ext.is_none() && sponsor.is_none(), "not enabled");
        let on = serde_json::json!({"enabled": true, "fund_gas": true, "max_funding_per_day": 5});
        let (ext, sponsor) = take(Some(on)).unwrap();
        assert_eq!(ext, Some(key));
        let sponsor = sponsor.expect("the schemes' sponsor");
        assert!(sponsor.config().fund_gas);
        assert_eq!(sponsor.config().max_funding_per_day, 5);
        for (table, named) in [
            (serde_json::json!({"fund": true}), "fund"),
            (serde_json::json!({"enabled": "yes"}), "enabled"),
        ] {
            let e = take(Some(table)).unwrap_err();
            assert!(
                e.starts_with(&format!("extensions.{key}")) && e.contains(named),
                "{e}"
            );
        }
        assert_eq!(SHARED_CONFIG_KEY, key);
    }

    #[test]
    fn the_query_follows_the_spec_bounds() {
        let d = q(&[]).unwrap();
        assert_eq!((d.limit, d.offset, d.kind), (20, 0, None));
        let f = q(&[
            ("type", "mcp"),
            ("limit", "100"),
            ("offset", "40"),
            ("payTo", "0xA"),
        ])
        .unwrap();
        assert_eq!((f.limit, f.offset), (100, 40));
        assert_eq!(f.kind.as_deref(), Some("mcp"));
        assert_eq!(f.pay_to.as_deref(), Some("0xA"));
        for bad in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "-1"),
            ("offset", "x"),
        ] {
            assert!(q(&[bad]).is_err(), "{bad:?}");
        }
        assert!(q(&[("type", &"x".repeat(300))]).is_err());
    }
}
