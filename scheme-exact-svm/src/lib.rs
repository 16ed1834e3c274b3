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

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use x402_core::wire::{PaymentRequirementsV2, Raw};
use x402_core::{
    Network, PaymentContext, PriceRequest, Reason, Rejection, RequirementsView, Role, Scheme,
    SchemeConfig, SchemeDescriptor, SchemeError, SchemeStatus, Settlement, Verdict, X402Version,
};

pub use buyer::BuyerOptions;
pub use facilitator::{Facilitator, Policy};
pub use options::{ExactSvmOptions, build_facilitator, check_genesis, parse_keypair};
pub use seller::DEFAULT_MAX_TIMEOUT_SECONDS;

/// The scheme name.
pub const SCHEME: &str = "exact";
/// The catalogue id of this scheme.
pub const ID: &str = "exact-solana";

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

/// `exact` on Solana, with whichever roles it was given.
#[derive(Clone, Default)]
pub struct ExactSvm {
    seller: seller::Seller,
    buyer: Option<Arc<buyer::Buyer>>,
    facilitator: Option<Arc<Facilitator>>,
}

impl std::fmt::Debug for ExactSvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactSvm")
            .field("seller", &self.seller)
            .field("buyer", &self.buyer)
            .field("facilitator", &self.facilitator)
            .finish()
    }
}

impl ExactSvm {
    /// A seller: knows USDC's decimals; other mints need [`ExactSvm::with_mint_decimals`] or an
    /// RPC ([`ExactSvm::with_rpc`]) for decimal prices.
    pub fn seller() -> Self {
        Self::default()
    }

    /// A buyer paying from `keypair`'s associated token accounts, reading mints and blockhashes
    /// through `rpc`.
    pub fn buyer(keypair: Keypair, rpc: rpc::Rpc, options: BuyerOptions) -> Self {
        Self {
            buyer: Some(Arc::new(buyer::Buyer::new(keypair, rpc, options))),
            ..Self::default()
        }
    }

    /// A facilitator.
    pub fn facilitator(facilitator: Facilitator) -> Self {
        Self {
            facilitator: Some(Arc::new(facilitator)),
            ..Self::default()
        }
    }

    /// Seller: prices `mint` with `decimals` without asking the chain.
    pub fn with_mint_decimals(mut self, mint: Pubkey, decimals: u8) -> Self {
        self.seller.decimals.insert(mint, decimals);
        self
    }

    /// Seller: reads the decimals of mints it does not know from `rpc`.
    pub fn with_rpc(mut self, rpc: rpc::Rpc) -> Self {
        self.seller.rpc = Some(Arc::new(rpc));
        self
    }

    /// Seller: requirements for `request` whose payment must carry `memo` (an invoice id, say).
    pub async fn requirements_with_memo(
        &self,
        request: &PriceRequest,
        memo: Option<&str>,
    ) -> Result<PaymentRequirementsV2, SchemeError> {
        self.seller.requirements(request, memo).await
    }

    /// The facilitator role, if configured.
    pub fn facilitator_role(&self) -> Result<&Facilitator, SchemeError> {
        self.facilitator
            .as_deref()
            .ok_or(SchemeError::RoleNotConfigured {
                scheme: SCHEME,
                role: Role::Facilitator,
            })
    }
}

#[async_trait]
impl Scheme for ExactSvm {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    async fn requirements(
        &self,
        request: &PriceRequest,
    ) -> Result<PaymentRequirementsV2, SchemeError> {
        self.seller.requirements(request, None).await
    }

    async fn sign(&self, requirements: &RequirementsView<'_>) -> Result<Raw, SchemeError> {
        let buyer = self
            .buyer
            .as_deref()
            .ok_or(SchemeError::RoleNotConfigured {
                scheme: SCHEME,
                role: Role::Buyer,
            })?;
        let payload = buyer.sign(requirements).await?;
        payload
            .to_raw()
            .map_err(|e| SchemeError::Other(e.to_string()))
    }

    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        self.facilitator_role()?.verify_payment(payment).await
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        self.facilitator_role()?.settle_payment(payment).await
    }

    fn supported_extra(&self, _network: &Network) -> Option<Raw> {
        let f = self.facilitator.as_deref()?;
        x402_core::wire::to_raw(&Extra {
            fee_payer: Some(f.next_fee_payer().to_string()),
            memo: None,
        })
        .ok()
    }

    async fn status(&self, _network: &Network) -> Result<Option<SchemeStatus>, SchemeError> {
        match &self.facilitator {
            Some(f) => f.status().await.map(Some),
            None => Ok(None),
        }
    }

    fn signers(&self, _network: &Network) -> Vec<String> {
        self.facilitator
            .as_ref()
            .map(|f| f.fee_payers().iter().map(Pubkey::to_string).collect())
            .unwrap_or_default()
    }
}

fn build(config: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async move {
        let scheme: Arc<dyn Scheme> = Arc::new(build_facilitator(config).await?);
        Ok(scheme)
    })
}

x402_core::register_scheme!(SchemeDescriptor {
    id: ID,
    crate_name: env!("CARGO_PKG_NAME"),
    scheme: SCHEME,
    namespace: "solana",
    versions: &[X402Version::V1, X402Version::V2],
    build,
});
