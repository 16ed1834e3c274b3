//! The `exact` EVM payload: an EIP-3009 authorization or a Permit2 witness transfer, parsed
//! strictly (every field canonical) and written in the reference's JSON shape.

use alloy::primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, Serialize};
use x402_core::{Reason, Rejection};
use x402_evm::parse;
use x402_evm::payload::{Permit2Terms, checksum as addr, hex};

/// `payload.authorization` of an EIP-3009 payment, as on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAuthorization {
    from: String,
    to: String,
    value: String,
    valid_after: String,
    valid_before: String,
    nonce: String,
}

/// `permit2Authorization.witness` of an `exact` payment, as on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWitness {
    to: String,
    valid_after: String,
}

/// `payload.permit2Authorization` of a Permit2 payment, as on the wire.
type WirePermit2 = x402_evm::payload::WirePermit2<WireWitness>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePayload {
    signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization: Option<WireAuthorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    permit2_authorization: Option<WirePermit2>,
}

/// An EIP-3009 `transferWithAuthorization` payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eip3009Payload {
    /// The signature (65-byte ECDSA, an EIP-1271 blob, or an ERC-6492 wrapper).
    pub signature: Bytes,
    /// The payer.
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// The amount.
    pub value: U256,
    /// Valid from (unix seconds).
    pub valid_after: U256,
    /// Valid until (unix seconds).
    pub valid_before: U256,
    /// The 32-byte authorization nonce.
    pub nonce: B256,
}

/// A Permit2 witness transfer through the exact proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permit2Payload {
    /// The owner's signature.
    pub signature: Bytes,
    /// The payer (Permit2 owner).
    pub from: Address,
    /// The token.
    pub token: Address,
    /// The amount permitted.
    pub amount: U256,
    /// The spender (must be the exact proxy).
    pub spender: Address,
    /// Permit2's unordered nonce.
    pub nonce: U256,
    /// Permit2 deadline (unix seconds).
    pub deadline: U256,
    /// The witnessed recipient.
    pub witness_to: Address,
    /// The witnessed start of validity.
    pub valid_after: U256,
}

/// An `exact` EVM payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExactEvmPayload {
    /// EIP-3009.
    Eip3009(Eip3009Payload),
    /// Permit2.
    Permit2(Permit2Payload),
}

impl Permit2Payload {
    /// The witness-independent fields.
    pub fn terms(&self) -> Permit2Terms {
        Permit2Terms {
            from: self.from,
            token: self.token,
            amount: self.amount,
            spender: self.spender,
            nonce: self.nonce,
            deadline: self.deadline,
        }
    }
}

impl ExactEvmPayload {
    /// The payer named by the payload.
    pub fn payer(&self) -> Address {
        match self {
            Self::Eip3009(p) => p.from,
            Self::Permit2(p) => p.from,
        }
    }
}

/// The payer's address as written in a payload that may not parse as a whole, so that even a
/// rejection of a malformed payload names the payer when it can.
pub fn payer_hint(raw: &serde_json::value::RawValue) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
    let from = v
        .get("authorization")
        .or_else(|| v.get("permit2Authorization"))?
        .get("from")?
        .as_str()?;
    parse::address("from", from)
        .ok()
        .map(|a| a.to_checksum(None))
}

fn invalid(e: impl std::fmt::Display) -> Rejection {
    Rejection::with_message(Reason::INVALID_PAYLOAD, e.to_string())
}

