//! Facilitator lifecycle hooks: code an operator runs around every verify and settle, whatever
//! the scheme.
//!
//! A [`FacilitatorHook`] is registered on the dispatcher with
//! [`LocalFacilitator::with_hook`](crate::LocalFacilitator::with_hook); hooks wrap every scheme
//! uniformly (they sit in the dispatcher, not in a scheme). Each of the six methods has a default
//! that does nothing, so a hook implements only the steps it cares about.
//!
//! ## Order and semantics
//!
//! For one verify (settle alike, with the `settle` methods):
//!
//! 1. **before** — [`FacilitatorHook::before_verify`] of every hook, in registration order. The
//!    first to answer [`Before::Abort`] ends the request: the answer is `isValid: false`
//!    (`success: false`, no transaction) with the hook's reason and message, and the payer the
//!    payload names. Nothing else runs: no later before hook, no scheme, no failure or after
//!    hook. A settle aborted here claims nothing and sends nothing.
//! 2. **the scheme** — routing and the scheme's own verify (settle). A request no scheme serves
//!    is answered by the dispatcher (`unsupported_scheme`, `invalid_network`…), which counts as a
//!    scheme answer below.
//! 3. **on failure** — when that answer is a refusal (`isValid: false`; `success: false` other
//!    than `settlement_pending`) or the facilitator failed (`Err`, an HTTP 5xx at the server),
//!    [`FacilitatorHook::on_verify_failure`] of every hook, in registration order. The first to
//!    return `Some(response)` **recovers**: its response replaces the answer and the later
//!    failure hooks do not run. A recovered settle moved whatever the scheme moved (a
//!    `transaction_failed` paid gas; a refusal sent nothing): a recovery changes the answer, not
//!    the chain.
//! 4. **after** — [`FacilitatorHook::after_verify`] of every hook, in registration order, with
//!    the final answer when it is valid (settled, or `settlement_pending`) or was recovered.
//!    After hooks observe; they can neither change nor fail the answer (a settlement cannot be
//!    undone).
//!
//! A before or failure hook that fails (returns `Err`, or panics) fails the request as the
//! facilitator failing ([`FacilitatorError::Hook`], HTTP 500 at the server) — before the scheme,
//! nothing is sent. A screen that must fail closed
//! answers [`Before::Abort`] or `Err` when it cannot decide; one that may fail open answers
//! [`Before::Proceed`].
//!
//! A body that cannot be read (malformed, HTTP 400; an unsupported `x402Version`) is answered
//! before any hook runs, as are the server's own refusals (access control, limits).
//!
//! ## What a hook sees
//!
//! [`HookCall`]: the request as the wire carried it, its network when readable, the recipient,
//! and the payer the payload names ([`HookCall::payer`], read by the scheme without verifying
//! the payment — the address the scheme would move funds from, so a screen can refuse it before
//! anything is sent).

use std::fmt::Debug;

use async_trait::async_trait;

use crate::facilitator::FacilitatorError;
use crate::wire::{SettleResponse, VerifyRequest, VerifyResponse};
use crate::{Network, Rejection};

/// Which call a hook runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `/verify`.
    Verify,
    /// `/settle`.
    Settle,
}

/// What a hook sees of a verify or settle request.
#[derive(Debug, Clone)]
pub struct HookCall<'a> {
    /// Verify or settle.
    pub operation: Operation,
    /// The request as received.
    pub request: &'a VerifyRequest,
    /// The requirements' network, when it parses.
    pub network: Option<Network>,
    /// The requirements' `payTo`, as written.
    pub pay_to: &'a str,
    /// The payer the payload names (the scheme's reading, unverified; canonical for its chain:
    /// an EVM address checksummed, a Solana key in base58), when a scheme serves the request and
    /// can read it.
    pub payer: Option<String>,
}

impl HookCall<'_> {
    /// The requirements' scheme, as written.
    pub fn scheme(&self) -> &str {
        self.request.payment_requirements.scheme()
    }

    /// The requirements' network, as written.
    pub fn network_text(&self) -> &str {
        self.request.payment_requirements.network_text()
    }
}

/// A before hook's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// Go on (with the next hook, then the scheme).
    Proceed,
    /// Refuse the payment with this reason; nothing else runs, nothing is sent.
    Abort(Rejection),
}

/// Why a verify or settle failed, as a failure hook sees it.
#[derive(Debug)]
pub enum Failure<'a, R> {
    /// The payment was refused (the answer, `isValid: false` / `success: false`).
    Refused(&'a R),
    /// The facilitator failed (answered as HTTP 5xx unless recovered).
    Error(&'a FacilitatorError),
}

/// Code run around every verify and settle of a [`crate::LocalFacilitator`]; see the module
/// documentation for the order and what each step may do.
#[async_trait]
pub trait FacilitatorHook: Send + Sync + Debug {
    /// The hook's name, for logs and errors.
    fn name(&self) -> &str;

    /// Before a verify: [`Before::Abort`] refuses it.
    async fn before_verify(&self, call: &HookCall<'_>) -> Result<Before, FacilitatorError> {
        let _ = call;
        Ok(Before::Proceed)
    }

    /// After a verify that answered valid, or was recovered (observes only; a panic here is
    /// contained and ignored).
    async fn after_verify(&self, call: &HookCall<'_>, response: &VerifyResponse) {
        let _ = (call, response);
    }

    /// After a verify refused the payment or failed: `Some` recovers with that answer.
    async fn on_verify_failure(
        &self,
        call: &HookCall<'_>,
        failure: Failure<'_, VerifyResponse>,
    ) -> Result<Option<VerifyResponse>, FacilitatorError> {
        let _ = (call, failure);
        Ok(None)
    }

    /// Before a settle: [`Before::Abort`] refuses it; nothing is claimed or sent.
    async fn before_settle(&self, call: &HookCall<'_>) -> Result<Before, FacilitatorError> {
        let _ = call;
        Ok(Before::Proceed)
    }

    /// After a settle that succeeded, answered `settlement_pending`, or was recovered
    /// (observes only; a panic here is contained and ignored: the settlement stands).
    async fn after_settle(&self, call: &HookCall<'_>, response: &SettleResponse) {
        let _ = (call, response);
    }

    /// After a settle was refused or failed: `Some` recovers with that answer.
    async fn on_settle_failure(
        &self,
        call: &HookCall<'_>,
        failure: Failure<'_, SettleResponse>,
    ) -> Result<Option<SettleResponse>, FacilitatorError> {
        let _ = (call, failure);
        Ok(None)
    }
}
