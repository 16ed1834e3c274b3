//! The seller's hooks and parity features on anvil with Circle's USDC, paid through our
//! facilitator over HTTP: a hook's abort (the denied payer gets the hook's reason, nothing
//! settles), a recovery, free access and 403 on a protected request, the handler seeing the
//! payer and the transaction, a dead first facilitator, payTo per request, a custom 402 body.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, U256};
use async_trait::async_trait;
use axum::Extension;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use x402_buyer::Policy;
use x402_core::client::FacilitatorClient;
use x402_core::header::{PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE};
use x402_core::hook::{Before, Failure};
use x402_core::wire::{PaymentRequired, SettleResponse, VerifyResponse};
use x402_core::{Amount, Price, Reason, Rejection, X402Version};
use x402_evm::assets::TransferMethod;
use x402_seller::{
    Accept, Access, CustomBody, HookError, Route, SellerCall, SellerHook, SettleTiming,
    VerifiedPayment,
};
use x402_tests::e2e::{Counting, EXACT_UNITS, Shop, buyer_for, evm_seller, serve, sign_first};

use crate::settled;

/// A compliance screen: refuses the settlement of a denied payer; records the settlements it
/// sees; grants members and refuses a blocked region before any payment handling; recovers a
/// failed settlement when told to.
#[derive(Debug, Default)]
struct Screen {
    denied: Vec<String>,
    recover_settle: bool,
    settled: Mutex<Vec<SettleResponse>>,
}

#[async_trait]
impl SellerHook for Screen {
    fn name(&self) -> &str {
        "screen"
    }

    async fn on_protected_request(&self, request: &Parts) -> Result<Access, HookError> {
        if request.headers.get("x-member").is_some_and(|v| v == "gold") {
            return Ok(Access::Grant);
        }
        if request.headers.contains_key("x-blocked-region") {
            return Ok(Access::Refuse("not available in your region".into()));
        }
        Ok(Access::Continue)
    }

    async fn on_verified(
        &self,
        call: &SellerCall<'_>,
        _response: &VerifyResponse,
    ) -> Result<Before, HookError> {
        if call
            .payer
            .is_some_and(|p| self.denied.iter().any(|d| d == p))
        {
            return Ok(Before::Abort(Rejection {
                reason: Reason::PAYER_DENIED,
                message: Some("on the seller's deny list".into()),
            }));
        }
        Ok(Before::Proceed)
    }

    async fn after_settle(&self, _call: &SellerCall<'_>, response: &SettleResponse) {
        self.settled.lock().unwrap().push(response.clone());
    }

    async fn on_settle_failure(
        &self,
        _call: &SellerCall<'_>,
        failure: Failure<'_, SettleResponse>,
    ) -> Result<Option<SettleResponse>, HookError> {
        let Failure::Refused(refused) = failure else {
            return Ok(None);
        };
        // A seller that serves a failed settlement anyway (its own risk): the answer changes,
        // the chain does not.
        Ok(self.recover_settle.then(|| SettleResponse {
            success: true,
            error_reason: None,
            error_message: None,
            transaction: "recovered-by-the-seller".into(),
            ..refused.clone()
        }))
    }
}

fn exact(shop: &Shop) -> Accept {
    Accept::new(
        "exact",
        shop.h.network.clone(),
        shop.h.bed.seller().address.to_checksum(None),
        Price::Atomic(Amount::from(EXACT_UNITS)),
    )
    .max_timeout_seconds(120)
}

/// What the handler saw of the payment.
async fn sees(payment: Option<Extension<VerifiedPayment>>) -> String {
    match payment {
        Some(Extension(p)) => format!(
            "payer={} tx={}",
            p.payer.clone().unwrap_or_default(),
            p.transaction().unwrap_or("-")
        ),
        None => "free".into(),
    }
}

/// The `error` of a 402's `PAYMENT-REQUIRED`.
fn required_error(r: &reqwest::Response) -> Option<String> {
    let doc: x402_core::wire::PaymentRequiredV2 =
        x402_core::header::decode(r.headers()[PAYMENT_REQUIRED].to_str().unwrap(), 65536).unwrap();
    doc.error
}

