//! The layer against a scripted facilitator and a stub scheme (no chain): status codes, headers,
//! what reaches the facilitator, and what never does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::IntoResponse as _;
use axum::routing::get;
use axum::{Extension, Router};
use tower::ServiceExt as _;
use x402_core::header::{
    self, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, X_PAYMENT, X_PAYMENT_RESPONSE,
};
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentPayloadV2, PaymentRequiredV2, PaymentRequirements,
    PaymentRequirementsV2, SettleRequest, SettleResponse, SupportedKind, SupportedResponse,
    VerifyRequest, VerifyResponse, to_raw,
};
use x402_core::{
    Amount, Facilitator, FacilitatorError, Network, Price, PriceRequest, Reason, Registry,
    SchemeError, SellerRole, SettleTimeouts, X402Version,
};
use x402_seller::{
    Accept, Charge, ConfigError, Route, SETTLEMENT_OVERRIDES, Seller, SellerOptions, SettleTiming,
    SettlementOverrides,
};

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
        // An asset of 6 decimals.
        let amount = match &r.price {
            Price::Atomic(a) => *a,
            Price::Decimal(d) => x402_core::price_to_atomic(d, 6)
                .map_err(|e| SchemeError::Unusable(e.to_string()))?,
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
            "/override",
            get(echo_override).layer(seller.paywall(upto_route(100)).unwrap()),
        )
        .route(
            "/half",
            get(|| async { (SettlementOverrides::amount("50%"), "metered") })
                .layer(seller.paywall(upto_route(100)).unwrap()),
        )
        .route(
            "/both",
            get(|| async {
                (
                    Extension(Charge(Amount::from(30u64))),
                    SettlementOverrides::amount("50%"),
                    "metered",
                )
            })
            .layer(seller.paywall(upto_route(100)).unwrap()),
        )
        .route(
            "/override-fail",
            get(|| async {
                (
                    StatusCode::NOT_FOUND,
                    SettlementOverrides::amount("1"),
                    "nope",
                )
            })
            .layer(seller.paywall(upto_route(100)).unwrap()),
        )
        .route(
            "/override-exact",
            get(echo_override).layer(seller.paywall(exact(10)).unwrap()),
        )
        .route(
            "/override-before",
            get(echo_override).layer(
                seller
                    .paywall(exact(10).settle(SettleTiming::BeforeHandler))
                    .unwrap(),
            ),
        )
        .route(
            "/described",
            get(|| async { "content" }).layer(
                seller
                    .paywall(
                        exact(10)
                            .description("weather")
                            .service_name("Weather Co")
                            .tags(["weather", "forecast"])
                            .icon_url("https://weather.example/icon.png"),
                    )
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

fn upto_route(max: u64) -> Route {
    Route::new().accept(Accept::new(
        "upto",
        network(),
        PAY_TO,
        Price::Atomic(Amount::from(max)),
    ))
}

/// A handler that answers with the request's `x-override` as its `Settlement-Overrides`.
async fn echo_override(headers: HeaderMap) -> axum::response::Response {
    let mut response = "metered".into_response();
    for v in headers.get_all("x-override") {
        response
            .headers_mut()
            .append(SETTLEMENT_OVERRIDES, v.clone());
    }
    response
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
        extra: None,
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
    // The buyer adds junk to `extra` (the seller wrote none): still a match, and the facilitator
    // receives the seller's object, not the buyer's.
    let payment = pay(&app, "/a", |a| {
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

    // Tampered amount, an address respelled, another timeout: refused before the facilitator
    // is asked (every member but `extra` is compared exactly, as the reference compares them).
    let edits: [fn(&mut PaymentRequirementsV2); 3] = [
        |a| a.amount = Amount::from(1u64),
        |a| a.pay_to = a.pay_to.to_lowercase(),
        |a| a.max_timeout_seconds += 1,
    ];
    for edit in edits {
        let tampered = pay(&app, "/a", edit).await;
        let r = call(&app, "/a", Some(&tampered)).await;
        assert_eq!(r.status(), 402);
        assert_eq!(
            required_error(&r).as_deref(),
            Some("No matching payment requirements")
        );
    }
    assert_eq!(script.verified.lock().unwrap().len(), 1);
}

/// The `error` of a response's `PAYMENT-REQUIRED`.
fn required_error(r: &axum::http::Response<Body>) -> Option<String> {
    let doc: PaymentRequiredV2 =
        header::decode(r.headers()[PAYMENT_REQUIRED].to_str().unwrap(), 65536).unwrap();
    doc.error
}

#[tokio::test]
async fn the_sellers_extra_must_be_echoed() {
    // The upto requirement's extra names the facilitator (from /supported): a buyer that drops
    // or changes it names no requirement of the seller; one that adds to it still does.
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = valid();
    *script.settle.lock().unwrap() = success("eip155:84532");
    let app = app(&script);
    for extra in [None, Some(r#"{"facilitatorAddress":"0xffff"}"#), Some("{}")] {
        let payment = pay(&app, "/upto", |a| {
            a.extra = extra.map(|e| serde_json::value::RawValue::from_string(e.into()).unwrap());
        })
        .await;
        let r = call(&app, "/upto", Some(&payment)).await;
        assert_eq!(r.status(), 402, "{extra:?}");
        assert_eq!(
            required_error(&r).as_deref(),
            Some("No matching payment requirements")
        );
    }
    assert!(script.verified.lock().unwrap().is_empty(), "never verified");
    let payment = pay(&app, "/upto", |a| {
        a.extra = Some(
            to_raw(&serde_json::json!({"mine": [1], "facilitatorAddress": "0xFFFF"})).unwrap(),
        );
    })
    .await;
    assert_eq!(call(&app, "/upto", Some(&payment)).await.status(), 200);
    // The facilitator got the seller's extra, not the buyer's.
    let sent = requirements_of(&script.verified.lock().unwrap()[0]);
    assert_eq!(
        sent.extra.unwrap().get(),
        r#"{"facilitatorAddress":"0xFFFF"}"#
    );
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
    // The reference's shape: 402, the failed settlement in PAYMENT-RESPONSE, body `{}`, no
    // fresh offers.
    assert_eq!(r.status(), 402);
    let s: SettleResponse =
        header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert!(!s.success);
    assert_eq!(s.error_reason, Some(Reason::INSUFFICIENT_FUNDS));
    assert!(!r.headers().contains_key(PAYMENT_REQUIRED));
    assert_eq!(r.headers()["content-type"], "application/json");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    assert_eq!(body(r).await, "{}");

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
    assert_eq!(
        required_error(&r).as_deref(),
        Some("permit2_allowance_required")
    );
}

#[tokio::test]
async fn a_refused_payment_names_the_bare_reason_code() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = Some(VerifyResponse::invalid(
        Reason::from_wire("invalid_exact_evm_insufficient_balance"),
        Some("balance 3 < 10".into()),
        Some("0xPayer".into()),
    ));
    let app = app(&script);
    // v2: the PAYMENT-REQUIRED `error` is the reason alone, without the facilitator's message;
    // the body is the v1 document (the route also serves v1) with the same `error`.
    let r = call(&app, "/a", Some(&pay(&app, "/a", |_| {}).await)).await;
    assert_eq!(r.status(), 402);
    assert_eq!(
        required_error(&r).as_deref(),
        Some("invalid_exact_evm_insufficient_balance")
    );
    let v1: serde_json::Value = serde_json::from_str(&body(r).await).unwrap();
    assert_eq!(v1["error"], "invalid_exact_evm_insufficient_balance");
    assert_eq!(v1["payer"], "0xPayer");
    // v1 (X-PAYMENT): the same.
    let r = call_with(&app, "/a", &[(X_PAYMENT, &pay_v1())]).await;
    assert_eq!(r.status(), 402);
    let v1: serde_json::Value = serde_json::from_str(&body(r).await).unwrap();
    assert_eq!(v1["x402Version"], 1);
    assert_eq!(
        v1["error"], "invalid_exact_evm_insufficient_balance",
        "{v1}"
    );
    assert!(!v1.to_string().contains("balance 3"), "{v1}");
}

/// A v1 payment (`X-PAYMENT`) of `/a`'s price on base-sepolia.
fn pay_v1() -> String {
    header::encode(&PaymentPayload::V1(PaymentPayloadV1 {
        x402_version: X402Version::V1,
        scheme: "exact".into(),
        network: "base-sepolia".into(),
        payload: to_raw(&serde_json::json!({"signature": "0x01"})).unwrap(),
    }))
    .unwrap()
}

async fn call_with(
    app: &Router,
    path: &str,
    headers: &[(&str, &str)],
) -> axum::http::Response<Body> {
    let mut request = Request::get(path).header("host", "shop.test");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failed_v1_settlement_is_the_v1_document_with_the_bare_reason() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = valid();
    *script.settle.lock().unwrap() = Some(SettleResponse {
        success: false,
        transaction: String::new(),
        error_reason: Some(Reason::from_wire("invalid_exact_evm_nonce_already_used")),
        error_message: Some("used".into()),
        ..success("base-sepolia").unwrap()
    });
    let app = app(&script);
    let r = call_with(&app, "/a", &[(X_PAYMENT, &pay_v1())]).await;
    assert_eq!(r.status(), 402);
    assert!(!r.headers().contains_key(PAYMENT_REQUIRED));
    assert!(!r.headers().contains_key(PAYMENT_RESPONSE));
    let s: SettleResponse =
        header::decode(r.headers()[X_PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert_eq!(
        s.error_reason.unwrap().as_str(),
        "invalid_exact_evm_nonce_already_used"
    );
    let v1: serde_json::Value = serde_json::from_str(&body(r).await).unwrap();
    assert_eq!(v1["x402Version"], 1);
    assert_eq!(v1["error"], "invalid_exact_evm_nonce_already_used");
    assert_eq!(v1["accepts"][0]["network"], "base-sepolia");
}

#[tokio::test]
async fn browsers_get_the_paywall_page_and_only_before_paying() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = Some(VerifyResponse::invalid(
        Reason::INSUFFICIENT_FUNDS,
        None,
        None,
    ));
    let app = app(&script);
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let content_type =
        |r: &axum::http::Response<Body>| r.headers()["content-type"].to_str().unwrap().to_owned();
    // Accept: text/html and a browser's User-Agent: the page, with PAYMENT-REQUIRED.
    let r = call_with(&app, "/a", &[("accept", HTML), ("user-agent", FIREFOX)]).await;
    assert_eq!(r.status(), 402);
    assert!(content_type(&r).starts_with("text/html"));
    assert!(r.headers().contains_key(PAYMENT_REQUIRED));
    assert!(body(r).await.contains("Payment required"));
    // Either alone is not a browser.
    for headers in [
        &[("accept", HTML), ("user-agent", "curl/8.5.0")][..],
        &[("accept", HTML)][..],
        &[("accept", "application/json"), ("user-agent", FIREFOX)][..],
        &[("user-agent", FIREFOX)][..],
    ] {
        let r = call_with(&app, "/a", headers).await;
        assert_eq!(r.status(), 402);
        assert_eq!(content_type(&r), "application/json", "{headers:?}");
    }
    // A browser whose payment is refused gets the JSON answer, as from the reference.
    let payment = pay(&app, "/a", |_| {}).await;
    let r = call_with(
        &app,
        "/a",
        &[
            ("accept", HTML),
            ("user-agent", FIREFOX),
            (PAYMENT_SIGNATURE, &payment),
        ],
    )
    .await;
    assert_eq!(r.status(), 402);
    assert_eq!(content_type(&r), "application/json");
    assert_eq!(required_error(&r).as_deref(), Some("insufficient_funds"));
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
    assert!(!r.headers().contains_key(PAYMENT_REQUIRED));
    let s: SettleResponse =
        header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert_eq!(s.error_reason, Some(Reason::TRANSACTION_FAILED));
    assert_eq!(s.transaction, PENDING_TX);
    assert!(!body(r).await.contains("content"));
    settled_identically(&script, 1);
}

/// A paid call of an `upto` route whose handler answers `x-override` as its
/// `Settlement-Overrides` (each value one header line).
async fn call_overriding(app: &Router, path: &str, values: &[&[u8]]) -> axum::http::Response<Body> {
    let mut request = Request::get(path)
        .header("host", "shop.test")
        .header(PAYMENT_SIGNATURE, pay(app, path, |_| {}).await);
    for v in values {
        request = request.header("x-override", HeaderValue::from_bytes(v).unwrap());
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn settlement_overrides_set_the_upto_charge_as_the_reference_does() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = valid();
    *script.settle.lock().unwrap() = success("eip155:84532");
    let app = app(&script);
    // The maximum is 100 atomic units of a 6-decimal asset.
    let cases: [(&str, u64); 8] = [
        (r#"{"amount":"40"}"#, 40),
        (r#"{"amount":"0"}"#, 0),
        (r#"{"amount":"100"}"#, 100),
        (r#"{"amount":"33.33%"}"#, 33),
        (r#"{"amount":"100%"}"#, 100),
        (r#"{"amount":"$0.000025"}"#, 25),
        (
            r#"{"amount":"25","note":"a member of a newer reference"}"#,
            25,
        ),
        ("{}", 100),
    ];
    for (i, (value, settled)) in cases.into_iter().enumerate() {
        let r = call_overriding(&app, "/override", &[value.as_bytes()]).await;
        assert_eq!(r.status(), 200, "{value}");
        assert!(
            !r.headers().contains_key(SETTLEMENT_OVERRIDES),
            "the header reached the buyer"
        );
        assert_eq!(body(r).await, "metered");
        let sent = requirements_of(&script.settled.lock().unwrap()[i]);
        assert_eq!(sent.amount, Amount::from(settled), "{value}");
        // Verified for the maximum.
        let verified = requirements_of(&script.verified.lock().unwrap()[i]);
        assert_eq!(verified.amount, Amount::from(100u64));
    }
    // The typed helper writes the header.
    let r = call(&app, "/half", Some(&pay(&app, "/half", |_| {}).await)).await;
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key(SETTLEMENT_OVERRIDES));
    let sent = requirements_of(script.settled.lock().unwrap().last().unwrap());
    assert_eq!(sent.amount, Amount::from(50u64));
    // A Charge takes precedence over the header.
    let r = call(&app, "/both", Some(&pay(&app, "/both", |_| {}).await)).await;
    assert_eq!(r.status(), 200);
    let sent = requirements_of(script.settled.lock().unwrap().last().unwrap());
    assert_eq!(sent.amount, Amount::from(30u64));
}

#[tokio::test]
async fn a_bad_settlement_override_is_a_server_error_and_charges_nothing() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = valid();
    *script.settle.lock().unwrap() = success("eip155:84532");
    let app = app(&script);
    let cases: [(&[&[u8]], &str); 10] = [
        (
            &[br#"{"amount":"101"}"#],
            "more than the 100 the buyer authorized",
        ),
        (
            &[br#"{"amount":"101%"}"#],
            "more than the 100 the buyer authorized",
        ),
        (
            &[br#"{"amount":"$0.000101"}"#],
            "more than the 100 the buyer authorized",
        ),
        (&[br#"{"amount":"-1"}"#], "neither atomic units"),
        (&[br#"{"amount":"1.5"}"#], "neither atomic units"),
        (&[br#"{"amount":"50.5.5%"}"#], "not a percentage"),
        (&[br#"{"amount":"$0.0000001"}"#], "round"),
        (&[br#"{"amount":40}"#], "not a JSON object"),
        (&[b"40"], "not a JSON object"),
        (&[br#"{"amount":"1"}"#, br#"{"amount":"2"}"#], "2 times"),
    ];
    for (values, why) in cases {
        let r = call_overriding(&app, "/override", values).await;
        assert_eq!(r.status(), 500, "{values:?}");
        assert!(!r.headers().contains_key(SETTLEMENT_OVERRIDES));
        assert!(!r.headers().contains_key(PAYMENT_RESPONSE));
        let text = body(r).await;
        assert!(!text.contains("metered"), "the content leaked");
        assert!(text.contains(why), "{values:?}: {text}");
        assert!(
            text.contains("Settlement-Overrides") || text.contains("authorized"),
            "{text}"
        );
        assert!(text.contains("nothing was charged"), "{text}");
    }
    assert!(script.settled.lock().unwrap().is_empty(), "never settled");
}

#[tokio::test]
async fn settlement_overrides_elsewhere_are_removed_and_change_nothing() {
    let script = Arc::new(Script::default());
    *script.verify.lock().unwrap() = valid();
    *script.settle.lock().unwrap() = success("eip155:84532");
    let app = app(&script);
    // exact settles its price whatever the handler asks.
    let r = call_overriding(&app, "/override-exact", &[br#"{"amount":"1"}"#]).await;
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key(SETTLEMENT_OVERRIDES));
    let sent = requirements_of(script.settled.lock().unwrap().last().unwrap());
    assert_eq!(sent.amount, Amount::from(10u64));
    // Settled before the handler ran: the header is dropped.
    let r = call_overriding(&app, "/override-before", &[br#"{"amount":"1"}"#]).await;
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key(SETTLEMENT_OVERRIDES));
    assert!(r.headers().contains_key(PAYMENT_RESPONSE));
    assert_eq!(script.settled.lock().unwrap().len(), 2);
    // A failed handler is not settled, and its header does not leak either.
    let r = call(
        &app,
        "/override-fail",
        Some(&pay(&app, "/override-fail", |_| {}).await),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert!(!r.headers().contains_key(SETTLEMENT_OVERRIDES));
    assert_eq!(script.settled.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_route_describes_its_service_in_the_resource() {
    let script = Arc::new(Script::default());
    let app = app(&script);
    let r = call(&app, "/described", None).await;
    assert_eq!(r.status(), 402);
    let json = |r: &axum::http::Response<Body>| {
        let bytes =
            header::decode_json(r.headers()[PAYMENT_REQUIRED].to_str().unwrap(), 65536).unwrap();
        String::from_utf8(bytes).unwrap()
    };
    let doc = json(&r);
    assert!(
        doc.contains(r#","resource":{"url":"http://shop.test/described","description":"weather","mimeType":"application/json","serviceName":"Weather Co","tags":["weather","forecast"],"iconUrl":"https://weather.example/icon.png"},"accepts":"#),
        "{doc}"
    );
    // Without them, the members are absent.
    let doc = json(&call(&app, "/a", None).await);
    assert!(
        doc.contains(r#","resource":{"url":"http://shop.test/a","description":"","mimeType":"application/json"},"accepts":"#),
        "{doc}"
    );
}

#[test]
fn service_members_outside_the_references_limits_are_configuration_errors() {
    let seller = Seller::new(Arc::new(Script::default()), {
        let mut schemes = Registry::new();
        schemes
            .register("eip155:*", &X402Version::ALL, Stub("exact").into_scheme())
            .unwrap();
        schemes
    });
    let route = || {
        Route::new().accept(Accept::new(
            "exact",
            network(),
            PAY_TO,
            Price::Atomic(Amount::from(1u64)),
        ))
    };
    let at_limits = route()
        .service_name("x".repeat(32))
        .tags(["a", "b", "c", "d", &"e".repeat(32)])
        .icon_url(format!("https://x.example/{}", "i".repeat(2048 - 18)));
    assert!(seller.paywall(at_limits).is_ok());
    let cases: [(Route, &str); 10] = [
        (route().service_name(""), "serviceName"),
        (route().service_name("x".repeat(33)), "serviceName"),
        (route().service_name("Café"), "serviceName"),
        (route().service_name("a\tb"), "serviceName"),
        (route().tags(["a", "b", "c", "d", "e", "f"]), "tags"),
        (route().tags(["ok", ""]), "tags"),
        (route().tags(["Weather", "weather"]), "tags"),
        (route().icon_url("/icon.png"), "iconUrl"),
        (route().icon_url("ftp://x.example/i.png"), "iconUrl"),
        (
            route().icon_url(format!("https://x.example/{}", "i".repeat(2048))),
            "iconUrl",
        ),
    ];
    for (r, member) in cases {
        match seller.paywall(r) {
            Err(e @ ConfigError::Resource { .. }) => {
                assert!(
                    e.to_string().starts_with(&format!("resource {member}:")),
                    "{e}"
                );
            }
            other => panic!("{member}: {other:?}"),
        }
    }
}
