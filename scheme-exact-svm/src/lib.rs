#![doc = include_str!("../README.md")]

pub mod buyer;
pub mod facilitator;
pub mod instructions;
mod options;
pub mod payload;
pub mod rpc;
mod seller;
pub mod token;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use x402_core::{FacilitatorRole, Reason, Rejection, RequirementsView, SchemeConfig};

pub use buyer::{Buyer, BuyerOptions};
pub use facilitator::{Facilitator, Policy};
pub use options::{ExactSvmOptions, build_facilitator, check_genesis, parse_keypair};
pub use seller::{DEFAULT_MAX_TIMEOUT_SECONDS, Seller};

/// `requirements.extra` of `exact` on Solana.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extra {
    /// The facilitator key that pays the fees (from its `/supported` kind).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_payer: Option<String>,
    /// The memo the payment must carry (UTF-8, at most 256 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

impl Extra {
    /// Reads `extra` leniently, as the reference does: a `feePayer` that is not a string counts
    /// as missing; a `memo` that is neither a string nor `null` is invalid requirements.
    pub fn read(requirements: &RequirementsView<'_>) -> Result<Self, Rejection> {
        let value: Option<serde_json::Value> = requirements.extra_as().map_err(|e| {
            Rejection::with_message(Reason::InvalidPaymentRequirements, format!("extra: {e}"))
        })?;
        let Some(serde_json::Value::Object(map)) = value else {
            return Ok(Self::default());
        };
        let fee_payer = match map.get("feePayer") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let memo = match map.get("memo") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(Rejection::with_message(
                    Reason::InvalidPaymentRequirements,
                    "extra.memo must be a string",
                ));
            }
        };
        Ok(Self { fee_payer, memo })
    }

    /// The memo, when one is required (an empty memo requires nothing).
    pub fn required_memo(&self) -> Option<&str> {
        self.memo.as_deref().filter(|m| !m.is_empty())
    }
}

/// The catalogue's builder: the facilitator role for one network.
fn build(config: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async move {
        let facilitator: Arc<dyn FacilitatorRole> = Arc::new(build_facilitator(config).await?);
        Ok(facilitator)
    })
}

x402_core::register_scheme! {
    scheme: "exact",
    namespace: "solana",
    versions: [V1, V2],
    build: build,
}
