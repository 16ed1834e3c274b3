//! Seller side: a maximum price → `upto` requirements; after serving, the actual charge.

use async_trait::async_trait;
use x402_core::wire::{PaymentRequirementsV2, parse_raw};
use x402_core::{Amount, PaymentId, PriceRequest, RequirementsView, SchemeError, SellerRole};
use x402_evm::assets::AssetTable;
use x402_evm::parse;

use crate::Extra;

/// The default time a buyer's authorization must stay valid, in seconds.
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 300;

/// The seller role of `upto` on EVM: prices a maximum with an asset table; after serving,
/// [`charge`] gives the requirements to settle for the amount actually used.
#[derive(Debug, Clone)]
pub struct Seller {
    assets: AssetTable,
}

impl Seller {
    /// A seller pricing with `assets`.
    pub fn new(assets: AssetTable) -> Self {
        Self { assets }
    }
}

impl Default for Seller {
    /// A seller pricing with the built-in asset table.
    fn default() -> Self {
        Self::new(AssetTable::builtin())
    }
}

#[async_trait]
impl SellerRole for Seller {
    fn scheme(&self) -> &'static str {
        crate::SCHEME
    }

    /// (chain, owner, nonce), as settled: Permit2's one nonce space per owner.
    fn payment_id(
        &self,
        requirements: &RequirementsView<'_>,
        payload: &serde_json::value::RawValue,
    ) -> Option<PaymentId> {
        let p = crate::payload::parse(payload).ok()?;
        Some(x402_evm::payload::permit2_id(
            &requirements.network,
            p.from,
            p.nonce,
        ))
    }

    async fn requirements(
        &self,
        request: &PriceRequest,
    ) -> Result<PaymentRequirementsV2, SchemeError> {
        requirements(&self.assets, request)
    }
}

/// Builds requirements whose `amount` is the maximum the buyer authorizes. The facilitator's
/// `/supported` kind must name the address that will settle (`extra.facilitatorAddress`).
pub(crate) fn requirements(
    assets: &AssetTable,
    request: &PriceRequest,
) -> Result<PaymentRequirementsV2, SchemeError> {
    let unusable = |m: String| SchemeError::Unusable(m);
    parse::chain_id(&request.network).map_err(|e| unusable(e.to_string()))?;
    let pay_to = parse::address("payTo", &request.pay_to).map_err(|e| unusable(e.to_string()))?;
    let (asset, amount) =
        assets.price(&request.network, request.asset.as_deref(), &request.price)?;
    let kind_extra: Option<Extra> = request
        .facilitator_kind
        .as_ref()
        .and_then(|k| parse_raw(k.extra.as_deref()).ok().flatten());
    let facilitator = kind_extra
        .and_then(|e| e.facilitator_address)
        .ok_or_else(|| {
            unusable(
                "the facilitator's /supported kind for upto names no facilitatorAddress".into(),
            )
        })?;
    let facilitator =
        parse::address("facilitatorAddress", &facilitator).map_err(|e| unusable(e.to_string()))?;
    let extra = serde_json::json!({
        "name": asset.name,
        "version": asset.version,
        "assetTransferMethod": "permit2",
        "facilitatorAddress": facilitator.to_checksum(None),
    });
    Ok(PaymentRequirementsV2 {
        scheme: crate::SCHEME.to_owned(),
        network: request.network.to_string(),
        amount,
        asset: asset.address.to_checksum(None),
        pay_to: pay_to.to_checksum(None),
        max_timeout_seconds: request
            .max_timeout_seconds
            .unwrap_or(DEFAULT_MAX_TIMEOUT_SECONDS),
        extra: Some(x402_core::wire::to_raw(&extra).map_err(SchemeError::other)?),
    })
}

/// The requirements to settle after serving: the same requirements with `amount` set to what
/// was actually used. More than the authorized maximum is refused here already.
pub fn charge(
    authorized: &PaymentRequirementsV2,
    actual: Amount,
) -> Result<PaymentRequirementsV2, SchemeError> {
    if actual > authorized.amount {
        return Err(SchemeError::Unusable(format!(
            "cannot charge {actual}: the buyer authorized at most {}",
            authorized.amount
        )));
    }
    Ok(PaymentRequirementsV2 {
        amount: actual,
        ..authorized.clone()
    })
}
