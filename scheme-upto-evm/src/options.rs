//! The facilitator's configuration of `upto` on one EVM network and the builder the catalogue
//! calls. Network-level keys are [`x402_evm::options::NetworkOptions`] (the signer pool is the
//! network's shared one); the keys below are `upto`'s own.

use alloy::primitives::Address;
use serde::Deserialize;
use x402_core::{AllowList, SchemeConfig, SchemeError};
use x402_evm::facilitator::EvmFacilitatorCore;

use crate::facilitator::{Facilitator, Policy};

/// `upto`'s own options on one EVM network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UptoEvmOptions {
    /// Accepted tokens: a list, or `"any"` (any token with code; warned at start-up). Required.
    pub assets: AllowList<Address>,
}

/// Builds the facilitator role, checking the chain id and that Permit2 and the upto proxy exist.
pub(crate) async fn build_facilitator(config: SchemeConfig) -> Result<Facilitator, SchemeError> {
    let (network, options): (_, UptoEvmOptions) = x402_evm::options::split(crate::SCHEME, &config)?;
    let mut contracts = vec![
        ("Permit2".to_owned(), x402_evm::addresses::PERMIT2),
        (
            "x402UptoPermit2Proxy".to_owned(),
            x402_evm::addresses::UPTO_PERMIT2_PROXY,
        ),
    ];
    let assets = x402_evm::options::accepted_assets(crate::SCHEME, &config.network, options.assets);
    contracts.extend(x402_evm::options::asset_contracts(assets.as_deref()));
    let (core, min_signer_balance) =
        EvmFacilitatorCore::connect(&network, &config, &contracts).await?;
    Ok(Facilitator::from_core(
        core,
        Policy {
            assets,
            min_signer_balance,
            ..Policy::default()
        },
    ))
}
