//! The facilitator's configuration of `exact` on one EVM network, and the builder the catalogue
//! calls. Network-level keys (RPC, signer keys, caps, confirmations, timeouts, balance floor)
//! are [`x402_evm::options::NetworkOptions`]; the keys below are `exact`'s own. Unknown keys and
//! bad values are errors naming the key.

use alloy::primitives::Address;
use serde::Deserialize;
use x402_core::{AllowList, SchemeConfig, SchemeError};
use x402_evm::facilitator::EvmFacilitatorCore;

use crate::facilitator::{Facilitator, Policy};

/// `exact`'s own options on one EVM network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactEvmOptions {
    /// Accepted tokens: a list, or `"any"` (any token with code; warned at start-up). Required.
    pub assets: AllowList<Address>,
    /// Allow-listed ERC-6492 factories; when there are any, start-up also requires Multicall3
    /// (the deploy-and-pay batch goes through it).
    #[serde(default)]
    pub erc6492_factories: Vec<Address>,
    /// Whether Permit2 payments are served (then Permit2 and the exact proxy must exist); when
    /// not, a Permit2 payment is refused at verify and settle.
    #[serde(default = "default_true")]
    pub permit2: bool,
}

fn default_true() -> bool {
    true
}

/// Builds the facilitator role from a [`SchemeConfig`]; the signer pool is shared per network
/// with the other EVM schemes.
pub(crate) async fn build_facilitator(config: SchemeConfig) -> Result<Facilitator, SchemeError> {
    let (network, options): (_, ExactEvmOptions) =
        x402_evm::options::split(crate::SCHEME, &config)?;
    let assets = x402_evm::options::accepted_assets(crate::SCHEME, &config.network, options.assets);
    let mut contracts: Vec<_> = x402_evm::options::asset_contracts(assets.as_deref()).collect();
    if options.permit2 {
        contracts.push(("Permit2".into(), x402_evm::addresses::PERMIT2));
        contracts.push((
            "x402ExactPermit2Proxy".into(),
            x402_evm::addresses::EXACT_PERMIT2_PROXY,
        ));
    }
    if !options.erc6492_factories.is_empty() {
        // A counterfactual wallet is deployed and paid in one Multicall3 batch.
        contracts.push(("Multicall3".into(), x402_evm::addresses::MULTICALL3));
    }
    let (core, min_signer_balance) =
        EvmFacilitatorCore::connect(&network, &config, &contracts).await?;
    Ok(Facilitator::from_core(
        core,
        Policy {
            assets,
            erc6492_factories: options.erc6492_factories,
            min_signer_balance,
            permit2: options.permit2,
            ..Policy::default()
        },
    ))
}
