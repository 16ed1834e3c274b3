//! ISO-8601 timestamps as JavaScript's `Date.prototype.toISOString` writes them.

use crate::UnixTime;

/// `2026-01-02T03:04:05.000Z` for a unix second (UTC, millisecond precision as in JavaScript).
pub fn iso8601(t: UnixTime) -> String {
    let secs = t.0;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days`, for days since 1970-01-01 (non-negative).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_javascript() {
        // new Date(0).toISOString(), new Date(1740672089000).toISOString()
        assert_eq!(iso8601(UnixTime(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(UnixTime(1_740_672_089)), "2025-02-27T16:01:29.000Z");
        assert_eq!(iso8601(UnixTime(951_782_400)), "2000-02-29T00:00:00.000Z");
    }
}
