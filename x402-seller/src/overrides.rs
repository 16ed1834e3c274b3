//! What a handler asks to settle: the in-process [`Charge`] extension, or the
//! `Settlement-Overrides` response header of the TypeScript reference.
//!
//! The reference's Express middleware reads a `Settlement-Overrides: {"amount": "…"}` header
//! that the handler set on its response, removes it, and settles the amount it names instead of
//! the authorized maximum. `amount` takes three forms:
//!
//! * atomic units, `"1000"`;
//! * a percentage of the authorized maximum with at most two decimals, `"50%"`, `"33.33%"`,
//!   rounded down to a whole atomic unit;
//! * a price in the asset's units, `"$0.05"`, converted with the asset's decimals.
//!
//! Where this crate is stricter than the reference — which ignores a header that is not JSON,
//! passes any other text on to the facilitator, and leaves the ceiling to the facilitator — an
//! override that cannot be read, is not one of the three forms, names more than the buyer
//! authorized, or is a price finer than the asset's smallest unit is the seller's error: the
//! request is answered 500 and nothing is settled. An atomic amount is a canonical decimal
//! integer (`0|[1-9][0-9]*`), so it is never negative.
//!
//! Only `upto` settles a chosen amount. On any other scheme's route, and on a route that settles
//! before its handler, the header is still removed and what it asks is ignored with a warning
//! (the reference would send the changed amount to the facilitator, which refuses it).

use axum::http::header::{HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, response::Parts};
use axum::response::{IntoResponseParts, ResponseParts};
use serde::{Deserialize, Serialize};
use x402_core::Amount;
use x402_core::amount::parse_u256;
use x402_core::wire::{PaymentRequirements, VerifyRequest};

use crate::config::{Charge, SellerInner};

/// The response header a handler sets to choose the settled amount (`Settlement-Overrides`, as
/// the TypeScript reference names it). The layer removes it: it never reaches the buyer.
pub const SETTLEMENT_OVERRIDES: &str = "Settlement-Overrides";

/// The value of a [`SETTLEMENT_OVERRIDES`] header: what to settle instead of the authorized
/// maximum. Returned from an axum handler it sets the header
/// (`(SettlementOverrides::amount("50%"), body)`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementOverrides {
    /// The amount to settle: atomic units (`"1000"`), a percentage of the authorized maximum
    /// (`"50%"`, at most two decimals, rounded down) or a price in the asset's units
    /// (`"$0.05"`). `None`: the authorized maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
}

impl SettlementOverrides {
    /// Settle `amount`: atomic units, a percentage of the maximum or a price (see the type).
    pub fn amount(amount: impl Into<String>) -> Self {
        Self {
            amount: Some(amount.into()),
        }
    }

    /// The header value: compact JSON, `{"amount":"50%"}`.
    pub fn header_value(&self) -> Result<HeaderValue, String> {
        let json = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        // serde_json escapes every control character; non-ASCII text stays UTF-8 (obs-text).
        HeaderValue::from_bytes(&json).map_err(|e| e.to_string())
    }
}

impl IntoResponseParts for SettlementOverrides {
    type Error = (StatusCode, String);

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        let value = self.header_value().map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{SETTLEMENT_OVERRIDES} cannot be written: {e}"),
            )
        })?;
        res.headers_mut()
            .insert(HeaderName::from_static("settlement-overrides"), value);
        Ok(res)
    }
}

/// An amount as a handler asked for it, before it is resolved against the maximum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Asked {
    /// Atomic units (from a [`Charge`] or an override).
    Atomic(Amount),
    /// Hundredths of a percent of the authorized maximum (`"33.33%"` = 3333).
    Percent(Amount),
    /// A price in the asset's units, `$` and all (`"$0.05"`).
    Price(String),
}

