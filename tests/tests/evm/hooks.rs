//! Facilitator lifecycle hooks (`x402_core::hook`) around `exact` on anvil with real USDC: the
//! order hooks run in, an abort that sends nothing, a recovery that turns a refusal into another
//! answer, and a failing hook.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::primitives::U256;
use async_trait::async_trait;
use x402_core::hook::{Before, FacilitatorHook, Failure, HookCall};
use x402_core::json::JsonLimits;
use x402_core::wire::{SettleResponse, VerifyRequest, VerifyResponse};
use x402_core::{Facilitator as _, FacilitatorError, LocalFacilitator, Reason, Rejection};
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::{ExactHarness, PRICE, UNITS, assert_settle_refused, body_with};

type Log = Arc<Mutex<Vec<String>>>;

/// Records every step it runs in; aborts or recovers where told.
#[derive(Debug)]
struct Recorder {
    name: &'static str,
    log: Log,
    abort_settle: bool,
    recover_verify: bool,
}

impl Recorder {
    fn new(name: &'static str, log: &Log) -> Self {
        Self {
            name,
            log: log.clone(),
            abort_settle: false,
            recover_verify: false,
        }
    }

    fn note(&self, step: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}.{step}", self.name));
    }
}

#[async_trait]
impl FacilitatorHook for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    async fn before_verify(&self, call: &HookCall<'_>) -> Result<Before, FacilitatorError> {
        assert!(call.payer.is_some(), "the payer is read before the scheme");
        self.note("before_verify");
        Ok(Before::Proceed)
    }

    async fn after_verify(&self, _call: &HookCall<'_>, response: &VerifyResponse) {
        self.note(&format!("after_verify({})", response.is_valid));
    }

    async fn on_verify_failure(
        &self,
        _call: &HookCall<'_>,
        failure: Failure<'_, VerifyResponse>,
    ) -> Result<Option<VerifyResponse>, FacilitatorError> {
        let Failure::Refused(refused) = failure else {
            panic!("a refusal, not an error");
        };
        let reason = refused.invalid_reason.clone().unwrap();
        self.note(&format!("on_verify_failure({reason})"));
        Ok(self.recover_verify.then(|| {
            VerifyResponse::invalid(
                Reason::UNEXPECTED_VERIFY_ERROR,
                Some(format!("{} recovered {reason}", self.name)),
                refused.payer.clone(),
            )
        }))
    }

    async fn before_settle(&self, _call: &HookCall<'_>) -> Result<Before, FacilitatorError> {
        self.note("before_settle");
        Ok(if self.abort_settle {
            Before::Abort(Rejection::with_message(
                Reason::PAYER_DENIED,
                format!("{} says no", self.name),
            ))
        } else {
            Before::Proceed
        })
    }

    async fn after_settle(&self, _call: &HookCall<'_>, response: &SettleResponse) {
        self.note(&format!("after_settle({})", response.success));
    }

    async fn on_settle_failure(
        &self,
        _call: &HookCall<'_>,
        _failure: Failure<'_, SettleResponse>,
    ) -> Result<Option<SettleResponse>, FacilitatorError> {
        self.note("on_settle_failure");
        Ok(None)
    }
}

fn hooked(h: &ExactHarness, hooks: Vec<Arc<dyn FacilitatorHook>>) -> LocalFacilitator {
    hooks
        .into_iter()
        .fold(h.facilitator.clone(), LocalFacilitator::with_hook)
}

/// `request` with requirements asking twice the signed amount (the scheme refuses it).
fn wrong_amount(request: &VerifyRequest) -> VerifyRequest {
    let body = body_with(
        request,
        "/paymentRequirements/amount",
        &serde_json::json!("20000"),
    );
    VerifyRequest::from_json(&body, JsonLimits::DEFAULT).unwrap()
}

