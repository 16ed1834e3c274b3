//! Request and payload builders: signed and hand-made EIP-3009 and Permit2 payloads, v1 and v2
//! envelopes, and edits of a request's JSON.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::Eip712Domain;
use scheme_exact_evm::payload::{self, Eip3009Payload, ExactEvmPayload, Permit2Payload};
use x402_core::wire::{
    PaymentPayload, PaymentPayloadV1, PaymentRequirements, PaymentRequirementsV2, Raw,
    VerifyRequest,
};
use x402_core::{Amount, UnixTime, X402Version};
use x402_evm::abi::eip3009::TransferWithAuthorization;
use x402_evm::abi::permit2_exact;

use crate::evm::x402::sign_eip712;

/// The current Unix time in seconds.
pub fn now() -> u64 {
    UnixTime::now().0
}

/// The scheme payload a request carries.
pub fn payload_of(request: &VerifyRequest) -> Raw {
    match &request.payment_payload {
        PaymentPayload::V1(p) => p.payload.clone(),
        PaymentPayload::V2(p) => p.payload.clone(),
    }
}

/// `request` as JSON with the member at `pointer` replaced by `value`.
///
/// # Panics
/// When the request has no member at `pointer`.
pub fn body_with(request: &VerifyRequest, pointer: &str, value: &serde_json::Value) -> Vec<u8> {
    let mut doc = serde_json::to_value(request).expect("json");
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("the request has no {pointer}")) = value.clone();
    serde_json::to_vec(&doc).expect("json")
}

/// The non-canonical spellings of the uint256 10000 (threat-model S4).
pub fn non_canonical_10000() -> Vec<serde_json::Value> {
    use serde_json::json;
    vec![
        json!(""),
        json!("-1"),
        json!("+10000"),
        json!(" 10000"),
        json!("10000 "),
        json!("10_000"),
        json!("1e4"),
        json!("0x2710"),
        json!("010000"),
        json!("10000.0"),
        json!("１００００"),
        // 2^256: one past the largest uint256.
        json!("115792089237316195423570985008687907853269984665640564039457584007913129639936"),
        json!(10000),
        json!(1e21),
        json!(null),
    ]
}

/// Base Sepolia's real USDC address: no code on the bed.
pub const CODELESS: Address =
    alloy::primitives::address!("0x036CbD53842c5426634e7929541eC2318f3dCF7e");

/// Signs `message` (an EIP-3009 authorization) under `domain` with `key`: the payload as a wallet
/// sends it.
pub fn eip3009_signed(
    key: &PrivateKeySigner,
    message: &TransferWithAuthorization,
    domain: &Eip712Domain,
) -> Raw {
    eip3009_with_signature(message, sign_eip712(key, message, domain))
}

/// An EIP-3009 payload for `message` carrying `signature` verbatim (forged, malformed, wrapped).
pub fn eip3009_with_signature(message: &TransferWithAuthorization, signature: Bytes) -> Raw {
    payload::to_json(&ExactEvmPayload::Eip3009(Eip3009Payload {
        signature,
        from: message.from,
        to: message.to,
        value: message.value,
        valid_after: message.validAfter,
        valid_before: message.validBefore,
        nonce: message.nonce,
    }))
    .expect("payload json")
}

/// Signs a Permit2 witness transfer of `owner` under `domain` with `key`.
pub fn permit2_signed(
    key: &PrivateKeySigner,
    owner: Address,
    message: &permit2_exact::PermitWitnessTransferFrom,
    domain: &Eip712Domain,
) -> Raw {
    permit2_with_signature(owner, message, sign_eip712(key, message, domain))
}

/// A Permit2 payload of `owner` for `message` carrying `signature` verbatim.
pub fn permit2_with_signature(
    owner: Address,
    message: &permit2_exact::PermitWitnessTransferFrom,
    signature: Bytes,
) -> Raw {
    payload::to_json(&ExactEvmPayload::Permit2(Permit2Payload {
        signature,
        from: owner,
        token: message.permitted.token,
        amount: message.permitted.amount,
        spender: message.spender,
        nonce: message.nonce,
        deadline: message.deadline,
        witness_to: message.witness.to,
        valid_after: message.witness.validAfter,
    }))
    .expect("payload json")
}

/// A v1 request for `requirements` written as v1 (see [`to_v1`]: the network by its v1 name,
/// `maxAmountRequired`), carrying `payload`.
pub fn request_v1(requirements: &PaymentRequirementsV2, payload: Raw) -> VerifyRequest {
    let v1 = to_v1(requirements);
    VerifyRequest::new(
        PaymentPayload::V1(PaymentPayloadV1 {
            x402_version: X402Version::V1,
            scheme: v1.scheme.clone(),
            network: v1.network.clone(),
            payload,
        }),
        PaymentRequirements::V1(v1),
    )
}

pub use crate::wire::{request_v2, to_v1};

/// 32 random bytes (a fresh key's secret).
pub fn random_b256() -> B256 {
    PrivateKeySigner::random().to_bytes()
}

/// `amount` as a uint256.
pub fn units(amount: Amount) -> U256 {
    amount.get()
}
