//! Seller hooks, the payment in the handler, dynamic payTo, per-option extra, custom bodies,
//! several facilitators and start-up validation, against scripted facilitators (no chain).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use tower::ServiceExt as _;
use x402_core::header::{self, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE};
use x402_core::hook::{Before, Failure};
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV2, PaymentRequiredV2, PaymentRequirements,
    PaymentRequirementsV2, SettleRequest, SettleResponse, SupportedKind, SupportedResponse,
    VerifyRequest, VerifyResponse, to_raw,
};
use x402_core::{
    Amount, Facilitator, FacilitatorError, Network, Price, PriceRequest, Reason, Registry,
    Rejection, SchemeError, SellerRole, X402Version,
};
use x402_seller::{
    Accept, Access, ConfigError, CustomBody, FreeAccess, HookError, Route, Seller, SellerCall,
    SellerHook, SettleTiming, VerifiedPayment,
};

const ASSET: &str = "0xAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaaAAAAaaaa";
const PAY_TO: &str = "0xBBBBbbbbBBBBbbbbBBBBbbbbBBBBbbbbBBBBbbbb";
const NETWORK: &str = "eip155:84532";

/// A scheme whose requirements copy the facilitator kind's `extra` and add `{"name": "USDC"}`.
#[derive(Debug)]
struct Stub;

#[async_trait]
impl SellerRole for Stub {
    fn scheme(&self) -> &'static str {
        "exact"
    }
    async fn requirements(&self, r: &PriceRequest) -> Result<PaymentRequirementsV2, SchemeError> {
        let Price::Atomic(amount) = &r.price else {
            return Err(SchemeError::Unusable("atomic prices only".into()));
        };
        let mut extra = serde_json::json!({"name": "USDC"});
        if let Some(kind) = r.facilitator_kind.as_ref().and_then(|k| k.extra.as_deref()) {
            let kind: serde_json::Value = serde_json::from_str(kind.get()).unwrap();
            for (k, v) in kind.as_object().unwrap() {
                extra[k] = v.clone();
            }
        }
        Ok(PaymentRequirementsV2 {
            scheme: "exact".into(),
            network: r.network.to_string(),
            amount: *amount,
            asset: ASSET.into(),
            pay_to: r.pay_to.clone(),
            max_timeout_seconds: 60,
            extra: Some(to_raw(&extra).unwrap()),
        })
    }
}

/// A facilitator that answers as scripted and records what it was asked.
#[derive(Default)]
struct Script {
    /// `/supported` fails (transport).
    down: AtomicBool,
    /// `/verify` fails (transport).
    verify_down: AtomicBool,
    /// The kind's `extra` (a fee payer, say).
    kind_extra: Option<&'static str>,
    /// The networks served (default: NETWORK).
    networks: Vec<&'static str>,
    verify: Mutex<Option<VerifyResponse>>,
    settle: Mutex<Option<SettleResponse>>,
    verified: Mutex<Vec<VerifyRequest>>,
    settled: Mutex<Vec<SettleRequest>>,
}

impl Script {
    fn paying() -> Self {
        Self {
            verify: Mutex::new(Some(VerifyResponse::valid("0xPayer"))),
            settle: Mutex::new(Some(success())),
            ..Self::default()
        }
    }

    fn calls(&self) -> (usize, usize) {
        (
            self.verified.lock().unwrap().len(),
            self.settled.lock().unwrap().len(),
        )
    }
}

