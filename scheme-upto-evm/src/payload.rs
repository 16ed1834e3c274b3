//! The `upto` payload: a Permit2 witness transfer whose witness names the recipient, the
//! facilitator allowed to settle, and the start of validity.

use alloy::primitives::{Address, Bytes, U256};
use serde::{Deserialize, Serialize};
use x402_core::{Reason, Rejection};
use x402_evm::parse;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireTokenPermissions {
    token: String,
    amount: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWitness {
    to: String,
    facilitator: String,
    valid_after: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAuthorization {
    from: String,
    permitted: WireTokenPermissions,
    spender: String,
    nonce: String,
    deadline: String,
    witness: WireWitness,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePayload {
    signature: String,
    permit2_authorization: WireAuthorization,
}

/// An `upto` payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UptoPayload {
    /// The owner's signature.
    pub signature: Bytes,
    /// The payer (Permit2 owner).
    pub from: Address,
    /// The token.
    pub token: Address,
    /// The maximum the proxy may move.
    pub max_amount: U256,
    /// The spender (must be the upto proxy).
    pub spender: Address,
    /// Permit2's unordered nonce.
    pub nonce: U256,
    /// Permit2 deadline (unix seconds).
    pub deadline: U256,
    /// The witnessed recipient.
    pub to: Address,
    /// The witnessed facilitator (the only account that may settle).
    pub facilitator: Address,
    /// The witnessed start of validity.
    pub valid_after: U256,
}

/// Parses a payload strictly; anything that is not an upto Permit2 payload with canonical fields
/// is `unsupported_payload_type` (the reference's reason for a malformed upto payload).
pub fn parse(raw: &serde_json::value::RawValue) -> Result<UptoPayload, Rejection> {
    let bad = |e: &dyn std::fmt::Display| {
        Rejection::with_message(Reason::UnsupportedPayloadType, e.to_string())
    };
    let w: WirePayload = serde_json::from_str(raw.get()).map_err(|e| bad(&e))?;
    let a = &w.permit2_authorization;
    Ok(UptoPayload {
        signature: parse::signature("signature", &w.signature).map_err(|e| bad(&e))?,
        from: parse::address("permit2Authorization.from", &a.from).map_err(|e| bad(&e))?,
        token: parse::address("permit2Authorization.permitted.token", &a.permitted.token)
            .map_err(|e| bad(&e))?,
        max_amount: parse::uint("permit2Authorization.permitted.amount", &a.permitted.amount)
            .map_err(|e| bad(&e))?,
        spender: parse::address("permit2Authorization.spender", &a.spender).map_err(|e| bad(&e))?,
        nonce: parse::uint("permit2Authorization.nonce", &a.nonce).map_err(|e| bad(&e))?,
        deadline: parse::uint("permit2Authorization.deadline", &a.deadline).map_err(|e| bad(&e))?,
        to: parse::address("permit2Authorization.witness.to", &a.witness.to)
            .map_err(|e| bad(&e))?,
        facilitator: parse::address(
            "permit2Authorization.witness.facilitator",
            &a.witness.facilitator,
        )
        .map_err(|e| bad(&e))?,
        valid_after: parse::uint(
            "permit2Authorization.witness.validAfter",
            &a.witness.valid_after,
        )
        .map_err(|e| bad(&e))?,
    })
}

/// Writes a payload in the reference's JSON shape.
pub fn to_json(p: &UptoPayload) -> Result<x402_core::wire::Raw, serde_json::Error> {
    let addr = |a: &Address| a.to_checksum(None);
    x402_core::wire::to_raw(&WirePayload {
        signature: format!("0x{}", alloy::primitives::hex::encode(&p.signature)),
        permit2_authorization: WireAuthorization {
            from: addr(&p.from),
            permitted: WireTokenPermissions {
                token: addr(&p.token),
                amount: p.max_amount.to_string(),
            },
            spender: addr(&p.spender),
            nonce: p.nonce.to_string(),
            deadline: p.deadline.to_string(),
            witness: WireWitness {
                to: addr(&p.to),
                facilitator: addr(&p.facilitator),
                valid_after: p.valid_after.to_string(),
            },
        },
    })
}
