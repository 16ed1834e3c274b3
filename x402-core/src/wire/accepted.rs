//! Which of a seller's requirements a buyer's v2 `accepted` names.

use serde_json::Value;

use super::PaymentRequirementsV2;

impl PaymentRequirementsV2 {
    /// Whether a buyer's v2 `accepted` names these requirements (the seller's own), by the rule of
    /// the TypeScript reference's resource server (`findMatchingRequirements`, 2.27):
    ///
    /// * **Every member but `extra` is equal, exactly**: `scheme`, `network`, `amount`, `asset`,
    ///   `payTo` and `maxTimeoutSeconds`. Strings compare as written — no case folding of
    ///   addresses, no network aliasing — because a buyer copies the requirement verbatim; an
    ///   amount compares as its canonical decimal text (the only spelling [`crate::Amount`]
    ///   reads).
    /// * **`extra` of the seller is contained in the buyer's.** Absent (or `null`) on the
    ///   seller's side, any buyer `extra` matches. Otherwise every member the seller wrote must be
    ///   present in the buyer's `extra` with the same value; a nested object is compared the same
    ///   way (the buyer may add members at any depth), an array or scalar must be equal (object
    ///   key order aside; numbers by value, as JavaScript compares them). So a non-default
    ///   `assetTransferMethod` (`"permit2"`) must be echoed, while a buyer that adds a member of
    ///   its own still matches.
    ///
    /// Differences from the reference, neither of which reaches the facilitator (it always
    /// receives the seller's own requirements, never `accepted`):
    /// * the reference also compares top-level members it does not define; this type does not
    ///   read unknown members, so a buyer that adds one still matches;
    /// * the reference lets a scheme name `extra` members that change with every 402 (its Solana
    ///   seller's `recentBlockhash`) and leaves those out; no scheme of this workspace writes
    ///   such a member, so none is left out.
    pub fn matches_accepted(&self, accepted: &PaymentRequirementsV2) -> bool {
        self.scheme == accepted.scheme
            && self.network == accepted.network
            && self.amount == accepted.amount
            && self.asset == accepted.asset
            && self.pay_to == accepted.pay_to
            && self.max_timeout_seconds == accepted.max_timeout_seconds
            && extra_echoed(self.extra.as_deref(), accepted.extra.as_deref())
    }
}

/// Whether the seller's raw `extra` is contained in the buyer's.
fn extra_echoed(
    seller: Option<&serde_json::value::RawValue>,
    buyer: Option<&serde_json::value::RawValue>,
) -> bool {
    let read = |raw: Option<&serde_json::value::RawValue>| -> Result<Value, ()> {
        raw.map_or(Ok(Value::Null), |r| {
            serde_json::from_str(r.get()).map_err(|_| ())
        })
    };
    let (Ok(seller), Ok(buyer)) = (read(seller), read(buyer)) else {
        return false;
    };
    if seller.is_null() {
        return true;
    }
    contains(&seller, &buyer)
}

/// `expected ⊆ actual`: objects member by member (recursively), anything else by [`same`].
fn contains(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(v, av))),
        (Value::Object(_), _) => false,
        _ => same(expected, actual),
    }
}

/// Deep equality as the reference computes it: object key order aside, numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|yv| same(v, yv)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Amount;
    use crate::wire::to_raw;

    fn seller(extra: Option<Value>) -> PaymentRequirementsV2 {
        PaymentRequirementsV2 {
            scheme: "exact".into(),
            network: "eip155:84532".into(),
            amount: Amount::from(10_000),
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into(),
            pay_to: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into(),
            max_timeout_seconds: 60,
            extra: extra.map(|e| to_raw(&e).unwrap()),
        }
    }

    fn with_extra(extra: &str) -> PaymentRequirementsV2 {
        PaymentRequirementsV2 {
            extra: Some(serde_json::value::RawValue::from_string(extra.into()).unwrap()),
            ..seller(None)
        }
    }

    #[test]
    fn every_member_but_extra_must_be_equal_exactly() {
        let s = seller(None);
        assert!(s.matches_accepted(&s.clone()));
        type Edit = (&'static str, fn(&mut PaymentRequirementsV2));
        let edits: [Edit; 7] = [
            ("scheme", |a| a.scheme = "upto".into()),
            ("network", |a| a.network = "eip155:8453".into()),
            ("amount", |a| a.amount = Amount::from(1)),
            ("asset in lower case", |a| a.asset = a.asset.to_lowercase()),
            ("payTo in lower case", |a| {
                a.pay_to = a.pay_to.to_lowercase()
            }),
            ("payTo", |a| a.pay_to = "0x00".into()),
            ("maxTimeoutSeconds", |a| a.max_timeout_seconds = 61),
        ];
        for (what, edit) in edits {
            let mut accepted = s.clone();
            edit(&mut accepted);
            assert!(!s.matches_accepted(&accepted), "{what} differs");
        }
    }

    #[test]
    fn the_sellers_extra_must_be_contained_in_the_buyers() {
        let permit2 = seller(Some(serde_json::json!({
            "assetTransferMethod": "permit2", "name": "USDC", "version": "2"
        })));
        // Echoed in another key order and with spacing: a match.
        assert!(permit2.matches_accepted(&with_extra(
            r#"{ "version": "2", "name": "USDC", "assetTransferMethod": "permit2" }"#
        )));
        // The buyer adds a member of its own: still a match.
        assert!(permit2.matches_accepted(&with_extra(
            r#"{"assetTransferMethod":"permit2","name":"USDC","version":"2","mine":1}"#
        )));
        // A non-default assetTransferMethod left out, or changed: no match.
        for extra in [
            r#"{"name":"USDC","version":"2"}"#,
            r#"{"assetTransferMethod":"eip3009","name":"USDC","version":"2"}"#,
            r#"{"assetTransferMethod":"Permit2","name":"USDC","version":"2"}"#,
            r#"{"assetTransferMethod":null,"name":"USDC","version":"2"}"#,
            "null",
            "[]",
        ] {
            assert!(!permit2.matches_accepted(&with_extra(extra)), "{extra}");
        }
        let mut none = permit2.clone();
        none.extra = None;
        assert!(!permit2.matches_accepted(&none), "absent extra");

        // No extra on the seller's side (or null): any buyer extra matches.
        for s in [seller(None), with_extra("null")] {
            assert!(s.matches_accepted(&with_extra(r#"{"junk":1}"#)));
            assert!(s.matches_accepted(&seller(None)));
        }
    }

    #[test]
    fn nested_objects_are_contained_arrays_and_numbers_are_equal() {
        let s = with_extra(r#"{"a":{"b":1,"c":[1,{"d":2}]},"n":1}"#);
        assert!(s.matches_accepted(&with_extra(
            r#"{"n":1.0,"a":{"x":0,"c":[1,{"d":2}],"b":1}}"#
        )));
        for extra in [
            r#"{"n":1,"a":{"b":1,"c":[1,{"d":2,"e":3}]}}"#,
            r#"{"n":1,"a":{"b":1,"c":[{"d":2},1]}}"#,
            r#"{"n":1,"a":{"b":"1","c":[1,{"d":2}]}}"#,
            r#"{"n":2,"a":{"b":1,"c":[1,{"d":2}]}}"#,
            r#"{"n":1,"a":[1]}"#,
        ] {
            assert!(!s.matches_accepted(&with_extra(extra)), "{extra}");
        }
    }
}