#[async_trait]
impl Facilitator for Script {
    async fn verify(&self, r: &VerifyRequest) -> Result<VerifyResponse, FacilitatorError> {
        self.verified.lock().unwrap().push(r.clone());
        if self.verify_down.load(Ordering::SeqCst) {
            return Err(FacilitatorError::Transport("connection refused".into()));
        }
        self.verify
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| FacilitatorError::Transport("connection failed".into()))
    }
    async fn settle(&self, r: &SettleRequest) -> Result<SettleResponse, FacilitatorError> {
        self.settled.lock().unwrap().push(r.clone());
        self.settle
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| FacilitatorError::Transport("timed out".into()))
    }
    async fn supported(&self) -> Result<SupportedResponse, FacilitatorError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(FacilitatorError::Transport("connection refused".into()));
        }
        let networks = if self.networks.is_empty() {
            vec![NETWORK]
        } else {
            self.networks.clone()
        };
        Ok(SupportedResponse {
            kinds: networks
                .into_iter()
                .map(|n| SupportedKind {
                    x402_version: X402Version::V2,
                    scheme: "exact".into(),
                    network: n.into(),
                    extra: self
                        .kind_extra
                        .map(|e| serde_json::value::RawValue::from_string(e.into()).unwrap()),
                })
                .collect(),
            ..SupportedResponse::default()
        })
    }
}

fn success() -> SettleResponse {
    SettleResponse {
        success: true,
        error_reason: None,
        error_message: None,
        transaction: "0x1234".into(),
        network: NETWORK.into(),
        payer: Some("0xPayer".into()),
        amount: None,
        extensions: None,
        extra: None,
    }
}

fn schemes() -> Registry {
    let mut schemes = Registry::new();
    schemes
        .register("eip155:*", &[X402Version::V2], Stub.into_scheme())
        .unwrap();
    schemes
}

fn seller(facilitator: &Arc<Script>) -> Seller {
    Seller::new(facilitator.clone(), schemes())
}

fn accept(units: u64) -> Accept {
    Accept::new(
        "exact",
        Network::parse(NETWORK).unwrap(),
        PAY_TO,
        Price::Atomic(Amount::from(units)),
    )
}

fn route() -> Route {
    Route::new().versions(&[X402Version::V2]).accept(accept(10))
}

/// A handler reporting the payment it sees.
async fn sees(
    payment: Option<Extension<VerifiedPayment>>,
    free: Option<Extension<FreeAccess>>,
) -> String {
    match (payment, free) {
        (Some(Extension(p)), _) => format!(
            "payer={} tx={} payTo={}",
            p.payer.clone().unwrap_or_default(),
            p.transaction().unwrap_or("-"),
            match &p.requirements {
                PaymentRequirements::V2(r) => r.pay_to.clone(),
                PaymentRequirements::V1(r) => r.pay_to.clone(),
            }
        ),
        (None, Some(Extension(f))) => format!("free by {}", f.hook),
        (None, None) => "nothing".into(),
    }
}

async fn call(app: &Router, path: &str, payment: Option<&str>) -> axum::http::Response<Body> {
    call_with(app, path, payment, &[]).await
}

async fn call_with(
    app: &Router,
    path: &str,
    payment: Option<&str>,
    headers: &[(&str, &str)],
) -> axum::http::Response<Body> {
    let mut request = Request::get(path).header("host", "shop.test");
    if let Some(p) = payment {
        request = request.header(PAYMENT_SIGNATURE, p);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
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

fn required(r: &axum::http::Response<Body>) -> PaymentRequiredV2 {
    header::decode(r.headers()[PAYMENT_REQUIRED].to_str().unwrap(), 65536).unwrap()
}

/// A payment for the first requirement the route offers on this request.
async fn pay(app: &Router, path: &str, headers: &[(&str, &str)]) -> String {
    let r = call_with(app, path, None, headers).await;
    assert_eq!(r.status(), 402);
    let doc = required(&r);
    header::encode(&PaymentPayload::V2(PaymentPayloadV2 {
        x402_version: X402Version::V2,
        resource: Some(doc.resource),
        accepted: doc.accepts[0].clone(),
        payload: to_raw(&serde_json::json!({"signature": "0x01"})).unwrap(),
        extensions: None,
    }))
    .unwrap()
}

type Log = Arc<Mutex<Vec<String>>>;

/// Records its steps; aborts, recovers or fails where told.
#[derive(Debug, Default)]
struct Recorder {
    name: &'static str,
    log: Log,
    deny_payer: Option<&'static str>,
    abort_verify: bool,
    recover_verify: Option<VerifyResponse>,
    recover_settle: Option<SettleResponse>,
    fail_before_settle: bool,
    panic_before_verify: bool,
    access: Option<Access>,
}

impl Recorder {
    fn new(name: &'static str, log: &Log) -> Self {
        Self {
            name,
            log: log.clone(),
            ..Self::default()
        }
    }
    fn note(&self, step: String) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}.{step}", self.name));
    }
}

