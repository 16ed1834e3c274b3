//! Strict decimal scalars: token amounts (uint256), unix timestamps and human prices.
//!
//! x402 carries every amount, timestamp and Permit2 nonce as a decimal integer string. Parsers in
//! the wild disagree about signs, whitespace, `_`, hex prefixes and the empty string, and any
//! disagreement between what a seller compares, what a facilitator checks and what a chain
//! executes is exploitable. So there is exactly one grammar here, `0|[1-9][0-9]*`, applied before
//! any numeric conversion, and `parse(s).to_string() == s` holds for every accepted input.

use std::fmt;
use std::str::FromStr;

use ruint::aliases::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a decimal string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// The string is empty.
    #[error("empty string is not a number")]
    Empty,
    /// A character outside `0-9` (sign, space, `_`, `x`, `.`, `e`, …).
    #[error("invalid character {found:?} at byte {at}: only the digits 0-9 are allowed")]
    InvalidChar {
        /// The offending character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
    /// A leading zero on a multi-digit number (`"01"`), which has two spellings.
    #[error("leading zero is not canonical")]
    LeadingZero,
    /// The value does not fit the target type.
    #[error("value exceeds the maximum of {max}")]
    Overflow {
        /// The largest accepted value, for the message.
        max: &'static str,
    },
}

/// Checks the canonical grammar `0|[1-9][0-9]*` and returns the digits as bytes.
fn canonical_digits(s: &str) -> Result<&[u8], DecimalError> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err(DecimalError::Empty);
    }
    if let Some((at, found)) = s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(DecimalError::InvalidChar { found, at });
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return Err(DecimalError::LeadingZero);
    }
    Ok(bytes)
}

const U256_MAX_STR: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

/// Parses a canonical decimal uint256.
pub fn parse_u256(s: &str) -> Result<U256, DecimalError> {
    let digits = canonical_digits(s)?;
    let overflow = DecimalError::Overflow { max: "2^256-1" };
    if digits.len() > U256_MAX_STR.len() {
        return Err(overflow);
    }
    let mut value = U256::ZERO;
    let ten = U256::from(10u8);
    for &d in digits {
        value = value
            .checked_mul(ten)
            .and_then(|v| v.checked_add(U256::from(d - b'0')))
            .ok_or(overflow.clone())?;
    }
    Ok(value)
}

/// Parses a canonical decimal u64 (timestamps, SPL amounts, `maxTimeoutSeconds` given as text).
pub fn parse_u64(s: &str) -> Result<u64, DecimalError> {
    let digits = canonical_digits(s)?;
    let overflow = DecimalError::Overflow {
        max: "18446744073709551615",
    };
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(overflow.clone())
    })
}

/// An amount of a token in atomic units (uint256), written as a canonical decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(U256);

impl Amount {
    /// Zero.
    pub const ZERO: Self = Self(U256::ZERO);

    /// Wraps a uint256.
    pub const fn new(value: U256) -> Self {
        Self(value)
    }

    /// The value as a uint256.
    pub const fn get(self) -> U256 {
        self.0
    }

    /// Whether the amount is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// The value as a u64, for chains whose amounts are 64-bit (SPL tokens).
    pub fn to_u64(self) -> Option<u64> {
        u64::try_from(self.0).ok()
    }
}

impl From<u64> for Amount {
    fn from(v: u64) -> Self {
        Self(U256::from(v))
    }
}

impl From<U256> for Amount {
    fn from(v: U256) -> Self {
        Self(v)
    }
}

impl FromStr for Amount {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_u256(s).map(Self)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Only a JSON string is accepted: a JSON number would be read through f64 by some peers.
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format_args!("amount {s:?}: {e}")))
    }
}

/// A unix timestamp in seconds, written as a canonical decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The current time from the system clock.
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self(secs)
    }
}

impl FromStr for UnixTime {
    type Err = DecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_u64(s).map(Self)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for UnixTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UnixTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse()
            .map_err(|e| serde::de::Error::custom(format_args!("timestamp {s:?}: {e}")))
    }
}

/// Why a human price could not be turned into atomic units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// The text is not `digits[.digits]` (optionally prefixed with `$`).
    #[error("price {0:?} is not a decimal number such as \"0.01\"")]
    Syntax(String),
    /// More fractional digits than the asset has decimals: the price would round.
    #[error("price {price:?} has more than {decimals} fractional digits and would round")]
    WouldRound {
        /// The price as given.
        price: String,
        /// The asset's decimals.
        decimals: u8,
    },
    /// The result does not fit a uint256.
    #[error("price {0:?} overflows uint256")]
    Overflow(String),
}

