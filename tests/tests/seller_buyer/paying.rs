//! Every scheme and version pays through our facilitator; `upto` settles what the handler names
//! (a `Charge`, or a `Settlement-Overrides` percentage or price).

use alloy::primitives::U256;
use x402_buyer::Policy;
use x402_core::header::{PAYMENT_RESPONSE, X_PAYMENT_RESPONSE};
use x402_core::wire::PaymentRequired;
use x402_core::{Amount, X402Version};
use x402_seller::SETTLEMENT_OVERRIDES;
use x402_tests::e2e::{
    EXACT_UNITS, ICON_URL, SERVICE_NAME, Shop, UPTO_MAX_UNITS, UPTO_USED_UNITS, buyer_for,
};

use crate::settled;

#[tokio::test]
async fn every_scheme_and_version_pays_through_our_facilitator() {
    let shop = Shop::start().await;
    let seller = shop.h.bed.seller().address;

    // exact, EIP-3009, v2
    let b0 = &shop.h.bed.buyer(0);
    let buyer = buyer_for(&shop.h, &b0.signer, Policy::default());
    let (before, seller_before) = (shop.usdc(b0.address).await, shop.usdc(seller).await);
    let PaymentRequired::V2(required) = buyer
        .requirements(&shop.at("/joke"))
        .await
        .unwrap()
        .unwrap()
    else {
        panic!("v2")
    };
    // The route describes its service in the resource (v2 serviceName, tags, iconUrl).
    assert_eq!(
        required.resource.service_name.as_deref(),
        Some(SERVICE_NAME)
    );
    assert_eq!(
        required.resource.tags,
        Some(vec!["jokes".to_owned(), "x402".to_owned()])
    );
    assert_eq!(required.resource.icon_url.as_deref(), Some(ICON_URL));
    let paid = buyer.get(&shop.at("/joke")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let headers = paid.response.headers().clone();
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    assert!(
        headers["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("PAYMENT-RESPONSE")
    );
    assert!(headers.contains_key(PAYMENT_RESPONSE));
    let payment = paid.payment.clone().unwrap();
    assert_eq!(payment.version, X402Version::V2);
    let s = settled(&paid.payment);
    assert_eq!(s.network, "eip155:84532");
    assert_eq!(
        s.payer.as_deref(),
        Some(b0.address.to_checksum(None).as_str())
    );
    assert!(paid.response.text().await.unwrap().contains("exact"));
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(EXACT_UNITS)
    );
    assert_eq!(
        shop.usdc(seller).await,
        seller_before + U256::from(EXACT_UNITS)
    );
    assert_eq!(shop.counting.calls(), (1, 1));

    // exact, EIP-3009, v1 (a route that only speaks v1: 402 JSON body, X-PAYMENT)
    let paid = buyer.get(&shop.at("/v1-only")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    assert!(paid.response.headers().contains_key(X_PAYMENT_RESPONSE));
    assert_eq!(paid.payment.as_ref().unwrap().version, X402Version::V1);
    assert_eq!(settled(&paid.payment).network, "base-sepolia");
    assert_eq!(paid.response.text().await.unwrap(), "v1 content");

    // exact, Permit2
    let before = shop.usdc(b0.address).await;
    let paid = buyer.get(&shop.at("/permit2")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    settled(&paid.payment);
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(EXACT_UNITS)
    );

    // upto: authorizes the maximum, pays what the handler reports
    let before = shop.usdc(b0.address).await;
    let paid = buyer.get(&shop.at("/upto")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let s = settled(&paid.payment);
    assert_eq!(s.amount, Some(Amount::from(UPTO_USED_UNITS)));
    assert_eq!(paid.response.text().await.unwrap(), "metered content");
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(UPTO_USED_UNITS)
    );

    // upto: the handler names the charge with Settlement-Overrides, as a percentage of the
    // maximum or a price in USDC; the header never reaches the buyer
    for (path, units, text) in [
        (
            "/upto-percent",
            UPTO_MAX_UNITS * 40 / 100,
            "metered by percent",
        ),
        ("/upto-price", 15_000, "metered by price"),
    ] {
        let before = shop.usdc(b0.address).await;
        let paid = buyer.get(&shop.at(path)).await.unwrap();
        assert_eq!(paid.response.status(), 200, "{path}");
        assert!(!paid.response.headers().contains_key(SETTLEMENT_OVERRIDES));
        let s = settled(&paid.payment);
        assert_eq!(s.amount, Some(Amount::from(units)), "{path}");
        assert_eq!(paid.response.text().await.unwrap(), text);
        assert_eq!(shop.usdc(b0.address).await, before - U256::from(units));
    }

    // a price computed per request; a request the price function refuses is a 400
    let before = shop.usdc(b0.address).await;
    let paid = buyer.get(&shop.at("/dynamic?units=1234")).await.unwrap();
    settled(&paid.payment);
    assert_eq!(shop.usdc(b0.address).await, before - U256::from(1234));
    let r = reqwest::get(shop.at("/dynamic")).await.unwrap();
    assert_eq!(r.status(), 400);

    // settle before the handler runs
    let paid = buyer.get(&shop.at("/before")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    settled(&paid.payment);
    assert_eq!(paid.response.text().await.unwrap(), "settled first");
}
