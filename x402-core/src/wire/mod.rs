//! The x402 v1 and v2 wire types, with the exact JSON names of x402-spec §1.
//!
//! Free-form members (`extra`, `payload`, `extensions`, `outputSchema`, `metadata`) are kept as
//! raw JSON text, so they leave exactly as they arrived; an explicit `null` stays `null` and an
//! absent member stays absent. Field order follows the specification's examples, so a compact
//! document round-trips byte for byte.

mod accepted;
mod payload;
mod request;
mod requirements;
mod response;
mod supported;

pub use payload::{PaymentPayload, PaymentPayloadV1, PaymentPayloadV2};
pub use request::{RequestError, RequestPart, SettleRequest, VerifyRequest};
pub use requirements::{
    PaymentRequired, PaymentRequiredV1, PaymentRequiredV2, PaymentRequirements,
    PaymentRequirementsV1, PaymentRequirementsV2, ResourceInfo,
};
pub use response::{SettleResponse, VerifyResponse};
pub use supported::{
    DiscoveryItem, DiscoveryResponse, LastUpdated, Pagination, SupportedKind, SupportedResponse,
};

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Raw JSON kept verbatim.
pub type Raw = Box<RawValue>;

/// Reads an optional raw member so that an explicit `null` is kept (as the raw text `null`)
/// and only an absent member is `None`. Use with `#[serde(default)]`.
pub(crate) fn raw_keep_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Raw>, D::Error> {
    Raw::deserialize(d).map(Some)
}

/// Makes raw JSON from a serializable value.
pub fn to_raw<T: serde::Serialize>(value: &T) -> Result<Raw, serde_json::Error> {
    serde_json::value::to_raw_value(value)
}

/// Reads a raw member into a typed value; a raw `null` reads as absent.
pub fn parse_raw<T: serde::de::DeserializeOwned>(
    raw: Option<&RawValue>,
) -> Result<Option<T>, serde_json::Error> {
    match raw {
        None => Ok(None),
        Some(r) if r.get() == "null" => Ok(None),
        Some(r) => serde_json::from_str(r.get()).map(Some),
    }
}

/// Whether two raw JSON texts denote the same value (key order and spacing aside).
pub fn raw_eq(a: Option<&RawValue>, b: Option<&RawValue>) -> bool {
    let value = |r: Option<&RawValue>| -> Option<serde_json::Value> {
        r.and_then(|r| serde_json::from_str::<serde_json::Value>(r.get()).ok())
            .filter(|v| !v.is_null())
    };
    value(a) == value(b)
}
