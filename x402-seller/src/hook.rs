//! Seller lifecycle hooks: code a seller runs on every protected request and around its verify
//! and settle calls to the facilitator, the seller-side mirror of the facilitator's
//! [`x402_core::hook`].
//!
//! A [`SellerHook`] is added with [`Seller::with_hook`](crate::Seller::with_hook); hooks run in
//! the order they were added, on every route of the seller. Each method has a default that does
//! nothing, so a hook implements only the steps it cares about.
//!
//! ## Order and semantics
//!
//! 0. **on protected request** — [`SellerHook::on_protected_request`] of every hook, in order,
//!    before any payment handling (no offers are built, the payment header is not read). The
//!    first [`Access::Grant`] or [`Access::Refuse`] decides:
//!    * [`Access::Grant`]: the handler runs for free — nothing is verified or settled, a payment
//!      header the request carries is ignored (never sent to a facilitator), and the handler
//!      sees a [`FreeAccess`](crate::FreeAccess) request extension;
//!    * [`Access::Refuse`]: **403** `{"error": message}`; the handler does not run.
//!
//!    [`Access::Decline`] is [`Access::Continue`] with a reason (a sign-in-with-x proof that was
//!    refused): the later hooks still run, and when the request carries no payment its 402 (which
//!    still offers payment) has the first decline's message as its `error`.
//!
//! For one verify (settle alike, with the `settle` methods):
//!
//! 1. **before** — [`SellerHook::before_verify`] of every hook, in order. The first to answer
//!    [`Before::Abort`] ends the request: the buyer gets a **402** with the offers whose `error`
//!    is the hook's reason code (the message is logged, not sent). Nothing else runs: no later
//!    hook, no facilitator call, no failure or after hook. A settle aborted here sends nothing
//!    (the payment is not settled; with [`SettleTiming::AfterHandler`](crate::SettleTiming) the
//!    handler has run and its response is withheld).
//! 2. **the facilitator** — verify (with fallover to another facilitator on a transport error,
//!    see [`Seller::with_facilitator`](crate::Seller::with_facilitator)) or settle (with its
//!    one retry of a `settlement_pending` answer).
//! 3. **on failure** — when that answer is a refusal (`isValid: false`; `success: false` other
//!    than `settlement_pending`) or the facilitator failed (`Err`),
//!    [`SellerHook::on_verify_failure`] of every hook, in order. The first to return
//!    `Some(response)` **recovers**: its response replaces the answer, the later failure hooks
//!    do not run. A recovered verify that is valid lets the request through to the handler (and
//!    to settlement); a recovered settle that succeeded grants the response with that
//!    settlement (the seller vouches for it: it is not checked against the payment); a
//!    recovered refusal is answered like a refusal, with its reason. A recovery changes the
//!    answer, not the chain: nothing is moved or un-moved.
//! 4. **after** — [`SellerHook::after_verify`] of every hook, in order, with the final answer
//!    when it is valid (settled, or still `settlement_pending`) or was recovered. After hooks
//!    observe; they can neither change nor fail the answer. With
//!    [`SettleTiming::AfterHandler`](crate::SettleTiming) (the default) the settlement result
//!    reaches the seller's code here, in [`SellerHook::after_settle`].
//!
//! 5. **on verified** — after a valid (or recovered-valid) verify and its after hooks,
//!    [`SellerHook::on_verified`] of every hook, in order, with the payer the verify named in
//!    [`SellerCall::payer`]. The first [`Before::Abort`] refuses the payment like a before step
//!    (402 with the hook's reason): the handler does not run and nothing is settled, on either
//!    [`SettleTiming`](crate::SettleTiming).
//!
//! A hook that fails (returns `Err`, or panics) in an on-protected-request, before, on-verified
//! or failure step fails the request: **500** `{"error": "the seller's hook <name> failed in <step>"}`
//! (the hook's message is logged, not sent) — before the facilitator call, nothing is sent; in a
//! settle's failure step the settlement had failed, so nothing was charged. A panic in an after
//! step is contained and ignored.
//!
//! ## What a hook sees
//!
//! [`SellerCall`]: the verify (settle) request exactly as it goes to the facilitator — built from
//! the seller's own requirements for this request — the protocol version, and the payer once a
//! verify named it (`None` in [`SellerHook::before_verify`]: the seller links no chain code to
//! read a payload; the payload itself is in [`SellerCall::request`]). To screen payers, abort in
//! [`SellerHook::on_verified`]: the payer is the one the verify named, and neither the handler
//! nor the settle runs for a refused payer.

use std::fmt::Debug;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use axum::http::request::Parts;
use futures::FutureExt as _;
pub use x402_core::hook::{Before, Failure, Operation};
use x402_core::wire::{SettleResponse, VerifyRequest, VerifyResponse};
use x402_core::{FacilitatorError, X402Version};

