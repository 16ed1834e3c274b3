//! Interop with the official TypeScript SDKs (pinned in tests/interop/package-lock.json) on
//! anvil: `@x402/fetch` + `@x402/evm` pay our axum seller; our reqwest buyer pays an Express
//! seller built with `@x402/express` that settles through OUR facilitator. The same two
//! directions on solana-test-validator with `@x402/svm` (exact, v2, SPL Token and Token-2022).
//! `vocabulary`: our reason codes, default assets and v1 network names against the packages'.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod vocabulary;

use std::sync::Arc;

use alloy::primitives::U256;
use axum::routing::get;
use scheme_exact_svm::BuyerOptions;
use solana_signer::Signer as _;
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::client::FacilitatorClient;
use x402_core::{Amount, Price, Registry, X402Version};
use x402_core::{BuyerRole as _, SellerRole as _};
use x402_seller::{Accept, Route, Seller};
use x402_tests::e2e::{EXACT_UNITS, NodeScript, Shop, buyer_for, serve, serve_facilitator};
use x402_tests::evm::{USDC_NAME, USDC_VERSION};
use x402_tests::solana::TestMint;
use x402_tests::solana::exact::{SvmHarness, rpc};

#[tokio::test]
async fn the_official_fetch_client_pays_our_seller() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let seller = shop.h.bed.seller().address;
    let (before, seller_before) = (shop.usdc(b0.address).await, shop.usdc(seller).await);
    let key = format!("0x{}", alloy::hex::encode(b0.signer.to_bytes()));
    let lines = NodeScript::new("pay.mjs")
        .run(
            &[&shop.at("/joke"), &shop.at("/permit2")],
            &[("X402_INTEROP_KEY", key)],
        )
        .await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in &lines {
        let result: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(result["status"], 200, "{result}");
        let settlement = &result["settlement"];
        assert_eq!(settlement["success"], true, "{result}");
        assert_eq!(settlement["network"], "eip155:84532", "{result}");
        assert!(
            settlement["transaction"]
                .as_str()
                .unwrap()
                .starts_with("0x")
        );
    }
    assert!(lines[0].contains("why did the buyer pay"));
    assert!(lines[1].contains("paid through permit2"));
    let paid = U256::from(2 * EXACT_UNITS);
    assert_eq!(shop.usdc(b0.address).await, before - paid);
    assert_eq!(shop.usdc(seller).await, seller_before + paid);
    assert_eq!(shop.counting.calls(), (2, 2));
}

