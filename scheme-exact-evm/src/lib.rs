#![doc = include_str!("../README.md")]

mod buyer;
pub mod facilitator;
mod options;
pub mod payload;
mod seller;

use std::sync::Arc;

use alloy::signers::Signer;
use async_trait::async_trait;
use serde::Deserialize;
use x402_core::wire::{PaymentRequirementsV2, Raw};
use x402_core::{
    Network, PaymentContext, PriceRequest, RequirementsView, Role, Scheme, SchemeConfig,
    SchemeDescriptor, SchemeError, Settlement, UnixTime, Verdict, X402Version,
};
use x402_evm::assets::AssetTable;

pub use facilitator::{Facilitator, Policy};
pub use options::ExactEvmOptions;
pub use seller::DEFAULT_MAX_TIMEOUT_SECONDS;

/// The scheme name.
pub const SCHEME: &str = "exact";
/// The catalogue id of this scheme.
pub const ID: &str = "exact-eip155";

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

/// `exact` on EVM, with whichever roles it was given.
#[derive(Clone)]
pub struct ExactEvm {
    assets: AssetTable,
    signer: Option<Arc<dyn Signer + Send + Sync>>,
    facilitator: Option<Arc<Facilitator>>,
    clock: fn() -> UnixTime,
}

impl std::fmt::Debug for ExactEvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExactEvm")
            .field("buyer", &self.signer.as_ref().map(|s| s.address()))
            .field("facilitator", &self.facilitator)
            .finish_non_exhaustive()
    }
}

impl Default for ExactEvm {
    fn default() -> Self {
        Self::seller(AssetTable::builtin())
    }
}

impl ExactEvm {
    /// A seller (requirements only) pricing with `assets`.
    pub fn seller(assets: AssetTable) -> Self {
        Self {
            assets,
            signer: None,
            facilitator: None,
            clock: UnixTime::now,
        }
    }

    /// A buyer signing with `signer` (any alloy signer).
    pub fn buyer(signer: Arc<dyn Signer + Send + Sync>) -> Self {
        Self {
            signer: Some(signer),
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

    /// Uses `assets` for pricing.
    pub fn with_assets(mut self, assets: AssetTable) -> Self {
        self.assets = assets;
        self
    }

    /// Replaces the clock used when signing.
    pub fn with_clock(mut self, clock: fn() -> UnixTime) -> Self {
        self.clock = clock;
        self
    }

    fn facilitator_role(&self) -> Result<&Facilitator, SchemeError> {
        self.facilitator
            .as_deref()
            .ok_or(SchemeError::RoleNotConfigured {
                scheme: SCHEME,
                role: Role::Facilitator,
            })
    }
}

#[async_trait]
impl Scheme for ExactEvm {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    async fn requirements(
        &self,
        request: &PriceRequest,
    ) -> Result<PaymentRequirementsV2, SchemeError> {
        seller::requirements(&self.assets, request)
    }

    async fn sign(&self, requirements: &RequirementsView<'_>) -> Result<Raw, SchemeError> {
        let signer = self
            .signer
            .as_deref()
            .ok_or(SchemeError::RoleNotConfigured {
                scheme: SCHEME,
                role: Role::Buyer,
            })?;
        let payload = buyer::sign(signer, requirements, (self.clock)()).await?;
        payload::to_json(&payload).map_err(|e| SchemeError::Other(e.to_string()))
    }

    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        let f = self.facilitator_role()?;
        let (payload, verdict) = f.check(payment).await?;
        let payer = payload
            .map(|p| p.payer().to_checksum(None))
            .or_else(|| payload::payer_hint(payment.payload.payload));
        Ok(Verdict::from_check(payer, verdict))
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        self.facilitator_role()?.settle_payment(payment).await
    }

    async fn status(
        &self,
        _network: &Network,
    ) -> Result<Option<x402_core::SchemeStatus>, SchemeError> {
        match &self.facilitator {
            Some(f) => f.status().await.map(Some),
            None => Ok(None),
        }
    }

    fn signers(&self, _network: &Network) -> Vec<String> {
        self.facilitator
            .as_ref()
            .map(|f| {
                f.signer_addresses()
                    .iter()
                    .map(|a| a.to_checksum(None))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn build(config: SchemeConfig) -> x402_core::registry::BuildFuture {
    Box::pin(async move {
        let scheme: Arc<dyn Scheme> = Arc::new(options::build_facilitator(config).await?);
        Ok(scheme)
    })
}

x402_core::register_scheme!(SchemeDescriptor {
    id: ID,
    crate_name: env!("CARGO_PKG_NAME"),
    scheme: SCHEME,
    namespace: "eip155",
    versions: &[X402Version::V1, X402Version::V2],
    build,
});
