//! The layer against a scripted facilitator and a stub scheme (no chain): status codes, headers,
//! what reaches the facilitator, and what never does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use tower::ServiceExt as _;
use x402_core::header::{self, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE};
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV2, PaymentRequiredV2, PaymentRequirements,
    PaymentRequirementsV2, SettleRequest, SettleResponse, SupportedKind, SupportedResponse,
    VerifyRequest, VerifyResponse, to_raw,
};
use x402_core::{
    Amount, Facilitator, FacilitatorError, Network, Price, PriceRequest, Reason, Registry,
    SchemeError, SellerRole, SettleTimeouts, X402Version,
};
use x402_seller::{Accept, Charge, Route, Seller, SellerOptions, SettleTiming};

const ASSET: &str = "0xAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaa";
const PAY_TO: &str = "0xBBBBbbbbBBBBbbbbBBBBbbbbBBBBbbbbBBBBbbbb";

#[derive(Debug)]
struct Stub(&'static str);

#[async_trait]
impl SellerRole for Stub {
    fn scheme(&self) -> &'static str {
        self.0
    }
    async fn requirements(&self, r: &PriceRequest) -> Result<PaymentRequirementsV2, SchemeError> {
        let Price::Atomic(amount) = r.price else {
            return Err(SchemeError::Unusable("atomic only".into()));
        };
        Ok(PaymentRequirementsV2 {
            scheme: self.0.into(),
            network: r.network.to_string(),
            amount,
            asset: ASSET.into(),
            pay_to: r.pay_to.clone(),
            max_timeout_seconds: 60,
            extra: r.facilitator_kind.as_ref().and_then(|k| k.extra.clone()),
        })
    }
}

/// A facilitator whose answers the test scripts, recording what it was asked.
#[derive(Default)]
struct Script {
    supported_calls: AtomicUsize,
    supported_fails: AtomicUsize,
    verify: Mutex<Option<VerifyResponse>>,
    settle: Mutex<Option<SettleResponse>>,
    /// Answers given, in order, before `settle` is (`None`: a transport failure).
    settle_first: Mutex<VecDeque<Option<SettleResponse>>>,
    verified: Mutex<Vec<VerifyRequest>>,
    settled: Mutex<Vec<SettleRequest>>,
}

#[async_trait]
impl Facilitator for Script {
    async fn verify(&self, r: &VerifyRequest) -> Result<VerifyResponse, FacilitatorError> {
        self.verified.lock().unwrap().push(r.clone());
        self.verify
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| FacilitatorError::Transport("connection failed".into()))
    }
    async fn settle(&self, r: &SettleRequest) -> Result<SettleResponse, FacilitatorError> {
        self.settled.lock().unwrap().push(r.clone());
        let queued = self.settle_first.lock().unwrap().pop_front();
        queued
            .unwrap_or_else(|| self.settle.lock().unwrap().clone())
            .ok_or_else(|| FacilitatorError::Transport("timed out".into()))
    }
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        self.supported_calls.fetch_add(1, Ordering::SeqCst);
        if self.supported_fails.load(Ordering::SeqCst) > 0 {
            self.supported_fails.fetch_sub(1, Ordering::SeqCst);
            return Err(FacilitatorError::Transport("connection failed".into()));
        }
        // Slow on purpose: the concurrent requests of a test overlap one fetch in flight.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let kind = |v, scheme: &str, network: &str, extra: Option<&str>| SupportedKind {
            x402_version: v,
            scheme: scheme.into(),
            network: network.into(),
            extra: extra.map(|e| serde_json::value::RawValue::from_string(e.into()).unwrap()),
        };
        Ok(SupportedResponse {
            kinds: vec![
                kind(X402Version::V2, "exact", "eip155:84532", None),
                kind(X402Version::V1, "exact", "base-sepolia", None),
                kind(
                    X402Version::V2,
                    "upto",
                    "eip155:84532",
                    Some(r#"{"facilitatorAddress":"0xFFFF"}"#),
                ),
            ],
            ..SupportedResponse::default()
        })
    }
}

fn network() -> Network {
    Network::eip155(84532)
}

