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
    SchemeDescriptor, SchemeError, SchemeStatus, Settlement, UnixTime, Verdict, X402Version,
};
use x402_evm::assets::AssetTable;

pub use facilitator::{Facilitator, Policy};
pub use options::UptoEvmOptions;
pub use seller::{DEFAULT_MAX_TIMEOUT_SECONDS, charge};

/// The scheme name.
pub const SCHEME: &str = "upto";
/// The catalogue id of this scheme.
pub const ID: &str = "upto-eip155";

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

/// `upto` on EVM, with whichever roles it was given.
#[derive(Clone)]
pub struct UptoEvm {
    assets: AssetTable,
    signer: Option<Arc<dyn Signer + Send + Sync>>,
    facilitator: Option<Arc<Facilitator>>,
    clock: fn() -> UnixTime,
}

impl std::fmt::Debug for UptoEvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UptoEvm")
            .field("buyer", &self.signer.as_ref().map(|s| s.address()))
            .field("facilitator", &self.facilitator)
            .finish_non_exhaustive()
    }
}

impl Default for UptoEvm {
    fn default() -> Self {
        Self::seller(AssetTable::builtin())
    }
}

impl UptoEvm {
    /// A seller pricing with `assets`.
    pub fn seller(assets: AssetTable) -> Self {
        Self {
            assets,
            signer: None,
            facilitator: None,
            clock: UnixTime::now,
        }
    }

    /// A buyer signing with `signer`.
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
impl Scheme for UptoEvm {
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
        let (payload, verdict) = f.check(payment, facilitator::Phase::Verify).await?;
        let payer = payload.map(|p| p.from.to_checksum(None));
        Ok(Verdict::from_check(payer, verdict))
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        self.facilitator_role()?.settle_payment(payment).await
    }

    fn supported_extra(&self, _network: &Network) -> Option<Raw> {
        let address = self.facilitator.as_ref()?.facilitator_address()?;
        x402_core::wire::to_raw(&serde_json::json!({
            "facilitatorAddress": address.to_checksum(None),
        }))
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
    versions: &[X402Version::V2],
    build,
});