fn taken(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test]
async fn hooks_run_in_order_abort_and_recover() {
    let h = ExactHarness::start().await;
    let log = Log::default();
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let request = h.pay_v2(&buyer, &req).await;

    // A valid payment: every before hook in order, the scheme, every after hook in order.
    let f = hooked(
        &h,
        vec![
            Arc::new(Recorder::new("a", &log)),
            Arc::new(Recorder::new("b", &log)),
        ],
    );
    let v = f.verify(&request).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    assert_eq!(
        taken(&log),
        [
            "a.before_verify",
            "b.before_verify",
            "a.after_verify(true)",
            "b.after_verify(true)"
        ]
    );

    // A refusal: failure hooks in order until one recovers; its answer replaces the scheme's,
    // later failure hooks do not run, and the after hooks see the recovered answer.
    let f = hooked(
        &h,
        vec![
            Arc::new(Recorder::new("a", &log)),
            Arc::new(Recorder {
                recover_verify: true,
                ..Recorder::new("b", &log)
            }),
            Arc::new(Recorder::new("c", &log)),
        ],
    );
    let wrong_amount = wrong_amount(&request);
    let plain = h.facilitator.verify(&wrong_amount).await.unwrap();
    let scheme_reason = plain.invalid_reason.clone().unwrap();
    let v = f.verify(&wrong_amount).await.unwrap();
    assert!(!v.is_valid);
    assert_eq!(
        v.invalid_reason,
        Some(Reason::UNEXPECTED_VERIFY_ERROR),
        "{v:?}"
    );
    assert_eq!(
        v.invalid_message.as_deref(),
        Some(format!("b recovered {scheme_reason}").as_str())
    );
    assert_eq!(v.payer, Some(buyer.address().to_checksum(None)));
    assert_eq!(
        taken(&log),
        [
            "a.before_verify".to_owned(),
            "b.before_verify".to_owned(),
            "c.before_verify".to_owned(),
            format!("a.on_verify_failure({scheme_reason})"),
            format!("b.on_verify_failure({scheme_reason})"),
            "a.after_verify(false)".to_owned(),
            "b.after_verify(false)".to_owned(),
            "c.after_verify(false)".to_owned(),
        ]
    );

    // An abort in the second before hook: the third never runs, nor the scheme, nor any failure
    // or after hook; nothing is claimed, moved or broadcast.
    let f = hooked(
        &h,
        vec![
            Arc::new(Recorder::new("a", &log)),
            Arc::new(Recorder {
                abort_settle: true,
                ..Recorder::new("b", &log)
            }),
            Arc::new(Recorder::new("c", &log)),
        ],
    );
    let before = h.snapshot(&[buyer.address()]).await;
    let s = f.settle(&request).await.unwrap();
    assert_settle_refused(&s, Reason::PAYER_DENIED, "aborted");
    assert_eq!(s.error_message.as_deref(), Some("b says no"));
    assert_eq!(s.payer, Some(buyer.address().to_checksum(None)));
    assert_eq!(taken(&log), ["a.before_settle", "b.before_settle"]);
    h.assert_untouched(&before, "an aborted settle").await;
    assert!(h.store.is_empty(), "an aborted settle claims nothing");

    // Without the abort the same payment settles: befores, the scheme, afters.
    let f = hooked(
        &h,
        vec![
            Arc::new(Recorder::new("a", &log)),
            Arc::new(Recorder::new("b", &log)),
        ],
    );
    let s0 = h.usdc(seller).await;
    let s = f.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(h.usdc(seller).await, s0 + U256::from(UNITS));
    assert_eq!(
        taken(&log),
        [
            "a.before_settle",
            "b.before_settle",
            "a.after_settle(true)",
            "b.after_settle(true)"
        ]
    );
    // A repeat is refused by the scheme: every failure hook, no recovery, no after hook.
    let s = f.settle(&request).await.unwrap();
    assert_eq!(s.error_reason, Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
    assert_eq!(
        taken(&log),
        [
            "a.before_settle",
            "b.before_settle",
            "a.on_settle_failure",
            "b.on_settle_failure"
        ]
    );
}

/// Idempotent settles: a repeat of a payment this hook saw settle is answered with the original
/// success instead of `duplicate_settlement`.
#[derive(Debug, Default)]
struct Idempotent {
    settled: Mutex<HashMap<String, SettleResponse>>,
}

fn key(call: &HookCall<'_>) -> String {
    serde_json::to_string(call.request).unwrap()
}

#[async_trait]
impl FacilitatorHook for Idempotent {
    fn name(&self) -> &str {
        "idempotent"
    }

    async fn after_settle(&self, call: &HookCall<'_>, response: &SettleResponse) {
        if response.success {
            self.settled
                .lock()
                .unwrap()
                .insert(key(call), response.clone());
        }
    }

    async fn on_settle_failure(
        &self,
        call: &HookCall<'_>,
        failure: Failure<'_, SettleResponse>,
    ) -> Result<Option<SettleResponse>, FacilitatorError> {
        match failure {
            Failure::Refused(r) if r.error_reason == Some(Reason::DUPLICATE_SETTLEMENT) => {
                Ok(self.settled.lock().unwrap().get(&key(call)).cloned())
            }
            _ => Ok(None),
        }
    }
}

#[tokio::test]
async fn a_recover_hook_turns_a_duplicate_into_the_original_success() {
    let h = ExactHarness::start().await;
    let buyer = h.bed.buyer(0).signer.clone();
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let request = h.pay_v2(&buyer, &req).await;
    let f = h
        .facilitator
        .clone()
        .with_hook(Arc::new(Idempotent::default()));
    let first = f.settle(&request).await.unwrap();
    assert!(first.success, "{first:?}");
    let before = h.snapshot(&[buyer.address()]).await;
    let again = f.settle(&request).await.unwrap();
    assert!(again.success, "recovered: {again:?}");
    assert_eq!(again.transaction, first.transaction);
    h.assert_untouched(&before, "a recovered repeat").await;
    // Without the hook, the same repeat is the scheme's refusal.
    let plain = h.facilitator.settle(&request).await.unwrap();
    assert_eq!(plain.error_reason, Some(Reason::DUPLICATE_SETTLEMENT));
    // A refusal the hook does not know is left as it is.
    let other = h.pay_v2(&h.bed.buyer(1).signer, &req).await;
    let wrong = wrong_amount(&other);
    let s = f.settle(&wrong).await.unwrap();
    assert!(!s.success, "{s:?}");
    assert_ne!(s.error_reason, Some(Reason::DUPLICATE_SETTLEMENT));
}

/// A hook that fails or panics before the scheme.
#[derive(Debug)]
struct Broken {
    panics: bool,
}

#[async_trait]
impl FacilitatorHook for Broken {
    fn name(&self) -> &str {
        "broken"
    }

    async fn before_settle(&self, _call: &HookCall<'_>) -> Result<Before, FacilitatorError> {
        if self.panics {
            panic!("screen crashed");
        }
        Err(FacilitatorError::Hook {
            hook: "broken".into(),
            step: "before_settle",
            message: "screening service unreachable".into(),
        })
    }
}

#[tokio::test]
async fn a_failing_hook_fails_the_settle_with_nothing_sent() {
    let h = ExactHarness::start().await;
    let buyer = h.bed.buyer(0).signer.clone();
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let request = h.pay_v2(&buyer, &req).await;
    let before = h.snapshot(&[buyer.address()]).await;
    for panics in [false, true] {
        let f = h.facilitator.clone().with_hook(Arc::new(Broken { panics }));
        let e = f.settle(&request).await.unwrap_err();
        assert!(
            matches!(&e, FacilitatorError::Hook { hook, step: "before_settle", .. } if hook == "broken"),
            "{e:?}"
        );
        // Verify has no before hook here: it runs as usual.
        assert!(f.verify(&request).await.unwrap().is_valid);
    }
    h.assert_untouched(&before, "a failing hook").await;
}

/// Turns a settle the facilitator failed with nothing sent (its settlement store unreachable,
/// an HTTP 503 otherwise) into a refusal the seller can act on: `unexpected_settle_error`, retry.
#[derive(Debug)]
struct StoreDownIsARetry;

#[async_trait]
impl FacilitatorHook for StoreDownIsARetry {
    fn name(&self) -> &str {
        "store_down_is_a_retry"
    }

    async fn on_settle_failure(
        &self,
        call: &HookCall<'_>,
        failure: Failure<'_, SettleResponse>,
    ) -> Result<Option<SettleResponse>, FacilitatorError> {
        Ok(match failure {
            Failure::Error(FacilitatorError::Scheme(x402_core::SchemeError::Store(_))) => {
                Some(SettleResponse::failed(
                    Reason::UNEXPECTED_SETTLE_ERROR,
                    Some("nothing was settled; retry".into()),
                    call.network_text(),
                    call.payer.clone(),
                ))
            }
            _ => None,
        })
    }
}

#[tokio::test]
async fn a_recover_hook_turns_a_facilitator_failure_into_an_answer() {
    use std::sync::atomic::Ordering;
    use x402_core::settlement::faulty::FaultyStore;
    let h = ExactHarness::start().await;
    let store = Arc::new(FaultyStore::default());
    store.write_ahead_fails.store(true, Ordering::SeqCst);
    let f = h
        .facilitator_with(
            store.clone(),
            scheme_exact_evm::Policy::default(),
            x402_core::system_clock(),
        )
        .with_hook(Arc::new(StoreDownIsARetry));
    let buyer = h.bed.buyer(0).signer.clone();
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let request = h.pay_v2(&buyer, &req).await;
    let before = h.snapshot(&[buyer.address()]).await;
    let s = f.settle(&request).await.expect("recovered into an answer");
    assert_settle_refused(&s, Reason::UNEXPECTED_SETTLE_ERROR, "store down");
    assert_eq!(
        s.error_message.as_deref(),
        Some("nothing was settled; retry")
    );
    assert_eq!(s.payer, Some(buyer.address().to_checksum(None)));
    h.assert_untouched(&before, "store down").await;
    // The store back, the retry settles.
    store.write_ahead_fails.store(false, Ordering::SeqCst);
    let s = f.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
}
