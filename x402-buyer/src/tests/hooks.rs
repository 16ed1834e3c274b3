//! Buyer hooks: the order they run in, aborts, vetoes, failures and what they see.

use std::sync::Mutex;

use super::*;
use crate::hook::{Before, BuyerHook, HookError, PaymentCall, RequiredCall, SignedCall};

/// A hook that logs every step it sees and answers as told.
#[derive(Debug, Default)]
struct Script {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    abort_required: bool,
    veto: bool,
    fail: bool,
    panic: bool,
}

#[async_trait]
impl BuyerHook for Script {
    fn name(&self) -> &str {
        self.name
    }

    async fn on_payment_required(&self, call: &RequiredCall<'_>) -> Result<Before, HookError> {
        let options = match call.required {
            x402_core::wire::PaymentRequired::V2(d) => d.accepts.len(),
            x402_core::wire::PaymentRequired::V1(d) => d.accepts.len(),
        };
        self.log.lock().unwrap().push(format!(
            "{} required {} {} option(s)",
            self.name, call.method, options
        ));
        if self.panic {
            panic!("the prompt crashed");
        }
        Ok(if self.abort_required {
            Before::abort("the user said no")
        } else {
            Before::Proceed
        })
    }

    async fn before_payment(&self, call: &PaymentCall<'_>) -> Result<Before, HookError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} before {}", self.name, call.amount()));
        if self.fail {
            return Err("the price feed is down".into());
        }
        Ok(if self.veto {
            Before::abort("too dear today")
        } else {
            Before::Proceed
        })
    }

    async fn after_payment(&self, call: &SignedCall<'_>) {
        let payer = call.record.payer.clone().unwrap_or_default();
        let version = match call.payload {
            x402_core::wire::PaymentPayload::V2(_) => 2,
            x402_core::wire::PaymentPayload::V1(_) => 1,
        };
        self.log.lock().unwrap().push(format!(
            "{} after v{version} {} from {payer}",
            self.name, call.record.amount
        ));
        if self.panic {
            panic!("the logger crashed");
        }
    }
}

fn script(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Script {
    Script {
        name,
        log: log.clone(),
        ..Script::default()
    }
}

#[tokio::test]
async fn hooks_run_in_order_around_the_payment() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let signer = Arc::new(Signer::default());
    let buyer = buyer(&signer, Policy::default())
        .with_hook(Arc::new(script("a", &log)))
        .with_hook(Arc::new(script("b", &log)));
    buyer.get(&url).await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "a required GET 1 option(s)",
            "b required GET 1 option(s)",
            "a before 0.01 USDC",
            "b before 0.01 USDC",
            &format!("a after v2 10000 from {PAYER}"),
            &format!("b after v2 10000 from {PAYER}"),
        ]
    );
    assert_eq!(paid.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_abort_on_payment_required_stops_before_anything_is_chosen() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let signer = Arc::new(Signer::default());
    let no = Script {
        abort_required: true,
        ..script("prompt", &log)
    };
    let buyer = buyer(&signer, Policy::default().max_per_hour("0.01"))
        .with_hook(Arc::new(no))
        .with_hook(Arc::new(script("later", &log)));
    let e = buyer.get(&url).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "hook prompt stopped the payment (on_payment_required): the user said no"
    );
    assert!(
        matches!(&e, Error::Aborted { hook, step: "on_payment_required", .. } if hook == "prompt")
    );
    assert_eq!(*log.lock().unwrap(), ["prompt required GET 1 option(s)"]);
    assert_eq!(signer.signed.load(Ordering::SeqCst), 0);
    assert_eq!(paid.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_veto_before_payment_releases_the_budget() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let signer = Arc::new(Signer::default());
    let veto = Script {
        veto: true,
        ..script("veto", &log)
    };
    let policy = || Policy::default().max_per_hour("0.01");
    let buyer_ = buyer(&signer, policy()).with_hook(Arc::new(veto));
    for _ in 0..2 {
        let e = buyer_.get(&url).await.unwrap_err();
        assert!(
            matches!(&e, Error::Aborted { step: "before_payment", reason, .. } if reason == "too dear today"),
            "{e}"
        );
    }
    let usdc = usdc();
    assert_eq!(
        buyer_.spent(&usdc.network, &usdc.address),
        x402_core::Amount::ZERO
    );
    assert_eq!(signer.signed.load(Ordering::SeqCst), 0);
    assert_eq!(paid.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failing_or_panicking_hook_fails_closed() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let signer = Arc::new(Signer::default());
    let failing = Script {
        fail: true,
        ..script("feed", &log)
    };
    let e = buyer(&signer, Policy::default())
        .with_hook(Arc::new(failing))
        .get(&url)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "hook feed failed in before_payment: the price feed is down"
    );
    let panicking = Script {
        panic: true,
        ..script("prompt", &log)
    };
    let e = buyer(&signer, Policy::default())
        .with_hook(Arc::new(panicking))
        .get(&url)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "hook prompt failed in on_payment_required: panicked"
    );
    assert_eq!(signer.signed.load(Ordering::SeqCst), 0);
    assert_eq!(paid.load(Ordering::SeqCst), 0);
}