#[async_trait]
impl SellerHook for Recorder {
    fn name(&self) -> &str {
        self.name
    }
    async fn on_protected_request(&self, request: &Parts) -> Result<Access, HookError> {
        self.note("on_protected_request".into());
        if request.headers.contains_key("x-member") {
            return Ok(self.access.clone().unwrap_or(Access::Continue));
        }
        Ok(Access::Continue)
    }
    async fn before_verify(&self, call: &SellerCall<'_>) -> Result<Before, HookError> {
        assert!(call.payer.is_none());
        assert_eq!(call.pay_to(), PAY_TO);
        self.note("before_verify".into());
        if self.panic_before_verify {
            panic!("a buggy hook");
        }
        if self.abort_verify {
            return Ok(Before::Abort(Rejection::new(Reason::RECIPIENT_DENIED)));
        }
        Ok(Before::Proceed)
    }
    async fn after_verify(&self, _call: &SellerCall<'_>, response: &VerifyResponse) {
        self.note(format!("after_verify({})", response.is_valid));
    }
    async fn on_verify_failure(
        &self,
        _call: &SellerCall<'_>,
        failure: Failure<'_, VerifyResponse>,
    ) -> Result<Option<VerifyResponse>, HookError> {
        let what = match failure {
            Failure::Refused(r) => r.invalid_reason.clone().unwrap().to_string(),
            Failure::Error(_) => "error".into(),
        };
        self.note(format!("on_verify_failure({what})"));
        Ok(self.recover_verify.clone())
    }
    async fn before_settle(&self, call: &SellerCall<'_>) -> Result<Before, HookError> {
        self.note(format!("before_settle({})", call.payer.unwrap_or("-")));
        if self.fail_before_settle {
            return Err(HookError::new("the deny list is unreadable: secret path"));
        }
        if self.deny_payer.is_some() && call.payer == self.deny_payer {
            return Ok(Before::Abort(Rejection {
                reason: Reason::PAYER_DENIED,
                message: Some("on the deny list".into()),
            }));
        }
        Ok(Before::Proceed)
    }
    async fn after_settle(&self, _call: &SellerCall<'_>, response: &SettleResponse) {
        self.note(format!("after_settle({})", response.transaction));
    }
    async fn on_settle_failure(
        &self,
        _call: &SellerCall<'_>,
        failure: Failure<'_, SettleResponse>,
    ) -> Result<Option<SettleResponse>, HookError> {
        let what = match failure {
            Failure::Refused(r) => r.error_reason.clone().unwrap().to_string(),
            Failure::Error(_) => "error".into(),
        };
        self.note(format!("on_settle_failure({what})"));
        Ok(self.recover_settle.clone())
    }
}

fn hooked(f: &Arc<Script>, hooks: Vec<Recorder>, route: Route) -> Router {
    let mut s = seller(f);
    for h in hooks {
        s = s.with_hook(Arc::new(h));
    }
    Router::new().route("/r", get(sees).layer(s.paywall(route).unwrap()))
}

fn log_of(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test]
async fn hooks_run_in_order_around_verify_and_settle_and_the_handler_sees_the_payment() {
    let f = Arc::new(Script::paying());
    let log = Log::default();
    let app = hooked(
        &f,
        vec![Recorder::new("a", &log), Recorder::new("b", &log)],
        route(),
    );
    let payment = pay(&app, "/r", &[]).await;
    log_of(&log);
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key(PAYMENT_RESPONSE));
    // Settled after the handler: the handler sees the payer, not yet a transaction.
    assert_eq!(body(r).await, format!("payer=0xPayer tx=- payTo={PAY_TO}"));
    assert_eq!(
        log_of(&log),
        [
            "a.on_protected_request",
            "b.on_protected_request",
            "a.before_verify",
            "b.before_verify",
            "a.after_verify(true)",
            "b.after_verify(true)",
            "a.before_settle(0xPayer)",
            "b.before_settle(0xPayer)",
            "a.after_settle(0x1234)",
            "b.after_settle(0x1234)",
        ]
    );
    assert_eq!(f.calls(), (1, 1));

    // Settled before the handler: the handler sees the transaction.
    let app = hooked(&f, vec![], route().settle(SettleTiming::BeforeHandler));
    let payment = pay(&app, "/r", &[]).await;
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        body(r).await,
        format!("payer=0xPayer tx=0x1234 payTo={PAY_TO}")
    );
}

