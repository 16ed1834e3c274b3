//! `payload.permit2Authorization` as on the wire (x402-spec §3.2, §3.3): `exact` and `upto` send
//! the same Permit2 authorization and differ only in the witness, so the wire type is generic
//! over it and the witness-independent fields are parsed (strictly) and written here once.

use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use x402_core::{Network, PaymentId};

use crate::parse::{self, FieldError};

/// `permit2Authorization.permitted`, as on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireTokenPermissions {
    /// The token.
    pub token: String,
    /// The amount permitted (decimal).
    pub amount: String,
}

/// `payload.permit2Authorization`, as on the wire, with the scheme's witness `W`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WirePermit2<W> {
    /// The owner (payer).
    pub from: String,
    /// The token and amount permitted.
    pub permitted: WireTokenPermissions,
    /// The spender (the scheme's proxy).
    pub spender: String,
    /// Permit2's unordered nonce (decimal).
    pub nonce: String,
    /// Permit2 deadline (unix seconds, decimal).
    pub deadline: String,
    /// The scheme's witness.
    pub witness: W,
}

/// The witness-independent fields of a Permit2 authorization, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit2Terms {
    /// The payer (Permit2 owner).
    pub from: Address,
    /// The token.
    pub token: Address,
    /// The amount permitted.
    pub amount: U256,
    /// The spender.
    pub spender: Address,
    /// Permit2's unordered nonce.
    pub nonce: U256,
    /// Permit2 deadline (unix seconds).
    pub deadline: U256,
}

impl<W> WirePermit2<W> {
    /// Parses the witness-independent fields strictly, in wire order (the first bad field is the
    /// one reported).
    pub fn terms(&self) -> Result<Permit2Terms, FieldError> {
        Ok(Permit2Terms {
            from: parse::address("permit2Authorization.from", &self.from)?,
            token: parse::address(
                "permit2Authorization.permitted.token",
                &self.permitted.token,
            )?,
            amount: parse::uint(
                "permit2Authorization.permitted.amount",
                &self.permitted.amount,
            )?,
            spender: parse::address("permit2Authorization.spender", &self.spender)?,
            nonce: parse::uint("permit2Authorization.nonce", &self.nonce)?,
            deadline: parse::uint("permit2Authorization.deadline", &self.deadline)?,
        })
    }

    /// The wire form of `terms` with `witness` (checksummed addresses, decimal numbers).
    pub fn new(terms: &Permit2Terms, witness: W) -> Self {
        Self {
            from: checksum(&terms.from),
            permitted: WireTokenPermissions {
                token: checksum(&terms.token),
                amount: terms.amount.to_string(),
            },
            spender: checksum(&terms.spender),
            nonce: terms.nonce.to_string(),
            deadline: terms.deadline.to_string(),
            witness,
        }
    }
}

/// An address as the reference writes it: EIP-55 checksummed.
pub fn checksum(a: &Address) -> String {
    a.to_checksum(None)
}

/// Bytes as the reference writes them: `0x` and lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    format!("0x{}", alloy::primitives::hex::encode(bytes))
}

/// The identity of a Permit2 payment: (chain, owner, nonce) — Permit2 nonces are one bitmap per
/// owner, shared by every spender, so the exact and upto proxies share this identity space.
pub fn permit2_id(network: &Network, owner: Address, nonce: U256) -> PaymentId {
    PaymentId::new(
        "permit2",
        [
            network.as_str().to_owned(),
            format!("{owner:#x}"),
            nonce.to_string(),
        ],
    )
}
