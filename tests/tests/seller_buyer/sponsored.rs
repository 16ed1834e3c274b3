//! `eip2612GasSponsoring` on anvil with Circle's FiatTokenV2_2: a fresh wallet holding USDC and
//! no ETH pays `exact` (Permit2) and `upto` through a seller that declares the extension — its
//! EIP-2612 permit for Permit2 rides in the payment and the facilitator settles through
//! `settleWithPermit`. Every field check and the token's own refusal (another domain, a nonce not
//! the buyer's next) is refused at verify and settle with its reason, and nothing moves.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use x402_buyer::{Buyer, Policy};
use x402_core::client::FacilitatorClient;
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV2, PaymentRequired, PaymentRequirements, VerifyRequest,
};
use x402_core::{Amount, BuyerRole as _, Facilitator as _, Registry};
use x402_evm::abi::eip2612::IEip2612Token;
use x402_evm::sponsor::{EIP2612_GAS_SPONSORING, PermitTerms, sign_eip2612};
use x402_tests::e2e::sponsor::sponsoring_seller;
use x402_tests::e2e::{EXACT_UNITS, Shop, UPTO_MAX_UNITS, UPTO_USED_UNITS, usdc_asset};
use x402_tests::evm::PERMIT2_ADDRESS;

use crate::settled;

/// A buyer that reads the bed's chain (so it can sign permits) paying with `signer`.
fn sponsored_buyer(shop: &Shop, signer: &PrivateKeySigner) -> Buyer {
    let signer = Arc::new(signer.clone());
    let chain_id = shop.h.bed.chain_id();
    let provider = shop.h.bed.provider();
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_evm::ANY_NETWORK,
            scheme_exact_evm::VERSIONS,
            scheme_exact_evm::Buyer::new(signer.clone())
                .with_rpc(chain_id, provider.clone())
                .into_scheme(),
        )
        .unwrap();
    schemes
        .register(
            scheme_upto_evm::ANY_NETWORK,
            scheme_upto_evm::VERSIONS,
            scheme_upto_evm::Buyer::new(signer)
                .with_rpc(chain_id, provider)
                .into_scheme(),
        )
        .unwrap();
    let mut policy = Policy::default();
    policy.assets.push(usdc_asset(&shop.h));
    Buyer::new(reqwest::Client::new(), schemes, policy)
}

/// A fresh wallet holding `units` of USDC and no ETH.
async fn fresh_wallet(shop: &Shop, units: u64) -> PrivateKeySigner {
    let signer = PrivateKeySigner::random();
    shop.h
        .bed
        .mint_usdc(signer.address(), U256::from(units))
        .await;
    signer
}

async fn eth(shop: &Shop, who: Address) -> U256 {
    shop.h.bed.provider().get_balance(who).await.unwrap()
}

async fn permit_nonce(shop: &Shop, who: Address) -> U256 {
    IEip2612Token::new(shop.h.bed.usdc(), shop.h.bed.provider())
        .nonces(who)
        .call()
        .await
        .unwrap()
}

