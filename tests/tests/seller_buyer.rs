//! Our buyer pays our axum seller through our facilitator (served over HTTP by the facilitator
//! binary's router) on anvil with Circle's USDC: exact EIP-3009 (v1 and v2), exact Permit2, upto
//! (the actual amount), dynamic prices, settle-before-handler; and everything that must NOT
//! happen: no settle when the handler fails, no body when settlement fails, no second grant for a
//! replayed payment, no payment the policy forbids, no trust in the buyer's `accepted`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alloy::primitives::U256;
use x402_buyer::{Buyer, Error, Policy};
use x402_core::header::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X_PAYMENT_RESPONSE,
};
use x402_core::wire::{PaymentRequired, SettleResponse};
use x402_core::{Amount, NetworkPattern, Registry, X402Version};
use x402_tests::e2e::{EXACT_UNITS, Shop, UPTO_USED_UNITS, buyer_for, sign_first};

fn settled(payment: &Option<x402_buyer::Payment>) -> SettleResponse {
    let s = payment
        .as_ref()
        .and_then(|p| p.settlement.clone())
        .expect("a settlement");
    assert!(s.success, "{s:?}");
    assert!(s.transaction.starts_with("0x"), "{s:?}");
    s
}

#[tokio::test]
async fn every_scheme_and_version_pays_through_our_facilitator() {
    let shop = Shop::start().await;
    let seller = shop.h.bed.seller().address;

    // exact, EIP-3009, v2
    let b0 = &shop.h.bed.buyer(0);
    let buyer = buyer_for(&shop.h, &b0.signer, Policy::default());
    let (before, seller_before) = (shop.usdc(b0.address).await, shop.usdc(seller).await);
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

#[tokio::test]
async fn failures_move_no_funds_and_grant_nothing() {
    let shop = Shop::start().await;
    let seller = shop.h.bed.seller().address;
    let b1 = shop.h.bed.buyer(1).clone();
    let buyer = buyer_for(&shop.h, &b1.signer, Policy::default());

    // The handler fails: its status passes through, nothing is settled, nothing moves.
    let snapshot = shop.h.snapshot(&[b1.address]).await;
    let paid = buyer.get(&shop.at("/fail")).await.unwrap();
    assert_eq!(paid.response.status(), 500);
    assert!(paid.payment.as_ref().unwrap().settlement.is_none());
    assert_eq!(shop.counting.calls(), (1, 0), "verified, never settled");
    shop.h.assert_untouched(&snapshot, "handler failed").await;

    // Settlement fails (the buyer empties its wallet while the handler runs): 402, the body is
    // withheld, the seller gets nothing.
    let b2 = shop.h.bed.buyer(2).clone();
    let header = sign_first(&shop.at("/drain"), &b2.signer, |_| {}).await;
    let seller_before = shop.usdc(seller).await;
    let r = reqwest::Client::new()
        .get(shop.at("/drain"))
        .header(PAYMENT_SIGNATURE, &header)
        .header("x-drain", b2.address.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    let settlement: SettleResponse =
        x402_core::header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert!(!settlement.success, "{settlement:?}");
    assert!(r.headers().contains_key(PAYMENT_REQUIRED));
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("secret"),
        "the handler's body leaked: {body}"
    );
    assert_eq!(shop.usdc(seller).await, seller_before);

    // A payment is granted once: the same PAYMENT-SIGNATURE again is refused, funds move once.
    let b3 = shop.h.bed.buyer(3).clone();
    let header = sign_first(&shop.at("/joke"), &b3.signer, |_| {}).await;
    let before = shop.usdc(b3.address).await;
    let send = |path: &'static str| {
        let url = shop.at(path);
        let header = header.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .header(PAYMENT_SIGNATURE, header)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(send("/joke").await.status(), 200);
    let replay = send("/joke").await;
    assert_eq!(replay.status(), 402);
    assert!(!replay.text().await.unwrap().contains("why did the buyer"));
    assert_eq!(send("/before").await.status(), 402, "nor on another route");
    assert_eq!(
        shop.usdc(b3.address).await,
        before - U256::from(EXACT_UNITS)
    );

    // One payment fired at two routes at once: exactly one 200 (threat model S16).
    let b4 = shop.h.bed.buyer(4).clone();
    let header = sign_first(&shop.at("/joke"), &b4.signer, |_| {}).await;
    let before = shop.usdc(b4.address).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let url = shop.at(if i % 2 == 0 { "/joke" } else { "/before" });
            let header = header.clone();
            tokio::spawn(async move {
                reqwest::Client::new()
                    .get(url)
                    .header(PAYMENT_SIGNATURE, header)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 402),
        "{statuses:?}"
    );
    assert_eq!(
        shop.usdc(b4.address).await,
        before - U256::from(EXACT_UNITS)
    );
}

#[tokio::test]
async fn the_buyers_accepted_is_never_trusted() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    // A payment signed for the real price, with `accepted` claiming a price of 1 unit.
    let header = sign_first(&shop.at("/joke"), &b0.signer, |a| {
        a.amount = Amount::from(1)
    })
    .await;
    let r = reqwest::Client::new()
        .get(shop.at("/joke"))
        .header(PAYMENT_SIGNATURE, header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    let PaymentRequired::V2(doc) = x402_buyer::read_402(r).await.unwrap() else {
        panic!("v2")
    };
    assert_eq!(
        doc.error.as_deref(),
        Some("No matching payment requirements")
    );
    assert_eq!(
        shop.counting.calls(),
        (0, 0),
        "the facilitator was never asked"
    );
}

#[tokio::test]
async fn policy_refusals_send_no_payment() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let before = shop.usdc(b0.address).await;
    let refused = |e: Error, what: &str| match e {
        Error::NoAcceptableOption(reasons) => {
            assert!(reasons.iter().any(|r| r.contains(what)), "{reasons:?}")
        }
        other => panic!("expected a policy refusal, got {other}"),
    };

    let cheap = buyer_for(
        &shop.h,
        &b0.signer,
        Policy {
            max_per_request: Some("0.005".into()),
            ..Policy::default()
        },
    );
    refused(
        cheap.get(&shop.at("/joke")).await.unwrap_err(),
        "more than the maximum of 0.005 USDC per request",
    );
    let elsewhere = buyer_for(
        &shop.h,
        &b0.signer,
        Policy {
            networks: vec![NetworkPattern::parse("eip155:8453").unwrap()],
            ..Policy::default()
        },
    );
    refused(
        elsewhere.get(&shop.at("/joke")).await.unwrap_err(),
        "is not allowed",
    );
    let usdc = Policy {
        assets: vec![x402_tests::e2e::usdc_asset(&shop.h)],
        ..Policy::default()
    };
    let blind = Buyer::new(reqwest::Client::new(), Registry::new(), usdc);
    refused(
        blind.get(&shop.at("/joke")).await.unwrap_err(),
        "no scheme is registered",
    );
    let unknown_asset = Buyer::new(
        reqwest::Client::new(),
        registry_of(&b0.signer),
        Policy::default(),
    );
    refused(
        unknown_asset.get(&shop.at("/joke")).await.unwrap_err(),
        "decimals cannot be checked",
    );
    assert_eq!(shop.counting.calls(), (0, 0), "no payment was sent");
    assert_eq!(shop.usdc(b0.address).await, before);

    // A total budget: the first payment fits, the second does not.
    let budget = buyer_for(
        &shop.h,
        &b0.signer,
        Policy {
            max_total: Some("0.015".into()),
            ..Policy::default()
        },
    );
    assert_eq!(
        budget
            .get(&shop.at("/joke"))
            .await
            .unwrap()
            .response
            .status(),
        200
    );
    refused(
        budget.get(&shop.at("/joke")).await.unwrap_err(),
        "already spent",
    );
    assert_eq!(shop.counting.calls(), (1, 1));
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(EXACT_UNITS)
    );
}

