//! x402 extensions: declarations on the wire, and the facilitator's extension seam.
//!
//! An extension is an entry of the `extensions` object of a v2 `PaymentRequired`, echoed by the
//! buyer in its `PaymentPayload` (x402-spec §1.3): `{"<key>": {"info": {…}, "schema": {…}, …}}`,
//! with extension-specific siblings such as the bazaar's `routeTemplate`. [`Declaration`] is one
//! such entry, its members in the order they were written (see [`JsonObject`]), so a declaration
//! leaves exactly as its builder or its sender wrote it; an extension this build does not know is
//! simply carried as raw JSON.
//!
//! On the facilitator, an [`Extension`] acts on verify and settle: it reads the payload's
//! declaration, validates it, records what it needs, and may answer in the response's
//! `extensions` (which the HTTP server also sends as the `EXTENSION-RESPONSES` header). Extensions
//! register at link time like schemes ([`ExtensionDescriptor`], [`crate::register_extension!`]),
//! are built from the configuration with the settlement store, and are listed in
//! `/supported.extensions`.
//!
//! [`bazaar`] is the discovery extension: sellers declare how to call a resource, the facilitator
//! catalogs the resources it has settled for ([`catalog`]) and lists them at
//! `GET /discovery/resources`. [`payment_id`] is the `payment-identifier` extension (idempotent
//! retries of one payment).

pub mod bazaar;
#[cfg(test)]
mod bazaar_tests;
pub mod catalog;
pub mod discovery;
pub mod idempotency;
mod object;
pub mod payment_id;
pub mod schema;
pub mod sign_in;
mod time;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use object::JsonObject;
pub use time::iso8601;

use crate::clock::SharedClock;
use crate::settlement::SettlementStore;
use crate::wire::{Raw, SettleRequest, SettleResponse, VerifyRequest, VerifyResponse};

/// The name of the facilitator's response header carrying the extensions' answers
/// (base64 of the JSON object `{"<key>": answer}`).
pub const EXTENSION_RESPONSES_HEADER: &str = "EXTENSION-RESPONSES";

/// One extension declaration: `info`, `schema`, then the extension's own siblings, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Declaration {
    /// What the extension declares (validated against `schema`).
    pub info: JsonObject,
    /// The JSON Schema `info` follows.
    pub schema: JsonObject,
    /// Extension-specific members beside `info` and `schema` (the bazaar's `routeTemplate`).
    pub siblings: JsonObject,
}

impl Declaration {
    /// The declaration as compact JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The declaration as raw JSON.
    pub fn to_raw(&self) -> Raw {
        serde_json::value::to_raw_value(self).unwrap_or_default()
    }
}

impl Serialize for Declaration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("info", &self.info)?;
        map.serialize_entry("schema", &self.schema)?;
        for (k, v) in self.siblings.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Declaration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut all = JsonObject::deserialize(deserializer)?;
        let mut member = |key: &str| -> Result<JsonObject, D::Error> {
            let raw = all
                .remove(key)
                .ok_or_else(|| D::Error::custom(format!("missing `{key}`")))?;
            serde_json::from_str(raw.get())
                .map_err(|_| D::Error::custom(format!("`{key}` is not an object")))
        };
        let info = member("info")?;
        let schema = member("schema")?;
        Ok(Self {
            info,
            schema,
            siblings: all,
        })
    }
}

/// The extensions of a message (`PaymentRequired.extensions`, `PaymentPayload.extensions`),
/// read from its raw member: key → raw declaration, in order. `None` or `null` is empty; a
/// member that is not an object is an error.
pub fn read_extensions(raw: Option<&serde_json::value::RawValue>) -> Result<JsonObject, String> {
    match raw {
        None => Ok(JsonObject::new()),
        Some(r) if r.get().trim() == "null" => Ok(JsonObject::new()),
        Some(r) => JsonObject::parse(r.get()).map_err(|_| "extensions is not an object".to_owned()),
    }
}

/// The facilitator itself could not build or run an extension.
#[derive(Debug, thiserror::Error)]
#[error("extension {key}: {message}")]
pub struct ExtensionError {
    /// The extension's key.
    pub key: String,
    /// What went wrong.
    pub message: String,
}

/// What an extension is built from.
#[derive(Debug, Clone)]
pub struct ExtensionConfig {
    /// The extension's options (its configuration table), `{}` when none.
    pub options: serde_json::Value,
    /// The facilitator's settlement store (shared by every replica when durable).
    pub store: Arc<dyn SettlementStore>,
    /// The clock stored timestamps and expiry use.
    pub clock: SharedClock,
}