impl Asked {
    /// Reads an override's `amount`.
    fn parse(text: &str) -> Result<Self, String> {
        if let Some(number) = text.strip_suffix('%') {
            let (int, frac) = number.split_once('.').unwrap_or((number, ""));
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(int) || !(frac.is_empty() || digits(frac)) || frac.len() > 2 {
                return Err(format!(
                    "{text:?} is not a percentage such as \"50%\" or \"33.33%\" (at most two decimals)"
                ));
            }
            let scaled = format!("{int}{frac:0<2}");
            let scaled = scaled.trim_start_matches('0');
            let hundredths = parse_u256(if scaled.is_empty() { "0" } else { scaled })
                .map_err(|e| format!("{text:?}: {e}"))?;
            return Ok(Self::Percent(Amount::new(hundredths)));
        }
        if let Some(price) = text.strip_prefix('$') {
            let (int, frac) = price.split_once('.').unwrap_or((price, ""));
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !digits(int) || (price.contains('.') && !digits(frac)) {
                return Err(format!("{text:?} is not a price such as \"$0.05\""));
            }
            return Ok(Self::Price(text.to_owned()));
        }
        text.parse::<Amount>().map(Self::Atomic).map_err(|e| {
            format!(
                "{text:?} is neither atomic units (a decimal integer such as \"1000\"), a \
                 percentage (\"50%\") nor a price (\"$0.05\"): {e}"
            )
        })
    }

    /// Hundredths of a percent as text (`3333` → `"33.33%"`).
    pub(crate) fn percent_text(hundredths: Amount) -> String {
        let digits = format!("{hundredths:0>3}");
        let (int, frac) = digits.split_at(digits.len() - 2);
        format!("{int}.{frac}%")
    }

    /// `hundredths`/10000 of `max`, rounded down; `None` when it does not fit a uint256 (so it is
    /// above `max` anyway).
    pub(crate) fn percent_of(hundredths: Amount, max: Amount) -> Option<Amount> {
        let ten_thousand = Amount::from(10_000u64).get();
        let (h, max) = (hundredths.get(), max.get());
        // floor(max·h/10⁴) = ⌊max/10⁴⌋·h + ⌊(max mod 10⁴)·h/10⁴⌋, without overflowing early.
        let whole = (max / ten_thousand).checked_mul(h)?;
        let part = (max % ten_thousand).checked_mul(h)? / ten_thousand;
        whole.checked_add(part).map(Amount::new)
    }
}

/// Takes what the handler asked to settle out of its response head: the [`Charge`] extension,
/// else the `Settlement-Overrides` header. Every `Settlement-Overrides` header is removed either
/// way. A [`Charge`] takes precedence (as the reference's explicit argument does over the
/// header), and the header is then not read.
pub(crate) fn take(head: &mut Parts) -> Result<Option<Asked>, String> {
    let header = strip(&mut head.headers);
    if let Some(Charge(amount)) = head.extensions.remove::<Charge>() {
        if header.is_some() {
            tracing::warn!(
                "the handler set both a Charge and {SETTLEMENT_OVERRIDES}; the Charge is settled"
            );
        }
        return Ok(Some(Asked::Atomic(amount)));
    }
    let Some(values) = header else {
        return Ok(None);
    };
    let bad = |why: String| format!("the handler's {SETTLEMENT_OVERRIDES} header {why}");
    let [value] = values.as_slice() else {
        return Err(bad(format!("is set {} times; set it once", values.len())));
    };
    let text =
        std::str::from_utf8(value.as_bytes()).map_err(|_| bad("is not UTF-8 text".to_owned()))?;
    let overrides: SettlementOverrides = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "is not a JSON object such as {{\"amount\":\"1000\"}}: {e}"
        ))
    })?;
    match overrides.amount {
        None => Ok(None),
        Some(amount) => Asked::parse(&amount)
            .map(Some)
            .map_err(|e| bad(format!("amount {e}"))),
    }
}