fn app(script: &Arc<Script>) -> Router {
    let mut schemes = Registry::new();
    schemes
        .register("eip155:*", &X402Version::ALL, Stub("exact").into_scheme())
        .unwrap();
    schemes
        .register("eip155:*", &[X402Version::V2], Stub("upto").into_scheme())
        .unwrap();
    // A facilitator answering within 200 ms: a pending settle is retried 20 ms later.
    let options = SellerOptions {
        settle_timeouts: SettleTimeouts::new(Duration::from_millis(200)),
        ..SellerOptions::default()
    };
    let seller = Seller::with_options(script.clone(), schemes, options);
    let exact = |units: u64| {
        Route::new().accept(Accept::new(
            "exact",
            network(),
            PAY_TO,
            Price::Atomic(Amount::from(units)),
        ))
    };
    let upto = Route::new().accept(Accept::new(
        "upto",
        network(),
        PAY_TO,
        Price::Atomic(Amount::from(100u64)),
    ));
    let charge = |n: u64| (Extension(Charge(Amount::from(n))), "metered");
    Router::new()
        .route(
            "/a",
            get(|| async { "content" }).layer(seller.paywall(exact(10)).unwrap()),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::NOT_FOUND, "nope") })
                .layer(seller.paywall(exact(10)).unwrap()),
        )
        .route(
            "/upto",
            get(move || async move { charge(40) }).layer(seller.paywall(upto.clone()).unwrap()),
        )
        .route(
            "/greedy",
            get(move || async move { charge(101) }).layer(
                seller
                    .paywall(Route::new().accept(Accept::new(
                        "upto",
                        network(),
                        PAY_TO,
                        Price::Atomic(Amount::from(100u64)),
                    )))
                    .unwrap(),
            ),
        )
        .route(
            "/before",
            get(|| async { "content" }).layer(
                seller
                    .paywall(exact(10).settle(SettleTiming::BeforeHandler))
                    .unwrap(),
            ),
        )
        .route(
            "/polygon",
            get(|| async { "content" }).layer(
                seller
                    .paywall(Route::new().accept(Accept::new(
                        "exact",
                        Network::eip155(137),
                        PAY_TO,
                        Price::Atomic(Amount::from(1u64)),
                    )))
                    .unwrap(),
            ),
        )
}

