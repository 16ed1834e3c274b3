//! The configuration every EVM scheme on a network shares — RPC, signer keys, fee and gas caps,
//! confirmation depth, timeouts — read once from the scheme's merged options table, with the
//! rest of the table left to the scheme's own options. Unknown keys are errors on both sides.

use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::DynProvider;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use x402_core::{AllowList, SchemeConfig, SchemeError};

use crate::signers::{SignerPool, TxConfig};

/// Network-level options of an EVM network (shared by `exact` and `upto` there). Its `Debug`
/// shows how many RPC URLs and keys there are, never them (a URL may carry an API token).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkOptions {
    /// RPC URLs, tried in order.
    pub rpc_urls: Vec<String>,
    /// Signer private keys (hex). Never printed.
    #[serde(default)]
    pub signer_keys: Vec<String>,
    /// RPC request timeout in milliseconds.
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// Receipt wait bound in milliseconds (a settle's answer deadline may end it earlier).
    #[serde(default = "default_receipt_timeout_ms")]
    pub receipt_timeout_ms: u64,
    /// Blocks (the transaction's own included) a settlement needs before it counts.
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// The largest gas limit ever signed.
    #[serde(default)]
    pub gas_limit_cap: Option<u64>,
    /// The highest `maxFeePerGas` ever signed (wei, decimal); a base fee above it refuses.
    #[serde(default)]
    pub max_fee_per_gas: Option<String>,
    /// The highest `maxPriorityFeePerGas` ever signed (wei, decimal).
    #[serde(default)]
    pub max_priority_fee_per_gas: Option<String>,
    /// Start-up refuses, and `/ready` reports, signers below this balance (wei, decimal).
    #[serde(default)]
    pub min_signer_balance: Option<String>,
    /// How long this process leases a signer key through the settlement store (renewed while
    /// it sends), in milliseconds. With a store shared by several facilitator processes, a key
    /// sends from one process at a time; a process taking a key over re-reads its nonce.
    #[serde(default = "default_signer_lease_ms")]
    pub signer_lease_ms: u64,
    /// Seconds an authorization (EIP-3009 `validBefore`, Permit2 `deadline`) must still run when
    /// verified and settled; default: two of the chain's block times plus a margin, at least six
    /// (see [`crate::window`]).
    #[serde(default)]
    pub expiry_buffer_seconds: Option<u64>,
    /// How long, in seconds, a payer whose settlement transaction reverted (the facilitator
    /// paid its gas) is refused `payer_throttled`, by every process sharing the settlement
    /// store. 0 turns the cool-down off.
    #[serde(default = "default_failed_payer_cooldown_secs")]
    pub failed_payer_cooldown_secs: u64,
    /// Blocks after which a settlement transaction still not mined is replaced with the same
    /// nonce and fees raised by at least 10 % (within `max_fee_per_gas` and
    /// `max_priority_fee_per_gas`); default 3.
    #[serde(default = "default_stuck_after_blocks")]
    pub stuck_after_blocks: u64,
}

impl std::fmt::Debug for NetworkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkOptions")
            .field("rpc_urls", &self.rpc_urls.len())
            .field("signer_keys", &self.signer_keys.len())
            .field("rpc_timeout_ms", &self.rpc_timeout_ms)
            .field("receipt_timeout_ms", &self.receipt_timeout_ms)
            .field("confirmations", &self.confirmations)
            .field("gas_limit_cap", &self.gas_limit_cap)
            .field("max_fee_per_gas", &self.max_fee_per_gas)
            .field("max_priority_fee_per_gas", &self.max_priority_fee_per_gas)
            .field("min_signer_balance", &self.min_signer_balance)
            .field("signer_lease_ms", &self.signer_lease_ms)
            .field("expiry_buffer_seconds", &self.expiry_buffer_seconds)
            .field(
                "failed_payer_cooldown_secs",
                &self.failed_payer_cooldown_secs,
            )
            .field("stuck_after_blocks", &self.stuck_after_blocks)
            .finish()
    }
}

/// The keys [`NetworkOptions`] reads.
const NETWORK_KEYS: &[&str] = &[
    "rpc_urls",
    "signer_keys",
    "rpc_timeout_ms",
    "receipt_timeout_ms",
    "confirmations",
    "gas_limit_cap",
    "max_fee_per_gas",
    "max_priority_fee_per_gas",
    "min_signer_balance",
    "signer_lease_ms",
    "expiry_buffer_seconds",
    "failed_payer_cooldown_secs",
    "stuck_after_blocks",
];

