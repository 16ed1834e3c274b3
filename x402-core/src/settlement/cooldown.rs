//! Payer cool-downs: a payer whose payment failed on chain at the facilitator's cost (an EVM
//! revert, a Solana transaction that landed with an error — the fee is ours either way) is
//! refused `payer_throttled` for a while, by every process sharing the settlement store.

use std::sync::Arc;
use std::time::Duration;

use super::{SettlementStore, StoreError};
use crate::{Reason, Rejection, UnixTime};

/// How long one network refuses payers whose payments failed on chain at its cost, and the store
/// that remembers them (keyed like the payer's turn: `<CAIP-2 network>/<payer>`).
#[derive(Debug, Clone)]
pub struct PayerCooldown {
    store: Arc<dyn SettlementStore>,
    period: Duration,
}

impl PayerCooldown {
    /// The cool-down a network has unless configured (`failed_payer_cooldown_secs`).
    pub const DEFAULT: Duration = Duration::from_secs(300);

    /// Cool-downs of `period` in `store`; a zero `period` turns them off (nothing is recorded
    /// or read).
    pub fn new(store: Arc<dyn SettlementStore>, period: Duration) -> Self {
        Self { store, period }
    }

    /// How long a cool-down lasts.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Until when payer `key` is refused; `None` when not (or cool-downs are off).
    ///
    /// # Errors
    /// The store failed: the caller answers nothing it cannot vouch for.
    pub async fn until(&self, key: &str) -> Result<Option<UnixTime>, StoreError> {
        if self.period.is_zero() {
            return Ok(None);
        }
        self.store.throttled(key).await
    }

    /// Starts (or extends) payer `key`'s cool-down from now; returns until when it lasts
    /// (`None`: cool-downs are off).
    ///
    /// # Errors
    /// The store failed. The payment's own answer stands: callers log this and go on.
    pub async fn start(&self, key: &str) -> Result<Option<UnixTime>, StoreError> {
        if self.period.is_zero() {
            return Ok(None);
        }
        let seconds = self.period.as_secs().max(1);
        let until = UnixTime(UnixTime::now().0.saturating_add(seconds));
        self.store.throttle(key, until).await?;
        Ok(Some(until))
    }

    /// The refusal of a payer in a cool-down until `until`; nothing was sent.
    pub fn rejection(until: UnixTime) -> Rejection {
        let left = until.0.saturating_sub(UnixTime::now().0);
        Rejection::with_message(
            Reason::PAYER_THROTTLED,
            format!(
                "a payment of this payer failed on chain at the facilitator's cost: its payments \
                 are refused until unix time {until} ({left} s from now); nothing was sent"
            ),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn a_cool_down_runs_for_its_period_and_a_zero_period_records_nothing() {
        let store: Arc<dyn SettlementStore> = Arc::new(MemoryStore::new());
        let on = PayerCooldown::new(Arc::clone(&store), Duration::from_secs(120));
        let before = UnixTime::now().0;
        let until = on.start("eip155:1/0xaa").await.unwrap().unwrap();
        assert!((before + 120..=UnixTime::now().0 + 120).contains(&until.0));
        assert_eq!(on.until("eip155:1/0xaa").await.unwrap(), Some(until));
        assert_eq!(on.until("eip155:1/0xbb").await.unwrap(), None);
        let r = PayerCooldown::rejection(until);
        assert_eq!(r.reason, Reason::PAYER_THROTTLED);
        let message = r.message.unwrap();
        assert!(message.contains(&until.to_string()), "{message}");

        let off = PayerCooldown::new(Arc::clone(&store), Duration::ZERO);
        assert_eq!(off.start("eip155:1/0xcc").await.unwrap(), None);
        assert_eq!(store.throttled("eip155:1/0xcc").await.unwrap(), None);
        // Off also means a cool-down recorded while it was on is not enforced.
        assert_eq!(off.until("eip155:1/0xaa").await.unwrap(), None);
    }
}