#[tokio::test]
async fn a_before_hook_aborts_with_its_reason_and_nothing_is_settled() {
    // before_verify: the facilitator is never asked.
    let f = Arc::new(Script::paying());
    let log = Log::default();
    let mut a = Recorder::new("a", &log);
    a.abort_verify = true;
    let app = hooked(&f, vec![a, Recorder::new("b", &log)], route());
    let payment = pay(&app, "/r", &[]).await;
    log_of(&log);
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 402);
    assert_eq!(required(&r).error.as_deref(), Some("recipient_denied"));
    assert_eq!(f.calls(), (0, 0));
    assert_eq!(
        log_of(&log),
        [
            "a.on_protected_request",
            "b.on_protected_request",
            "a.before_verify"
        ]
    );

    // before_settle on the verified payer: verified, never settled, the handler's body withheld.
    for timing in [SettleTiming::AfterHandler, SettleTiming::BeforeHandler] {
        let f = Arc::new(Script::paying());
        let mut a = Recorder::new("a", &log);
        a.deny_payer = Some("0xPayer");
        let app = hooked(&f, vec![a], route().settle(timing));
        let payment = pay(&app, "/r", &[]).await;
        let r = call(&app, "/r", Some(&payment)).await;
        assert_eq!(r.status(), 402, "{timing:?}");
        assert_eq!(required(&r).error.as_deref(), Some("payer_denied"));
        assert!(!r.headers().contains_key(PAYMENT_RESPONSE));
        let text = body(r).await;
        assert!(!text.contains("payer="), "{text}");
        assert!(
            !text.contains("deny list"),
            "the message is not sent: {text}"
        );
        assert_eq!(f.calls(), (1, 0), "{timing:?}");
    }
}

#[tokio::test]
async fn failure_hooks_recover_and_the_first_recovery_wins() {
    // A refused verify recovered as another refusal: its reason is the answer.
    let f = Arc::new(Script::paying());
    *f.verify.lock().unwrap() = Some(VerifyResponse::invalid(
        Reason::INSUFFICIENT_FUNDS,
        None,
        Some("0xPayer".into()),
    ));
    let log = Log::default();
    let mut a = Recorder::new("a", &log);
    a.recover_verify = Some(VerifyResponse::invalid(Reason::PAYER_THROTTLED, None, None));
    let mut b = Recorder::new("b", &log);
    b.recover_verify = Some(VerifyResponse::valid("0xOther"));
    let app = hooked(&f, vec![a, b], route());
    let payment = pay(&app, "/r", &[]).await;
    log_of(&log);
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 402);
    assert_eq!(required(&r).error.as_deref(), Some("payer_throttled"));
    assert_eq!(f.calls(), (1, 0));
    assert_eq!(
        log_of(&log)[2..],
        [
            "a.before_verify",
            "b.before_verify",
            "a.on_verify_failure(insufficient_funds)",
            "a.after_verify(false)",
            "b.after_verify(false)",
        ]
    );

    // A failed settlement recovered as a success: granted with the hook's settlement.
    let f = Arc::new(Script::paying());
    let mut failed = success();
    failed.success = false;
    failed.transaction = String::new();
    failed.error_reason = Some(Reason::TRANSACTION_FAILED);
    *f.settle.lock().unwrap() = Some(failed);
    let mut a = Recorder::new("a", &log);
    a.recover_settle = Some(SettleResponse {
        transaction: "0xrecovered".into(),
        ..success()
    });
    let app = hooked(&f, vec![a], route());
    let payment = pay(&app, "/r", &[]).await;
    log_of(&log);
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 200);
    let s: SettleResponse =
        header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert_eq!(s.transaction, "0xrecovered");
    assert!(log_of(&log).ends_with(&[
        "a.on_settle_failure(transaction_failed)".to_owned(),
        "a.after_settle(0xrecovered)".to_owned()
    ]));

    // Without a recovery, the failure stands (402, no body).
    let f2 = Arc::new(Script::paying());
    *f2.settle.lock().unwrap() = f.settle.lock().unwrap().clone();
    let app = hooked(&f2, vec![Recorder::new("a", &log)], route());
    let payment = pay(&app, "/r", &[]).await;
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 402);
    assert_eq!(body(r).await, "{}");
}

