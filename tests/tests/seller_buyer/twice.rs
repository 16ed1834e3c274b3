//! One payment, two encodings, at once: the seller's "already being processed" guard keys on the
//! identity the facilitator settles under, not on the payload's bytes, so the protected handler
//! runs once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy::primitives::U256;
use axum::routing::get;
use x402_core::header::{PAYMENT_SIGNATURE, encode};
use x402_core::wire::{PaymentPayloadV2, PaymentRequired, PaymentRequirements, Raw};
use x402_core::{Amount, Price, X402Version};
use x402_evm::assets::TransferMethod;
use x402_seller::{Accept, Route};
use x402_tests::e2e::{EXACT_UNITS, Shop, buyer_for, evm_seller, serve};
use x402_tests::wait::{HANG_GUARD, until};

/// The same payload with its signature's `v` written as 0/1 instead of 27/28 (the facilitator
/// accepts both and settles the one authorization).
fn with_low_v(payload: &Raw) -> Raw {
    let mut value: serde_json::Value = serde_json::from_str(payload.get()).unwrap();
    let signature = value["signature"].as_str().unwrap().to_owned();
    let (body, v) = signature.split_at(signature.len() - 2);
    let low = match v {
        "1b" => "00",
        "1c" => "01",
        other => panic!("v = {other}"),
    };
    value["signature"] = format!("{body}{low}").into();
    serde_json::value::to_raw_value(&value).unwrap()
}

#[tokio::test]
async fn another_encoding_of_a_payment_in_flight_does_not_run_the_handler_again() {
    let shop = Shop::start().await;
    let b = shop.h.bed.buyer(4).clone();
    let seller_address = shop.h.bed.seller().address;
    let runs = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let handler = {
        let (runs, release) = (runs.clone(), release.clone());
        move || {
            let (runs, release) = (runs.clone(), release.clone());
            async move {
                // The first run waits until the test has sent the second encoding.
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    release.notified().await;
                }
                "served"
            }
        }
    };
    let seller = evm_seller(&shop.h, shop.counting.clone(), TransferMethod::Eip3009);
    let route = Route::new().accept(
        Accept::new(
            "exact",
            shop.h.network.clone(),
            seller_address.to_checksum(None),
            Price::Atomic(Amount::from(EXACT_UNITS)),
        )
        .max_timeout_seconds(120),
    );
    let app =
        axum::Router::new().route("/once", get(handler).layer(seller.paywall(route).unwrap()));
    let url = format!("{}/once", serve(app).await);

    let buyer = buyer_for(&shop.h, &b.signer, x402_buyer::Policy::default());
    let Some(PaymentRequired::V2(required)) = buyer.requirements(&url).await.unwrap() else {
        panic!("a v2 402");
    };
    let accepted = required.accepts[0].clone();
    let payload = shop
        .h
        .sign(&b.signer, &PaymentRequirements::V2(accepted.clone()))
        .await;
    let header = |payload: Raw| {
        encode(&PaymentPayloadV2 {
            x402_version: X402Version::V2,
            resource: Some(required.resource.clone()),
            accepted: accepted.clone(),
            payload,
            extensions: None,
        })
        .unwrap()
    };
    let (first, second) = (header(payload.clone()), header(with_low_v(&payload)));
    assert_ne!(first, second);
    let (before, seller_before) = (shop.usdc(b.address).await, shop.usdc(seller_address).await);

    let client = reqwest::Client::new();
    let first_call = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .get(url)
                .header(PAYMENT_SIGNATURE, first)
                .send()
                .await
                .unwrap()
        }
    });
    until(
        "the first encoding reaches the handler",
        HANG_GUARD,
        || async { runs.load(Ordering::SeqCst) == 1 },
    )
    .await;
    let again = client
        .get(&url)
        .header(PAYMENT_SIGNATURE, second)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 402, "the second encoding is refused");
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");
    release.notify_one();
    let paid = first_call.await.unwrap();
    assert_eq!(paid.status(), 200);
    assert_eq!(paid.text().await.unwrap(), "served");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let price = U256::from(EXACT_UNITS);
    assert_eq!(shop.usdc(b.address).await, before - price, "paid once");
    assert_eq!(shop.usdc(seller_address).await, seller_before + price);
}