fn registry_of(signer: &alloy::signers::local::PrivateKeySigner) -> Registry {
    let mut r = Registry::new();
    r.register(
        "eip155:*",
        &[X402Version::V1, X402Version::V2],
        std::sync::Arc::new(scheme_exact_evm::ExactEvm::buyer(std::sync::Arc::new(
            signer.clone(),
        ))),
    )
    .unwrap();
    r
}

#[tokio::test]
async fn malformed_payments_are_client_errors_and_browsers_get_a_page() {
    let shop = Shop::start().await;
    let client = reqwest::Client::new();
    let with = |value: &str| {
        client
            .get(shop.at("/joke"))
            .header(PAYMENT_SIGNATURE, value.to_owned())
            .send()
    };
    for bad in [
        "!!!",
        "e30=",
        "eyJ4NDAyVmVyc2lvbiI6MX0=",
        "eyJhIjoxLCJhIjoyfQ==",
    ] {
        let r = with(bad).await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("PAYMENT-SIGNATURE"),
            "{body}"
        );
    }
    let r = client
        .get(shop.at("/joke"))
        .header("x-payment", "%%%")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // No payment: a v2 header and a v1 body, neither cacheable.
    let r = reqwest::get(shop.at("/joke")).await.unwrap();
    assert_eq!(r.status(), 402);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    let v2 = r.headers()[PAYMENT_REQUIRED].to_str().unwrap().to_owned();
    let doc: serde_json::Value = x402_core::header::decode(&v2, 65536).unwrap();
    assert_eq!(doc["x402Version"], 2);
    assert_eq!(doc["accepts"][0]["amount"], EXACT_UNITS.to_string());
    assert!(doc["resource"]["url"].as_str().unwrap().ends_with("/joke"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["x402Version"], 1);
    assert_eq!(body["accepts"][0]["network"], "base-sepolia");

    // A browser gets a readable page.
    let r = client
        .get(shop.at("/joke"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Payment required") && page.contains("a paid joke"),
        "{page}"
    );
    assert_eq!(shop.counting.calls(), (0, 0));
}

#[tokio::test]
async fn the_cli_shows_requirements_and_pays() {
    let shop = Shop::start().await;
    let b0 = shop.h.bed.buyer(0).clone();
    let key = format!("0x{}", alloy::hex::encode(b0.signer.to_bytes()));
    let asset = format!("{}:{}:6:USDC", shop.h.network, shop.h.bed.usdc());
    let run = |args: Vec<String>, key: Option<String>| async move {
        let env = move |name: &str| (name == "X402_PRIVATE_KEY").then(|| key.clone()).flatten();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    };
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let (code, out, _) = run(
        args(&["requirements", &shop.at("/joke"), "--asset", &asset]),
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert!(out.contains("exact on eip155:84532: 0.01 USDC"), "{out}");

    let before = shop.usdc(b0.address).await;
    let (code, out, err) = run(
        args(&["pay", &shop.at("/joke"), "--max", "0.02", "--asset", &asset]),
        Some(key.clone()),
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("why did the buyer pay"), "{out}");
    assert!(
        out.contains("settlement: success") && out.contains("transaction: 0x"),
        "{out}"
    );
    assert!(err.contains("200 OK"), "{err}");
    assert!(
        !out.contains(&key[2..]) && !err.contains(&key[2..]),
        "the key was printed"
    );
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(EXACT_UNITS)
    );

    let (code, _, err) = run(
        args(&[
            "pay",
            &shop.at("/joke"),
            "--max",
            "0.001",
            "--asset",
            &asset,
        ]),
        Some(key),
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("more than the maximum"), "{err}");
    let (code, _, err) = run(args(&["pay", &shop.at("/joke")]), None).await;
    assert_ne!(code, 0);
    assert!(err.contains("X402_PRIVATE_KEY"), "{err}");
}
