//! The `upto` payload: a Permit2 witness transfer whose witness names the recipient, the
//! facilitator allowed to settle, and the start of validity.

use alloy::primitives::{Address, Bytes, U256};
use serde::{Deserialize, Serialize};
use x402_core::{Reason, Rejection};
use x402_evm::parse;
use x402_evm::payload::{Permit2Terms, WirePermit2, checksum as addr, hex};

/// `permit2Authorization.witness` of an `upto` payment, as on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireWitness {
    to: String,
    facilitator: String,
    valid_after: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePayload {
    signature: String,
    permit2_authorization: WirePermit2<WireWitness>,
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

impl UptoPayload {
    /// The witness-independent fields.
    pub fn terms(&self) -> Permit2Terms {
        Permit2Terms {
            from: self.from,
            token: self.token,
            amount: self.max_amount,
            spender: self.spender,
            nonce: self.nonce,
            deadline: self.deadline,
        }
    }
}

/// Parses a payload strictly; anything that is not an upto Permit2 payload with canonical fields
/// is `unsupported_payload_type` (the reference's reason for a malformed upto payload).
pub fn parse(raw: &serde_json::value::RawValue) -> Result<UptoPayload, Rejection> {
    let bad = |e: &dyn std::fmt::Display| {
        Rejection::with_message(Reason::UNSUPPORTED_PAYLOAD_TYPE, e.to_string())
    };
    let w: WirePayload = serde_json::from_str(raw.get()).map_err(|e| bad(&e))?;
    let a = &w.permit2_authorization;
    let signature = parse::signature("signature", &w.signature).map_err(|e| bad(&e))?;
    let t = a.terms().map_err(|e| bad(&e))?;
    Ok(UptoPayload {
        signature,
        from: t.from,
        token: t.token,
        max_amount: t.amount,
        spender: t.spender,
        nonce: t.nonce,
        deadline: t.deadline,
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
    x402_core::wire::to_raw(&WirePayload {
        signature: hex(&p.signature),
        permit2_authorization: WirePermit2::new(
            &p.terms(),
            WireWitness {
                to: addr(&p.to),
                facilitator: addr(&p.facilitator),
                valid_after: p.valid_after.to_string(),
            },
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x402-spec §6.2 vector C, in the reference's JSON shape.
    const VECTOR_C: &str = r#"{"signature":"0x3433d762a5ee8e40a33a489a4ad695af362e5054e1e0e7a8f6599c21d38e536c23f8ebc6800c001e0d9ca2b44850892d62e5e861c0799dabbb9a2f638692c45c1c","permit2Authorization":{"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","permitted":{"token":"0x036CbD53842c5426634e7929541eC2318f3dCF7e","amount":"5000000"},"spender":"0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002","nonce":"110117680976134290040645500446194905769275902069351365960831693135107775870080","deadline":"1740672154","witness":{"to":"0x209693Bc6afc0C5328bA36FaF03C514EF312287C","facilitator":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","validAfter":"1740672089"}}}"#;

    fn raw(s: &str) -> Box<serde_json::value::RawValue> {
        serde_json::value::RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn vector_c_round_trips() {
        let p = parse(&raw(VECTOR_C)).unwrap();
        assert_eq!(p.max_amount, U256::from(5_000_000));
        assert_eq!(p.terms().amount, p.max_amount);
        assert_eq!(to_json(&p).unwrap().get(), VECTOR_C);
    }

    #[test]
    fn malformed_is_unsupported_payload_type() {
        let cases = [
            VECTOR_C.replace(r#""amount":"5000000""#, r#""amount":"+5000000""#),
            VECTOR_C.replace(
                r#","facilitator":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8""#,
                "",
            ),
            r#"{"signature":"0x00"}"#.to_owned(),
        ];
        for case in cases {
            let err = parse(&raw(&case)).unwrap_err();
            assert_eq!(err.reason, Reason::UNSUPPORTED_PAYLOAD_TYPE, "{case}");
        }
    }
}
