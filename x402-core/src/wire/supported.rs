//! `GET /supported` and the discovery list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    PaymentRequirements, PaymentRequirementsV1, PaymentRequirementsV2, Raw, raw_keep_null,
};
use crate::X402Version;

/// One (version, scheme, network) a facilitator serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedKind {
    /// The protocol version.
    pub x402_version: X402Version,
    /// The scheme.
    pub scheme: String,
    /// The network as that version names it.
    pub network: String,
    /// Scheme data for sellers (`feePayer`, `facilitatorAddress`).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra: Option<Raw>,
}

/// `SupportedResponse` (v1 had only `kinds`; the others default to empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportedResponse {
    /// The kinds served.
    pub kinds: Vec<SupportedKind>,
    /// The extensions supported.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Signer addresses by CAIP family (`eip155:*`).
    #[serde(default)]
    pub signers: BTreeMap<String, Vec<String>>,
}

/// When a discovery item was last updated: ISO-8601 text (the current bazaar and the TypeScript
/// reference) or unix seconds (the v2 specification's example); both are read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LastUpdated {
    /// Unix seconds.
    Unix(u64),
    /// ISO-8601 text.
    Iso(String),
}

/// One resource of the discovery list (`GET /discovery/resources`), shaped as the bazaar's
/// `DiscoveryResource`.
///
/// The resource's description and service members (`description`, `mimeType`, `serviceName`,
/// `tags`, `iconUrl`) sit on the item itself, as the catalogue sanitized them from the resource's
/// `ResourceInfo`; `extensions` echoes the extension declarations the catalogue holds (the
/// bazaar's `info` and `schema`). `metadata` is the v2 specification's older free-form member,
/// still read and written when present. Optional members may be an explicit `null`; members this
/// build does not know are ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryItem {
    /// The resource URL (or identifier, e.g. an MCP tool).
    pub resource: String,
    /// The resource type (`http`, `mcp`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The version of `accepts`.
    pub x402_version: X402Version,
    /// The requirements, in that version's shape (kept verbatim; see [`DiscoveryItem::accepts`]).
    #[serde(rename = "accepts")]
    pub accepts_raw: Vec<Raw>,
    /// Last update.
    pub last_updated: LastUpdated,
    /// A human description of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The MIME type of the resource's response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The name of the service hosting the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// Topical tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// An absolute `http(s)` URL of the service's icon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    /// Extension declarations echoed by the catalogue (kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extensions: Option<Raw>,
    /// Free-form metadata of the specification's example (kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub metadata: Option<Raw>,
}

impl DiscoveryItem {
    /// The requirements, typed by the item's version.
    pub fn accepts(&self) -> Result<Vec<PaymentRequirements>, serde_json::Error> {
        self.accepts_raw
            .iter()
            .map(|raw| match self.x402_version {
                X402Version::V1 => serde_json::from_str::<PaymentRequirementsV1>(raw.get())
                    .map(PaymentRequirements::V1),
                X402Version::V2 => serde_json::from_str::<PaymentRequirementsV2>(raw.get())
                    .map(PaymentRequirements::V2),
            })
            .collect()
    }
}

/// Discovery paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    /// Page size.
    pub limit: u32,
    /// Offset of the first item.
    pub offset: u32,
    /// Total items.
    pub total: u32,
}

/// `GET /discovery/resources` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryResponse {
    /// The protocol version of the list.
    pub x402_version: X402Version,
    /// The resources.
    pub items: Vec<DiscoveryItem>,
    /// Paging.
    pub pagination: Pagination,
}
