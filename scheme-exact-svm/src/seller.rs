//! Seller side: a price on a Solana network → `exact` requirements with the mint, the
//! facilitator's fee payer and an optional memo.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use solana_pubkey::Pubkey;
use x402_core::wire::PaymentRequirementsV2;
use x402_core::{
    PaymentId, Price, PriceRequest, RequirementsView, SchemeError, SellerRole, price_to_atomic,
};

use crate::assets::{DEFAULT_MINTS, default_mint};
use crate::instructions::MAX_MEMO_BYTES;
use crate::rpc::Rpc;
use crate::{Extra, SCHEME, pubkey};

/// The default `maxTimeoutSeconds` (the spec's example; Solana payments are bounded by their
/// blockhash, not by this value).
pub const DEFAULT_MAX_TIMEOUT_SECONDS: u64 = 60;

/// The seller role of `exact` on Solana: prices on a Solana network become requirements with
/// the mint, the facilitator's fee payer and an optional memo. Knows the decimals of the built-in
/// mints ([`crate::assets::DEFAULT_MINTS`]); other mints need [`Seller::with_mint_decimals`] or an
/// RPC ([`Seller::with_rpc`]) for decimal prices.
#[derive(Debug, Clone)]
pub struct Seller {
    decimals: HashMap<Pubkey, u8>,
    rpc: Option<Arc<Rpc>>,
}

impl Default for Seller {
    fn default() -> Self {
        Self {
            decimals: DEFAULT_MINTS.iter().map(|m| (m.mint, m.decimals)).collect(),
            rpc: None,
        }
    }
}

fn unusable(message: impl Into<String>) -> SchemeError {
    SchemeError::Unusable(message.into())
}

#[async_trait]
impl SellerRole for Seller {
    fn scheme(&self) -> &'static str {
        SCHEME
    }

    /// The hash of the transaction's message, as settled: the fee payer's signature slot and
    /// the JSON around the transaction do not change it.
    fn payment_id(
        &self,
        requirements: &RequirementsView<'_>,
        payload: &serde_json::value::RawValue,
    ) -> Option<PaymentId> {
        let p = crate::payload::parse(payload).ok()?;
        let decoded = crate::payload::decode_transaction(&p.transaction).ok()?;
        Some(crate::payload::payment_id(
            &requirements.network,
            &decoded.message_bytes,
        ))
    }

    async fn requirements(
        &self,
        request: &PriceRequest,
    ) -> Result<PaymentRequirementsV2, SchemeError> {
        self.requirements_with_memo(request, None).await
    }
}

impl Seller {
    /// A seller that knows the built-in mints' decimals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prices `mint` with `decimals` without asking the chain.
    pub fn with_mint_decimals(mut self, mint: Pubkey, decimals: u8) -> Self {
        self.decimals.insert(mint, decimals);
        self
    }

    /// Reads the decimals of mints it does not know from `rpc`.
    pub fn with_rpc(mut self, rpc: Rpc) -> Self {
        self.rpc = Some(Arc::new(rpc));
        self
    }

    /// Requirements for `request` whose payment must carry `memo` (an invoice id, say).
    pub async fn requirements_with_memo(
        &self,
        request: &PriceRequest,
        memo: Option<&str>,
    ) -> Result<PaymentRequirementsV2, SchemeError> {
        let network = &request.network;
        if network.namespace() != "solana" {
            return Err(unusable(format!("{network} is not a Solana network")));
        }
        let pay_to = pubkey("payTo", &request.pay_to).map_err(unusable)?;
        let mint = match &request.asset {
            Some(a) => pubkey("asset", a).map_err(unusable)?,
            None => default_mint(network)
                .map(|m| m.mint)
                .ok_or_else(|| unusable(format!("no default asset is known for {network}")))?,
        };
        let amount = match &request.price {
            Price::Atomic(a) => *a,
            Price::Decimal(d) => {
                let decimals = self.decimals(&mint).await?;
                price_to_atomic(d, decimals).map_err(|e| unusable(e.to_string()))?
            }
        };
        if amount.is_zero() {
            return Err(unusable(
                "exact moves a positive amount; a free route needs no payment".to_owned(),
            ));
        }
        if amount.to_u64().is_none() {
            return Err(unusable(format!(
                "{amount} does not fit a Solana token amount (u64)"
            )));
        }
        let fee_payer = request
            .facilitator_kind
            .as_ref()
            .and_then(|k| k.extra.as_deref())
            .and_then(|raw| serde_json::from_str::<Extra>(raw.get()).ok())
            .and_then(|e| e.fee_payer)
            .ok_or_else(|| {
                unusable(format!(
                    "the facilitator's /supported kind for exact on {network} names no feePayer"
                ))
            })?;
        pubkey("feePayer", &fee_payer).map_err(unusable)?;
        if let Some(m) = memo
            && m.len() > MAX_MEMO_BYTES
        {
            return Err(unusable(format!(
                "the memo is {} bytes, more than {MAX_MEMO_BYTES}",
                m.len()
            )));
        }
        let extra = Extra {
            fee_payer: Some(fee_payer),
            memo: memo.map(str::to_owned),
        };
        Ok(PaymentRequirementsV2 {
            scheme: SCHEME.to_owned(),
            network: network.to_string(),
            amount,
            asset: mint.to_string(),
            pay_to: pay_to.to_string(),
            max_timeout_seconds: request
                .max_timeout_seconds
                .unwrap_or(DEFAULT_MAX_TIMEOUT_SECONDS),
            extra: Some(x402_core::wire::to_raw(&extra).map_err(SchemeError::other)?),
        })
    }

