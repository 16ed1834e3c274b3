//! The gas-sponsoring extensions of Permit2 payments (x402-spec §3.5): a buyer without an
//! allowance to Permit2 lets the facilitator obtain it in the settlement transaction.
//!
//! - `eip2612GasSponsoring`: the buyer signs an EIP-2612 `permit(owner, Permit2, amount,
//!   deadline)` of the token beside its Permit2 authorization; the facilitator checks it (format,
//!   owner, token, spender, deadline, amount, the token's own answer) and settles through the
//!   proxy's `settleWithPermit`, one transaction.
//! - `erc20ApprovalGasSponsoring` (any ERC-20): the buyer signs its own `approve(Permit2, …)`
//!   transaction; the facilitator checks it strictly, funds its gas if configured to, broadcasts
//!   it and then settles ([`erc20`]: declaration, reading, offline checks, the buyer's signing).
//!
//! What every role shares lives here: the keys, the seller's declarations, the buyer's signed
//! `info` and its strict reading. The facilitator's checks are
//! `x402_evm::facilitator::sponsored_permit` and `x402_evm::facilitator::approval` (feature
//! `facilitator`).

pub mod erc20;

use alloy::primitives::{Address, Bytes, U256};
use alloy::signers::Signer;
use alloy::sol_types::SolStruct;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use x402_core::Rejection;
use x402_core::extension::JsonObject;

use crate::abi::eip2612::Permit;
use crate::addresses::PERMIT2;
use crate::eip712::eip3009_domain;

/// The key of the EIP-2612 gas-sponsoring extension.
pub const EIP2612_GAS_SPONSORING: &str = "eip2612GasSponsoring";

/// The key of the ERC-20 approval gas-sponsoring extension.
pub const ERC20_APPROVAL_GAS_SPONSORING: &str = "erc20ApprovalGasSponsoring";

/// The version of the `info` this build writes and reads.
pub const INFO_VERSION: &str = "1";

/// A string member of a sponsoring declaration's JSON Schema.
pub(crate) fn schema_field(pattern: &str, description: &str) -> JsonObject {
    JsonObject::new()
        .with("type", "string")
        .with("pattern", pattern)
        .with("description", description)
}

/// A sponsoring declaration: `info {description, version}` and the JSON Schema (draft 2020-12) of
/// the buyer's `info` with `properties` and `required`, members in the reference's order.
pub(crate) fn declaration(
    description: &str,
    properties: &JsonObject,
    required: &[&str],
) -> JsonObject {
    let schema = JsonObject::new()
        .with("$schema", "https://json-schema.org/draft/2020-12/schema")
        .with("type", "object")
        .with("properties", properties)
        .with("required", required);
    let info = JsonObject::new()
        .with("description", description)
        .with("version", INFO_VERSION);
    JsonObject::new()
        .with("info", &info)
        .with("schema", &schema)
}

/// The declaration a seller puts under [`EIP2612_GAS_SPONSORING`] in its 402: the facilitator
/// accepts an EIP-2612 permit to Permit2 (`info {description, version}` and the JSON Schema of
/// the buyer's `info`), members in the order the official `@x402/extensions` 2.27 writes them, so
/// the declaration is byte for byte the reference's.
pub fn eip2612_declaration() -> JsonObject {
    let field = schema_field;
    const ADDRESS: &str = "^0x[a-fA-F0-9]{40}$";
    const NUMBER: &str = "^[0-9]+$";
    let properties = JsonObject::new()
        .with("from", &field(ADDRESS, "The address of the sender."))
        .with(
            "asset",
            &field(ADDRESS, "The address of the ERC-20 token contract."),
        )
        .with(
            "spender",
            &field(ADDRESS, "The address of the spender (Canonical Permit2)."),
        )
        .with(
            "amount",
            &field(
                NUMBER,
                "The amount to approve (uint256). Typically MaxUint.",
            ),
        )
        .with("nonce", &field(NUMBER, "The current nonce of the sender."))
        .with(
            "deadline",
            &field(NUMBER, "The timestamp at which the signature expires."),
        )
        .with(
            "signature",
            &field(
                "^0x[a-fA-F0-9]+$",
                "The 65-byte concatenated signature (r, s, v) as a hex string.",
            ),
        )
        .with(
            "version",
            &field(r"^[0-9]+(\.[0-9]+)*$", "Schema version identifier."),
        );
    declaration(
        "The facilitator accepts EIP-2612 gasless Permit to `Permit2` canonical contract.",
        &properties,
        &INFO_FIELDS,
    )
}

