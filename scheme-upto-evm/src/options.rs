//! The facilitator's configuration of `upto` on one EVM network and the builder the catalogue
//! calls. The signer pool is the network's shared one (see `x402_evm::shared`).

use std::time::Duration;

use alloy::primitives::Address;
use serde::Deserialize;
use x402_core::{SchemeConfig, SchemeError};
use x402_evm::signers::TxConfig;

use crate::UptoEvm;
use crate::facilitator::{Facilitator, Policy};

/// Options of `upto` on one EVM network (network and scheme tables merged, `$VAR`s resolved).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UptoEvmOptions {
    /// RPC URLs, tried in order.
    pub rpc_urls: Vec<String>,
    /// Signer private keys (hex). Never printed.
    #[serde(default)]
    pub signer_keys: Vec<String>,
    /// Accepted tokens; absent accepts any token with code.
    #[serde(default)]
    pub assets: Option<Vec<Address>>,
    /// RPC request timeout in milliseconds.
    #[serde(default = "default_rpc_timeout_ms")]
    pub rpc_timeout_ms: u64,
    /// Receipt wait bound in milliseconds.
    #[serde(default = "default_receipt_timeout_ms")]
    pub receipt_timeout_ms: u64,
    /// Start-up refuses signers with less native balance than this (wei, decimal).
    #[serde(default)]
    pub min_signer_balance: Option<String>,
}

fn default_rpc_timeout_ms() -> u64 {
    10_000
}

fn default_receipt_timeout_ms() -> u64 {
    30_000
}

/// Builds the facilitator role, checking the chain id and that Permit2 and the upto proxy exist.
pub(crate) async fn build_facilitator(config: SchemeConfig) -> Result<UptoEvm, SchemeError> {
    let options: UptoEvmOptions = serde_json::from_value(config.options.clone())
        .map_err(|e| SchemeError::Config(format!("upto on {}: {e}", config.network)))?;
    let provider = x402_evm::provider::connect(
        &options.rpc_urls,
        Duration::from_millis(options.rpc_timeout_ms),
    )
    .map_err(|e| SchemeError::Config(e.to_string()))?;
    let pool = x402_evm::shared::shared_pool(
        &config.shared,
        &config.network,
        provider.clone(),
        &options.signer_keys,
        TxConfig {
            receipt_timeout: Duration::from_millis(options.receipt_timeout_ms),
            ..TxConfig::default()
        },
    )
    .await
    .map_err(|e| SchemeError::Config(e.to_string()))?;
    let mut contracts = vec![
        ("Permit2".to_owned(), x402_evm::addresses::PERMIT2),
        (
            "x402UptoPermit2Proxy".to_owned(),
            x402_evm::addresses::UPTO_PERMIT2_PROXY,
        ),
    ];
    contracts.extend(
        options
            .assets
            .iter()
            .flatten()
            .map(|a| (format!("asset {a}"), *a)),
    );
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
            min_signer_balance,
            ..Policy::default()
        },
    )?;
    Ok(UptoEvm::facilitator(facilitator))
}