async fn send_paid(url: &str, header: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header(PAYMENT_SIGNATURE, header)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_seller_hook_denies_a_payer_recovers_grants_and_refuses() {
    let shop = Shop::start().await;
    let denied = shop.h.bed.buyer(1).clone();
    let screen = Arc::new(Screen {
        denied: vec![denied.address.to_checksum(None)],
        ..Screen::default()
    });
    let recovering = Arc::new(Screen {
        recover_settle: true,
        ..Screen::default()
    });
    let seller = evm_seller(&shop.h, shop.counting.clone(), TransferMethod::Eip3009)
        .with_hook(screen.clone());
    let recovering_seller = evm_seller(&shop.h, shop.counting.clone(), TransferMethod::Eip3009)
        .with_hook(recovering.clone());
    let drain_bed = shop.h.clone();
    // How often the screened routes' handler ran.
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = {
        let runs = runs.clone();
        move |payment: Option<Extension<VerifiedPayment>>| {
            runs.fetch_add(1, Ordering::SeqCst);
            sees(payment)
        }
    };
    let app = axum::Router::new()
        .route(
            "/after",
            get(counted.clone()).layer(seller.paywall(Route::new().accept(exact(&shop))).unwrap()),
        )
        .route(
            "/before",
            get(counted).layer(
                seller
                    .paywall(
                        Route::new()
                            .accept(exact(&shop))
                            .settle(SettleTiming::BeforeHandler),
                    )
                    .unwrap(),
            ),
        )
        .route(
            "/drain",
            get(move |headers: HeaderMap| {
                let h = drain_bed.clone();
                async move {
                    // The buyer empties its wallet while the handler runs: settlement fails.
                    let buyer: Address = headers["x-drain"].to_str().unwrap().parse().unwrap();
                    let all = h.usdc(buyer).await;
                    h.bed
                        .transfer_usdc(buyer, h.bed.deployer().address, all)
                        .await;
                    "served although the settlement failed"
                }
            })
            .layer(
                recovering_seller
                    .paywall(Route::new().accept(exact(&shop)))
                    .unwrap(),
            ),
        );
    let url = serve(app).await;
    let at = |p: &str| format!("{url}{p}");

    // The denied payer, on both settle timings: 402 with the hook's reason, verified but never
    // settled, nothing moves, the handler never runs.
    for path in ["/after", "/before"] {
        let snapshot = shop.h.snapshot(&[denied.address]).await;
        let calls = shop.counting.calls();
        let header = sign_first(&at(path), &denied.signer, |_| {}).await;
        let r = send_paid(&at(path), &header).await;
        assert_eq!(r.status(), 402, "{path}");
        assert_eq!(
            required_error(&r).as_deref(),
            Some("payer_denied"),
            "{path}"
        );
        assert!(!r.headers().contains_key(PAYMENT_RESPONSE));
        let text = r.text().await.unwrap();
        assert!(!text.contains("payer="), "{path}: {text}");
        assert_eq!(
            shop.counting.calls(),
            (calls.0 + 1, calls.1),
            "{path}: verified, never settled"
        );
        shop.h.assert_untouched(&snapshot, "a denied payer").await;
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "the handler ran for a denied payer"
    );
    assert!(screen.settled.lock().unwrap().is_empty());

    // Another payer pays through the same screen; the after-settle hook gets the settlement the
    // buyer gets in PAYMENT-RESPONSE.
    let b0 = shop.h.bed.buyer(0).clone();
    let buyer = buyer_for(&shop.h, &b0.signer, Policy::default());
    let before = shop.usdc(b0.address).await;
    let paid = buyer.get(&at("/after")).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let s = settled(&paid.payment);
    assert_eq!(
        paid.response.text().await.unwrap(),
        format!("payer={} tx=-", b0.address.to_checksum(None))
    );
    assert_eq!(
        screen.settled.lock().unwrap().last().unwrap().transaction,
        s.transaction
    );
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(EXACT_UNITS)
    );

    // Free access: no payment asked, none taken, even with a payment header.
    let calls = shop.counting.calls();
    let snapshot = shop.h.snapshot(&[b0.address]).await;
    let header = sign_first(&at("/before"), &b0.signer, |_| {}).await;
    let r = reqwest::Client::new()
        .get(at("/before"))
        .header("x-member", "gold")
        .header(PAYMENT_SIGNATURE, &header)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key(PAYMENT_RESPONSE));
    assert_eq!(r.text().await.unwrap(), "free");
    // Refused: 403 with the hook's message, no offers.
    let r = reqwest::Client::new()
        .get(at("/before"))
        .header("x-blocked-region", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!r.headers().contains_key(PAYMENT_REQUIRED));
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not available in your region")
    );
    assert_eq!(
        shop.counting.calls(),
        calls,
        "the facilitator was not asked"
    );
    shop.h
        .assert_untouched(&snapshot, "free access and 403")
        .await;

    // Recovery: the settlement fails on chain (the buyer drained its wallet while the handler
    // ran); the seller's hook recovers it into a success — the response is served with the
    // hook's settlement, and the chain is unchanged: the seller got nothing.
    let b2 = shop.h.bed.buyer(2).clone();
    let seller_before = shop.usdc(shop.h.bed.seller().address).await;
    let header = sign_first(&at("/drain"), &b2.signer, |_| {}).await;
    let r = reqwest::Client::new()
        .get(at("/drain"))
        .header(PAYMENT_SIGNATURE, &header)
        .header("x-drain", b2.address.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s: SettleResponse =
        x402_core::header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert!(s.success);
    assert_eq!(s.transaction, "recovered-by-the-seller");
    assert_eq!(
        r.text().await.unwrap(),
        "served although the settlement failed"
    );
    assert_eq!(
        recovering
            .settled
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .transaction,
        "recovered-by-the-seller"
    );
    assert_eq!(shop.usdc(shop.h.bed.seller().address).await, seller_before);
}

