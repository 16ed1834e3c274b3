//! The `payment-identifier` extension: an idempotency key the buyer adds to its payment.
//!
//! The seller declares `{"info": {"required": <bool>}, "schema": {…}}` under
//! [`PAYMENT_IDENTIFIER`] in its v2 `PaymentRequired`; the buyer echoes the declaration with
//! `info.id` set (16 to 128 characters of `A-Z a-z 0-9 _ -`, [`is_valid_id`]) and keeps the same
//! id — and the same signed payment — when it retries one logical request. A seller then answers
//! a repeated id carrying the same payment with the response it already gave, the same id with
//! another payment with 409, and a missing id on a route that requires one with 400
//! (x402-spec §5, "Other extensions").
//!
//! The declaration is byte for byte what `declarePaymentIdentifierExtension(required)` of
//! `@x402/extensions` 2.27 writes.

use serde_json::value::RawValue;

use super::{Declaration, JsonObject};

/// The extension's key in `extensions`.
pub const PAYMENT_IDENTIFIER: &str = "payment-identifier";

/// The shortest id.
pub const MIN_ID_LEN: usize = 16;

/// The longest id.
pub const MAX_ID_LEN: usize = 128;

/// Whether `id` is a usable payment id: [`MIN_ID_LEN`] to [`MAX_ID_LEN`] characters, each an
/// ASCII letter, digit, `_` or `-`.
pub fn is_valid_id(id: &str) -> bool {
    (MIN_ID_LEN..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A fresh id: `pay_` and 32 lowercase hex digits (128 random bits), the reference's shape.
pub fn generate_id() -> String {
    let bits: u128 = rand::random();
    format!("pay_{bits:032x}")
}

/// The JSON Schema of `info` (the reference's, members in its order).
pub fn schema() -> JsonObject {
    let id = JsonObject::new()
        .with("type", "string")
        .with("minLength", &MIN_ID_LEN)
        .with("maxLength", &MAX_ID_LEN)
        .with("pattern", "^[a-zA-Z0-9_-]+$");
    let properties = JsonObject::new()
        .with("required", &JsonObject::new().with("type", "boolean"))
        .with("id", &id);
    JsonObject::new()
        .with("$schema", "https://json-schema.org/draft/2020-12/schema")
        .with("type", "object")
        .with("properties", &properties)
        .with("required", &["required"])
}

/// The seller's declaration: `info.required` says whether a payment without an id is refused.
pub fn declaration(required: bool) -> Declaration {
    Declaration {
        info: JsonObject::new().with("required", &required),
        schema: schema(),
        siblings: JsonObject::new(),
    }
}

/// Whether a declaration (the seller's, or a payload's echo) marks the id required: its
/// `info.required` is `true`.
pub fn is_required(declaration: &RawValue) -> bool {
    let Ok(all) = JsonObject::parse(declaration.get()) else {
        return false;
    };
    all.object("info")
        .and_then(|info| info.get("required").map(|r| r.get().trim() == "true"))
        .unwrap_or(false)
}

/// The declaration with `info.id` set to `id` (the buyer's echo); `Err` when the declaration
/// is not an object with an `info` object, or `id` is not valid.
pub fn with_id(declaration: &RawValue, id: &str) -> Result<JsonObject, String> {
    if !is_valid_id(id) {
        return Err(format!(
            "the payment id {id:?} is not {MIN_ID_LEN} to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, _ and -"
        ));
    }
    let mut all = JsonObject::parse(declaration.get())
        .map_err(|_| "the payment-identifier declaration is not an object".to_owned())?;
    let mut info = all
        .object("info")
        .ok_or_else(|| "the payment-identifier declaration has no info object".to_owned())?;
    if !info
        .get("required")
        .is_some_and(|r| matches!(r.get().trim(), "true" | "false"))
    {
        return Err("the payment-identifier declaration's info.required is not a boolean".into());
    }
    info.set_value("id", id);
    all.set("info", info.to_raw());
    Ok(all)
}

/// What a payment's `extensions` say about its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentId {
    /// No `payment-identifier` entry, or one without `info.id`.
    Absent,
    /// A valid id.
    Id(String),
    /// An entry that is not a valid declaration with a valid id (the message says why).
    Invalid(String),
}

/// Reads the id a payment's `extensions` (raw member) carries.
pub fn read_id(extensions: Option<&RawValue>) -> PaymentId {
    let Ok(all) = super::read_extensions(extensions) else {
        return PaymentId::Invalid("extensions is not an object".to_owned());
    };
    let Some(entry) = all.get(PAYMENT_IDENTIFIER) else {
        return PaymentId::Absent;
    };
    let Some(info) = JsonObject::parse(entry.get())
        .ok()
        .and_then(|e| e.object("info"))
    else {
        return PaymentId::Invalid("payment-identifier has no info object".to_owned());
    };
    let Some(raw) = info.get("id") else {
        return PaymentId::Absent;
    };
    match serde_json::from_str::<String>(raw.get()) {
        Ok(id) if is_valid_id(&id) => PaymentId::Id(id),
        Ok(_) => PaymentId::Invalid(format!(
            "payment-identifier info.id must be {MIN_ID_LEN} to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, _ and -"
        )),
        Err(_) => PaymentId::Invalid("payment-identifier info.id is not a string".to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(v: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    #[test]
    fn the_declaration_is_the_references() {
        assert_eq!(
            declaration(true).to_json(),
            r#"{"info":{"required":true},"schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"required":{"type":"boolean"},"id":{"type":"string","minLength":16,"maxLength":128,"pattern":"^[a-zA-Z0-9_-]+$"}},"required":["required"]}}"#
        );
        assert!(is_required(&declaration(true).to_raw()));
        assert!(!is_required(&declaration(false).to_raw()));
        assert!(!is_required(&raw(
            serde_json::json!({"info": {"required": "true"}})
        )));
    }

    #[test]
    fn ids_follow_the_length_and_alphabet_rules() {
        let id = generate_id();
        assert!(is_valid_id(&id), "{id}");
        assert_eq!(id.len(), 36);
        assert_ne!(generate_id(), id);
        assert!(is_valid_id(&"a".repeat(16)));
        assert!(is_valid_id(&"a".repeat(128)));
        assert!(!is_valid_id(&"a".repeat(15)));
        assert!(!is_valid_id(&"a".repeat(129)));
        assert!(!is_valid_id("pay_0123456789abc!"));
        assert!(!is_valid_id("pay_0123456789abcé"));
    }

    #[test]
    fn the_buyer_echo_carries_the_id_and_is_read_back() {
        let echo = with_id(&declaration(false).to_raw(), "pay_0123456789abcdef").unwrap();
        assert!(echo.to_json().starts_with(
            r#"{"info":{"required":false,"id":"pay_0123456789abcdef"},"schema":{"$schema""#
        ));
        let extensions = JsonObject::new().with(PAYMENT_IDENTIFIER, &echo).to_raw();
        assert_eq!(
            read_id(Some(&extensions)),
            PaymentId::Id("pay_0123456789abcdef".into())
        );
        assert!(with_id(&declaration(false).to_raw(), "short").is_err());
        assert!(with_id(&raw(serde_json::json!({"info": {}})), &generate_id()).is_err());
        assert!(with_id(&raw(serde_json::json!([1])), &generate_id()).is_err());
    }

    #[test]
    fn bad_ids_are_invalid_and_missing_ones_absent() {
        let read = |v: serde_json::Value| read_id(Some(&raw(v)));
        assert_eq!(read_id(None), PaymentId::Absent);
        assert_eq!(read(serde_json::json!({"other": {}})), PaymentId::Absent);
        assert_eq!(
            read(serde_json::json!({"payment-identifier": {"info": {"required": true}}})),
            PaymentId::Absent
        );
        for bad in [
            serde_json::json!({"payment-identifier": {"info": {"id": "short"}}}),
            serde_json::json!({"payment-identifier": {"info": {"id": 12345678901234567_u64}}}),
            serde_json::json!({"payment-identifier": {"info": {"id": "x".repeat(129)}}}),
            serde_json::json!({"payment-identifier": {"info": {"id": "pay_../../0123456789"}}}),
            serde_json::json!({"payment-identifier": 1}),
            serde_json::json!([]),
        ] {
            assert!(matches!(read(bad.clone()), PaymentId::Invalid(_)), "{bad}");
        }
    }
}