/// The members of the buyer's `info`, in wire order.
const INFO_FIELDS: [&str; 8] = [
    "from",
    "asset",
    "spender",
    "amount",
    "nonce",
    "deadline",
    "signature",
    "version",
];

/// The buyer's `info` under [`EIP2612_GAS_SPONSORING`] in its payment, as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eip2612Info {
    /// The token owner (the payer).
    pub from: String,
    /// The token.
    pub asset: String,
    /// The spender the permit grants (Permit2).
    pub spender: String,
    /// The allowance granted (decimal).
    pub amount: String,
    /// The token's permit nonce of the owner (decimal).
    pub nonce: String,
    /// The permit's deadline (unix seconds, decimal).
    pub deadline: String,
    /// The 65-byte `r‖s‖v` signature, hex.
    pub signature: String,
    /// The info version (`"1"`).
    pub version: String,
}

/// A buyer's EIP-2612 permit, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eip2612Permit {
    /// The token owner.
    pub from: Address,
    /// The token.
    pub asset: Address,
    /// The spender.
    pub spender: Address,
    /// The allowance.
    pub amount: U256,
    /// The token's permit nonce.
    pub nonce: U256,
    /// The deadline (unix seconds).
    pub deadline: U256,
    /// `r`.
    pub r: alloy::primitives::B256,
    /// `s`.
    pub s: alloy::primitives::B256,
    /// `v` (27 or 28).
    pub v: u8,
}

impl Eip2612Permit {
    /// The 65-byte `r‖s‖v` signature.
    pub fn signature(&self) -> Bytes {
        let mut out = Vec::with_capacity(65);
        out.extend_from_slice(self.r.as_slice());
        out.extend_from_slice(self.s.as_slice());
        out.push(self.v);
        out.into()
    }

    /// The `EIP2612Permit` tuple `settleWithPermit` takes.
    pub fn call_tuple(&self) -> crate::abi::permit2::EIP2612Permit {
        crate::abi::permit2::EIP2612Permit {
            value: self.amount,
            deadline: self.deadline,
            r: self.r,
            s: self.s,
            v: self.v,
        }
    }
}

/// Whether the 402's `extensions` (raw, v2) offer `key`.
pub fn offered(extensions: Option<&RawValue>, key: &str) -> bool {
    x402_core::extension::read_extensions(extensions)
        .map(|all| all.get(key).is_some())
        .unwrap_or(false)
}