#[tokio::test]
async fn the_handler_sees_the_payer_and_the_transaction_it_settled() {
    let shop = Shop::start().await;
    let seller = evm_seller(&shop.h, shop.counting.clone(), TransferMethod::Eip3009);
    let app = axum::Router::new().route(
        "/before",
        get(sees).layer(
            seller
                .paywall(
                    Route::new()
                        .accept(exact(&shop))
                        .settle(SettleTiming::BeforeHandler),
                )
                .unwrap(),
        ),
    );
    let url = format!("{}/before", serve(app).await);
    let b3 = shop.h.bed.buyer(3).clone();
    let buyer = buyer_for(&shop.h, &b3.signer, Policy::default());
    let paid = buyer.get(&url).await.unwrap();
    assert_eq!(paid.response.status(), 200);
    let s = settled(&paid.payment);
    assert_eq!(
        paid.response.text().await.unwrap(),
        format!(
            "payer={} tx={}",
            b3.address.to_checksum(None),
            s.transaction
        )
    );
}

#[tokio::test]
async fn a_seller_whose_first_facilitator_is_dead_sells_through_the_second() {
    let shop = Shop::start().await;
    // A port nothing listens on.
    let dead_url = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let dead = Arc::new(Counting::new(Arc::new(FacilitatorClient::new(dead_url))));
    let seller = evm_seller(&shop.h, dead.clone(), TransferMethod::Eip3009)
        .with_facilitator(shop.counting.clone());
    let app = axum::Router::new().route(
        "/joke",
        get(|| async { "sold anyway" })
            .layer(seller.paywall(Route::new().accept(exact(&shop))).unwrap()),
    );
    // Start-up validation: the live facilitator covers the route; the dead one is skipped.
    seller.validate().await.unwrap();
    let url = format!("{}/joke", serve(app).await);
    let b4 = shop.h.bed.buyer(4).clone();
    let buyer = buyer_for(&shop.h, &b4.signer, Policy::default());
    let seller_address = shop.h.bed.seller().address;
    for _ in 0..2 {
        let (before, seller_before) =
            (shop.usdc(b4.address).await, shop.usdc(seller_address).await);
        let paid = buyer.get(&url).await.unwrap();
        assert_eq!(paid.response.status(), 200);
        settled(&paid.payment);
        assert_eq!(paid.response.text().await.unwrap(), "sold anyway");
        assert_eq!(
            shop.usdc(b4.address).await,
            before - U256::from(EXACT_UNITS)
        );
        assert_eq!(
            shop.usdc(seller_address).await,
            seller_before + U256::from(EXACT_UNITS)
        );
    }
    assert_eq!(dead.calls(), (0, 0));
    assert_eq!(shop.counting.calls(), (2, 2));
}