    /// The mint's decimals: known, or read from the chain.
    async fn decimals(&self, mint: &Pubkey) -> Result<u8, SchemeError> {
        if let Some(d) = self.decimals.get(mint) {
            return Ok(*d);
        }
        let Some(rpc) = &self.rpc else {
            return Err(unusable(format!(
                "the decimals of mint {mint} are unknown (configure them or an RPC)"
            )));
        };
        let info = crate::token::fetch_mint(rpc, mint).await?;
        Ok(info.decimals)
    }
}

#[cfg(test)]
mod tests {
    use x402_core::wire::SupportedKind;
    use x402_core::{Amount, Network, X402Version};

    use super::*;

    fn request(price: Price, kind_extra: Option<&str>) -> PriceRequest {
        PriceRequest {
            network: Network::parse("solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1").unwrap(),
            price,
            pay_to: "GyGKxMyg1p9SsHfm15MkNUu1u9TN2JtTspcdmrtGUdse".into(),
            asset: None,
            max_timeout_seconds: None,
            facilitator_kind: kind_extra.map(|e| SupportedKind {
                x402_version: X402Version::V2,
                scheme: "exact".into(),
                network: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1".into(),
                extra: Some(serde_json::value::RawValue::from_string(e.into()).unwrap()),
            }),
        }
    }

    #[tokio::test]
    async fn decimal_prices_convert_exactly_and_fee_payer_is_copied() {
        let fee = r#"{"feePayer":"9hSR6S7WPtxmTojgo6GG3k4yDPecgJY292j7xrsUGWBu"}"#;
        let r = Seller::default()
            .requirements_with_memo(&request(Price::Decimal("0.001".into()), Some(fee)), None)
            .await
            .unwrap();
        assert_eq!(r.amount, Amount::from(1000));
        assert_eq!(r.asset, crate::instructions::USDC_DEVNET.to_string());
        assert_eq!(r.extra.unwrap().get(), fee);
        let with_memo = Seller::default()
            .requirements_with_memo(
                &request(Price::Decimal("1".into()), Some(fee)),
                Some("pi_1"),
            )
            .await
            .unwrap();
        assert!(with_memo.extra.unwrap().get().contains(r#""memo":"pi_1""#));
        let zero = Seller::default()
            .requirements_with_memo(&request(Price::Decimal("0".into()), Some(fee)), None)
            .await
            .unwrap_err();
        assert!(zero.to_string().contains("positive amount"), "{zero}");
        let rounding = Seller::default()
            .requirements_with_memo(
                &request(Price::Decimal("0.0000001".into()), Some(fee)),
                None,
            )
            .await
            .unwrap_err();
        assert!(rounding.to_string().contains("round"), "{rounding}");
        let no_fee_payer = Seller::default()
            .requirements_with_memo(&request(Price::Decimal("1".into()), None), None)
            .await
            .unwrap_err();
        assert!(no_fee_payer.to_string().contains("feePayer"));
        let long_memo = "m".repeat(MAX_MEMO_BYTES + 1);
        assert!(
            Seller::default()
                .requirements_with_memo(
                    &request(Price::Decimal("1".into()), Some(fee)),
                    Some(&long_memo)
                )
                .await
                .is_err()
        );
    }
}