#[tokio::test]
async fn a_failing_or_panicking_hook_is_a_500_that_names_it_and_sends_nothing() {
    let log = Log::default();
    let f = Arc::new(Script::paying());
    let mut a = Recorder::new("screen", &log);
    a.fail_before_settle = true;
    let app = hooked(&f, vec![a], route().settle(SettleTiming::BeforeHandler));
    let payment = pay(&app, "/r", &[]).await;
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 500);
    let text = body(r).await;
    assert!(text.contains("screen failed in before_settle"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    assert_eq!(f.calls(), (1, 0));

    let f = Arc::new(Script::paying());
    let mut a = Recorder::new("buggy", &log);
    a.panic_before_verify = true;
    let app = hooked(&f, vec![a], route());
    let payment = pay(&app, "/r", &[]).await;
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 500);
    assert!(body(r).await.contains("buggy failed in before_verify"));
    assert_eq!(f.calls(), (0, 0));
}

#[tokio::test]
async fn on_protected_request_grants_free_access_or_refuses_with_403() {
    let log = Log::default();
    let f = Arc::new(Script::paying());
    let mut a = Recorder::new("members", &log);
    a.access = Some(Access::Grant);
    let app = hooked(&f, vec![a], route());
    // A payment header is ignored on a granted request: nothing is verified or settled.
    let payment = pay(&app, "/r", &[]).await;
    let r = call_with(&app, "/r", Some(&payment), &[("x-member", "1")]).await;
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key(PAYMENT_RESPONSE));
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store"),
        "granted to this requester only"
    );
    assert_eq!(body(r).await, "free by members");
    assert_eq!(f.calls(), (0, 0));
    // Others still pay.
    assert_eq!(call(&app, "/r", None).await.status(), 402);

    let mut a = Recorder::new("blocklist", &log);
    a.access = Some(Access::Refuse("this region is not served".into()));
    let app = hooked(&f, vec![a], route());
    let r = call_with(&app, "/r", Some(&payment), &[("x-member", "1")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!r.headers().contains_key(PAYMENT_REQUIRED));
    assert!(body(r).await.contains("this region is not served"));
    assert_eq!(f.calls(), (0, 0));
}

fn tenant_route() -> Route {
    Route::new()
        .versions(&[X402Version::V2])
        .accept(accept(10).dynamic_pay_to(|parts| {
            match parts.headers.get("x-tenant").map(|v| v.to_str().unwrap()) {
                Some("a") => Ok("0xA000000000000000000000000000000000000000".into()),
                Some("b") => Ok("0xB000000000000000000000000000000000000000".into()),
                _ => Err("unknown tenant".into()),
            }
        }))
}

