#![doc = include_str!("../README.md")]

pub mod assets;
#[cfg(feature = "buyer")]
pub mod buyer;
#[cfg(feature = "facilitator")]
pub mod facilitator;
pub mod instructions;
#[cfg(feature = "facilitator")]
mod options;
pub mod payload;
pub mod reason;
pub mod rpc;
#[cfg(feature = "seller")]
mod seller;
pub mod token;

use serde::{Deserialize, Serialize};
use x402_core::{Reason, Rejection, RequirementsView};

#[cfg(feature = "buyer")]
pub use buyer::{Buyer, BuyerOptions};
#[cfg(feature = "facilitator")]
pub use facilitator::{Facilitator, Policy};
#[cfg(feature = "facilitator")]
pub use options::{ExactSvmOptions, build_facilitator, check_genesis};
#[cfg(feature = "seller")]
pub use seller::{DEFAULT_MAX_TIMEOUT_SECONDS, Seller};

/// Reads a keypair (a buyer's or a fee payer's): base58 of its 64 bytes, or a JSON array of 64 numbers (a Solana CLI
/// keypair file). The error never repeats the text.
pub fn parse_keypair(text: &str) -> Result<solana_keypair::Keypair, String> {
    let text = text.trim();
    if text.starts_with('[') {
        let bytes: Vec<u8> = serde_json::from_str(text)
            .map_err(|_| "not a JSON array of 64 byte values".to_owned())?;
        return solana_keypair::Keypair::try_from(bytes.as_slice())
            .map_err(|_| "not a valid 64-byte keypair".to_owned());
    }
    solana_keypair::Keypair::try_from_base58_string(text)
        .map_err(|_| "neither base58 of a 64-byte keypair nor a JSON byte array".to_owned())
}

/// Parses a base58 public key named `what`.
#[cfg(any(feature = "seller", feature = "buyer"))]
pub(crate) fn pubkey(what: &str, text: &str) -> Result<solana_pubkey::Pubkey, String> {
    text.parse::<solana_pubkey::Pubkey>()
        .map_err(|_| format!("{what} {text:?} is not a base58 public key"))
}

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
            Rejection::with_message(Reason::INVALID_PAYMENT_REQUIREMENTS, format!("extra: {e}"))
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
                    Reason::INVALID_PAYMENT_REQUIREMENTS,
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
#[cfg(feature = "facilitator")]
fn build(config: x402_core::SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async move {
        let facilitator: std::sync::Arc<dyn x402_core::FacilitatorRole> =
            std::sync::Arc::new(build_facilitator(config).await?);
        Ok(facilitator)
    })
}

x402_core::register_scheme! {
    scheme: "exact",
    namespace: "solana",
    versions: [V1, V2],
    build: build,
    when: feature = "facilitator",
}
