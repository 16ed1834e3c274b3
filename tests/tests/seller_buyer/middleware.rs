//! The buyer as reqwest-middleware pays our seller through our facilitator, once.

use std::sync::Arc;

use alloy::primitives::U256;
use x402_buyer::Policy;
use x402_buyer::middleware::PayingMiddleware;
use x402_tests::e2e::{EXACT_UNITS, Shop, buyer_for};

#[tokio::test]
async fn a_client_with_the_middleware_pays_and_reports_the_settlement() {
    let shop = Shop::start().await;
    let seller = shop.h.bed.seller().address;
    let b = &shop.h.bed.buyer(3);
    let buyer = Arc::new(buyer_for(&shop.h, &b.signer, Policy::default()));
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(PayingMiddleware::new(buyer.clone()))
        .build();
    let (before, seller_before) = (shop.usdc(b.address).await, shop.usdc(seller).await);

    let response = client.get(shop.at("/joke")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let payment = response
        .extensions()
        .get::<x402_buyer::Payment>()
        .cloned()
        .expect("the payment is attached to the response");
    let settlement = payment.settlement.expect("settlement reported");
    assert!(settlement.success, "{settlement:?}");
    assert_eq!(settlement.network, "eip155:84532");
    assert!(response.text().await.unwrap().contains("exact"));
    assert_eq!(shop.usdc(b.address).await, before - U256::from(EXACT_UNITS));
    assert_eq!(
        shop.usdc(seller).await,
        seller_before + U256::from(EXACT_UNITS)
    );

    // A request that already carries a payment is passed through unpaid: the seller's 402 comes
    // back, and nothing more is spent.
    let replay = client
        .get(shop.at("/joke"))
        .header("PAYMENT-SIGNATURE", "bm90LWEtcGF5bWVudA==")
        .send()
        .await
        .unwrap();
    assert_ne!(replay.status(), 200);
    assert!(replay.extensions().get::<x402_buyer::Payment>().is_none());
    assert_eq!(shop.usdc(b.address).await, before - U256::from(EXACT_UNITS));
}
