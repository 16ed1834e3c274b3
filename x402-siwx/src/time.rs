//! RFC 3339 timestamps (EIP-4361's `issued-at`, `expiration-time` and `not-before`), read to unix
//! milliseconds and written as JavaScript's `toISOString` writes them.

use x402_core::UnixTime;

/// `2026-01-02T03:04:05.000Z` for a unix second (what the challenge carries).
pub fn format(t: UnixTime) -> String {
    x402_core::extension::iso8601(t)
}

/// Reads an RFC 3339 `date-time` (`2026-01-02T03:04:05Z`, `…05.123+02:00`) as unix milliseconds;
/// `None` for anything else (a date alone, a missing offset, an impossible day or time).
pub fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, c: &[u8]| b.get(at).is_some_and(|x| c.contains(x));
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut at = 19;
    let mut millis = 0i64;
    if sep(at, b".") {
        let start = at + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        // Milliseconds: the first three fraction digits (finer ones are dropped).
        for i in 0..3 {
            millis = millis * 10
                + b.get(start + i)
                    .filter(|_| start + i < end)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
        at = end;
    }
    let offset_minutes = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() && sep(at + 3, b":") => {
            let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

/// Howard Hinnant's `days_from_civil`: days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_javascript_writes_and_offsets() {
        assert_eq!(parse("1970-01-01T00:00:00.000Z"), Some(0));
        // Date.parse("2026-12-04T05:03:23.123Z")
        assert_eq!(parse("2026-12-04T05:03:23.123Z"), Some(1_796_360_603_123));
        assert_eq!(
            parse("2026-12-04T07:03:23.123+02:00"),
            Some(1_796_360_603_123)
        );
        assert_eq!(parse("2026-12-04T05:03:23Z"), Some(1_796_360_603_000));
        assert_eq!(
            parse("2026-12-04T05:03:23.1234567Z"),
            Some(1_796_360_603_123)
        );
        assert_eq!(parse("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(
            parse(&format(UnixTime(1_740_672_089))),
            Some(1_740_672_089_000)
        );
    }

    #[test]
    fn refuses_what_is_not_a_date_time() {
        for bad in [
            "",
            "yesterday",
            "2026-12-04",
            "2026-12-04T05:03:23",
            "2026-12-04 05:03:23Z",
            "2026-13-04T05:03:23Z",
            "2026-02-30T05:03:23Z",
            "2025-02-29T00:00:00Z",
            "2026-12-04T24:00:00Z",
            "2026-12-04T05:03:23.Z",
            "2026-12-04T05:03:23Zjunk",
            "2026-12-04T05:03:23+0200",
            "+2026-12-04T05:03:23Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
