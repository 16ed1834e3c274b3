//! Buyer lifecycle hooks: code the application runs around every payment, whatever the scheme.
//!
//! A [`BuyerHook`] is added with [`Buyer::with_hook`](crate::Buyer::with_hook). Each method has
//! a default that does nothing, so a hook implements only the steps it cares about. The names
//! and the semantics follow the facilitator's hooks (`x402_core::hook`).
//!
//! ## Order and semantics
//!
//! For one request answered 402 (nothing runs for any other answer, nor for a request that
//! already carries a payment):
//!
//! 1. **on payment required** — [`BuyerHook::on_payment_required`] of every hook, in the order
//!    they were added, with the 402 as read, before any option is looked at. The first to
//!    answer [`Before::Abort`] ends the request with [`Error::Aborted`](crate::Error::Aborted)
//!    (step `on_payment_required`): nothing is chosen, reserved or signed. A prompt ("pay for
//!    this?") or a check that the site is trusted goes here. The first to answer
//!    [`Before::RetryWith`] (a sign-in-with-x proof, `x402-siwx`) has the request sent once more
//!    with its header instead of a payment (the later hooks do not run): an answer other than
//!    402 ends the request unpaid ([`Paid::payment`](crate::Paid) is `None`); a 402 goes on to
//!    the payment below, without that header. Then the seller's v2 extensions are answered
//!    ([`crate::extensions`]): one it requires that the buyer cannot satisfy ends the request
//!    with [`Error::Extension`](crate::Error::Extension), before anything is chosen.
//! 2. **choice** — the policy (built-in checks, then its filters, the recipient lists, the
//!    rolling budgets and the rate limit) keeps the acceptable options, the selector picks one,
//!    and its amount is **reserved** against the budgets (atomically with the check: two
//!    concurrent requests cannot both fit a budget only one fits).
//! 3. **before payment** — [`BuyerHook::before_payment`] of every hook, in order, with the
//!    chosen requirement. The first [`Before::Abort`] vetoes it: the reservation is released,
//!    nothing is signed, and the request ends with [`Error::Aborted`](crate::Error::Aborted)
//!    (step `before_payment`). Other options are not tried. The amount stays reserved while the
//!    hooks run (a prompt waiting for the user holds it), so concurrent requests see it counted.
//! 4. **signing** — the scheme signs; the payment is appended to the ledger (when the buyer has
//!    one). A signing or ledger failure releases the reservation: nothing left the process.
//! 5. **after payment** — [`BuyerHook::after_payment`] of every hook, in order, with the signed
//!    payload and its ledger record, just before the payment is sent. After hooks observe
//!    (logging, metrics); they can neither change nor stop the payment.
//!
//! A hook that fails in step 1 or 3 (returns `Err`, or panics) ends the request with
//! [`Error::Hook`](crate::Error::Hook) — before anything is signed, so nothing is paid; the
//! reservation is released. A panic in an after hook is contained and ignored.
//! [`Before::Abort`] is for a decision ("the user said no"), `Err` for a hook that could not
//! decide; both stop the payment (fail closed).

use std::fmt::Debug;

use async_trait::async_trait;
use x402_core::wire::{PaymentPayload, PaymentRequired, PaymentRequirements};

use crate::ledger::PaymentRecord;
use crate::policy::KnownAsset;

/// An error a hook returns when it cannot decide.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// A hook's decision in a step that may stop the payment.
///
/// Non-exhaustive: more answers may come without breaking the hooks written against these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Before {
    /// Go on (with the next hook, then the next step).
    Proceed,
    /// Stop: nothing is signed or sent, and the request fails with this reason.
    Abort(String),
    /// On payment required only: send the request once more with this header and no payment
    /// (a sign-in-with-x proof); when that answer is not a 402 it is the request's answer,
    /// unpaid, otherwise the payment goes on as if the hook had answered [`Before::Proceed`].
    /// Elsewhere it is [`Before::Proceed`].
    RetryWith(reqwest::header::HeaderName, reqwest::header::HeaderValue),
}

impl Before {
    /// Stops the payment with `reason`.
    pub fn abort(reason: impl Into<String>) -> Self {
        Self::Abort(reason.into())
    }
}

/// What [`BuyerHook::on_payment_required`] sees: the 402 and the request it answered.
#[derive(Debug, Clone, Copy)]
pub struct RequiredCall<'a> {
    /// The request's method.
    pub method: &'a reqwest::Method,
    /// The URL requested.
    pub url: &'a reqwest::Url,
    /// The 402's payment request, as read (v2 header, or v1 body).
    pub required: &'a PaymentRequired,
}

/// What [`BuyerHook::before_payment`] sees: the chosen requirement, before it is signed.
#[derive(Debug, Clone, Copy)]
pub struct PaymentCall<'a> {
    /// The request's method.
    pub method: &'a reqwest::Method,
    /// The URL requested.
    pub url: &'a reqwest::Url,
    /// The requirement chosen, as the seller sent it.
    pub requirements: &'a PaymentRequirements,
    /// Its asset (decimals and symbol).
    pub asset: &'a KnownAsset,
}

impl PaymentCall<'_> {
    /// The amount for people (`0.01 USDC`).
    pub fn amount(&self) -> String {
        crate::policy::shown(self.requirements, self.asset)
    }
}

/// What [`BuyerHook::after_payment`] sees: the signed payment, about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct SignedCall<'a> {
    /// The request's method.
    pub method: &'a reqwest::Method,
    /// The URL requested.
    pub url: &'a reqwest::Url,
    /// The requirement paid.
    pub requirements: &'a PaymentRequirements,
    /// The signed payment (what the payment header carries).
    pub payload: &'a PaymentPayload,
    /// Its ledger record (also when the buyer keeps no ledger).
    pub record: &'a PaymentRecord,
}

/// Code run around every payment of a [`Buyer`](crate::Buyer); see the module documentation
/// for the order and what each step may do.
#[async_trait]
pub trait BuyerHook: Send + Sync + Debug {
    /// The hook's name, for errors and logs.
    fn name(&self) -> &str;

    /// A 402 was read, before any option is chosen: [`Before::Abort`] refuses to pay.
    async fn on_payment_required(&self, call: &RequiredCall<'_>) -> Result<Before, HookError> {
        let _ = call;
        Ok(Before::Proceed)
    }

    /// An option was chosen and reserved, before it is signed: [`Before::Abort`] vetoes it.
    async fn before_payment(&self, call: &PaymentCall<'_>) -> Result<Before, HookError> {
        let _ = call;
        Ok(Before::Proceed)
    }

    /// A payment was signed and recorded, just before it is sent (observes only).
    async fn after_payment(&self, call: &SignedCall<'_>) {
        let _ = call;
    }
}