fn default_rpc_timeout_ms() -> u64 {
    10_000
}
fn default_receipt_timeout_ms() -> u64 {
    x402_core::SettleTimeouts::DEFAULT_ANSWER_WITHIN_MS
}
fn default_confirmations() -> u64 {
    1
}
fn default_signer_lease_ms() -> u64 {
    30_000
}
fn default_stuck_after_blocks() -> u64 {
    crate::signers::TxConfig::default().stuck_after_blocks
}
fn default_failed_payer_cooldown_secs() -> u64 {
    x402_core::PayerCooldown::DEFAULT.as_secs()
}

/// Splits a merged options table into the network's options and the scheme's own `T`.
pub fn split<T: DeserializeOwned>(
    scheme: &str,
    config: &SchemeConfig,
) -> Result<(NetworkOptions, T), SchemeError> {
    let err =
        |e: serde_json::Error| SchemeError::Config(format!("{scheme} on {}: {e}", config.network));
    let mut own = match &config.options {
        serde_json::Value::Object(map) => map.clone(),
        serde_json::Value::Null => serde_json::Map::new(),
        _ => {
            return Err(SchemeError::Config(format!(
                "{scheme} options must be a table"
            )));
        }
    };
    let mut shared = serde_json::Map::new();
    for key in NETWORK_KEYS {
        if let Some(v) = own.remove(*key) {
            shared.insert((*key).to_owned(), v);
        }
    }
    let network = serde_json::from_value(serde_json::Value::Object(shared)).map_err(err)?;
    let scheme_options = serde_json::from_value(serde_json::Value::Object(own)).map_err(err)?;
    Ok((network, scheme_options))
}

/// The tokens `assets` admits (`None`: any token with code), warning at start-up when the operator
/// chose `"any"`: such a network settles payments in any token, including contracts that spend
/// the facilitator's gas.
pub fn accepted_assets(
    scheme: &str,
    network: &x402_core::Network,
    assets: AllowList<Address>,
) -> Option<Vec<Address>> {
    if assets == AllowList::Any {
        tracing::warn!(
            %network,
            scheme,
            "assets = \"any\": payments in any token with code are accepted"
        );
    }
    assets.into_only()
}

/// The start-up contract checks of the accepted tokens, `("asset 0x…", address)` each.
pub fn asset_contracts(assets: Option<&[Address]>) -> impl Iterator<Item = (String, Address)> {
    assets
        .into_iter()
        .flatten()
        .map(|a| (format!("asset {a}"), *a))
}

impl NetworkOptions {
    /// How long a payer whose settlement reverted is refused (zero: never).
    pub fn failed_payer_cooldown(&self) -> Duration {
        Duration::from_secs(self.failed_payer_cooldown_secs)
    }

    /// The transaction limits these options set.
    pub fn tx_config(&self) -> Result<TxConfig, SchemeError> {
        let wei = |field, v: &Option<String>| -> Result<Option<u128>, SchemeError> {
            v.as_deref()
                .map(|s| {
                    crate::parse::uint(field, s)
                        .map_err(|e| SchemeError::Config(e.to_string()))
                        .and_then(|u| {
                            u128::try_from(u).map_err(|_| {
                                SchemeError::Config(format!("{field}: {s} is too large"))
                            })
                        })
                })
                .transpose()
        };
        if self.expiry_buffer_seconds == Some(0) {
            return Err(SchemeError::Config(
                "expiry_buffer_seconds must be at least 1".into(),
            ));
        }
        if self.stuck_after_blocks == 0 {
            return Err(SchemeError::Config(
                "stuck_after_blocks must be at least 1".into(),
            ));
        }
        if self.confirmations == 0 {
            return Err(SchemeError::Config(
                "confirmations must be at least 1".into(),
            ));
        }
        let defaults = TxConfig::default();
        Ok(TxConfig {
            receipt_timeout: Duration::from_millis(self.receipt_timeout_ms),
            confirmations: self.confirmations,
            stuck_after_blocks: self.stuck_after_blocks,
            gas_limit_cap: self.gas_limit_cap.unwrap_or(defaults.gas_limit_cap),
            max_fee_per_gas_cap: wei("max_fee_per_gas", &self.max_fee_per_gas)?
                .unwrap_or(defaults.max_fee_per_gas_cap),
            max_priority_fee_cap: wei("max_priority_fee_per_gas", &self.max_priority_fee_per_gas)?
                .unwrap_or(defaults.max_priority_fee_cap),
            ..defaults
        })
    }