/// The buyer's EIP-2612 permit in a payment's `extensions`: `Ok(None)` when the payment carries
/// none (no entry, or the seller's declaration echoed without a signed permit — no `signature`
/// member), the permit when every field is well formed, `invalid_eip2612_extension_format`
/// otherwise (x402-spec §3.5: addresses `0x`+40 hex, numbers decimal, a 65-byte signature with
/// `v` 27/28 or 0/1, version digits and dots).
pub fn read_eip2612(extensions: Option<&RawValue>) -> Result<Option<Eip2612Permit>, Rejection> {
    let format =
        |m: String| Rejection::with_message(crate::reason::INVALID_EIP2612_EXTENSION_FORMAT, m);
    let all = x402_core::extension::read_extensions(extensions).map_err(format)?;
    let Some(entry) = all.get(EIP2612_GAS_SPONSORING) else {
        return Ok(None);
    };
    let entry: serde_json::Value = serde_json::from_str(entry.get())
        .map_err(|e| format(format!("{EIP2612_GAS_SPONSORING}: {e}")))?;
    let Some(info) = entry.get("info") else {
        return Ok(None);
    };
    // The seller's declaration echoed as is: the buyer signed no permit.
    if info.get("signature").is_none() && info.get("from").is_none() {
        return Ok(None);
    }
    let info: Eip2612Info = serde_json::from_value(info.clone())
        .map_err(|e| format(format!("{EIP2612_GAS_SPONSORING}.info: {e}")))?;
    let field = |e: crate::parse::FieldError| format(e.to_string());
    if !version_ok(&info.version) {
        return Err(format(format!(
            "info.version {:?} is not digits and dots",
            info.version
        )));
    }
    let sig = crate::parse::signature("info.signature", &info.signature).map_err(field)?;
    let (rs, v) = match sig.as_ref() {
        [rs @ .., v @ (0 | 1 | 27 | 28)] if rs.len() == 64 => {
            (rs, if *v < 27 { v + 27 } else { *v })
        }
        _ => {
            return Err(format(
                "info.signature is not a 65-byte r‖s‖v ECDSA signature".into(),
            ));
        }
    };
    Ok(Some(Eip2612Permit {
        from: lenient_address("info.from", &info.from).map_err(field)?,
        asset: lenient_address("info.asset", &info.asset).map_err(field)?,
        spender: lenient_address("info.spender", &info.spender).map_err(field)?,
        amount: crate::parse::uint("info.amount", &info.amount).map_err(field)?,
        nonce: crate::parse::uint("info.nonce", &info.nonce).map_err(field)?,
        deadline: crate::parse::uint("info.deadline", &info.deadline).map_err(field)?,
        r: alloy::primitives::B256::from_slice(&rs[..32]),
        s: alloy::primitives::B256::from_slice(&rs[32..]),
        v,
    }))
}

/// An address as the extension's schema allows it: `0x` + 40 hex digits in any case (the
/// reference's pattern checks no EIP-55 checksum).
fn lenient_address(field: &'static str, s: &str) -> Result<Address, crate::parse::FieldError> {
    crate::parse::address(field, &s.to_ascii_lowercase())
}

/// `^[0-9]+(\.[0-9]+)*$`.
fn version_ok(v: &str) -> bool {
    !v.is_empty()
        && v.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// The field checks of a buyer's permit against its Permit2 payment (x402-spec §3.5, in the
/// reference's order): owner is the payer (`eip2612_from_mismatch`), token is the payment's
/// (`eip2612_asset_mismatch`), spender is Permit2 (`eip2612_spender_not_permit2`), the deadline
/// at least `buffer` seconds after `now` (`eip2612_deadline_expired`), then the allowance equals
/// the amount Permit2 moves (`permit2_2612_amount_mismatch`: the proxy requires it).
pub fn check_eip2612(
    permit: &Eip2612Permit,
    payer: Address,
    token: Address,
    permitted: U256,
    now: u64,
    buffer: u64,
) -> Result<(), Rejection> {
    use crate::reason as r;
    if permit.from != payer {
        return Err(Rejection::with_message(
            r::EIP2612_FROM_MISMATCH,
            format!(
                "the permit's owner {} is not the payer {payer}",
                permit.from
            ),
        ));
    }
    if permit.asset != token {
        return Err(Rejection::with_message(
            r::EIP2612_ASSET_MISMATCH,
            format!(
                "the permit is for {}, the payment for {token}",
                permit.asset
            ),
        ));
    }
    if permit.spender != PERMIT2 {
        return Err(Rejection::with_message(
            r::EIP2612_SPENDER_NOT_PERMIT2,
            format!("the permit's spender {} is not Permit2", permit.spender),
        ));
    }
    if permit.deadline < U256::from(now.saturating_add(buffer)) {
        return Err(Rejection::with_message(
            r::EIP2612_DEADLINE_EXPIRED,
            format!(
                "the permit's deadline {} is less than {buffer} s after now ({now})",
                permit.deadline
            ),
        ));
    }
    if permit.amount != permitted {
        return Err(Rejection::with_message(
            r::PERMIT2_2612_AMOUNT_MISMATCH,
            format!(
                "the permit grants {}, the Permit2 authorization moves {permitted}",
                permit.amount
            ),
        ));
    }
    Ok(())
}

/// What a buyer signs a permit with: the token's EIP-712 domain (`extra.name`/`extra.version`
/// of the requirements) and the values it grants.
#[derive(Debug, Clone, Copy)]
pub struct PermitTerms<'a> {
    /// The token's EIP-712 name.
    pub name: &'a str,
    /// The token's EIP-712 version.
    pub version: &'a str,
    /// The chain id.
    pub chain_id: u64,
    /// The token.
    pub token: Address,
    /// The allowance granted Permit2 (the amount the Permit2 authorization moves).
    pub amount: U256,
    /// The owner's current permit nonce (the token's `nonces(owner)`).
    pub nonce: U256,
    /// The deadline (the Permit2 authorization's).
    pub deadline: U256,
}

