//! What a seller asks for: payment requirements and the 402 "payment required" document.

use serde::{Deserialize, Serialize};

use super::{Raw, raw_keep_null};
use crate::{Amount, X402Version};

/// v2 `ResourceInfo`: the resource being paid for.
///
/// The service members (`serviceName`, `tags`, `iconUrl`) describe the service to catalogues
/// such as the bazaar. As in the reference's schema, every optional member may also be an
/// explicit `null`, read as absent (and then written as absent), and a member this build does not
/// know is ignored. Values are read as they are; the reference's limits (see
/// [`ResourceInfo::SERVICE_NAME_MAX`] and its siblings) are checked where a seller sets them
/// (`x402-seller`), because a catalogue drops a value outside them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// The resource's URL.
    pub url: String,
    /// A human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The MIME type of the resource's response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The name of the service hosting the resource (1–32 printable ASCII characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Short topical tags for discovery (at most 5, each 1–32 printable ASCII characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// An absolute `http(s)` URL of the service's icon (at most 2048 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
}

impl ResourceInfo {
    /// The longest `serviceName`, in characters.
    pub const SERVICE_NAME_MAX: usize = 32;
    /// The most `tags`.
    pub const TAGS_MAX: usize = 5;
    /// The longest tag, in characters.
    pub const TAG_MAX: usize = 32;
    /// The longest `iconUrl`, in characters.
    pub const ICON_URL_MAX: usize = 2048;

    /// The resource at `url`, with no other member.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

/// v1 `PaymentRequirements` (an element of `accepts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirementsV1 {
    /// The scheme (`exact`).
    pub scheme: String,
    /// A v1 network name (`base-sepolia`).
    pub network: String,
    /// The price in atomic units.
    pub max_amount_required: Amount,
    /// The token address or mint.
    pub asset: String,
    /// The recipient.
    pub pay_to: String,
    /// The resource URL.
    pub resource: String,
    /// A human description (may be empty).
    pub description: String,
    /// The resource's MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// v1 discovery schema (kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub output_schema: Option<Raw>,
    /// How long the payment may take, in seconds.
    pub max_timeout_seconds: u64,
    /// Scheme data (kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra: Option<Raw>,
}

/// v2 `PaymentRequirements` (an element of `accepts`, and the payload's `accepted`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirementsV2 {
    /// The scheme (`exact`, `upto`).
    pub scheme: String,
    /// A CAIP-2 network (`eip155:84532`).
    pub network: String,
    /// The amount in atomic units (for `upto`: the maximum at verify, the charge at settle).
    pub amount: Amount,
    /// The token address or mint.
    pub asset: String,
    /// The recipient.
    pub pay_to: String,
    /// How long the payment may take, in seconds.
    pub max_timeout_seconds: u64,
    /// Scheme data (kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra: Option<Raw>,
}

/// Requirements of either version.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum PaymentRequirements {
    /// Version 1.
    V1(PaymentRequirementsV1),
    /// Version 2.
    V2(PaymentRequirementsV2),
}

impl PaymentRequirements {
    /// The protocol version.
    pub fn version(&self) -> X402Version {
        match self {
            Self::V1(_) => X402Version::V1,
            Self::V2(_) => X402Version::V2,
        }
    }

    /// The scheme name.
    pub fn scheme(&self) -> &str {
        match self {
            Self::V1(r) => &r.scheme,
            Self::V2(r) => &r.scheme,
        }
    }

    /// The network as written on the wire.
    pub fn network_text(&self) -> &str {
        match self {
            Self::V1(r) => &r.network,
            Self::V2(r) => &r.network,
        }
    }
}

/// v1 `PaymentRequirementsResponse`, the JSON body of a v1 402.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV1 {
    /// Always 1.
    pub x402_version: X402Version,
    /// Why payment is required (or why the last one failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The acceptable payments.
    pub accepts: Vec<PaymentRequirementsV1>,
    /// The payer, on a verify failure (legacy servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
}

/// v2 `PaymentRequired`, carried base64-encoded in the `PAYMENT-REQUIRED` header.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequiredV2 {
    /// Always 2.
    pub x402_version: X402Version,
    /// Why payment is required (or why the last one failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The resource.
    pub resource: ResourceInfo,
    /// The acceptable payments.
    pub accepts: Vec<PaymentRequirementsV2>,
    /// Extensions offered by the server (kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extensions: Option<Raw>,
}

/// A "payment required" document of either version.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum PaymentRequired {
    /// Version 1 (a 402 body).
    V1(PaymentRequiredV1),
    /// Version 2 (a `PAYMENT-REQUIRED` header).
    V2(PaymentRequiredV2),
}