/// The settle request: for `upto`, the seller's requirements with the amount the handler asked
/// for (a [`crate::Charge`] or a [`crate::SettlementOverrides`], resolved against the authorized
/// maximum); `Err` when it cannot be resolved or exceeds the maximum. Other schemes settle their
/// price: what a handler asks is ignored with a warning.
pub(crate) async fn resolve(
    seller: &SellerInner,
    facilitator: usize,
    request: &VerifyRequest,
    asked: Option<Asked>,
) -> Result<VerifyRequest, String> {
    let Some(asked) = asked else {
        return Ok(request.clone());
    };
    let max = match &request.payment_requirements {
        PaymentRequirements::V2(max) if max.scheme == "upto" => max,
        other => {
            if asked != Asked::Atomic(other.view().map_or(Amount::ZERO, |v| v.amount)) {
                tracing::warn!(
                    scheme = other.scheme(),
                    "a Charge or {SETTLEMENT_OVERRIDES} applies to upto only; ignored, the price is settled"
                );
            }
            return Ok(request.clone());
        }
    };
    let actual = match asked {
        Asked::Atomic(amount) => amount,
        Asked::Percent(hundredths) => {
            Asked::percent_of(hundredths, max.amount).ok_or_else(|| {
                format!(
                    "the handler asked to settle {} of the {} the buyer authorized",
                    Asked::percent_text(hundredths),
                    max.amount
                )
            })?
        }
        Asked::Price(price) => crate::offers::atomic_price(seller, facilitator, max, &price)
            .await
            .map_err(|e| {
                format!(
                    "the handler's {SETTLEMENT_OVERRIDES} price {price:?} cannot be settled: {e}"
                )
            })?,
    };
    if actual > max.amount {
        return Err(format!(
            "the handler asked to settle {actual}, more than the {} the buyer authorized",
            max.amount
        ));
    }
    let mut requirements = max.clone();
    requirements.amount = actual;
    Ok(VerifyRequest::new(
        request.payment_payload.clone(),
        PaymentRequirements::V2(requirements),
    ))
}

/// Removes every `Settlement-Overrides` header; returns their values, if there was one.
pub(crate) fn strip(headers: &mut HeaderMap) -> Option<Vec<HeaderValue>> {
    let name = HeaderName::from_static("settlement-overrides");
    let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
    headers.remove(&name);
    (!values.is_empty()).then_some(values)
}

#[cfg(test)]
mod tests {
    use axum::http::Response;

    use super::*;