/// Signs an EIP-2612 permit granting Permit2 `terms.amount` and returns the extension entry the
/// payment carries under [`EIP2612_GAS_SPONSORING`]: `{"info": {…}}`.
pub async fn sign_eip2612(
    signer: &(dyn Signer + Send + Sync),
    terms: PermitTerms<'_>,
) -> Result<serde_json::Value, alloy::signers::Error> {
    let owner = signer.address();
    let message = Permit {
        owner,
        spender: PERMIT2,
        value: terms.amount,
        nonce: terms.nonce,
        deadline: terms.deadline,
    };
    let domain = eip3009_domain(terms.name, terms.version, terms.chain_id, terms.token);
    let signature = signer
        .sign_hash(&message.eip712_signing_hash(&domain))
        .await?;
    let info = Eip2612Info {
        from: owner.to_checksum(None),
        asset: terms.token.to_checksum(None),
        spender: PERMIT2.to_checksum(None),
        amount: terms.amount.to_string(),
        nonce: terms.nonce.to_string(),
        deadline: terms.deadline.to_string(),
        signature: alloy::primitives::hex::encode_prefixed(signature.as_bytes()),
        version: INFO_VERSION.to_owned(),
    };
    Ok(serde_json::json!({ "info": info }))
}

/// What a buyer needs to decide on and sign an EIP-2612 permit for a Permit2 payment.
#[derive(Debug, Clone, Copy)]
pub struct BuyerPermit<'a> {
    /// The requirements' `extra.name` (the token's EIP-712 name), if any.
    pub name: Option<&'a str>,
    /// The requirements' `extra.version`, if any.
    pub version: Option<&'a str>,
    /// The chain id.
    pub chain_id: u64,
    /// The token.
    pub token: Address,
    /// The amount the Permit2 authorization moves (the maximum for `upto`).
    pub amount: U256,
    /// The Permit2 authorization's deadline.
    pub deadline: U256,
}

