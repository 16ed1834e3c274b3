//! Solana exact on solana-test-validator: the official v1 client pays our v1-only routes in both
//! token programs; our buyer pays an Express seller with Token-2022, and the `x402` CLI pays it
//! in both token programs.

use std::sync::Arc;

use axum::routing::get;
use scheme_exact_svm::BuyerOptions;
use solana_signer::Signer as _;
use x402_buyer::cli::Exit;
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::client::FacilitatorClient;
use x402_core::{Amount, Price, Registry, X402Version};
use x402_core::{BuyerRole as _, SellerRole as _};
use x402_seller::{Accept, Route, Seller};
use x402_tests::e2e::{NodeScript, serve, serve_facilitator};
use x402_tests::solana::TestMint;
use x402_tests::solana::exact::{SvmHarness, rpc};

use super::{pay_one, settled, x402};

/// The price of every route here, in atomic units of the bed mints (6 decimals).
const UNITS: u64 = 3_579;

/// The (buyer, seller) balances of `mint`.
async fn balances(h: &SvmHarness, mint: &TestMint) -> (u64, u64) {
    (
        h.bed.token_balance(&h.buyer.pubkey(), &mint.address).await,
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
    )
}

/// Asserts that [`UNITS`] of `mint` went from the buyer to the seller since `before`.
async fn moved(h: &SvmHarness, mint: &TestMint, before: (u64, u64), what: &str) {
    assert_eq!(
        balances(h, mint).await,
        (before.0 - UNITS, before.1 + UNITS),
        "{what}"
    );
}

/// The Express seller of flows-express-svm.mjs (`/spl`, `/t22`), through our facilitator.
async fn express(h: &SvmHarness) -> (tokio::process::Child, String) {
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let env = [
        ("FACILITATOR_URL", facilitator_url),
        ("NETWORK", h.network.to_string()),
        ("ASSET_SPL", h.bed.spl_token_mint().address.to_string()),
        ("ASSET_T22", h.bed.token_2022_mint().address.to_string()),
        ("PAY_TO", h.seller.pubkey().to_string()),
        ("AMOUNT", UNITS.to_string()),
        ("SOLANA_RPC_URL", h.bed.rpc_url().to_owned()),
    ];
    NodeScript::new("flows-express-svm.mjs").serve(&env).await
}

#[tokio::test]
async fn the_official_v1_client_pays_our_v1_seller_on_solana() {
    let h = SvmHarness::start().await;
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let (spl, t22) = (h.bed.spl_token_mint(), h.bed.token_2022_mint());
    let mut schemes = Registry::new();
    let mut scheme = scheme_exact_svm::Seller::new();
    for mint in [&spl, &t22] {
        scheme = scheme.with_mint_decimals(mint.address, 6);
    }
    schemes
        .register(
            scheme_exact_svm::ANY_NETWORK,
            scheme_exact_svm::VERSIONS,
            scheme.into_scheme(),
        )
        .unwrap();
    let seller = Seller::new(Arc::new(FacilitatorClient::new(facilitator_url)), schemes);
    // Routes that speak v1 only: a v1 402 body, the payment in X-PAYMENT.
    let v1_route = |mint: &TestMint| {
        let accept = Accept::new(
            "exact",
            h.network.clone(),
            h.seller.pubkey().to_string(),
            Price::Atomic(Amount::from(UNITS)),
        )
        .asset(mint.address.to_string())
        .max_timeout_seconds(120);
        let route = Route::new().description("paid on Solana over v1");
        seller
            .paywall(route.accept(accept).versions(&[X402Version::V1]))
            .unwrap()
    };
    let app = axum::Router::new()
        .route(
            "/spl",
            get(|| async { "SPL Token over v1" }).layer(v1_route(&spl)),
        )
        .route(
            "/t22",
            get(|| async { "Token-2022 over v1" }).layer(v1_route(&t22)),
        );
    let url = serve(app).await;
    let v1_network = h.network.v1_name().expect("a v1 name");
    let script = NodeScript::new("flows-pay-svm.mjs");
    let env = [
        (
            "X402_INTEROP_SOLANA_KEY",
            format!("{:?}", h.buyer.to_bytes().to_vec()),
        ),
        ("X402_INTEROP_V1_NETWORK", v1_network.to_owned()),
        ("SOLANA_RPC_URL", h.bed.rpc_url().to_owned()),
    ];
    let payer = h.buyer.pubkey().to_string();
    for (path, mint, body) in [
        ("/spl", &spl, "SPL Token over v1"),
        ("/t22", &t22, "Token-2022 over v1"),
    ] {
        let before = balances(&h, mint).await;
        let result = pay_one(&script, &format!("{url}{path}"), &env).await;
        let settlement = settled(&result, "X-PAYMENT-RESPONSE", v1_network);
        assert_eq!(result["payer"], payer.as_str(), "{result}");
        assert_eq!(settlement["payer"], payer.as_str(), "{result}");
        assert_eq!(result["body"], body, "{result}");
        moved(&h, mint, before, path).await;
    }
}