async fn call(app: &Router, path: &str, payment: Option<&str>) -> axum::http::Response<Body> {
    let mut request = Request::get(path).header("host", "shop.test");
    if let Some(p) = payment {
        request = request.header(PAYMENT_SIGNATURE, p);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body(response: axum::http::Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A v2 payment for the first requirement the route offers, with `accepted` edited by `edit`.
async fn pay(app: &Router, path: &str, edit: impl FnOnce(&mut PaymentRequirementsV2)) -> String {
    let r = call(app, path, None).await;
    let doc: PaymentRequiredV2 =
        header::decode(r.headers()[PAYMENT_REQUIRED].to_str().unwrap(), 65536).unwrap();
    let mut accepted = doc.accepts[0].clone();
    edit(&mut accepted);
    header::encode(&PaymentPayload::V2(PaymentPayloadV2 {
        x402_version: X402Version::V2,
        resource: Some(doc.resource),
        accepted,
        payload: to_raw(&serde_json::json!({"signature": "0x01"})).unwrap(),
        extensions: None,
    }))
    .unwrap()
}

fn valid() -> Option<VerifyResponse> {
    Some(VerifyResponse::valid("0xPayer"))
}

fn success(network: &str) -> Option<SettleResponse> {
    Some(SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        transaction: "0x1234".into(),
        network: network.into(),
        payer: Some("0xPayer".into()),
        amount: None,
        extensions: None,
    })
}

fn requirements_of(r: &VerifyRequest) -> PaymentRequirementsV2 {
    match &r.payment_requirements {
        PaymentRequirements::V2(r) => r.clone(),
        PaymentRequirements::V1(_) => panic!("v2 expected"),
    }
}

#[tokio::test]
async fn pays_with_the_sellers_own_requirements_and_settles_after_the_handler() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = valid();
    *script.settle.lock().unwrap() = success("eip155:84532");
    let app = app(&script);
    // The buyer writes the addresses in lower case and adds junk to `extra`: still a match, and
    // the facilitator receives the seller's object, not the buyer's.
    let payment = pay(&app, "/a", |a| {
        a.pay_to = a.pay_to.to_lowercase();
        a.extra = Some(to_raw(&serde_json::json!({"junk": 1})).unwrap());
    })
    .await;
    let r = call(&app, "/a", Some(&payment)).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    let s: SettleResponse =
        header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert_eq!(s.transaction, "0x1234");
    assert_eq!(body(r).await, "content");
    let sent = requirements_of(&script.verified.lock().unwrap()[0]);
    assert_eq!(sent.pay_to, PAY_TO);
    assert!(sent.extra.is_none());
    assert_eq!(script.settled.lock().unwrap().len(), 1);
    assert_eq!(script.supported_calls.load(Ordering::SeqCst), 1);

    // Tampered amount: refused before the facilitator is asked.
    let tampered = pay(&app, "/a", |a| a.amount = Amount::from(1u64)).await;
    let r = call(&app, "/a", Some(&tampered)).await;
    assert_eq!(r.status(), 402);
    assert_eq!(script.verified.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn handler_failures_are_not_settled_and_settle_failures_withhold_the_body() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = valid();
    let app = app(&script);
    let r = call(&app, "/fail", Some(&pay(&app, "/fail", |_| {}).await)).await;
    assert_eq!(r.status(), 404);
    assert!(!r.headers().contains_key(PAYMENT_RESPONSE));
    assert!(script.settled.lock().unwrap().is_empty());

    let mut failed = success("eip155:84532").unwrap();
    failed.success = false;
    failed.transaction = String::new();
    failed.error_reason = Some(Reason::from_wire("insufficient_funds"));
    *script.settle.lock().unwrap() = Some(failed);
    let r = call(&app, "/a", Some(&pay(&app, "/a", |_| {}).await)).await;
    assert_eq!(r.status(), 402);
    assert!(r.headers().contains_key(PAYMENT_RESPONSE));
    assert!(!body(r).await.contains("content"));

    // The facilitator claims success on another network: not granted.
    *script.settle.lock().unwrap() = success("eip155:1");
    let r = call(&app, "/a", Some(&pay(&app, "/a", |_| {}).await)).await;
    assert_eq!(r.status(), 502);
    assert!(!body(r).await.contains("content"));

    // The facilitator is down at settle time: 502, body withheld.
    *script.settle.lock().unwrap() = None;
    let r = call(&app, "/a", Some(&pay(&app, "/a", |_| {}).await)).await;
    assert_eq!(r.status(), 502);
    assert!(!body(r).await.contains("content"));

    // …and at verify time: 502, the handler never ran.
    *script.verify.lock().unwrap() = None;
    let r = call(&app, "/a", Some(&pay(&app, "/a", |_| {}).await)).await;
    assert_eq!(r.status(), 502);

    // An invalid payment: 402 with the reason; permit2_allowance_required: 412.
    *script.verify.lock().unwrap() = Some(VerifyResponse::invalid(
        Reason::from_wire("permit2_allowance_required"),
        None,
        None,
    ));
    let r = call(&app, "/a", Some(&pay(&app, "/a", |_| {}).await)).await;
    assert_eq!(r.status(), 412);
}

#[tokio::test]
async fn upto_settles_the_reported_charge_and_never_more_than_authorized() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = valid();
    *script.settle.lock().unwrap() = success("eip155:84532");
    let app = app(&script);
    let r = call(&app, "/upto", Some(&pay(&app, "/upto", |_| {}).await)).await;
    assert_eq!(r.status(), 200);
    let verified = requirements_of(&script.verified.lock().unwrap()[0]);
    assert_eq!(verified.amount, Amount::from(100u64));
    assert!(verified.extra.unwrap().get().contains("facilitatorAddress"));
    let settled = requirements_of(&script.settled.lock().unwrap()[0]);
    assert_eq!(settled.amount, Amount::from(40u64));

    let r = call(&app, "/greedy", Some(&pay(&app, "/greedy", |_| {}).await)).await;
    assert_eq!(r.status(), 500);
    assert_eq!(script.settled.lock().unwrap().len(), 1, "not settled");

    let r = call(&app, "/before", Some(&pay(&app, "/before", |_| {}).await)).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key(PAYMENT_RESPONSE));
}

#[tokio::test]
async fn supported_is_fetched_once_and_outages_are_clear() {
    let script = Arc::new(Script::default());
    script.supported_fails.store(1, Ordering::SeqCst);
    let app = app(&script);
    let r = call(&app, "/a", None).await;
    assert_eq!(r.status(), 503);
    assert!(body(r).await.contains("facilitator is unavailable"));
    // Not cached: the next requests (concurrent) fetch it once more, exactly once.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { call(&app, "/a", None).await.status() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 402);
    }
    assert_eq!(script.supported_calls.load(Ordering::SeqCst), 2);
    // An option the facilitator does not serve is not offered; none left is a 503.
    assert_eq!(call(&app, "/polygon", None).await.status(), 503);
    // Malformed payments are the client's problem, never a 5xx.
    for bad in ["", "!", "eyJ9", "e30="] {
        let r = call(&app, "/a", Some(bad)).await;
        assert_eq!(r.status(), 400, "{bad:?}");
    }
}

const PENDING_TX: &str = "0xfeed";