/// A hook that only observes, and crashes doing so.
#[derive(Debug)]
struct Clumsy;

#[async_trait]
impl BuyerHook for Clumsy {
    fn name(&self) -> &str {
        "clumsy"
    }
    async fn after_payment(&self, _: &SignedCall<'_>) {
        panic!("the logger crashed");
    }
}

#[tokio::test]
async fn a_panic_after_payment_does_not_stop_it() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let signer = Arc::new(Signer::default());
    let done = buyer(&signer, Policy::default())
        .with_hook(Arc::new(Clumsy))
        .get(&url)
        .await
        .unwrap();
    assert_eq!(done.response.status(), 200);
    assert_eq!(paid.load(Ordering::SeqCst), 1);
}

/// A hook asking for an unpaid retry with `x-pass: <pass>` (what a sign-in hook answers).
#[derive(Debug)]
struct Pass(&'static str);

#[async_trait]
impl BuyerHook for Pass {
    fn name(&self) -> &str {
        "pass"
    }

    async fn on_payment_required(&self, _: &RequiredCall<'_>) -> Result<Before, HookError> {
        Ok(Before::RetryWith(
            reqwest::header::HeaderName::from_static("x-pass"),
            reqwest::header::HeaderValue::from_static(self.0),
        ))
    }
}

#[tokio::test]
async fn a_retry_with_a_header_is_served_unpaid_or_goes_on_to_pay() {
    let (url, paid) = seller(vec![option(10_000, SELLER)]).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let signer = Arc::new(Signer::default());
    // Accepted: the answer is the retry's, unpaid; the later hooks do not run.
    let buyer = buyer(&signer, Policy::default())
        .with_hook(Arc::new(Pass("open")))
        .with_hook(Arc::new(script("later", &log)));
    let free = buyer.get(&url).await.unwrap();
    assert!(free.payment.is_none());
    assert_eq!(free.response.text().await.unwrap(), "a free joke");
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(
        (
            signer.signed.load(Ordering::SeqCst),
            paid.load(Ordering::SeqCst)
        ),
        (0, 0)
    );

    // Refused (a 402 to the retry): the buyer pays, once.
    let buyer = buyer_with_pass(&signer, "closed");
    let bought = buyer.get(&url).await.unwrap();
    assert!(bought.payment.is_some());
    assert_eq!(bought.response.text().await.unwrap(), "a joke");
    assert_eq!(
        (
            signer.signed.load(Ordering::SeqCst),
            paid.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
}

fn buyer_with_pass(signer: &Arc<Signer>, pass: &'static str) -> crate::Buyer {
    buyer(signer, Policy::default()).with_hook(Arc::new(Pass(pass)))
}
