//! What the SQL backends share: how a settlement row's columns map to x402-core's types.
//!
//! A row holds the outcome and the intent as JSON text (their `to_stored` forms), plus columns
//! the queries need: `state` (the outcome's tag, `NULL` while a claim is in flight), `network`
//! and `tx` (copied from the intent).

use std::time::Duration;
#[cfg(feature = "sqlite")]
use std::time::{SystemTime, UNIX_EPOCH};

use x402_core::{Intent, Outcome, Record, StoreError, UnixTime};

/// The rows [`Record::is_unresolved`] holds for, as an SQL condition on the row's columns. Kept
/// textually identical in every query and in the partial index, so the planners use the index.
pub(crate) const UNRESOLVED: &str = "intent IS NOT NULL AND (state IS NULL OR state = 'pending')";

/// The `state` column of an outcome: its serde tag.
pub(crate) fn state_of(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Settled { .. } => "settled",
        Outcome::Landed { .. } => "landed",
        Outcome::Failed { .. } => "failed",
        Outcome::Pending { .. } => "pending",
    }
}

/// A record from its `outcome` and `intent` columns.
pub(crate) fn record(outcome: Option<&str>, intent: Option<&str>) -> Result<Record, StoreError> {
    Ok(Record {
        outcome: outcome.map(Outcome::from_stored).transpose()?,
        intent: intent.map(Intent::from_stored).transpose()?,
    })
}

/// The `Settled` outcome a `Landed` one becomes when it is delivered.
pub(crate) fn delivered(landed: &str) -> Result<Option<String>, StoreError> {
    Ok(match Outcome::from_stored(landed)? {
        Outcome::Landed { transaction } => Some(Outcome::Settled { transaction }.to_stored()),
        _ => None,
    })
}

/// A payment's expiry as an SQL integer (saturating: an expiry past `i64::MAX` seconds is never).
pub(crate) fn expires(expires: UnixTime) -> i64 {
    i64::try_from(expires.0).unwrap_or(i64::MAX)
}

/// An instant stored by [`expires`] read back (a negative one is the epoch).
pub(crate) fn unix_time(stored: i64) -> UnixTime {
    UnixTime(u64::try_from(stored).unwrap_or(0))
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A duration in whole seconds, saturating.
#[cfg(feature = "postgres")]
pub(crate) fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The system clock in Unix milliseconds.
#[cfg(feature = "sqlite")]
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

/// A `usize` limit as an SQL integer.
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
