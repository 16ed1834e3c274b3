//! The corpus: pre-signed v2 `exact` payments (EIP-3009 and Permit2) from distinct funded
//! payers, each with a random nonce and an hour of validity, as ready-to-send `/verify` and
//! `/settle` bodies. Signing happens before any measurement, so the driver only sends bytes.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use axum::body::Bytes;
use scheme_exact_evm::{Buyer, Seller};
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV2, PaymentRequirements, PaymentRequirementsV2, Raw,
    ResourceInfo, VerifyRequest,
};
use x402_core::{BuyerRole as _, Network, Price, PriceRequest, SellerRole as _, X402Version};
use x402_evm::assets::{AssetInfo, AssetTable, TransferMethod};
use x402_tests::evm::{USDC_DECIMALS, USDC_NAME, USDC_VERSION};

use crate::chain::Chain;

/// The price of every payment, in decimal USDC.
pub const PRICE: &str = "0.01";
/// How long every signed payment stays valid, in seconds (the run must finish within it).
pub const VALIDITY_SECONDS: u64 = 3600;

/// A v2 `/verify` or `/settle` request: `payload` paying `requirements`, whose `accepted` is the
/// requirement verbatim.
pub fn request_v2(requirements: &PaymentRequirementsV2, payload: Raw) -> VerifyRequest {
    VerifyRequest::new(
        PaymentPayload::V2(PaymentPayloadV2 {
            x402_version: X402Version::V2,
            resource: Some(ResourceInfo::new("http://127.0.0.1/paid")),
            accepted: requirements.clone(),
            payload,
            extensions: None,
        }),
        PaymentRequirements::V2(requirements.clone()),
    )
}

/// `exact` requirements on the chain's USDC, paid to the bed's seller by `method`.
pub async fn requirements(
    chain: &Chain,
    method: TransferMethod,
) -> Result<PaymentRequirementsV2, String> {
    let network = Network::eip155(chain.bed.chain_id());
    let mut assets = AssetTable::empty();
    let usdc = AssetInfo {
        address: chain.bed.usdc(),
        name: USDC_NAME.into(),
        version: USDC_VERSION.into(),
        decimals: USDC_DECIMALS,
        method,
    };
    assets.insert(network.clone(), usdc);
    Seller::new(assets)
        .requirements(&PriceRequest {
            network,
            price: Price::Decimal(PRICE.into()),
            pay_to: chain.bed.seller().address.to_checksum(None),
            asset: None,
            max_timeout_seconds: Some(VALIDITY_SECONDS),
            facilitator_kind: None,
        })
        .await
        .map_err(|e| format!("requirements: {e}"))
}

/// `n` fresh payer keys.
pub fn payers(n: usize) -> Vec<PrivateKeySigner> {
    (0..n).map(|_| PrivateKeySigner::random()).collect()
}

/// `rounds` payments from each payer for `requirements`, as request bodies, round by round
/// (payer 0…n-1, then again): consecutive bodies come from distinct payers, so a facilitator
/// that settles one payment per payer at a time is never made to queue a payer behind itself.
pub async fn sign(
    payers: &[PrivateKeySigner],
    requirements: &PaymentRequirementsV2,
    rounds: usize,
) -> Result<Vec<Bytes>, String> {
    let reqs = PaymentRequirements::V2(requirements.clone());
    let view = reqs.view().map_err(|e| format!("requirements view: {e}"))?;
    let buyers: Vec<Buyer> = payers
        .iter()
        .map(|k| Buyer::new(Arc::new(k.clone())))
        .collect();
    let mut out = Vec::with_capacity(payers.len() * rounds);
    for _ in 0..rounds {
        for buyer in &buyers {
            let payload = buyer
                .sign(&view)
                .await
                .map_err(|e| format!("signing: {e}"))?;
            let body = serde_json::to_vec(&request_v2(requirements, payload))
                .map_err(|e| format!("request JSON: {e}"))?;
            out.push(Bytes::from(body));
        }
    }
    Ok(out)
}

/// `n` payments for `requirements`, ordered as [`sign`] orders them: whole rounds over every
/// payer, then the first payers once more.
pub async fn sign_n(
    payers: &[PrivateKeySigner],
    requirements: &PaymentRequirementsV2,
    n: usize,
) -> Result<Vec<Bytes>, String> {
    if payers.is_empty() {
        return Err("no payers to sign with".into());
    }
    let mut out = sign(payers, requirements, n / payers.len()).await?;
    out.extend(sign(&payers[..n % payers.len()], requirements, 1).await?);
    Ok(out)
}

/// Writes one request body a line (JSON Lines).
pub fn write_jsonl(path: &Path, bodies: &[Bytes]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    for b in bodies {
        w.write_all(b)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    w.flush().map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads request bodies written by [`write_jsonl`] (blank lines skipped; each line must be
/// JSON).
pub fn read_jsonl(path: &Path) -> Result<Vec<Bytes>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&line)
            .map_err(|e| format!("{}:{}: not JSON: {e}", path.display(), i + 1))?;
        out.push(Bytes::from(line));
    }
    Ok(out)
}