/// Parses a payload strictly. Routing follows the payload's shape: `permit2Authorization`
/// present means Permit2, otherwise EIP-3009.
pub fn parse(raw: &serde_json::value::RawValue) -> Result<ExactEvmPayload, Rejection> {
    let wire: WirePayload = serde_json::from_str(raw.get()).map_err(invalid)?;
    let signature = parse::signature("signature", &wire.signature).map_err(invalid)?;
    match (wire.authorization, wire.permit2_authorization) {
        (Some(_), Some(_)) => Err(Rejection::with_message(
            Reason::INVALID_PAYLOAD,
            "payload carries both authorization and permit2Authorization",
        )),
        (Some(a), None) => Ok(ExactEvmPayload::Eip3009(Eip3009Payload {
            signature,
            from: parse::address("authorization.from", &a.from).map_err(invalid)?,
            to: parse::address("authorization.to", &a.to).map_err(invalid)?,
            value: parse::uint("authorization.value", &a.value).map_err(invalid)?,
            valid_after: parse::uint("authorization.validAfter", &a.valid_after)
                .map_err(invalid)?,
            valid_before: parse::uint("authorization.validBefore", &a.valid_before)
                .map_err(invalid)?,
            nonce: parse::bytes32("authorization.nonce", &a.nonce).map_err(invalid)?,
        })),
        (None, Some(p)) => {
            let t = p.terms().map_err(invalid)?;
            Ok(ExactEvmPayload::Permit2(Permit2Payload {
                signature,
                from: t.from,
                token: t.token,
                amount: t.amount,
                spender: t.spender,
                nonce: t.nonce,
                deadline: t.deadline,
                witness_to: parse::address("permit2Authorization.witness.to", &p.witness.to)
                    .map_err(invalid)?,
                valid_after: parse::uint(
                    "permit2Authorization.witness.validAfter",
                    &p.witness.valid_after,
                )
                .map_err(invalid)?,
            }))
        }
        (None, None) => Err(Rejection::with_message(
            Reason::INVALID_PAYLOAD,
            "payload has neither authorization nor permit2Authorization",
        )),
    }
}

/// Writes a payload in the reference's JSON shape (checksummed addresses, decimal numbers,
/// lower-case hex).
pub fn to_json(payload: &ExactEvmPayload) -> Result<x402_core::wire::Raw, serde_json::Error> {
    let wire = match payload {
        ExactEvmPayload::Eip3009(p) => WirePayload {
            signature: hex(&p.signature),
            authorization: Some(WireAuthorization {
                from: addr(&p.from),
                to: addr(&p.to),
                value: p.value.to_string(),
                valid_after: p.valid_after.to_string(),
                valid_before: p.valid_before.to_string(),
                nonce: hex(p.nonce.as_slice()),
            }),
            permit2_authorization: None,
        },
        ExactEvmPayload::Permit2(p) => WirePayload {
            signature: hex(&p.signature),
            authorization: None,
            permit2_authorization: Some(WirePermit2::new(
                &p.terms(),
                WireWitness {
                    to: addr(&p.witness_to),
                    valid_after: p.valid_after.to_string(),
                },
            )),
        },
    };
    x402_core::wire::to_raw(&wire)
}

/// The identity of an EIP-3009 payment: (chain, token, from, nonce).
pub fn eip3009_id(
    network: &x402_core::Network,
    asset: Address,
    p: &Eip3009Payload,
) -> x402_core::PaymentId {
    x402_core::PaymentId::new(
        "eip3009",
        [
            network.as_str().to_owned(),
            format!("{asset:#x}"),
            format!("{:#x}", p.from),
            format!("{:#x}", p.nonce),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_A: &str = r#"{"signature":"0xdc53a4a579de989368a0fae2ef2172ff2f474b4297013f865d171239f17ef4c3157b4b4030f1bebc53d55ace15c2377dff501a60e1e56c291f1000d6e78f082f1b","authorization":{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","value":"10000","validAfter":"1740672089","validBefore":"1740672154","nonce":"0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480"}}"#;

    fn raw(s: &str) -> Box<serde_json::value::RawValue> {
        serde_json::value::RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn vector_a_round_trips() {
        let p = parse(&raw(VECTOR_A)).unwrap();
        assert!(matches!(p, ExactEvmPayload::Eip3009(_)));
        assert_eq!(to_json(&p).unwrap().get(), VECTOR_A);
        assert_eq!(
            payer_hint(&raw(VECTOR_A)).as_deref(),
            Some("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
    }

    #[test]
    fn non_canonical_fields_are_invalid_payload() {
        let cases = [
            VECTOR_A.replace(r#""value":"10000""#, r#""value":"+10000""#),
            VECTOR_A.replace(r#""value":"10000""#, r#""value":10000"#),
            VECTOR_A.replace(r#""validBefore":"1740672154""#, r#""validBefore":"0x67bf""#),
            VECTOR_A.replace("0xf3746613", "0xf37466"),
            VECTOR_A.replace("\"0xdc53", "\"dc53"),
            VECTOR_A.replace(
                "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            ),
            r#"{"signature":"0x00"}"#.to_owned(),
        ];
        for case in cases {
            let err = parse(&raw(&case)).unwrap_err();
            assert_eq!(err.reason, Reason::INVALID_PAYLOAD, "{case}");
            assert!(err.message.is_some());
        }
    }
}