/// What a seller hook sees of a verify or settle call.
#[derive(Debug, Clone)]
pub struct SellerCall<'a> {
    /// Verify or settle.
    pub operation: Operation,
    /// The request sent to the facilitator (the seller's own requirements for this request).
    pub request: &'a VerifyRequest,
    /// The payment's protocol version.
    pub version: X402Version,
    /// The payer the facilitator's verify named (`None` before verify).
    pub payer: Option<&'a str>,
}

impl SellerCall<'_> {
    /// The requirements' `payTo`, as written.
    pub fn pay_to(&self) -> &str {
        match &self.request.payment_requirements {
            x402_core::wire::PaymentRequirements::V1(r) => &r.pay_to,
            x402_core::wire::PaymentRequirements::V2(r) => &r.pay_to,
        }
    }

    /// The requirements' scheme.
    pub fn scheme(&self) -> &str {
        self.request.payment_requirements.scheme()
    }

    /// The requirements' network, as written.
    pub fn network_text(&self) -> &str {
        self.request.payment_requirements.network_text()
    }
}

/// An on-protected-request hook's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Go on (with the next hook, then the payment flow).
    Continue,
    /// Serve the handler without asking for a payment.
    Grant,
    /// Refuse with 403 and this message (sent to the client: no secrets).
    Refuse(String),
    /// Go on, as [`Access::Continue`]; an unpaid request's 402 carries this message as its
    /// `error` (sent to the client: no secrets).
    Decline(String),
}

/// A seller hook could not decide (answered as a 500; the message is logged, not sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HookError(pub String);

impl HookError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Code run on every protected request of a [`crate::Seller`] and around its verify and settle
/// calls; see the module documentation for the order and what each step may do.
#[async_trait]
pub trait SellerHook: Send + Sync + Debug {
    /// The hook's name, for logs and errors.
    fn name(&self) -> &str;

    /// Before any payment handling: continue, grant free access, or refuse with 403.
    async fn on_protected_request(&self, request: &Parts) -> Result<Access, HookError> {
        let _ = request;
        Ok(Access::Continue)
    }

    /// Before a verify: [`Before::Abort`] refuses the payment (402 with the reason).
    async fn before_verify(&self, call: &SellerCall<'_>) -> Result<Before, HookError> {
        let _ = call;
        Ok(Before::Proceed)
    }

    /// After a verify that answered valid, or was recovered (observes only).
    async fn after_verify(&self, call: &SellerCall<'_>, response: &VerifyResponse) {
        let _ = (call, response);
    }

    /// After a valid (or recovered-valid) verify and its after hooks, with the verified payer in
    /// [`SellerCall::payer`], before the handler runs and before anything is settled:
    /// [`Before::Abort`] refuses the payment (402 with the reason) — the place for a payer screen
    /// (a compliance deny-list) that must not let the handler run for a refused payer.
    async fn on_verified(
        &self,
        call: &SellerCall<'_>,
        response: &VerifyResponse,
    ) -> Result<Before, HookError> {
        let _ = (call, response);
        Ok(Before::Proceed)
    }

    /// After a verify refused the payment or failed: `Some` recovers with that answer.
    async fn on_verify_failure(
        &self,
        call: &SellerCall<'_>,
        failure: Failure<'_, VerifyResponse>,
    ) -> Result<Option<VerifyResponse>, HookError> {
        let _ = (call, failure);
        Ok(None)
    }

    /// Before a settle: [`Before::Abort`] refuses the payment (402 with the reason); nothing is
    /// sent to the facilitator.
    async fn before_settle(&self, call: &SellerCall<'_>) -> Result<Before, HookError> {
        let _ = call;
        Ok(Before::Proceed)
    }

    /// After a settle that succeeded, is still `settlement_pending`, or was recovered (observes
    /// only; the settlement stands).
    async fn after_settle(&self, call: &SellerCall<'_>, response: &SettleResponse) {
        let _ = (call, response);
    }

    /// After a settle was refused or failed: `Some` recovers with that answer.
    async fn on_settle_failure(
        &self,
        call: &SellerCall<'_>,
        failure: Failure<'_, SettleResponse>,
    ) -> Result<Option<SettleResponse>, HookError> {
        let _ = (call, failure);
        Ok(None)
    }
}

/// A hook failed in a deciding step.
#[derive(Debug)]
pub(crate) struct HookFailed {
    pub(crate) hook: String,
    pub(crate) step: &'static str,
    pub(crate) message: String,
}

/// Runs a deciding step; a panic is the hook failing.
async fn decided<T>(
    hook: &Arc<dyn SellerHook>,
    step: &'static str,
    future: impl Future<Output = Result<T, HookError>>,
) -> Result<T, HookFailed> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(HookFailed {
            hook: hook.name().to_owned(),
            step,
            message: e.0,
        }),
        Err(_) => Err(HookFailed {
            hook: hook.name().to_owned(),
            step,
            message: "panicked".to_owned(),
        }),
    }
}