/// Converts a human decimal price (`"0.01"`, `"$0.01"`, `"12"`) into atomic units of an asset
/// with `decimals` decimals, exactly: a price that would need rounding is an error.
pub fn price_to_atomic(price: &str, decimals: u8) -> Result<Amount, PriceError> {
    let syntax = || PriceError::Syntax(price.to_owned());
    let body = price.strip_prefix('$').unwrap_or(price);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) if !f.is_empty() => (i, f),
        Some(_) => return Err(syntax()),
        None => (body, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) {
        return Err(syntax());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(decimals) {
        return Err(PriceError::WouldRound {
            price: price.to_owned(),
            decimals,
        });
    }
    let int = int.trim_start_matches('0');
    let padded = format!(
        "{int}{frac}{}",
        "0".repeat(usize::from(decimals) - frac.len())
    );
    let digits = padded.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(Amount::ZERO);
    }
    parse_u256(digits)
        .map(Amount)
        .map_err(|_| PriceError::Overflow(price.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amount_grammar_table() {
        let rejected = [
            ("", DecimalError::Empty),
            ("+1", DecimalError::InvalidChar { found: '+', at: 0 }),
            ("-1", DecimalError::InvalidChar { found: '-', at: 0 }),
            ("1_000", DecimalError::InvalidChar { found: '_', at: 1 }),
            ("0x10", DecimalError::InvalidChar { found: 'x', at: 1 }),
            (" 1", DecimalError::InvalidChar { found: ' ', at: 0 }),
            ("1 ", DecimalError::InvalidChar { found: ' ', at: 1 }),
            ("1e3", DecimalError::InvalidChar { found: 'e', at: 1 }),
            ("1.5", DecimalError::InvalidChar { found: '.', at: 1 }),
            ("1000.0", DecimalError::InvalidChar { found: '.', at: 4 }),
            ("01000", DecimalError::LeadingZero),
            ("00", DecimalError::LeadingZero),
            (
                "１",
                DecimalError::InvalidChar {
                    found: '１', at: 0
                },
            ),
        ];
        for (input, want) in rejected {
            assert_eq!(input.parse::<Amount>(), Err(want), "input {input:?}");
        }
        // 2^256 is one past the maximum.
        let two_pow_256 =
            "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(matches!(
            two_pow_256.parse::<Amount>(),
            Err(DecimalError::Overflow { .. })
        ));
        assert!(matches!(
            format!("{U256_MAX_STR}0").parse::<Amount>(),
            Err(DecimalError::Overflow { .. })
        ));
        for ok in ["0", "1", "10000", U256_MAX_STR, "18446744073709551616"] {
            let a: Amount = ok.parse().unwrap();
            assert_eq!(a.to_string(), ok, "round trip of {ok}");
        }
        assert_eq!(U256_MAX_STR.parse::<Amount>().unwrap().get(), U256::MAX);
    }

    #[test]
    fn amount_json_is_string_only() {
        assert_eq!(
            serde_json::from_str::<Amount>("\"10000\"").unwrap(),
            Amount::from(10_000)
        );
        assert!(serde_json::from_str::<Amount>("10000").is_err());
        assert!(serde_json::from_str::<Amount>("1e21").is_err());
        assert!(serde_json::from_str::<Amount>("null").is_err());
        let err = serde_json::from_str::<Amount>("\"+1\"").unwrap_err();
        assert!(err.to_string().contains("invalid character '+'"), "{err}");
        assert_eq!(serde_json::to_string(&Amount::from(7)).unwrap(), "\"7\"");
    }

    #[test]
    fn u64_and_timestamps() {
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        assert!(matches!(
            parse_u64("18446744073709551616"),
            Err(DecimalError::Overflow { .. })
        ));
        assert!("+1740672154".parse::<UnixTime>().is_err());
        assert_eq!(
            "1740672154".parse::<UnixTime>(),
            Ok(UnixTime(1_740_672_154))
        );
        assert!(serde_json::from_str::<UnixTime>("1740672154").is_err());
    }

    #[test]
    fn prices_convert_exactly() {
        assert_eq!(price_to_atomic("0.01", 6), Ok(Amount::from(10_000)));
        assert_eq!(price_to_atomic("$1.5", 6), Ok(Amount::from(1_500_000)));
        assert_eq!(price_to_atomic("12", 6), Ok(Amount::from(12_000_000)));
        assert_eq!(price_to_atomic("0.000001", 6), Ok(Amount::from(1)));
        assert_eq!(price_to_atomic("0.0000010", 6), Ok(Amount::from(1)));
        assert_eq!(price_to_atomic("0", 6), Ok(Amount::ZERO));
        assert_eq!(
            price_to_atomic("1", 18),
            Ok(Amount::from(1_000_000_000_000_000_000))
        );
        assert!(matches!(
            price_to_atomic("0.0000001", 6),
            Err(PriceError::WouldRound { .. })
        ));
        for bad in [
            "", ".5", "1.", "-1", "1e3", "1,5", " 1", "$", "0x1", "1.2.3",
        ] {
            assert!(
                matches!(price_to_atomic(bad, 6), Err(PriceError::Syntax(_))),
                "{bad:?}"
            );
        }
        let huge = U256_MAX_STR.to_owned();
        assert!(matches!(
            price_to_atomic(&huge, 6),
            Err(PriceError::Overflow(_))
        ));
    }
}
