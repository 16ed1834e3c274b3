//! Choosing among the acceptable options: the caller's [`Selector`] (a trait, or a closure via
//! [`Buyer::select_with`](crate::Buyer::select_with)) and the policy's filters
//! ([`Policy::filter`](crate::Policy::filter)).

use std::fmt::Debug;
use std::sync::Arc;

use x402_core::RequirementsView;
use x402_core::wire::PaymentRequirements;

use crate::policy::KnownAsset;

/// An option of a 402 that the policy accepts (or that a filter is asked about).
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Its position in the 402's `accepts` (from 0).
    pub index: usize,
    /// The requirement as the seller sent it.
    pub requirements: &'a PaymentRequirements,
    /// The same, version-neutral (network, amount, asset, `payTo`…).
    pub view: RequirementsView<'a>,
    /// Its asset (decimals and symbol).
    pub asset: &'a KnownAsset,
}

impl Candidate<'_> {
    /// The amount for people (`0.01 USDC`).
    pub fn amount(&self) -> String {
        crate::policy::shown(self.requirements, self.asset)
    }
}

/// Picks the option to pay among the acceptable ones.
///
/// `candidates` holds every option that passed the policy (its checks, filters, recipient
/// lists, budgets and rate limit), best first by the built-in ranking (the preferred networks,
/// then schemes, then the seller's order), never empty. The answer is an index into
/// `candidates`; `None` declines them all (the request fails with
/// [`Error::NoAcceptableOption`](crate::Error::NoAcceptableOption), nothing is paid).
///
/// It runs under the buyer's budget lock, so that what it picks is reserved before any other
/// request can spend the same budget: keep it quick, and do no I/O in it. A panic in it reaches
/// the caller, with nothing reserved or signed.
pub trait Selector: Send + Sync + Debug {
    /// The index of the candidate to pay, or `None` to pay none.
    fn select(&self, candidates: &[Candidate<'_>]) -> Option<usize>;
}

/// The built-in choice: the best ranked candidate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ranked;

impl Selector for Ranked {
    fn select(&self, candidates: &[Candidate<'_>]) -> Option<usize> {
        (!candidates.is_empty()).then_some(0)
    }
}

/// A closure as a [`Selector`].
pub struct SelectFn<F>(pub F);

impl<F> Debug for SelectFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SelectFn")
    }
}

impl<F> Selector for SelectFn<F>
where
    F: Fn(&[Candidate<'_>]) -> Option<usize> + Send + Sync,
{
    fn select(&self, candidates: &[Candidate<'_>]) -> Option<usize> {
        (self.0)(candidates)
    }
}

/// The closure type of a policy filter: `Err(reason)` excludes the option.
pub type FilterFn = dyn Fn(&Candidate<'_>) -> Result<(), String> + Send + Sync;

/// A named policy filter ([`Policy::filter`](crate::Policy::filter)): an option it answers
/// `Err(reason)` for is not paid, and the reason is listed when no option is left.
#[derive(Clone)]
pub struct Filter {
    /// Its name, shown with its reasons.
    pub name: String,
    /// The check.
    pub check: Arc<FilterFn>,
}

impl Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