    fn head(values: &[&[u8]]) -> Parts {
        let mut response = Response::new(());
        for v in values {
            response.headers_mut().append(
                HeaderName::from_static("settlement-overrides"),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        response.into_parts().0
    }

    fn asked(value: &str) -> Result<Option<Asked>, String> {
        let mut h = head(&[value.as_bytes()]);
        let asked = take(&mut h);
        assert!(h.headers.is_empty(), "the header is removed");
        asked
    }

    #[test]
    fn the_three_forms_of_the_reference() {
        let ok = |v: &str| asked(v).unwrap().unwrap();
        assert_eq!(
            ok(r#"{"amount":"1000"}"#),
            Asked::Atomic(Amount::from(1000))
        );
        assert_eq!(ok(r#"{"amount":"0"}"#), Asked::Atomic(Amount::ZERO));
        assert_eq!(
            ok(r#"{"amount":"50%"}"#),
            Asked::Percent(Amount::from(5000))
        );
        assert_eq!(
            ok(r#"{"amount":"33.33%"}"#),
            Asked::Percent(Amount::from(3333))
        );
        assert_eq!(
            ok(r#"{"amount":"12.5%"}"#),
            Asked::Percent(Amount::from(1250))
        );
        assert_eq!(ok(r#"{"amount":"7.%"}"#), Asked::Percent(Amount::from(700)));
        assert_eq!(ok(r#"{"amount":"0%"}"#), Asked::Percent(Amount::ZERO));
        assert_eq!(ok(r#"{"amount":"$0.05"}"#), Asked::Price("$0.05".into()));
        assert_eq!(ok(r#"{"amount":"$3"}"#), Asked::Price("$3".into()));
        // Members of a newer reference are ignored; no amount is no override.
        assert_eq!(
            ok(r#"{"amount":"1","later":true}"#),
            Asked::Atomic(Amount::from(1))
        );
        assert_eq!(asked("{}").unwrap(), None);
        let mut none = head(&[]);
        assert_eq!(take(&mut none).unwrap(), None);
    }

    #[test]
    fn a_bad_override_is_an_error_naming_the_header() {
        for value in [
            "",
            "1000",
            "amount=1000",
            r#"{"amount":1000}"#,
            r#"{"amount":"-5"}"#,
            r#"{"amount":"-5%"}"#,
            r#"{"amount":"1e3"}"#,
            r#"{"amount":"0x10"}"#,
            r#"{"amount":"01000"}"#,
            r#"{"amount":" 1000"}"#,
            r#"{"amount":"0.5"}"#,
            r#"{"amount":"50.125%"}"#,
            r#"{"amount":"%"}"#,
            r#"{"amount":".5%"}"#,
            r#"{"amount":"$"}"#,
            r#"{"amount":"$-1"}"#,
            r#"{"amount":"$1."}"#,
            r#"{"amount":"$.5"}"#,
            r#"{"amount":"€1"}"#,
            r#"{"amount":""}"#,
            r#"{"amount":"1000","amount":"1"}"#,
        ] {
            let err = asked(value).expect_err(value);
            assert!(err.contains(SETTLEMENT_OVERRIDES), "{value}: {err}");
        }
        let mut twice = head(&[br#"{"amount":"1"}"#, br#"{"amount":"2"}"#]);
        let err = take(&mut twice).unwrap_err();
        assert!(err.contains("2 times"), "{err}");
        assert!(twice.headers.is_empty());
        let mut latin1 = head(&[b"{\"amount\":\"\xff\"}"]);
        assert!(take(&mut latin1).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn a_charge_takes_precedence_and_the_header_still_goes() {
        let mut h = head(&[b"not even json"]);
        h.extensions.insert(Charge(Amount::from(7)));
        assert_eq!(take(&mut h).unwrap(), Some(Asked::Atomic(Amount::from(7))));
        assert!(h.headers.is_empty());
    }

    #[test]
    fn percentages_round_down_and_never_overflow() {
        assert_eq!(Asked::percent_text(Amount::from(3333)), "33.33%");
        assert_eq!(Asked::percent_text(Amount::from(5)), "0.05%");
        assert_eq!(Asked::percent_text(Amount::from(15_000)), "150.00%");
        let p = |h: u64, max: u64| Asked::percent_of(Amount::from(h), Amount::from(max));
        assert_eq!(p(5000, 100), Some(Amount::from(50)));
        assert_eq!(p(3333, 100), Some(Amount::from(33)));
        assert_eq!(p(3333, 7), Some(Amount::from(2)));
        assert_eq!(p(10_000, 12_345), Some(Amount::from(12_345)));
        assert_eq!(p(1, 9_999), Some(Amount::ZERO));
        assert_eq!(p(0, u64::MAX), Some(Amount::ZERO));
        let max = Amount::new(Amount::ZERO.get().wrapping_sub(Amount::from(1).get()));
        assert_eq!(Asked::percent_of(Amount::from(10_000), max), Some(max));
        assert_eq!(Asked::percent_of(Amount::from(20_000), max), None);
    }

    #[test]
    fn the_helper_writes_what_the_layer_reads() {
        let value = SettlementOverrides::amount("33.33%")
            .header_value()
            .unwrap();
        assert_eq!(value.to_str().unwrap(), r#"{"amount":"33.33%"}"#);
        let mut h = head(&[value.as_bytes()]);
        assert_eq!(
            take(&mut h).unwrap(),
            Some(Asked::Percent(Amount::from(3333)))
        );
    }
}
