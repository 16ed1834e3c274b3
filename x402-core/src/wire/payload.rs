//! What a buyer sends: the payment payload.

use serde::{Deserialize, Serialize};

use super::{PaymentRequirementsV2, Raw, ResourceInfo, raw_keep_null};
use crate::X402Version;

/// v1 `PaymentPayload` (the decoded `X-PAYMENT` header).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV1 {
    /// Always 1.
    pub x402_version: X402Version,
    /// The scheme paid with.
    pub scheme: String,
    /// The v1 network name.
    pub network: String,
    /// Scheme-specific payload (kept verbatim).
    pub payload: Raw,
}

/// v2 `PaymentPayload` (the decoded `PAYMENT-SIGNATURE` header).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayloadV2 {
    /// Always 2.
    pub x402_version: X402Version,
    /// The resource, echoed from the 402.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The requirement the buyer chose, copied verbatim (unsigned: never trusted for economics).
    pub accepted: PaymentRequirementsV2,
    /// Scheme-specific payload (kept verbatim).
    pub payload: Raw,
    /// Extensions (kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extensions: Option<Raw>,
}

/// A payment payload of either version.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
#[allow(
    clippy::large_enum_variant,
    reason = "one payload per request, built once and moved rarely; boxing the v2 variant would \
              change every construction site for a few hundred bytes"
)]
pub enum PaymentPayload {
    /// Version 1.
    V1(PaymentPayloadV1),
    /// Version 2.
    V2(PaymentPayloadV2),
}

impl PaymentPayload {
    /// The protocol version.
    pub fn version(&self) -> X402Version {
        match self {
            Self::V1(_) => X402Version::V1,
            Self::V2(_) => X402Version::V2,
        }
    }

    /// The scheme-specific payload.
    pub fn payload(&self) -> &serde_json::value::RawValue {
        match self {
            Self::V1(p) => &p.payload,
            Self::V2(p) => &p.payload,
        }
    }
}
