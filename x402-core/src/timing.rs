//! The time bounds of a settle, derived from one setting so that they nest by construction.
//!
//! A settle crosses three processes, each with its own clock and timeout:
//!
//! ```text
//! seller ── POST /settle ──▶ facilitator ── send + confirm ──▶ chain
//!   client_timeout      >      request_deadline      >      answer_within
//! ```
//!
//! The facilitator's scheme stops waiting for the chain at [`SettleTimeouts::answer_within`] (from
//! the moment the request is dispatched) and answers `settlement_pending` with the transaction;
//! the HTTP server's own deadline ([`SettleTimeouts::request_deadline`]) is a last resort a
//! margin later; the seller's facilitator client waits a margin longer still
//! ([`SettleTimeouts::client_timeout`]). So the seller always hears the facilitator's answer —
//! success, failure or pending with the transaction — and never gives up on a payment that may
//! still land. Operators set the one value (`[limits] settle_timeout_ms`); sellers talking to a
//! facilitator with a non-default setting give their client the same value.

use std::time::{Duration, Instant};

/// The settle time bounds: one configured value and the bounds derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettleTimeouts {
    answer_within: Duration,
}

impl SettleTimeouts {
    /// The default bound on a settle's answer: about a Solana blockhash's lifetime at nominal
    /// slot times, by which almost every transaction is decided; one that is not is answered as
    /// pending, with its transaction.
    pub const DEFAULT_ANSWER_WITHIN: Duration =
        Duration::from_millis(Self::DEFAULT_ANSWER_WITHIN_MS);
    /// [`Self::DEFAULT_ANSWER_WITHIN`] in milliseconds, as configuration files write it.
    pub const DEFAULT_ANSWER_WITHIN_MS: u64 = 60_000;
    /// What each outer bound adds to the one inside it: time to write, send and read an answer
    /// on a loaded machine.
    pub const MARGIN: Duration = Duration::from_secs(5);

    /// Bounds for a facilitator that answers a settle within `answer_within`.
    pub const fn new(answer_within: Duration) -> Self {
        Self { answer_within }
    }

    /// When the facilitator answers at the latest (`settlement_pending` if the chain has not
    /// decided yet), counted from dispatch.
    pub const fn answer_within(&self) -> Duration {
        self.answer_within
    }

    /// The facilitator's HTTP request deadline: [`Self::answer_within`] plus [`Self::MARGIN`].
    pub const fn request_deadline(&self) -> Duration {
        self.answer_within.saturating_add(Self::MARGIN)
    }

    /// The seller's facilitator-client timeout: [`Self::request_deadline`] plus
    /// [`Self::MARGIN`].
    pub const fn client_timeout(&self) -> Duration {
        self.request_deadline().saturating_add(Self::MARGIN)
    }

    /// The instant by which a settle dispatched now must answer.
    pub fn answer_deadline_from_now(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(self.answer_within).unwrap_or(now)
    }
}

impl Default for SettleTimeouts {
    fn default() -> Self {
        Self::new(Self::DEFAULT_ANSWER_WITHIN)
    }
}

/// The time left until `deadline` (zero once passed); `None` (no deadline) stays `None`.
pub fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// `bound`, shortened to the time left until `deadline` when that is less.
pub fn capped(bound: Duration, deadline: Option<Instant>) -> Duration {
    time_left(deadline).map_or(bound, |left| left.min(bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_nest() {
        for secs in [1, 30, 60, 600] {
            let t = SettleTimeouts::new(Duration::from_secs(secs));
            assert!(t.answer_within() < t.request_deadline());
            assert!(t.request_deadline() < t.client_timeout());
            assert_eq!(
                t.client_timeout() - t.answer_within(),
                2 * SettleTimeouts::MARGIN
            );
        }
        let d = SettleTimeouts::default();
        assert_eq!(d.answer_within(), SettleTimeouts::DEFAULT_ANSWER_WITHIN);
    }

    #[test]
    fn capping() {
        let long = Duration::from_secs(3600);
        assert_eq!(capped(long, None), long);
        let soon = Instant::now() + Duration::from_secs(10);
        assert!(capped(long, Some(soon)) <= Duration::from_secs(10));
        assert_eq!(
            capped(Duration::from_secs(1), Some(soon)),
            Duration::from_secs(1)
        );
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        assert_eq!(capped(long, Some(past)), Duration::ZERO);
        assert_eq!(time_left(None), None);
    }
}
