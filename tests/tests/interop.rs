//! Interop with the official TypeScript SDKs (pinned in tests/interop/package-lock.json) on
//! anvil: `@x402/fetch` + `@x402/evm` pay our axum seller; our reqwest buyer pays an Express
//! seller built with `@x402/express` that settles through OUR facilitator.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alloy::primitives::U256;
use x402_buyer::Policy;
use x402_tests::e2e::{EXACT_UNITS, NodeScript, Shop, buyer_for};
use x402_tests::evm::{USDC_NAME, USDC_VERSION};

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
