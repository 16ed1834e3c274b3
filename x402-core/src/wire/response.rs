//! What a facilitator answers: verify and settle responses (one shape serves v1 and v2).

use serde::{Deserialize, Serialize};

use super::{Raw, raw_keep_null};
use crate::{Amount, Reason};

/// `VerifyResponse`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    /// Whether the payment is valid.
    pub is_valid: bool,
    /// Why not, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<Reason>,
    /// A human explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_message: Option<String>,
    /// The paying address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// Extension responses (kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extensions: Option<Raw>,
    /// Scheme- or facilitator-specific details of the verdict (an object in the reference; kept
    /// verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra: Option<Raw>,
}

impl VerifyResponse {
    /// A valid verdict.
    pub fn valid(payer: impl Into<String>) -> Self {
        Self {
            is_valid: true,
            invalid_reason: None,
            invalid_message: None,
            payer: Some(payer.into()),
            extensions: None,
            extra: None,
        }
    }

    /// An invalid verdict.
    pub fn invalid(reason: Reason, message: Option<String>, payer: Option<String>) -> Self {
        Self {
            is_valid: false,
            invalid_reason: Some(reason),
            invalid_message: message,
            payer,
            extensions: None,
            extra: None,
        }
    }
}

/// `SettleResponse` (also the decoded `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE` header).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleResponse {
    /// Whether the payment settled.
    pub success: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<Reason>,
    /// A human explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The transaction hash or signature (`""` when nothing was sent).
    pub transaction: String,
    /// The network, as the request's version names it.
    pub network: String,
    /// The paying address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    /// The amount settled (`upto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Extension responses (kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extensions: Option<Raw>,
    /// Scheme- or facilitator-specific details of the settlement (an object in the reference;
    /// kept verbatim).
    #[serde(
        default,
        deserialize_with = "raw_keep_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub extra: Option<Raw>,
}

impl SettleResponse {
    /// A failed settlement: nothing to report on chain except possibly a hash.
    pub fn failed(
        reason: Reason,
        message: Option<String>,
        network: impl Into<String>,
        payer: Option<String>,
    ) -> Self {
        Self {
            success: false,
            error_reason: Some(reason),
            error_message: message,
            transaction: String::new(),
            network: network.into(),
            payer,
            amount: None,
            extensions: None,
            extra: None,
        }
    }
}