/// A facilitator extension: acts on verify and settle (extract, validate, record) and may answer
/// in the response's `extensions` member under its key.
///
/// An extension never changes whether a payment is valid or settled: it runs after the scheme
/// (and the hooks, [`crate::hook`]) decided, and a failure inside it is its own answer (a
/// bazaar `rejected`), never the payment's.
#[async_trait]
pub trait Extension: Send + Sync + Debug {
    /// The key (`bazaar`), as listed in `/supported.extensions`.
    fn key(&self) -> &'static str;

    /// After a verify: the answer to put under the key in the response's `extensions`, if any.
    async fn verified(&self, request: &VerifyRequest, response: &VerifyResponse) -> Option<Raw> {
        let _ = (request, response);
        None
    }

    /// After a settle: the answer to put under the key in the response's `extensions`, if any.
    async fn settled(&self, request: &SettleRequest, response: &SettleResponse) -> Option<Raw> {
        let _ = (request, response);
        None
    }

    /// The extension as [`Any`], so the server can reach its own API (the bazaar's catalogue).
    fn as_any(&self) -> &dyn Any;
}

/// A facilitator extension registered at link time (see [`crate::register_extension!`]).
#[derive(Debug)]
pub struct ExtensionDescriptor {
    /// The key, unique across the build (`bazaar`).
    pub key: &'static str,
    /// The crate that registered it, for error messages.
    pub crate_name: &'static str,
    /// Builds the live extension from its configuration.
    pub build: fn(&ExtensionConfig) -> Result<Arc<dyn Extension>, ExtensionError>,
}

inventory::collect!(ExtensionDescriptor);

/// Registers a facilitator extension at link time: `register_extension!("bazaar", build_fn)`.
#[macro_export]
macro_rules! register_extension {
    ($key:expr, $build:expr) => {
        $crate::inventory::submit! {
            $crate::extension::ExtensionDescriptor {
                key: $key,
                crate_name: env!("CARGO_PKG_NAME"),
                build: $build,
            }
        }
    };
}

/// Two crates registered one extension key.
#[derive(Debug, thiserror::Error)]
#[error("extension {key} is registered twice: by {first} and by {second}")]
pub struct DuplicateExtension {
    /// The key.
    pub key: &'static str,
    /// One crate.
    pub first: &'static str,
    /// The other.
    pub second: &'static str,
}

/// The extensions linked into this build, by key; a key registered twice is an error naming
/// both crates.
pub fn linked_extensions()
-> Result<BTreeMap<&'static str, &'static ExtensionDescriptor>, DuplicateExtension> {
    let mut map: BTreeMap<&'static str, &'static ExtensionDescriptor> = BTreeMap::new();
    for d in inventory::iter::<ExtensionDescriptor> {
        if let Some(first) = map.insert(d.key, d) {
            return Err(DuplicateExtension {
                key: d.key,
                first: first.crate_name,
                second: d.crate_name,
            });
        }
    }
    Ok(map)
}

/// Adds `answers` (key → answer) to a response's raw `extensions` member, keeping what a scheme
/// put there.
pub(crate) fn merge_answers(existing: Option<Raw>, answers: Vec<(&str, Raw)>) -> Option<Raw> {
    if answers.is_empty() {
        return existing;
    }
    let mut all = read_extensions(existing.as_deref()).unwrap_or_default();
    for (key, answer) in answers {
        all.set(key, answer);
    }
    Some(all.to_raw())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_round_trips_byte_for_byte() {
        let text = r#"{"info":{"input":{"type":"http","method":"GET"}},"schema":{"type":"object"},"routeTemplate":"/users/:id"}"#;
        let d: Declaration = serde_json::from_str(text).unwrap();
        assert_eq!(
            d.siblings.string("routeTemplate").as_deref(),
            Some("/users/:id")
        );
        assert_eq!(d.to_json(), text);
        assert!(serde_json::from_str::<Declaration>(r#"{"info":{}}"#).is_err());
        assert!(serde_json::from_str::<Declaration>(r#"{"info":1,"schema":{}}"#).is_err());
    }

    #[test]
    fn answers_merge_into_the_response_extensions() {
        let existing = serde_json::value::to_raw_value(&serde_json::json!({"a": 1})).unwrap();
        let answer =
            serde_json::value::to_raw_value(&serde_json::json!({"status": "success"})).unwrap();
        let merged = merge_answers(Some(existing), vec![("bazaar", answer)]).unwrap();
        assert_eq!(merged.get(), r#"{"a":1,"bazaar":{"status":"success"}}"#);
        assert!(merge_answers(None, Vec::new()).is_none());
    }
}