#[tokio::test]
async fn our_client_pays_an_express_seller_through_our_facilitator() {
    let shop = Shop::start().await;
    let b1 = shop.h.bed.buyer(1).clone();
    let seller = shop.h.bed.seller().address;
    let script = NodeScript::new("server.mjs");
    let (_server, url) = script
        .serve(&[
            ("FACILITATOR_URL", shop.facilitator_url.clone()),
            ("NETWORK", shop.h.network.to_string()),
            ("ASSET", shop.h.bed.usdc().to_checksum(None)),
            ("PAY_TO", seller.to_checksum(None)),
            ("AMOUNT", EXACT_UNITS.to_string()),
            ("TOKEN_NAME", USDC_NAME.to_owned()),
            ("TOKEN_VERSION", USDC_VERSION.to_owned()),
        ])
        .await;
    let (before, seller_before) = (shop.usdc(b1.address).await, shop.usdc(seller).await);
    let buyer = buyer_for(&shop.h, &b1.signer, Policy::default());
    let paid = buyer.get(&format!("{url}/weather")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let payment = paid.payment.clone().unwrap();
    let settlement = payment.settlement.expect("PAYMENT-RESPONSE");
    assert!(settlement.success, "{settlement:?}");
    assert!(settlement.transaction.starts_with("0x"));
    let body: serde_json::Value = paid.response.json().await.unwrap();
    assert_eq!(body["from"], "express");
    assert_eq!(
        shop.usdc(b1.address).await,
        before - U256::from(EXACT_UNITS)
    );
    assert_eq!(
        shop.usdc(seller).await,
        seller_before + U256::from(EXACT_UNITS)
    );
}

// --- Solana (solana-test-validator) ---------------------------------------------------------
//
// @x402/svm 2.27.0 accepts a custom RPC URL: `new ExactSvmScheme(signer, { rpcUrl })` on the
// client and `new ExactSvmScheme({ rpcUrl })` on the server (its `createRpcClient(network,
// customRpcUrl)` only falls back to the public endpoints when no URL is given). The one catch is
// that the client's `registerExactSvmScheme` helper drops the URL, so pay-svm.mjs constructs the
// scheme itself. The SDK only knows the mainnet/devnet/testnet CAIP-2 ids, so the network is
// solana-devnet's id (`solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1`), served by our facilitator
// pointed at the local validator (the library constructor, which skips the genesis-hash check).

/// The price of the Solana interop routes, in atomic units of the bed mints (6 decimals).
const SVM_UNITS: u64 = 4_321;

fn svm_seller_schemes(h: &SvmHarness) -> Registry {
    let mut schemes = Registry::new();
    let mut seller = scheme_exact_svm::Seller::new();
    for mint in h.bed.mints() {
        seller = seller.with_mint_decimals(mint.address, 6);
    }
    schemes
        .register("solana:*", &[X402Version::V2], seller.into_scheme())
        .unwrap();
    schemes
}

fn svm_route(h: &SvmHarness, mint: &TestMint) -> Route {
    Route::new().description("paid on Solana").accept(
        Accept::new(
            "exact",
            h.network.clone(),
            h.seller.pubkey().to_string(),
            Price::Atomic(Amount::from(SVM_UNITS)),
        )
        .asset(mint.address.to_string())
        .max_timeout_seconds(120),
    )
}

async fn svm_balances(h: &SvmHarness, mint: &TestMint) -> (u64, u64) {
    (
        h.bed.token_balance(&h.buyer.pubkey(), &mint.address).await,
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
    )
}

#[tokio::test]
async fn the_official_fetch_client_pays_our_seller_on_solana() {
    let h = SvmHarness::start().await;
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let (spl, t22) = (h.bed.spl_token_mint(), h.bed.token_2022_mint());
    let seller = Seller::new(
        Arc::new(FacilitatorClient::new(facilitator_url)),
        svm_seller_schemes(&h),
    );
    let app = axum::Router::new()
        .route(
            "/spl",
            get(|| async { "paid with SPL Token" })
                .layer(seller.paywall(svm_route(&h, &spl)).unwrap()),
        )
        .route(
            "/t22",
            get(|| async { "paid with Token-2022" })
                .layer(seller.paywall(svm_route(&h, &t22)).unwrap()),
        );
    let url = serve(app).await;
    let (spl_before, t22_before) = (svm_balances(&h, &spl).await, svm_balances(&h, &t22).await);

    let key = format!("{:?}", h.buyer.to_bytes().to_vec());
    let lines = NodeScript::new("pay-svm.mjs")
        .run(
            &[&format!("{url}/spl"), &format!("{url}/t22")],
            &[
                ("X402_INTEROP_SOLANA_KEY", key),
                ("SOLANA_RPC_URL", h.bed.rpc_url().to_owned()),
            ],
        )
        .await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let buyer = h.buyer.pubkey().to_string();
    for (line, body) in lines
        .iter()
        .zip(["paid with SPL Token", "paid with Token-2022"])
    {
        let result: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(result["status"], 200, "{result}");
        assert_eq!(result["payer"], buyer.as_str(), "{result}");
        assert_eq!(result["body"], body, "{result}");
        let settlement = &result["settlement"];
        assert_eq!(settlement["success"], true, "{result}");
        assert_eq!(settlement["network"], h.network.as_str(), "{result}");
        assert_eq!(settlement["payer"], buyer.as_str(), "{result}");
        // A base58 ed25519 signature.
        let tx = settlement["transaction"].as_str().unwrap();
        assert!((80..=90).contains(&tx.len()), "{result}");
    }
    assert_eq!(
        svm_balances(&h, &spl).await,
        (spl_before.0 - SVM_UNITS, spl_before.1 + SVM_UNITS)
    );
    assert_eq!(
        svm_balances(&h, &t22).await,
        (t22_before.0 - SVM_UNITS, t22_before.1 + SVM_UNITS)
    );
}

#[tokio::test]
async fn our_client_pays_an_express_seller_on_solana_through_our_facilitator() {
    let h = SvmHarness::start().await;
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let spl = h.bed.spl_token_mint();
    let script = NodeScript::new("server-svm.mjs");
    let (_server, url) = script
        .serve(&[
            ("FACILITATOR_URL", facilitator_url),
            ("NETWORK", h.network.to_string()),
            ("ASSET", spl.address.to_string()),
            ("PAY_TO", h.seller.pubkey().to_string()),
            ("AMOUNT", SVM_UNITS.to_string()),
            ("SOLANA_RPC_URL", h.bed.rpc_url().to_owned()),
        ])
        .await;
    let before = svm_balances(&h, &spl).await;

    let mut policy = Policy::default();
    policy.assets.push(KnownAsset {
        network: h.network.clone(),
        address: spl.address.to_string(),
        decimals: 6,
        symbol: "SPL".into(),
    });
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_svm::ANY_NETWORK,
            scheme_exact_svm::VERSIONS,
            scheme_exact_svm::Buyer::new(
                h.buyer.insecure_clone(),
                rpc(h.bed.rpc_url()),
                BuyerOptions::default(),
            )
            .into_scheme(),
        )
        .unwrap();
    let buyer = Buyer::new(reqwest::Client::new(), schemes, policy);
    let paid = buyer.get(&format!("{url}/forecast")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let payment = paid.payment.clone().unwrap();
    assert_eq!(payment.version, X402Version::V2);
    let settlement = payment.settlement.expect("PAYMENT-RESPONSE");
    assert!(settlement.success, "{settlement:?}");
    assert_eq!(settlement.network, h.network.as_str());
    assert_eq!(settlement.payer, Some(h.buyer.pubkey().to_string()));
    assert!(
        (80..=90).contains(&settlement.transaction.len()),
        "{settlement:?}"
    );
    let body: serde_json::Value = paid.response.json().await.unwrap();
    assert_eq!(body["from"], "express");
    assert_eq!(
        svm_balances(&h, &spl).await,
        (before.0 - SVM_UNITS, before.1 + SVM_UNITS)
    );
}
