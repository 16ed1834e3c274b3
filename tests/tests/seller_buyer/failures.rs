//! What must not happen: settling after a failed handler, leaking a body after a failed
//! settlement, settling more than authorized, granting a replayed payment, trusting the buyer's
//! `accepted`.

use alloy::primitives::U256;
use x402_buyer::Policy;
use x402_core::Amount;
use x402_core::header::{PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE};
use x402_core::wire::{PaymentRequired, SettleResponse, to_raw};
use x402_seller::SETTLEMENT_OVERRIDES;
use x402_tests::e2e::{EXACT_UNITS, Shop, buyer_for, sign_first};

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
    // The reference's shape: the failed settle response in PAYMENT-RESPONSE, body `{}`, no new
    // offers.
    assert_eq!(r.status(), 402);
    let settlement: SettleResponse =
        x402_core::header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert!(!settlement.success, "{settlement:?}");
    assert!(settlement.error_reason.is_some(), "{settlement:?}");
    assert!(!r.headers().contains_key(PAYMENT_REQUIRED));
    let body = r.text().await.unwrap();
    assert_eq!(body, "{}", "the handler's body leaked: {body}");
    assert_eq!(shop.usdc(seller).await, seller_before);

    // upto: the handler names more than the buyer authorized (`$1` of a 0.05 maximum): a 500,
    // nothing settled, nothing moves.
    let snapshot = shop.h.snapshot(&[b1.address]).await;
    let calls = shop.counting.calls();
    let paid = buyer.get(&shop.at("/upto-greedy")).await.unwrap();
    assert_eq!(paid.response.status(), 500);
    assert!(!paid.response.headers().contains_key(SETTLEMENT_OVERRIDES));
    let text = paid.response.text().await.unwrap();
    assert!(
        text.contains("more than the 50000 the buyer authorized") && !text.contains("greedily"),
        "{text}"
    );
    assert_eq!(
        shop.counting.calls(),
        (calls.0 + 1, calls.1),
        "never settled"
    );
    shop.h
        .assert_untouched(&snapshot, "override above the maximum")
        .await;

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
    // A Permit2 requirement whose `accepted` drops the non-default assetTransferMethod names
    // no requirement of the seller (the reference's rule: the seller's `extra` must be echoed).
    let header = sign_first(&shop.at("/permit2"), &b0.signer, |a| {
        let extra: serde_json::Value =
            serde_json::from_str(a.extra.as_ref().unwrap().get()).unwrap();
        assert_eq!(extra["assetTransferMethod"], "permit2");
        a.extra = Some(
            to_raw(&serde_json::json!({"name": extra["name"], "version": extra["version"]}))
                .unwrap(),
        );
    })
    .await;
    let r = reqwest::Client::new()
        .get(shop.at("/permit2"))
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