/// Runs an after step: it observes only, so a panic is contained and ignored.
async fn observed(future: impl Future<Output = ()>) {
    let _ = AssertUnwindSafe(future).catch_unwind().await;
}

/// A facilitator answer as the failure hooks see it; `recovered` when a hook replaced it.
pub(crate) struct Answer<R> {
    pub(crate) result: Result<R, FacilitatorError>,
    pub(crate) recovered: bool,
}

/// The seller's hooks, in order.
pub(crate) struct Hooks<'h>(pub(crate) &'h [Arc<dyn SellerHook>]);

impl Hooks<'_> {
    pub(crate) async fn access(&self, parts: &Parts) -> Result<(Access, String), HookFailed> {
        let mut declined = None;
        for hook in self.0 {
            let access = decided(
                hook,
                "on_protected_request",
                hook.on_protected_request(parts),
            )
            .await?;
            match access {
                Access::Continue => {}
                Access::Decline(_) => {
                    declined = declined.or(Some((access, hook.name().to_owned())));
                }
                _ => return Ok((access, hook.name().to_owned())),
            }
        }
        Ok(declined.unwrap_or((Access::Continue, String::new())))
    }

    /// The first abort of a before step, with the hook's name.
    pub(crate) async fn before(
        &self,
        call: &SellerCall<'_>,
    ) -> Result<Option<(x402_core::Rejection, String)>, HookFailed> {
        for hook in self.0 {
            let before = match call.operation {
                Operation::Verify => decided(hook, "before_verify", hook.before_verify(call)).await,
                Operation::Settle => decided(hook, "before_settle", hook.before_settle(call)).await,
            }?;
            if let Before::Abort(rejection) = before {
                return Ok(Some((rejection, hook.name().to_owned())));
            }
        }
        Ok(None)
    }

    /// The first abort of an [`SellerHook::on_verified`] step, with the hook's name.
    pub(crate) async fn admit(
        &self,
        call: &SellerCall<'_>,
        response: &VerifyResponse,
    ) -> Result<Option<(x402_core::Rejection, String)>, HookFailed> {
        for hook in self.0 {
            let step = hook.on_verified(call, response);
            if let Before::Abort(rejection) = decided(hook, "on_verified", step).await? {
                return Ok(Some((rejection, hook.name().to_owned())));
            }
        }
        Ok(None)
    }

    /// Failure and after steps of a verify.
    pub(crate) async fn verified(
        &self,
        call: &SellerCall<'_>,
        result: Result<VerifyResponse, FacilitatorError>,
    ) -> Result<Answer<VerifyResponse>, HookFailed> {
        let mut answer = Answer {
            result,
            recovered: false,
        };
        let failed = !matches!(&answer.result, Ok(r) if r.is_valid);
        if failed {
            for hook in self.0 {
                let failure = match &answer.result {
                    Ok(r) => Failure::Refused(r),
                    Err(e) => Failure::Error(e),
                };
                let step = hook.on_verify_failure(call, failure);
                if let Some(r) = decided(hook, "on_verify_failure", step).await? {
                    answer = Answer {
                        result: Ok(r),
                        recovered: true,
                    };
                    break;
                }
            }
        }
        if let Ok(r) = &answer.result
            && (r.is_valid || answer.recovered)
        {
            for hook in self.0 {
                observed(hook.after_verify(call, r)).await;
            }
        }
        Ok(answer)
    }

    /// Failure and after steps of a settle (`pending`: whether an answer is `settlement_pending`,
    /// which is not a failure).
    pub(crate) async fn settled(
        &self,
        call: &SellerCall<'_>,
        result: Result<SettleResponse, FacilitatorError>,
        pending: impl Fn(&SettleResponse) -> bool,
    ) -> Result<Answer<SettleResponse>, HookFailed> {
        let mut answer = Answer {
            result,
            recovered: false,
        };
        let failed = !matches!(&answer.result, Ok(r) if r.success || pending(r));
        if failed {
            for hook in self.0 {
                let failure = match &answer.result {
                    Ok(r) => Failure::Refused(r),
                    Err(e) => Failure::Error(e),
                };
                let step = hook.on_settle_failure(call, failure);
                if let Some(r) = decided(hook, "on_settle_failure", step).await? {
                    answer = Answer {
                        result: Ok(r),
                        recovered: true,
                    };
                    break;
                }
            }
        }
        if let Ok(r) = &answer.result
            && (r.success || pending(r) || answer.recovered)
        {
            for hook in self.0 {
                observed(hook.after_settle(call, r)).await;
            }
        }
        Ok(answer)
    }
}