#[tokio::test]
async fn our_buyer_pays_an_express_seller_with_token_2022() {
    let h = SvmHarness::start().await;
    let t22 = h.bed.token_2022_mint();
    let (_server, url) = express(&h).await;
    let mut policy = Policy::default();
    policy.assets.push(KnownAsset {
        network: h.network.clone(),
        address: t22.address.to_string(),
        decimals: 6,
        symbol: "T22".into(),
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
    let before = balances(&h, &t22).await;
    let paid = buyer.get(&format!("{url}/t22")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let payment = paid.payment.clone().unwrap();
    assert_eq!(payment.version, X402Version::V2);
    let settlement = payment.settlement.expect("PAYMENT-RESPONSE");
    assert!(settlement.success, "{settlement:?}");
    assert_eq!(settlement.network, h.network.as_str());
    assert_eq!(settlement.payer, Some(h.buyer.pubkey().to_string()));
    // A base58 ed25519 signature.
    assert!(
        (80..=90).contains(&settlement.transaction.len()),
        "{settlement:?}"
    );
    let body: serde_json::Value = paid.response.json().await.unwrap();
    assert_eq!(body["paid"], "t22", "{body}");
    moved(&h, &t22, before, "t22").await;
}

#[tokio::test]
async fn the_cli_pays_an_express_seller_on_solana() {
    let h = SvmHarness::start().await;
    let (spl, t22) = (h.bed.spl_token_mint(), h.bed.token_2022_mint());
    let (_server, url) = express(&h).await;
    let key = format!("{:?}", h.buyer.to_bytes().to_vec());
    let env = [("X402_SOLANA_KEY", key)];
    let asset =
        |mint: &TestMint, symbol: &str| format!("{}:{}:6:{symbol}", h.network, mint.address);
    let payer = h.buyer.pubkey().to_string();
    for (path, mint, symbol, paid) in [("/spl", &spl, "SPL", "spl"), ("/t22", &t22, "T22", "t22")] {
        let before = balances(&h, mint).await;
        let target = format!("{url}{path}");
        let asset = asset(mint, symbol);
        let args = [
            "pay",
            &target,
            "--max",
            "0.01",
            "--asset",
            &asset,
            "--solana-rpc",
            h.bed.rpc_url(),
            "--json",
        ];
        let (exit, out, err) = x402(&args, &env).await;
        assert_eq!((exit, exit.code()), (Exit::Success, 0), "{out}\n{err}");
        assert!(
            err.contains(&format!("paying as {payer} (Solana)")),
            "{err}"
        );
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["status"], 200, "{report}");
        assert_eq!(report["paid"], true, "{report}");
        assert_eq!(report["pending"], false, "{report}");
        let settlement = &report["settlement"];
        assert_eq!(settlement["success"], true, "{report}");
        assert_eq!(settlement["network"], h.network.as_str(), "{report}");
        assert_eq!(settlement["payer"], payer.as_str(), "{report}");
        let body: serde_json::Value =
            serde_json::from_str(report["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["paid"], paid, "{report}");
        moved(&h, mint, before, path).await;
    }
}
