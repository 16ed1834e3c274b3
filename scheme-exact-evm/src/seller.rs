//! Seller side: a price on a network → `exact` requirements with the asset's EIP-712 data.

use async_trait::async_trait;
use x402_core::wire::PaymentRequirementsV2;
use x402_core::{PaymentId, PriceRequest, RequirementsView, SchemeError, SellerRole};

use crate::payload::ExactEvmPayload;
use x402_evm::assets::{AssetTable, TransferMethod};
use x402_evm::parse;

/// The default time a buyer's authorization must stay valid, in seconds.
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 300;

/// The seller role of `exact` on EVM: prices with an asset table (decimal prices need the
/// asset's decimals; the `extra` carries its EIP-712 domain and transfer method).
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

    /// EIP-3009: (chain, token, from, nonce); Permit2: (chain, owner, nonce), as settled.
    fn payment_id(
        &self,
        requirements: &RequirementsView<'_>,
        payload: &serde_json::value::RawValue,
    ) -> Option<PaymentId> {
        Some(match crate::payload::parse(payload).ok()? {
            ExactEvmPayload::Eip3009(p) => {
                let asset = parse::address("asset", requirements.asset).ok()?;
                crate::payload::eip3009_id(&requirements.network, asset, &p)
            }
            ExactEvmPayload::Permit2(p) => {
                x402_evm::payload::permit2_id(&requirements.network, p.from, p.nonce)
            }
        })
    }

    async fn requirements(
        &self,
        request: &PriceRequest,
    ) -> Result<PaymentRequirementsV2, SchemeError> {
        requirements(&self.assets, request)
    }
}

/// `exact` moves the price it names; a price of 0 would be a fee-paid transfer of nothing.
pub(crate) const ZERO_PRICE: &str = "exact moves a positive amount; a free route needs no payment";

/// Builds requirements for `request` from the asset table.
pub(crate) fn requirements(
    assets: &AssetTable,
    request: &PriceRequest,
) -> Result<PaymentRequirementsV2, SchemeError> {
    let unusable = |m: String| SchemeError::Unusable(m);
    parse::chain_id(&request.network).map_err(|e| unusable(e.to_string()))?;
    let pay_to = parse::address("payTo", &request.pay_to).map_err(|e| unusable(e.to_string()))?;
    let (asset, amount) =
        assets.price(&request.network, request.asset.as_deref(), &request.price)?;
    if amount.is_zero() {
        return Err(unusable(ZERO_PRICE.to_owned()));
    }
    let extra = match asset.method {
        TransferMethod::Eip3009 => serde_json::json!({
            "name": asset.name,
            "version": asset.version,
        }),
        TransferMethod::Permit2 => serde_json::json!({
            "assetTransferMethod": "permit2",
            "name": asset.name,
            "version": asset.version,
        }),
    };
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

#[cfg(test)]
mod tests {
    use x402_core::{Amount, Network, Price};

    use super::*;

    fn request(price: Price, asset: Option<&str>) -> PriceRequest {
        PriceRequest {
            network: Network::eip155(84532),
            price,
            pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
            asset: asset.map(str::to_owned),
            max_timeout_seconds: None,
            facilitator_kind: None,
        }
    }

    #[test]
    fn decimal_prices_convert_exactly_with_the_default_asset() {
        let r = requirements(
            &AssetTable::builtin(),
            &request(Price::Decimal("0.01".into()), None),
        )
        .unwrap();
        assert_eq!(r.amount, Amount::from(10_000));
        assert_eq!(r.asset, "0x036CbD53842c5426634e7929541eC2318f3dCF7e");
        assert_eq!(r.extra.unwrap().get(), r#"{"name":"USDC","version":"2"}"#);
        assert_eq!(r.max_timeout_seconds, DEFAULT_MAX_TIMEOUT_SECONDS);
        let err = requirements(
            &AssetTable::builtin(),
            &request(Price::Decimal("0.0000001".into()), None),
        )
        .unwrap_err();
        assert!(err.to_string().contains("round"), "{err}");
        for zero in [Price::Decimal("0".into()), Price::Atomic(Amount::ZERO)] {
            let err = requirements(&AssetTable::builtin(), &request(zero, None)).unwrap_err();
            assert!(err.to_string().contains("positive amount"), "{err}");
        }
    }

    #[test]
    fn unknown_assets_and_networks_are_refused() {
        let err = requirements(
            &AssetTable::builtin(),
            &request(
                Price::Decimal("1".into()),
                Some("0x1111111111111111111111111111111111111111"),
            ),
        )
        .unwrap_err();
        assert!(err.to_string().contains("decimals"), "{err}");
        let mut r = request(Price::Atomic(Amount::from(5)), None);
        r.network = Network::eip155(999_999);
        assert!(requirements(&AssetTable::builtin(), &r).is_err());
    }
}
