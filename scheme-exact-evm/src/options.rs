//! The facilitator's configuration of `exact` on one EVM network, and the builder the catalogue
//! calls. Unknown keys and bad values are errors naming the key.

use std::time::Duration;

use alloy::primitives::Address;
use serde::Deserialize;
use x402_core::{SchemeConfig, SchemeError};
use x402_evm::signers::TxConfig;

use crate::ExactEvm;
use crate::facilitator::{Facilitator, Policy};

/// Options of `exact` on one EVM network (the merged network and scheme tables of the config
/// file; signer keys already resolved from their `$VAR`s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactEvmOptions {
    /// RPC URLs, tried in order.
    pub rpc_urls: Vec<String>,
    /// Signer private keys (hex). Never printed.
    #[serde(default)]
    pub signer_keys: Vec<String>,
    /// Accepted tokens; absent accepts any.
    #[serde(default)]
    pub assets: Option<Vec<Address>>,
    /// Allow-listed ERC-6492 factories.
    #[serde(default)]
    pub erc6492_factories: Vec<Address>,
    /// RPC request timeout in milliseconds.
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// Receipt wait bound in milliseconds.
    #[serde(default = "default_receipt_timeout_ms")]
    pub receipt_timeout_ms: u64,
    /// Start-up refuses signers with less native balance than this (wei, decimal).
    #[serde(default)]
    pub min_signer_balance: Option<String>,
    /// Whether Permit2 payments are served (then Permit2 and the exact proxy must exist).
    #[serde(default = "default_true")]
    pub permit2: bool,
}

fn default_true() -> bool {
    true
}

fn default_rpc_timeout_ms() -> u64 {
    10_000
}

fn default_receipt_timeout_ms() -> u64 {
    30_000
}

/// Builds the facilitator role from a [`SchemeConfig`]; the signer pool is shared per network
/// with the other EVM schemes through `config.shared`.
pub(crate) async fn build_facilitator(config: SchemeConfig) -> Result<ExactEvm, SchemeError> {
    let options: ExactEvmOptions = serde_json::from_value(config.options.clone())
        .map_err(|e| SchemeError::Config(format!("exact on {}: {e}", config.network)))?;
    let provider = x402_evm::provider::connect(
        &options.rpc_urls,
        Duration::from_millis(options.rpc_timeout_ms),
    )
    .map_err(|e| SchemeError::Config(e.to_string()))?;
    let tx_config = TxConfig {
        receipt_timeout: Duration::from_millis(options.receipt_timeout_ms),
        ..TxConfig::default()
    };
    let pool = x402_evm::shared::shared_pool(
        &config.shared,
        &config.network,
        provider.clone(),
        &options.signer_keys,
        tx_config,
    )
    .await
    .map_err(|e| SchemeError::Config(e.to_string()))?;
    let mut contracts: Vec<(String, Address)> = options
        .assets
        .iter()
        .flatten()
        .map(|a| (format!("asset {a}"), *a))
        .collect();
    if options.permit2 {
        contracts.push(("Permit2".into(), x402_evm::addresses::PERMIT2));
        contracts.push((
            "x402ExactPermit2Proxy".into(),
            x402_evm::addresses::EXACT_PERMIT2_PROXY,
        ));
    }
    let min_signer_balance = x402_evm::startup::check(
        &config.network,
        &provider,
        &pool,
        &contracts,
        options.min_signer_balance.as_deref(),
    )
    .await?;
    let facilitator = Facilitator::new(
        config.network.clone(),
        provider,
        pool,
        config.store.clone(),
        Policy {
            assets: options.assets,
            erc6492_factories: options.erc6492_factories,
            min_signer_balance,
            ..Policy::default()
        },
    )?;
    Ok(ExactEvm::facilitator(facilitator))
}
