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
pub use options::ExactEvmOptions;
pub use seller::{DEFAULT_MAX_TIMEOUT_SECONDS, Seller};

/// `requirements.extra` of `exact` on EVM.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extra {
    /// EIP-712 domain name of the token.
    pub name: Option<String>,
    /// EIP-712 domain version of the token.
    pub version: Option<String>,
    /// `eip3009` (default) or `permit2`.
    pub asset_transfer_method: Option<String>,
}

impl Extra {
    /// Whether the requirements ask for a Permit2 transfer.
    pub fn is_permit2(&self) -> bool {
        self.asset_transfer_method.as_deref() == Some("permit2")
    }
}

fn build(config: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async move {
        let facilitator: Arc<dyn FacilitatorRole> =
            Arc::new(options::build_facilitator(config).await?);
        Ok(facilitator)
    })
}

x402_core::register_scheme! {
    scheme: "exact",
    namespace: "eip155",
    versions: [V1, V2],
    build: build,
}