#[tokio::test]
async fn dynamic_pay_to_is_per_request_and_a_payment_does_not_travel_between_tenants() {
    let f = Arc::new(Script::paying());
    let app = Router::new().route(
        "/r",
        get(sees).layer(seller(&f).paywall(tenant_route()).unwrap()),
    );
    let r = call_with(&app, "/r", None, &[("x-tenant", "a")]).await;
    assert_eq!(
        required(&r).accepts[0].pay_to,
        "0xA000000000000000000000000000000000000000"
    );
    let r = call_with(&app, "/r", None, &[("x-tenant", "b")]).await;
    assert_eq!(
        required(&r).accepts[0].pay_to,
        "0xB000000000000000000000000000000000000000"
    );
    let r = call(&app, "/r", None).await;
    assert_eq!(r.status(), 400);
    assert!(body(r).await.contains("unknown tenant"));

    // A payment for tenant a, replayed as tenant b: no match, the facilitator is never asked.
    let for_a = pay(&app, "/r", &[("x-tenant", "a")]).await;
    let r = call_with(&app, "/r", Some(&for_a), &[("x-tenant", "b")]).await;
    assert_eq!(r.status(), 402);
    assert_eq!(
        required(&r).error.as_deref(),
        Some("No matching payment requirements")
    );
    assert_eq!(f.calls(), (0, 0));
    let r = call_with(&app, "/r", Some(&for_a), &[("x-tenant", "a")]).await;
    assert_eq!(r.status(), 200);
    assert!(
        body(r)
            .await
            .ends_with("payTo=0xA000000000000000000000000000000000000000")
    );
    let sent = &f.verified.lock().unwrap()[0];
    let PaymentRequirements::V2(sent) = &sent.payment_requirements else {
        panic!("v2")
    };
    assert_eq!(sent.pay_to, "0xA000000000000000000000000000000000000000");
}

#[tokio::test]
async fn per_option_extra_is_merged_under_the_schemes_members() {
    let f = Arc::new(Script {
        kind_extra: Some(r#"{"feePayer":"FEE"}"#),
        ..Script::paying()
    });
    let s = seller(&f);
    let app = Router::new()
        .route(
            "/memo",
            get(sees).layer(
                s.paywall(Route::new().accept(accept(10).extra("memo", "invoice-42")))
                    .unwrap(),
            ),
        )
        .route(
            "/same",
            get(sees).layer(
                s.paywall(Route::new().accept(accept(10).extra("name", "USDC")))
                    .unwrap(),
            ),
        )
        .route(
            "/conflict",
            get(sees).layer(
                s.paywall(Route::new().accept(accept(10).extra("name", "Fake")))
                    .unwrap(),
            ),
        );
    let r = call(&app, "/memo", None).await;
    let extra: serde_json::Value =
        serde_json::from_str(required(&r).accepts[0].extra.as_ref().unwrap().get()).unwrap();
    assert_eq!(
        extra,
        serde_json::json!({"name": "USDC", "feePayer": "FEE", "memo": "invoice-42"})
    );
    assert_eq!(call(&app, "/same", None).await.status(), 402);
    let r = call(&app, "/conflict", None).await;
    assert_eq!(r.status(), 500);
    assert!(body(r).await.contains("extra.name"));

    // The members the facilitator supplies cannot be set; a memo is a string of ≤ 256 bytes.
    for (key, value) in [
        ("feePayer", serde_json::json!("MINE")),
        ("facilitatorAddress", serde_json::json!("0x1")),
    ] {
        let e = s
            .paywall(Route::new().accept(accept(10).extra(key, value)))
            .unwrap_err();
        assert!(matches!(e, ConfigError::FacilitatorExtra { .. }), "{e}");
    }
    for memo in [serde_json::json!(7), serde_json::json!("x".repeat(257))] {
        let e = s
            .paywall(Route::new().accept(accept(10).extra("memo", memo)))
            .unwrap_err();
        assert!(matches!(e, ConfigError::Extra { .. }), "{e}");
    }
}

#[tokio::test]
async fn custom_bodies_replace_the_body_and_keep_the_protocol_headers() {
    let f = Arc::new(Script::paying());
    let s = seller(&f);
    let custom = route()
        .unpaid_body(|ctx| {
            CustomBody::new(
                "text/plain",
                format!(
                    "{} for {} ({} options, browser {})",
                    ctx.error,
                    ctx.resource.url,
                    ctx.accepts.len(),
                    ctx.browser
                ),
            )
        })
        .settlement_failed_body(|ctx| {
            CustomBody::json(&serde_json::json!({
                "sorry": ctx.error,
                "payer": ctx.settlement.and_then(|s| s.payer.clone()),
            }))
        });
    let app = Router::new().route("/r", get(sees).layer(s.paywall(custom).unwrap()));
    let r = call(&app, "/r", None).await;
    assert_eq!(r.status(), 402);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(required(&r).accepts.len(), 1);
    assert_eq!(
        body(r).await,
        "Payment required for http://shop.test/r (1 options, browser false)"
    );

    let mut failed = success();
    failed.success = false;
    failed.transaction = String::new();
    failed.error_reason = Some(Reason::INSUFFICIENT_FUNDS);
    *f.settle.lock().unwrap() = Some(failed);
    let payment = pay(&app, "/r", &[]).await;
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 402);
    let s: SettleResponse =
        header::decode(r.headers()[PAYMENT_RESPONSE].to_str().unwrap(), 65536).unwrap();
    assert!(!s.success);
    assert!(!r.headers().contains_key(PAYMENT_REQUIRED));
    assert_eq!(r.headers()["content-type"], "application/json");
    let b: serde_json::Value = serde_json::from_str(&body(r).await).unwrap();
    assert_eq!(
        b,
        serde_json::json!({"sorry": "insufficient_funds", "payer": "0xPayer"})
    );

    // A route serving v1 carries its offers in the body: a custom unpaid body is refused.
    let e = seller(&f)
        .paywall(
            Route::new()
                .accept(accept(10))
                .unpaid_body(|_| CustomBody::html("<p>pay</p>")),
        )
        .unwrap_err();
    assert!(matches!(e, ConfigError::CustomBodyWithV1), "{e}");
}

