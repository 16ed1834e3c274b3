#![doc = include_str!("../README.md")]

#[cfg(feature = "buyer")]
mod buyer;
#[cfg(feature = "facilitator")]
pub mod facilitator;
#[cfg(feature = "facilitator")]
mod options;
pub mod payload;
pub mod reason;
#[cfg(feature = "seller")]
mod seller;

use serde::Deserialize;

#[cfg(feature = "buyer")]
pub use buyer::Buyer;
#[cfg(feature = "facilitator")]
pub use facilitator::{Facilitator, Policy};
#[cfg(feature = "facilitator")]
pub use options::UptoEvmOptions;
#[cfg(feature = "seller")]
pub use seller::{DEFAULT_MAX_TIMEOUT_SECONDS, Seller, charge};

/// `requirements.extra` of `upto` on EVM (also the `/supported` kind's `extra`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extra {
    /// EIP-712 domain name of the token.
    pub name: Option<String>,
    /// EIP-712 domain version of the token.
    pub version: Option<String>,
    /// Always `permit2`.
    pub asset_transfer_method: Option<String>,
    /// The facilitator signer that will settle.
    pub facilitator_address: Option<String>,
}

#[cfg(feature = "facilitator")]
fn build(config: x402_core::SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async move {
        let facilitator: std::sync::Arc<dyn x402_core::FacilitatorRole> =
            std::sync::Arc::new(options::build_facilitator(config).await?);
        Ok(facilitator)
    })
}

x402_core::register_scheme! {
    scheme: "upto",
    namespace: "eip155",
    versions: [V2],
    build: build,
    when: feature = "facilitator",
}