    /// Connects the RPC, gets the network's shared signer pool, and runs the start-up checks
    /// (chain id, `contracts` exist, signer balance floor). Returns the provider, the pool and
    /// the parsed balance floor.
    pub async fn connect(
        &self,
        config: &SchemeConfig,
        contracts: &[(String, Address)],
    ) -> Result<(DynProvider, SignerPool, Option<alloy::primitives::U256>), SchemeError> {
        let chain_id = crate::parse::chain_id(&config.network)
            .map_err(|e| SchemeError::Config(e.to_string()))?;
        // One newest-block-seen per network: a block `exact` saw is one `upto` must not read
        // behind.
        let head = config
            .shared
            .get_or_try_init::<crate::provider::ChainHead, std::convert::Infallible>(
                &format!("x402-evm/chain-head/{}", config.network),
                || Ok(crate::provider::ChainHead::new()),
            )
            .map_err(|e| SchemeError::Config(e.to_string()))?;
        let provider = crate::provider::connect_checked(
            &self.rpc_urls,
            &crate::provider::RpcOptions {
                timeout: Duration::from_millis(self.rpc_timeout_ms),
                label: config.network.to_string(),
                chain_id: Some(chain_id),
                head: Some(crate::provider::ChainHead::clone(&head)),
                ..crate::provider::RpcOptions::default()
            },
        )
        .await
        .map_err(|e| SchemeError::Config(format!("{}: {e}", config.network)))?;
        let pool = crate::shared::shared_pool(
            &config.shared,
            &config.network,
            provider.clone(),
            &self.signer_keys,
            self.tx_config()?,
            crate::signers::Leases {
                store: config.store.clone(),
                ttl: Duration::from_millis(self.signer_lease_ms.max(1_000)),
            },
        )
        .await
        .map_err(|e| SchemeError::Config(e.to_string()))?;
        let floor = crate::startup::check(
            &config.network,
            &provider,
            &pool,
            contracts,
            self.min_signer_balance.as_deref(),
        )
        .await?;
        Ok((provider, pool, floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x402_core::Network;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Own {
        #[serde(default)]
        assets: Vec<String>,
    }

    fn config(v: serde_json::Value) -> SchemeConfig {
        SchemeConfig::new(Network::eip155(1), v)
    }

    #[test]
    fn splits_and_refuses_unknown_keys_on_both_sides() {
        let (n, own): (NetworkOptions, Own) = split(
            "exact",
            &config(serde_json::json!({
                "rpc_urls": ["http://x"], "confirmations": 3, "max_fee_per_gas": "1000",
                "assets": ["0x1"], "failed_payer_cooldown_secs": 0
            })),
        )
        .unwrap();
        assert_eq!(n.confirmations, 3);
        assert_eq!(n.failed_payer_cooldown(), Duration::ZERO);
        let (defaults, _) =
            split::<Own>("exact", &config(serde_json::json!({"rpc_urls": []}))).unwrap();
        assert_eq!(
            defaults.failed_payer_cooldown(),
            x402_core::PayerCooldown::DEFAULT
        );
        assert_eq!(own.assets, ["0x1"]);
        let tx = n.tx_config().unwrap();
        assert_eq!((tx.confirmations, tx.max_fee_per_gas_cap), (3, 1000));
        let err = split::<Own>(
            "exact",
            &config(serde_json::json!({"rpc_urls": [], "asets": []})),
        )
        .unwrap_err();
        assert!(err.to_string().contains("asets"), "{err}");
        let err = split::<Own>("exact", &config(serde_json::json!({"assets": []}))).unwrap_err();
        assert!(err.to_string().contains("rpc_urls"), "{err}");
        let bad_fee = split::<Own>(
            "exact",
            &config(serde_json::json!({"rpc_urls": [], "max_fee_per_gas": "1e9"})),
        )
        .unwrap()
        .0
        .tx_config();
        assert!(bad_fee.is_err());
        // Debug names neither the RPC URL (it may hold a token) nor a key.
        let (secret, key) = (
            "http://node.example/secret-token",
            "0xac0974bec39a17e36ba4a6b4",
        );
        let (n, _) = split::<Own>(
            "exact",
            &config(serde_json::json!({"rpc_urls": [secret], "signer_keys": [key]})),
        )
        .unwrap();
        let shown = format!("{n:?}");
        assert!(
            !shown.contains("secret-token") && !shown.contains(key),
            "{shown}"
        );
    }
}