#[tokio::test]
async fn a_dead_first_facilitator_does_not_take_the_route_down() {
    let dead = Arc::new(Script::paying());
    dead.down.store(true, Ordering::SeqCst);
    dead.verify_down.store(true, Ordering::SeqCst);
    let live = Arc::new(Script::paying());
    let s = Seller::new(dead.clone(), schemes()).with_facilitator(live.clone());
    let app = Router::new().route("/r", get(sees).layer(s.paywall(route()).unwrap()));
    for _ in 0..2 {
        let payment = pay(&app, "/r", &[]).await;
        let r = call(&app, "/r", Some(&payment)).await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(dead.calls(), (0, 0));
    assert_eq!(live.calls(), (2, 2));
    // Validation: the dead one is reported only as unreachable, every option is covered.
    s.validate().await.unwrap();
}

#[tokio::test]
async fn verify_falls_over_to_an_identical_kind_and_settle_never_falls_over() {
    // Both up and serving the same kind with the same fee payer; the first one's verify fails.
    let first = Arc::new(Script {
        kind_extra: Some(r#"{"feePayer":"FEE"}"#),
        ..Script::paying()
    });
    first.verify_down.store(true, Ordering::SeqCst);
    let second = Arc::new(Script {
        kind_extra: Some(r#"{"feePayer":"FEE"}"#),
        ..Script::paying()
    });
    let app = |first: &Arc<Script>, second: &Arc<Script>| {
        let s = Seller::new(first.clone(), schemes()).with_facilitator(second.clone());
        Router::new().route("/r", get(sees).layer(s.paywall(route()).unwrap()))
    };
    let a = app(&first, &second);
    let payment = pay(&a, "/r", &[]).await;
    let r = call(&a, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(first.calls(), (1, 0));
    assert_eq!(second.calls(), (1, 1), "verified and settled by the second");

    // A different fee payer: the requirement the buyer signed is not valid there; no fallover.
    let other = Arc::new(Script {
        kind_extra: Some(r#"{"feePayer":"OTHER"}"#),
        ..Script::paying()
    });
    let first = Arc::new(Script {
        kind_extra: Some(r#"{"feePayer":"FEE"}"#),
        ..Script::paying()
    });
    first.verify_down.store(true, Ordering::SeqCst);
    let a = app(&first, &other);
    let payment = pay(&a, "/r", &[]).await;
    let r = call(&a, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 502);
    assert_eq!(other.calls(), (0, 0));

    // The settle times out at the facilitator that verified: never sent to another.
    let first = Arc::new(Script::paying());
    *first.settle.lock().unwrap() = None;
    let second = Arc::new(Script::paying());
    let a = app(&first, &second);
    let payment = pay(&a, "/r", &[]).await;
    let r = call(&a, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 502);
    assert_eq!(first.calls(), (1, 1));
    assert_eq!(second.calls(), (0, 0));
}

#[tokio::test]
async fn offers_come_from_the_first_facilitator_that_serves_the_option() {
    let base_only = Arc::new(Script {
        kind_extra: Some(r#"{"feePayer":"FIRST"}"#),
        ..Script::paying()
    });
    let both = Arc::new(Script {
        kind_extra: Some(r#"{"feePayer":"SECOND"}"#),
        networks: vec![NETWORK, "eip155:137"],
        ..Script::paying()
    });
    let s = Seller::new(base_only.clone(), schemes()).with_facilitator(both.clone());
    let polygon = Accept::new(
        "exact",
        Network::eip155(137),
        PAY_TO,
        Price::Atomic(Amount::from(5u64)),
    );
    let app = Router::new().route(
        "/r",
        get(sees).layer(s.paywall(route().accept(polygon)).unwrap()),
    );
    let r = call(&app, "/r", None).await;
    let doc = required(&r);
    let fee_payer = |i: usize| {
        let e: serde_json::Value =
            serde_json::from_str(doc.accepts[i].extra.as_ref().unwrap().get()).unwrap();
        e["feePayer"].as_str().unwrap().to_owned()
    };
    assert_eq!(doc.accepts.len(), 2);
    assert_eq!(fee_payer(0), "FIRST");
    assert_eq!(fee_payer(1), "SECOND");
    // A payment of the second option goes to the second facilitator.
    let payment = header::encode(&PaymentPayload::V2(PaymentPayloadV2 {
        x402_version: X402Version::V2,
        resource: Some(doc.resource.clone()),
        accepted: doc.accepts[1].clone(),
        payload: to_raw(&serde_json::json!({"signature": "0x01"})).unwrap(),
        extensions: None,
    }))
    .unwrap();
    *both.settle.lock().unwrap() = Some(SettleResponse {
        network: "eip155:137".into(),
        ..success()
    });
    let r = call(&app, "/r", Some(&payment)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(base_only.calls(), (0, 0));
    assert_eq!(both.calls(), (1, 1));
}

#[tokio::test]
async fn validate_lists_the_options_no_facilitator_supports() {
    let f = Arc::new(Script::paying());
    let s = seller(&f);
    s.paywall(route().description("ok")).unwrap();
    s.paywall(Route::new().description("polygon").accept(Accept::new(
        "exact",
        Network::eip155(137),
        PAY_TO,
        Price::Atomic(Amount::from(1u64)),
    )))
    .unwrap();
    let e = s.validate().await.unwrap_err();
    assert_eq!(e.unsupported.len(), 1);
    assert_eq!(e.unsupported[0].route, 1);
    assert_eq!(e.unsupported[0].network, Network::eip155(137));
    let text = e.to_string();
    assert!(text.contains("exact on eip155:137"), "{text}");
    assert!(e.unreachable.is_empty());
    assert!(e.unusable.is_empty());

    // A supported option the scheme cannot price as configured: found at start-up, not by the
    // first buyer.
    let conflicting = seller(&f);
    conflicting.paywall(route().description("fine")).unwrap();
    conflicting
        .paywall(
            Route::new()
                .description("fake name")
                .accept(accept(10).extra("name", "Fake")),
        )
        .unwrap();
    let e = conflicting.validate().await.unwrap_err();
    assert!(e.unsupported.is_empty());
    assert_eq!(e.unusable.len(), 1);
    assert_eq!(e.unusable[0].route, 1);
    assert!(e.to_string().contains("extra.name"), "{e}");

    // Every facilitator down: every option is listed, and why.
    f.down.store(true, Ordering::SeqCst);
    let e = s.validate().await.unwrap_err();
    assert_eq!(e.unsupported.len(), 2);
    assert_eq!(e.unreachable.len(), 1);
    assert!(e.to_string().contains("unreachable"), "{e}");
}