fn pending() -> Option<SettleResponse> {
    Some(SettleResponse {
        success: false,
        error_reason: Some(Reason::SETTLEMENT_PENDING),
        error_message: Some("not decided within the bound".into()),
        transaction: PENDING_TX.into(),
        ..success("eip155:84532").unwrap()
    })
}

/// Every settle request the facilitator received is the same payment and requirements.
fn settled_identically(script: &Script, count: usize) {
    let settled = script.settled.lock().unwrap();
    assert_eq!(settled.len(), count, "settles");
    let first = serde_json::to_value(&settled[0]).unwrap();
    for other in &settled[1..] {
        assert_eq!(serde_json::to_value(other).unwrap(), first);
    }
}

#[tokio::test]
async fn a_pending_settlement_is_retried_once_and_then_granted() {
    for path in ["/a", "/before"] {
        let script = Arc::new(Script::default());
        *script.verify.lock().unwrap() = valid();
        *script.settle.lock().unwrap() = success("eip155:84532");
        script.settle_first.lock().unwrap().push_back(pending());
        let app = app(&script);
        let payment = pay(&app, path, |_| {}).await;
        let started = std::time::Instant::now();
        let r = call(&app, path, Some(&payment)).await;
        assert!(started.elapsed() >= Duration::from_millis(20), "paused");
        assert_eq!(r.status(), 200, "{path}");
        assert!(!r.headers().contains_key(PAYMENT_REQUIRED));
        let s: SettleResponse =
            header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
        assert!(s.success, "{s:?}");
        assert_eq!(s.transaction, "0x1234");
        assert_eq!(body(r).await, "content");
        settled_identically(&script, 2);
        assert_eq!(script.verified.lock().unwrap().len(), 1, "verified once");
    }
}

#[tokio::test]
async fn a_settlement_still_pending_is_a_504_naming_the_transaction_never_a_402() {
    let mut still_pending = pending().unwrap();
    still_pending.error_message = Some("still not decided".into());
    let refused = SettleResponse {
        error_reason: Some(Reason::DUPLICATE_SETTLEMENT),
        error_message: Some("this payment's settlement is pending".into()),
        ..pending().unwrap()
    };
    // (the retry's answer, the settlement reported): pending again; refused by a facilitator
    // that recorded the pending outcome; the facilitator unreachable.
    let cases = [
        (Some(still_pending.clone()), "still not decided"),
        (Some(refused), "not decided within the bound"),
        (None, "not decided within the bound"),
    ];
    for path in ["/a", "/before"] {
        for (retry, reported) in &cases {
            let script = Arc::new(Script::default());
            *script.verify.lock().unwrap() = valid();
            // Any further settle would succeed: only the one retry may be made.
            *script.settle.lock().unwrap() = success("eip155:84532");
            script
                .settle_first
                .lock()
                .unwrap()
                .extend([pending(), retry.clone()]);
            let app = app(&script);
            let r = call(&app, path, Some(&pay(&app, path, |_| {}).await)).await;
            assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT, "{path} {retry:?}");
            assert!(
                !r.headers().contains_key(PAYMENT_REQUIRED),
                "a 402 invitation to pay again"
            );
            assert!(
                r.headers()["cache-control"]
                    .to_str()
                    .unwrap()
                    .contains("no-store")
            );
            let s: SettleResponse =
                header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
            assert!(!s.success);
            assert_eq!(s.error_reason, Some(Reason::SETTLEMENT_PENDING));
            assert_eq!(s.transaction, PENDING_TX);
            assert_eq!(s.error_message.as_deref(), Some(*reported));
            let text = body(r).await;
            assert!(!text.contains("content"), "the content leaked: {text}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["errorReason"], "settlement_pending", "{v}");
            assert_eq!(v["transaction"], PENDING_TX, "{v}");
            assert_eq!(v["network"], "eip155:84532", "{v}");
            assert!(
                v["error"].as_str().unwrap().contains("being settled"),
                "{v}"
            );
            settled_identically(&script, 2);
        }
    }
}

#[tokio::test]
async fn other_settlement_failures_are_a_402_and_not_retried() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = valid();
    *script.settle.lock().unwrap() = Some(SettleResponse {
        error_reason: Some(Reason::TRANSACTION_FAILED),
        ..pending().unwrap()
    });
    let app = app(&script);
    let r = call(&app, "/a", Some(&pay(&app, "/a", |_| {}).await)).await;
    assert_eq!(r.status(), 402);
    assert!(r.headers().contains_key(PAYMENT_REQUIRED));
    let s: SettleResponse =
        header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert_eq!(s.error_reason, Some(Reason::TRANSACTION_FAILED));
    assert!(!body(r).await.contains("content"));
    settled_identically(&script, 1);
}
