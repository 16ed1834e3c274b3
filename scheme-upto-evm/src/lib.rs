#![doc = include_str!("../README.md")]

mod buyer;
pub mod facilitator;
mod options;
pub mod payload;
mod seller;

use std::sync::Arc;

use serde::Deserialize;
use x402_core::{FacilitatorRole, SchemeConfig};

pub use buyer::Buyer;
pub use facilitator::{Facilitator, Policy};
pub use options::UptoEvmOptions;
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

fn build(config: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async move {
        let facilitator: Arc<dyn FacilitatorRole> =
            Arc::new(options::build_facilitator(config).await?);
        Ok(facilitator)
    })
}

x402_core::register_scheme! {
    scheme: "upto",
    namespace: "eip155",
    versions: [V2],
    build: build,
}