async fn allowance(shop: &Shop, who: Address) -> U256 {
    IEip2612Token::new(shop.h.bed.usdc(), shop.h.bed.provider())
        .allowance(who, PERMIT2_ADDRESS)
        .call()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_fresh_wallet_without_eth_pays_exact_and_upto_with_a_permit() {
    let shop = Shop::start().await;
    let url = sponsoring_seller(&shop).await;
    let seller = shop.h.bed.seller().address;
    let wallet = fresh_wallet(&shop, 1_000_000).await;
    let who = wallet.address();
    assert_eq!(eth(&shop, who).await, U256::ZERO);
    let buyer = sponsored_buyer(&shop, &wallet);

    // The 402 declares the extension.
    let Some(PaymentRequired::V2(required)) =
        buyer.requirements(&format!("{url}/exact")).await.unwrap()
    else {
        panic!("a v2 402")
    };
    let declared = x402_core::extension::read_extensions(required.extensions.as_deref()).unwrap();
    assert!(declared.contains(EIP2612_GAS_SPONSORING));

    // Without the declaration, a wallet without an allowance cannot pay (nothing moves).
    match buyer.get(&format!("{url}/unsponsored")).await {
        Err(x402_buyer::Error::Refused { status, error, .. }) => {
            assert_eq!(status, 412);
            assert_eq!(error.as_deref(), Some("permit2_allowance_required"));
        }
        other => panic!("refused with 412, not {other:?}"),
    }
    assert_eq!(shop.usdc(who).await, U256::from(1_000_000u64));

    // exact: the permit grants Permit2 exactly the price, which the settlement spends.
    let seller_before = shop.usdc(seller).await;
    let paid = buyer.get(&format!("{url}/exact")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    settled(&paid.payment);
    assert_eq!(shop.usdc(who).await, U256::from(1_000_000 - EXACT_UNITS));
    assert_eq!(
        shop.usdc(seller).await,
        seller_before + U256::from(EXACT_UNITS)
    );
    assert_eq!(permit_nonce(&shop, who).await, U256::from(1));
    assert_eq!(allowance(&shop, who).await, U256::ZERO);

    // upto: the permit grants the maximum; the charge is what the handler names.
    let paid = buyer.get(&format!("{url}/upto")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let s = settled(&paid.payment);
    assert_eq!(s.amount, Some(Amount::from(UPTO_USED_UNITS)));
    assert_eq!(
        shop.usdc(who).await,
        U256::from(1_000_000 - EXACT_UNITS - UPTO_USED_UNITS)
    );
    assert_eq!(permit_nonce(&shop, who).await, U256::from(2));
    assert_eq!(
        allowance(&shop, who).await,
        U256::from(UPTO_MAX_UNITS - UPTO_USED_UNITS)
    );

    // The wallet never needed gas: no ETH, no transaction of its own.
    assert_eq!(eth(&shop, who).await, U256::ZERO);
    let sent = shop
        .h
        .bed
        .provider()
        .get_transaction_count(who)
        .await
        .unwrap();
    assert_eq!(sent, 0);
}

/// One signed sponsored `exact` payment, ready to tamper with: the seller's requirement, the
/// payment, and the permit's `info`.
struct Signed {
    requirements: PaymentRequirements,
    payment: PaymentPayloadV2,
    info: serde_json::Value,
}

async fn sign_sponsored(url: &str, wallet: &PrivateKeySigner, shop: &Shop) -> Signed {
    let response = reqwest::get(url).await.unwrap();
    let PaymentRequired::V2(required) = x402_buyer::read_402(response).await.unwrap() else {
        panic!("a v2 402")
    };
    let accepted = required.accepts[0].clone();
    let requirements = PaymentRequirements::V2(accepted.clone());
    let buyer = scheme_exact_evm::Buyer::new(Arc::new(wallet.clone()))
        .with_rpc(shop.h.bed.chain_id(), shop.h.bed.provider());
    let signed = buyer
        .sign_offered(
            &requirements.view().unwrap(),
            required.extensions.as_deref(),
        )
        .await
        .unwrap();
    let (key, entry) = signed
        .extensions
        .into_iter()
        .next()
        .expect("a permit entry");
    assert_eq!(key, EIP2612_GAS_SPONSORING);
    let entry: serde_json::Value = serde_json::from_str(entry.get()).unwrap();
    Signed {
        requirements,
        payment: PaymentPayloadV2 {
            x402_version: x402_core::X402Version::V2,
            resource: Some(required.resource),
            accepted,
            payload: signed.payload,
            extensions: None,
        },
        info: entry["info"].clone(),
    }
}

impl Signed {
    /// The request carrying `info` as the payment's permit.
    fn request(&self, info: &serde_json::Value) -> VerifyRequest {
        let mut payment = self.payment.clone();
        let extensions = serde_json::json!({ EIP2612_GAS_SPONSORING: { "info": info } });
        payment.extensions = Some(serde_json::value::to_raw_value(&extensions).unwrap());
        VerifyRequest::new(PaymentPayload::V2(payment), self.requirements.clone())
    }
}

#[tokio::test]
async fn every_permit_check_refuses_with_its_reason_and_nothing_moves() {
    let shop = Shop::start().await;
    let url = sponsoring_seller(&shop).await;
    let wallet = fresh_wallet(&shop, 1_000_000).await;
    let who = wallet.address();
    let signed = sign_sponsored(&format!("{url}/exact"), &wallet, &shop).await;
    let facilitator = FacilitatorClient::new(shop.facilitator_url.clone());
    let info = &signed.info;
    let deadline: u64 = info["deadline"].as_str().unwrap().parse().unwrap();

    // A permit for the same owner, signed on `name`'s domain with `nonce`.
    let resign = |name: &'static str, nonce: u64| {
        let wallet = wallet.clone();
        let token = shop.h.bed.usdc();
        let chain_id = shop.h.bed.chain_id();
        async move {
            let terms = PermitTerms {
                name,
                version: x402_tests::evm::USDC_VERSION,
                chain_id,
                token,
                amount: U256::from(EXACT_UNITS),
                nonce: U256::from(nonce),
                deadline: U256::from(deadline),
            };
            sign_eip2612(&wallet, terms).await.unwrap()["info"].clone()
        }
    };
    let with = |key: &str, value: serde_json::Value| {
        let mut i = info.clone();
        i[key] = value;
        i
    };
    let other = PrivateKeySigner::random().address().to_checksum(None);
    let cases = vec![
        (
            "malformed signature",
            with("signature", "0x1234".into()),
            "invalid_eip2612_extension_format",
        ),
        (
            "another owner",
            with("from", other.clone().into()),
            "eip2612_from_mismatch",
        ),
        (
            "another token",
            with("asset", other.clone().into()),
            "eip2612_asset_mismatch",
        ),
        (
            "wrong spender",
            with("spender", other.into()),
            "eip2612_spender_not_permit2",
        ),
        (
            "expired deadline",
            with("deadline", "1".into()),
            "eip2612_deadline_expired",
        ),
        (
            "another amount",
            with("amount", (EXACT_UNITS + 1).to_string().into()),
            "permit2_2612_amount_mismatch",
        ),
        (
            "another domain",
            resign("Not USDC", 0).await,
            "invalid_eip2612_extension_format",
        ),
        (
            "not the next nonce",
            resign(x402_tests::evm::USDC_NAME, 5).await,
            "invalid_eip2612_extension_format",
        ),
    ];
    let seller = shop.h.bed.seller().address;
    let signer = shop.h.pool.addresses()[0];
    let provider = shop.h.bed.provider();
    let before = (
        shop.usdc(who).await,
        shop.usdc(seller).await,
        provider.get_transaction_count(signer).await.unwrap(),
    );
    for (case, info, reason) in cases {
        let request = signed.request(&info);
        let verdict = facilitator.verify(&request).await.unwrap();
        assert!(!verdict.is_valid, "{case}: {verdict:?}");
        assert_eq!(
            verdict.invalid_reason.as_ref().map(|r| r.as_str()),
            Some(reason),
            "{case}: {verdict:?}"
        );
        let settlement = facilitator.settle(&request).await.unwrap();
        assert!(!settlement.success, "{case}: {settlement:?}");
        assert_eq!(
            settlement.error_reason.as_ref().map(|r| r.as_str()),
            Some(reason),
            "{case}: {settlement:?}"
        );
        assert_eq!(
            (
                shop.usdc(who).await,
                shop.usdc(seller).await,
                provider.get_transaction_count(signer).await.unwrap(),
            ),
            before,
            "{case}: something moved"
        );
        assert_eq!(permit_nonce(&shop, who).await, U256::ZERO, "{case}");
        assert_eq!(allowance(&shop, who).await, U256::ZERO, "{case}");
    }

    // The untampered permit verifies and settles, once.
    let request = signed.request(info);
    assert!(facilitator.verify(&request).await.unwrap().is_valid);
    let settlement = facilitator.settle(&request).await.unwrap();
    assert!(settlement.success, "{settlement:?}");
    assert_eq!(shop.usdc(who).await, before.0 - U256::from(EXACT_UNITS));
    let again = facilitator.settle(&request).await.unwrap();
    assert_eq!(shop.usdc(who).await, before.0 - U256::from(EXACT_UNITS));
    assert_eq!(again.transaction, settlement.transaction, "{again:?}");
}

#[tokio::test]
async fn the_cli_signs_a_permit_with_its_evm_rpc() {
    let shop = Shop::start().await;
    let url = sponsoring_seller(&shop).await;
    let wallet = fresh_wallet(&shop, 1_000_000).await;
    let who = wallet.address();
    let key = format!("0x{}", alloy::hex::encode(wallet.to_bytes()));
    let asset = format!("{}:{}:6:USDC", shop.h.network, shop.h.bed.usdc());
    let rpc = shop.h.bed.anvil().endpoint().to_owned();
    let pay = |extra: Vec<String>| {
        let key = key.clone();
        let url = format!("{url}/exact");
        let asset = asset.clone();
        async move {
            let mut args: Vec<String> = ["pay", &url, "--max", "0.02", "--asset", &asset]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend(extra);
            let env = move |name: &str| (name == "X402_PRIVATE_KEY").then(|| key.clone());
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
            (
                code,
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            )
        }
    };
    let (code, out, err) = pay(vec!["--evm-rpc".into(), rpc]).await;
    assert_eq!(code, x402_buyer::cli::Exit::Success, "{out}\n{err}");
    assert!(out.contains("exact, sponsored"), "{out}");
    assert_eq!(shop.usdc(who).await, U256::from(1_000_000 - EXACT_UNITS));
    assert_eq!(permit_nonce(&shop, who).await, U256::from(1));
    assert_eq!(eth(&shop, who).await, U256::ZERO);
}

#[tokio::test]
async fn two_concurrent_sponsored_payments_of_a_fresh_wallet_use_one_permit() {
    let shop = Shop::start().await;
    let url = sponsoring_seller(&shop).await;
    let wallet = fresh_wallet(&shop, 1_000_000).await;
    let who = wallet.address();
    // Both signed before either settles: both carry a permit with the wallet's nonce 0.
    let first = sign_sponsored(&format!("{url}/exact"), &wallet, &shop).await;
    let second = sign_sponsored(&format!("{url}/exact"), &wallet, &shop).await;
    assert_eq!(first.info["nonce"], "0");
    assert_eq!(second.info["nonce"], "0");
    let facilitator = FacilitatorClient::new(shop.facilitator_url.clone());
    let (a, b) = (first.request(&first.info), second.request(&second.info));
    let (ra, rb) = tokio::join!(facilitator.settle(&a), facilitator.settle(&b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        [ra.success, rb.success].iter().filter(|s| **s).count(),
        1,
        "{ra:?}\n{rb:?}"
    );
    let refused = if ra.success { &rb } else { &ra };
    assert_eq!(
        refused.error_reason.as_ref().map(|r| r.as_str()),
        Some("invalid_eip2612_extension_format"),
        "{refused:?}"
    );
    assert_eq!(refused.transaction, "");
    assert_eq!(shop.usdc(who).await, U256::from(1_000_000 - EXACT_UNITS));
    assert_eq!(permit_nonce(&shop, who).await, U256::from(1));
    assert_eq!(allowance(&shop, who).await, U256::ZERO);
}