#[tokio::test]
async fn dynamic_pay_to_pays_the_right_wallet_per_request() {
    let shop = Shop::start().await;
    let tenant_a = shop.h.bed.seller().address;
    let tenant_b = Address::repeat_byte(0x7e);
    let seller = evm_seller(&shop.h, shop.counting.clone(), TransferMethod::Eip3009);
    let route = Route::new().accept(exact(&shop).dynamic_pay_to(
        move |parts| match parts.uri.query() {
            Some("tenant=a") => Ok(tenant_a.to_checksum(None)),
            Some("tenant=b") => Ok(tenant_b.to_checksum(None)),
            _ => Err("name a tenant: ?tenant=a or ?tenant=b".into()),
        },
    ));
    let app = axum::Router::new().route(
        "/shop",
        get(|| async { "tenant content" }).layer(seller.paywall(route).unwrap()),
    );
    let url = format!("{}/shop", serve(app).await);
    let tenant = |t: &str| format!("{url}?tenant={t}");
    let b0 = shop.h.bed.buyer(0).clone();
    let buyer = buyer_for(&shop.h, &b0.signer, Policy::default());

    for (t, wallet) in [("a", tenant_a), ("b", tenant_b), ("b", tenant_b)] {
        let (other, other_before) = if wallet == tenant_a {
            (tenant_b, shop.usdc(tenant_b).await)
        } else {
            (tenant_a, shop.usdc(tenant_a).await)
        };
        let before = shop.usdc(wallet).await;
        let paid = buyer.get(&tenant(t)).await.unwrap();
        assert_eq!(paid.response.status(), 200, "tenant {t}");
        settled(&paid.payment);
        assert_eq!(
            shop.usdc(wallet).await,
            before + U256::from(EXACT_UNITS),
            "tenant {t} is paid"
        );
        assert_eq!(shop.usdc(other).await, other_before, "the other is not");
    }
    assert_eq!(shop.usdc(tenant_b).await, U256::from(2 * EXACT_UNITS));
    let r = reqwest::get(format!("{url}?tenant=c")).await.unwrap();
    assert_eq!(r.status(), 400);

    // A payment signed for tenant a, sent on tenant b's request: no match, nothing moves.
    let b1 = shop.h.bed.buyer(1).clone();
    let header = sign_first(&tenant("a"), &b1.signer, |_| {}).await;
    let snapshot = shop.h.snapshot(&[b1.address, tenant_b]).await;
    let calls = shop.counting.calls();
    let r = send_paid(&tenant("b"), &header).await;
    assert_eq!(r.status(), 402);
    assert_eq!(
        required_error(&r).as_deref(),
        Some("No matching payment requirements")
    );
    assert_eq!(
        shop.counting.calls(),
        calls,
        "the facilitator was not asked"
    );
    shop.h
        .assert_untouched(&snapshot, "a payment replayed on another tenant")
        .await;
}

#[tokio::test]
async fn a_custom_unpaid_body_keeps_the_offers_in_the_header() {
    let shop = Shop::start().await;
    let seller = evm_seller(&shop.h, shop.counting.clone(), TransferMethod::Eip3009);
    let route = Route::new()
        .versions(&[X402Version::V2])
        .description("a paid joke")
        .accept(exact(&shop))
        .unpaid_body(|ctx| {
            CustomBody::json(&serde_json::json!({
                "message": format!("{} costs {} units", ctx.resource.url, ctx.accepts[0].amount),
                "signUp": "https://jokes.example/plans",
            }))
        });
    let app = axum::Router::new().route(
        "/joke",
        get(|| async { "a custom joke" }).layer(seller.paywall(route).unwrap()),
    );
    let url = format!("{}/joke", serve(app).await);
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 402);
    assert_eq!(r.headers()["content-type"], "application/json");
    let PaymentRequired::V2(doc) = x402_buyer::read_402(r).await.unwrap() else {
        panic!("v2 in PAYMENT-REQUIRED")
    };
    assert_eq!(doc.accepts[0].amount, Amount::from(EXACT_UNITS));
    let r = reqwest::get(&url).await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["signUp"], "https://jokes.example/plans");
    assert_eq!(body["message"], format!("{url} costs {EXACT_UNITS} units"));
    // Our buyer pays through it (it reads the header).
    let b0 = shop.h.bed.buyer(0).clone();
    let before = shop.usdc(b0.address).await;
    let paid = buyer_for(&shop.h, &b0.signer, Policy::default())
        .get(&url)
        .await
        .unwrap();
    assert_eq!(paid.response.status(), 200);
    settled(&paid.payment);
    assert_eq!(
        shop.usdc(b0.address).await,
        before - U256::from(EXACT_UNITS)
    );
}
