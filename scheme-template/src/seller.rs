//! Seller: a price on a toy network → `exact` requirements.

use async_trait::async_trait;
use x402_core::wire::PaymentRequirementsV2;
use x402_core::{Price, PriceRequest, SchemeError, SellerRole, price_to_atomic};

use crate::{ASSET, Account, DECIMALS, NAMESPACE, SCHEME};

/// The `maxTimeoutSeconds` when the seller names none.
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 60;

/// The seller role of `exact` on a toy ledger.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seller;

fn unusable(message: impl ToString) -> SchemeError {
    SchemeError::Unusable(message.to_string())
}

#[async_trait]
impl SellerRole for Seller {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    async fn requirements(
        &self,
        request: &PriceRequest,
    ) -> Result<PaymentRequirementsV2, SchemeError> {
        let network = &request.network;
        if network.namespace() != NAMESPACE {
            return Err(unusable(format!("{network} is not a toy network")));
        }
        let pay_to: Account = request.pay_to.parse().map_err(unusable)?;
        if let Some(asset) = request.asset.as_deref().filter(|a| *a != ASSET) {
            return Err(unusable(format!("a toy ledger holds {ASSET}, not {asset}")));
        }
        let amount = match &request.price {
            Price::Atomic(a) => *a,
            // Exact conversion: a price that would round is refused.
            Price::Decimal(d) => price_to_atomic(d, DECIMALS).map_err(unusable)?,
        };
        Ok(PaymentRequirementsV2 {
            scheme: SCHEME.to_owned(),
            network: network.to_string(),
            amount,
            asset: ASSET.to_owned(),
            pay_to: pay_to.to_string(),
            max_timeout_seconds: request
                .max_timeout_seconds
                .unwrap_or(DEFAULT_MAX_TIMEOUT_SECONDS),
            extra: None,
        })
    }
}