/// The buyer's `eip2612GasSponsoring` entry for a Permit2 payment, or `None` when it sends none:
/// only when the 402 `offered` the extension, the token's EIP-712 name and version are in the
/// requirements, the owner's allowance to Permit2 (read through `provider`) is short of the
/// amount, and the token answers `nonces(owner)` (x402-spec §3.5). The permit grants Permit2
/// exactly the amount (the proxy requires it) until the Permit2 deadline.
pub async fn buyer_eip2612_entry(
    signer: &(dyn Signer + Send + Sync),
    provider: &alloy::providers::DynProvider,
    offered_extensions: Option<&RawValue>,
    p: BuyerPermit<'_>,
) -> Result<Option<x402_core::wire::Raw>, x402_core::SchemeError> {
    use crate::abi::eip2612::IEip2612Token;
    use alloy::providers::Provider;
    use alloy::sol_types::SolCall;
    let (Some(name), Some(version)) = (p.name, p.version) else {
        return Ok(None);
    };
    if !offered(offered_extensions, EIP2612_GAS_SPONSORING) {
        return Ok(None);
    }
    let owner = signer.address();
    let read = |data: Vec<u8>| {
        let tx = alloy::rpc::types::TransactionRequest::default()
            .from(owner)
            .to(p.token)
            .input(Bytes::from(data).into());
        async move { provider.call(tx).await.ok() }
    };
    let allowance = read(
        IEip2612Token::allowanceCall {
            owner,
            spender: PERMIT2,
        }
        .abi_encode(),
    )
    .await
    .and_then(|out| IEip2612Token::allowanceCall::abi_decode_returns(&out).ok());
    if allowance.is_some_and(|a| a >= p.amount) {
        return Ok(None);
    }
    let Some(nonce) = read(IEip2612Token::noncesCall { owner }.abi_encode())
        .await
        .and_then(|out| IEip2612Token::noncesCall::abi_decode_returns(&out).ok())
    else {
        return Ok(None);
    };
    let terms = PermitTerms {
        name,
        version,
        chain_id: p.chain_id,
        token: p.token,
        amount: p.amount,
        nonce,
        deadline: p.deadline,
    };
    let entry = sign_eip2612(signer, terms)
        .await
        .map_err(x402_core::SchemeError::signer)?;
    serde_json::value::to_raw_value(&entry)
        .map(Some)
        .map_err(x402_core::SchemeError::other)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use alloy::primitives::{address, b256};

    use super::*;

    /// x402-spec §6.2 vector D, the EIP-2612 permit of the extension.
    #[test]
    fn vector_d_permit_digest() {
        let domain = eip3009_domain(
            "USDC",
            "2",
            84532,
            address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
        );
        let msg = Permit {
            owner: address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
            spender: PERMIT2,
            value: U256::from(10_000u64),
            nonce: U256::ZERO,
            deadline: U256::from(1_740_672_154u64),
        };
        assert_eq!(
            msg.eip712_hash_struct(),
            b256!("0x8fcffe6acf63aea1d47e9fe219fe840fde79712537855060987a13049284b175")
        );
        assert_eq!(
            msg.eip712_signing_hash(&domain),
            b256!("0x1c25b6b46b1ee22f6e14a51eba91506430a2c75c45c7910aa0f7e13b686b35a6")
        );
    }

    /// The buyer's signing writes vector D's signature (RFC 6979 ECDSA is deterministic), in an
    /// entry the facilitator reads back.
    #[tokio::test]
    async fn sign_eip2612_writes_vector_d() {
        let signer: alloy::signers::local::PrivateKeySigner =
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
                .parse()
                .unwrap();
        let token = address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");
        let terms = PermitTerms {
            name: "USDC",
            version: "2",
            chain_id: 84532,
            token,
            amount: U256::from(10_000u64),
            nonce: U256::ZERO,
            deadline: U256::from(1_740_672_154u64),
        };
        let entry = sign_eip2612(&signer, terms).await.unwrap();
        assert_eq!(entry["info"], info_with_checksummed_asset());
        let raw =
            serde_json::value::to_raw_value(&serde_json::json!({ EIP2612_GAS_SPONSORING: entry }))
                .unwrap();
        let p = read_eip2612(Some(&raw)).unwrap().unwrap();
        assert_eq!(
            (p.from, p.asset, p.spender),
            (signer.address(), token, PERMIT2)
        );
    }

    fn info_with_checksummed_asset() -> serde_json::Value {
        let mut i = info();
        i["asset"] = "0x036CbD53842c5426634e7929541eC2318f3dCF7e".into();
        i
    }

    /// The reference's `declareEip2612GasSponsoringExtension()` output (`@x402/extensions` 2.27),
    /// as `JSON.stringify` writes it.
    #[test]
    fn the_declaration_is_the_references() {
        let expected = concat!(
            r#"{"info":{"description":"The facilitator accepts EIP-2612 gasless Permit to `Permit2` canonical contract.","version":"1"},"#,
            r#""schema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"#,
            r#""from":{"type":"string","pattern":"^0x[a-fA-F0-9]{40}$","description":"The address of the sender."},"#,
            r#""asset":{"type":"string","pattern":"^0x[a-fA-F0-9]{40}$","description":"The address of the ERC-20 token contract."},"#,
            r#""spender":{"type":"string","pattern":"^0x[a-fA-F0-9]{40}$","description":"The address of the spender (Canonical Permit2)."},"#,
            r#""amount":{"type":"string","pattern":"^[0-9]+$","description":"The amount to approve (uint256). Typically MaxUint."},"#,
            r#""nonce":{"type":"string","pattern":"^[0-9]+$","description":"The current nonce of the sender."},"#,
            r#""deadline":{"type":"string","pattern":"^[0-9]+$","description":"The timestamp at which the signature expires."},"#,
            r#""signature":{"type":"string","pattern":"^0x[a-fA-F0-9]+$","description":"The 65-byte concatenated signature (r, s, v) as a hex string."},"#,
            r#""version":{"type":"string","pattern":"^[0-9]+(\\.[0-9]+)*$","description":"Schema version identifier."}},"#,
            r#""required":["from","asset","spender","amount","nonce","deadline","signature","version"]}}"#,
        );
        assert_eq!(eip2612_declaration().to_json(), expected);
    }

    fn extensions(info: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(
            &serde_json::json!({ EIP2612_GAS_SPONSORING: {"info": info} }),
        )
        .unwrap()
    }

    fn info() -> serde_json::Value {
        serde_json::json!({
            "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "asset": "0x036cbd53842c5426634e7929541ec2318f3dcf7e",
            "spender": "0x000000000022D473030F116dDEE9F6B43aC78BA3",
            "amount": "10000", "nonce": "0", "deadline": "1740672154",
            "signature": "0x69baca18f0761582a372da88d9d0ff9b81123913755d3aa5f2d8eaa97315f5a53fe41fe1a9f546e105cbc3de0e0f5e1962207eda86ddee33eec0d57abaa1ac741b",
            "version": "1"
        })
    }

    #[test]
    fn reads_a_signed_permit_and_ignores_an_echoed_declaration() {
        let p = read_eip2612(Some(&extensions(info()))).unwrap().unwrap();
        assert_eq!(p.v, 27);
        assert_eq!(p.amount, U256::from(10_000u64));
        assert_eq!(p.signature().len(), 65);
        let echoed = JsonObject::new()
            .with(EIP2612_GAS_SPONSORING, &eip2612_declaration())
            .to_raw();
        assert_eq!(read_eip2612(Some(&echoed)).unwrap(), None);
        assert_eq!(read_eip2612(None).unwrap(), None);
    }

    #[test]
    fn malformed_fields_are_format_errors() {
        for (k, v) in [
            ("from", "0x12"),
            ("amount", "-1"),
            ("nonce", "0x1"),
            ("deadline", "soon"),
            ("signature", "0x1234"),
            ("version", "v1"),
        ] {
            let mut i = info();
            i[k] = serde_json::json!(v);
            let r = read_eip2612(Some(&extensions(i))).unwrap_err();
            assert_eq!(
                r.reason,
                crate::reason::INVALID_EIP2612_EXTENSION_FORMAT,
                "{k}"
            );
        }
        let mut i = info();
        i.as_object_mut().unwrap().remove("nonce");
        assert!(read_eip2612(Some(&extensions(i))).is_err());
    }

    #[test]
    fn field_checks_in_order() {
        let p = read_eip2612(Some(&extensions(info()))).unwrap().unwrap();
        let payer = p.from;
        let token = p.asset;
        let amount = U256::from(10_000u64);
        let now = 1_740_672_000;
        assert!(check_eip2612(&p, payer, token, amount, now, 6).is_ok());
        let reason = |r: Result<(), Rejection>| r.unwrap_err().reason;
        assert_eq!(
            reason(check_eip2612(&p, token, token, amount, now, 6)),
            crate::reason::EIP2612_FROM_MISMATCH
        );
        assert_eq!(
            reason(check_eip2612(&p, payer, payer, amount, now, 6)),
            crate::reason::EIP2612_ASSET_MISMATCH
        );
        let mut other = p.clone();
        other.spender = payer;
        assert_eq!(
            reason(check_eip2612(&other, payer, token, amount, now, 6)),
            crate::reason::EIP2612_SPENDER_NOT_PERMIT2
        );
        assert_eq!(
            reason(check_eip2612(&p, payer, token, amount, 1_740_672_150, 6)),
            crate::reason::EIP2612_DEADLINE_EXPIRED
        );
        assert_eq!(
            reason(check_eip2612(
                &p,
                payer,
                token,
                amount + U256::from(1),
                now,
                6
            )),
            crate::reason::PERMIT2_2612_AMOUNT_MISMATCH
        );
    }
}
