//! Interop with the official TypeScript SDKs (pinned in tests/interop/package-lock.json) on
//! anvil: `@x402/fetch` + `@x402/evm` pay our axum seller; our reqwest buyer pays an Express
//! seller built with `@x402/express` that settles through OUR facilitator. The same two
//! directions on solana-test-validator with `@x402/svm` (exact, v2, SPL Token and Token-2022).
//! `vocabulary`: our reason codes, default assets and v1 network names against the packages'.
//! The Express middleware is also the oracle for the refusal shapes (a verify refusal's bare
//! reason, a failed settlement's 402), and the official client reads our failed settlement.
//! `flows`: the remaining schemes and versions both ways (upto, Permit2, v1, Token-2022, the
//! `x402` CLI). `python`: the official Python SDK (PyPI `x402`) both ways on anvil. `bazaar`:
//! the discovery extension's declarations both ways against `@x402/extensions`. `siwx`:
//! sign-in-with-x proofs both ways (their client's proofs pass our seller, ours pass theirs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bazaar;
mod flows;
mod oracle_evm;
mod oracle_svm;
mod payment_id;
mod python;
mod siwx;
mod vocabulary;

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use axum::routing::get;
use scheme_exact_svm::BuyerOptions;
use solana_signer::Signer as _;
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::client::FacilitatorClient;
use x402_core::wire::SettleResponse;
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

/// The Express seller of `server.mjs` on the shop's chain, through our facilitator; `drain_url`
/// is its `/weather-drain` hook.
async fn express(shop: &Shop, drain_url: Option<String>) -> (tokio::process::Child, String) {
    let seller = shop.h.bed.seller().address;
    let mut env = vec![
        ("FACILITATOR_URL", shop.facilitator_url.clone()),
        ("NETWORK", shop.h.network.to_string()),
        ("ASSET", shop.h.bed.usdc().to_checksum(None)),
        ("PAY_TO", seller.to_checksum(None)),
        ("AMOUNT", EXACT_UNITS.to_string()),
        ("TOKEN_NAME", USDC_NAME.to_owned()),
        ("TOKEN_VERSION", USDC_VERSION.to_owned()),
    ];
    if let Some(url) = drain_url {
        env.push(("DRAIN_URL", url));
    }
    NodeScript::new("server.mjs").serve(&env).await
}

/// A hook that empties `who`'s USDC when called (`GET /`), so a payment verified before it fails
/// to settle after it.
async fn drain_hook(shop: &Shop, who: Address) -> String {
    let h = shop.h.clone();
    let drain = move || {
        let h = h.clone();
        async move {
            let all = h.usdc(who).await;
            h.bed
                .transfer_usdc(who, h.bed.deployer().address, all)
                .await;
            "drained"
        }
    };
    serve(axum::Router::new().route("/", get(drain))).await
}

#[tokio::test]
async fn our_client_pays_an_express_seller_through_our_facilitator() {
    let shop = Shop::start().await;
    let b1 = shop.h.bed.buyer(1).clone();
    let seller = shop.h.bed.seller().address;
    let (_server, url) = express(&shop, None).await;
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

/// The refusal our buyer reports for `request`.
async fn refusal(
    buyer: &Buyer,
    request: reqwest::Request,
) -> (u16, Option<String>, Option<SettleResponse>) {
    match buyer.execute(request).await {
        Err(x402_buyer::Error::Refused {
            status,
            error,
            settlement,
        }) => (status, error, settlement.map(|s| *s)),
        other => panic!("a refusal expected: {other:?}"),
    }
}

#[tokio::test]
async fn refusals_reach_our_buyer_from_the_express_seller_as_from_ours() {
    // The official Express middleware is the oracle for the refusal shapes: a payment refused at
    // verify (402, PAYMENT-REQUIRED whose `error` is the bare reason) and a failed settlement
    // (402, PAYMENT-RESPONSE with the failure, body {}). Our seller answers the same, and our
    // buyer reads both the same way.
    let shop = Shop::start().await;
    let seller = shop.h.bed.seller().address;
    let (b2, b3, b4) = (
        shop.h.bed.buyer(2).clone(),
        shop.h.bed.buyer(3).clone(),
        shop.h.bed.buyer(4).clone(),
    );
    let drain3 = drain_hook(&shop, b3.address).await;
    let (_server, express_url) = express(&shop, Some(drain3)).await;
    let get = |url: String| reqwest::Client::new().get(url).build().unwrap();

    // Refused at verify: the wallet is empty.
    let empty = buyer_for(&shop.h, &b2.signer, Policy::default());
    let all = shop.usdc(b2.address).await;
    shop.h
        .bed
        .transfer_usdc(b2.address, shop.h.bed.deployer().address, all)
        .await;
    let theirs = refusal(&empty, get(format!("{express_url}/weather"))).await;
    let ours = refusal(&empty, get(shop.at("/joke"))).await;
    assert_eq!(theirs.0, 402);
    let reason = theirs.1.clone().expect("a reason");
    assert!(
        reason
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "a bare reason code: {reason}"
    );
    assert_eq!((ours.0, ours.1.as_deref()), (402, Some(reason.as_str())));
    assert!(
        theirs.2.is_none() && ours.2.is_none(),
        "nothing was settled"
    );

    // Refused at settle: the wallet is emptied while the handler runs.
    let seller_before = shop.usdc(seller).await;
    let payer = buyer_for(&shop.h, &b3.signer, Policy::default());
    let theirs = refusal(&payer, get(format!("{express_url}/weather-drain"))).await;
    let payer = buyer_for(&shop.h, &b4.signer, Policy::default());
    let mut drain4 = get(shop.at("/drain"));
    drain4
        .headers_mut()
        .insert("x-drain", b4.address.to_string().parse().unwrap());
    let ours = refusal(&payer, drain4).await;
    for (who, (status, error, settlement)) in [("express", &theirs), ("ours", &ours)] {
        assert_eq!(*status, 402, "{who}");
        let s = settlement.as_ref().expect("the failed settlement");
        assert!(!s.success, "{who}: {s:?}");
        let reason = s
            .error_reason
            .as_ref()
            .expect("a reason")
            .as_str()
            .to_owned();
        assert_eq!(
            error.as_deref(),
            Some(format!("settlement failed: {reason}").as_str()),
            "{who}"
        );
    }
    assert_eq!(theirs.2.unwrap().error_reason, ours.2.unwrap().error_reason);
    assert_eq!(shop.usdc(seller).await, seller_before, "nothing was paid");
}

#[tokio::test]
async fn the_official_client_reads_our_failed_settlement() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let seller = shop.h.bed.seller().address;
    let seller_before = shop.usdc(seller).await;
    let key = format!("0x{}", alloy::hex::encode(b0.signer.to_bytes()));
    let headers = serde_json::json!({ "x-drain": b0.address.to_string() }).to_string();
    let lines = NodeScript::new("pay.mjs")
        .run(
            &[&shop.at("/drain")],
            &[("X402_INTEROP_KEY", key), ("X402_INTEROP_HEADERS", headers)],
        )
        .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let result: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(result["status"], 402, "{result}");
    assert_eq!(result["body"], "{}", "{result}");
    let settlement = &result["settlement"];
    assert_eq!(settlement["success"], false, "{result}");
    assert!(settlement["errorReason"].is_string(), "{result}");
    assert_eq!(settlement["network"], "eip155:84532", "{result}");
    assert_eq!(shop.counting.calls(), (1, 1), "paid once, never again");
    assert_eq!(shop.usdc(seller).await, seller_before);
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
