//! Negative cases of `exact` on EVM with EIP-3009 (threat-model S4–S36) on anvil with Circle's
//! FiatTokenV2_2. Every refusal is checked for its reason string, for NO-FUNDS (no USDC moved,
//! the facilitator spent no ETH) and NO-BROADCAST (facilitator nonces unchanged), unless the case
//! itself must broadcast; client input never makes the dispatcher fail or panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, TxHash, U256};
use alloy::providers::Provider as _;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use scheme_exact_evm::Policy;
use serde_json::{Value, json};
use x402_core::wire::{PaymentPayload, PaymentRequirementsV2, VerifyRequest, to_raw};
use x402_core::{DispatchError, Facilitator as _, Reason};
use x402_evm::abi::eip3009::{IEip3009Token, TransferWithAuthorization};
use x402_evm::assets::TransferMethod;
use x402_evm::signers::TxConfig;
use x402_tests::evm::exact::{
    CODELESS, ExactHarness, PRICE, UNITS, assert_duplicate, assert_settle_refused, body_with,
    eip3009_signed, eip3009_with_signature, harness_tx_config, non_canonical_10000, now,
    payload_of, random_b256, request_v1, request_v2,
};
use x402_tests::evm::x402::{
    self as contracts, ERC6492_MAGIC, IWalletFactory, SECP256K1_N, high_s_twin,
    set_signatures_disabled, sign_eip712, split_signature,
};
use x402_tests::evm::{USDC_NAME, USDC_VERSION, usdc_domain};

alloy::sol! {
    /// FiatToken's EIP-712 message that cancels an unused authorization.
    struct CancelAuthorization {
        address authorizer;
        bytes32 nonce;
    }

    /// EIP-3009's other message type (a different typehash over the same fields).
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    /// FiatTokenV2_2's cancellation entry point.
    interface IFiatTokenCancel {
        function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
    }
}

/// Base mainnet's chain id (the bed runs Base Sepolia's, 84532).
const BASE_MAINNET: u64 = 8453;

async fn setup() -> (ExactHarness, PaymentRequirementsV2, PrivateKeySigner) {
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(0).signer.clone();
    (h, req, buyer)
}

/// [`setup`] and the buyer's valid payment (the control a negative variant is derived from),
/// checked to verify.
async fn setup_with_control() -> (
    ExactHarness,
    PaymentRequirementsV2,
    PrivateKeySigner,
    TransferWithAuthorization,
) {
    let (h, req, buyer) = setup().await;
    let good = h.eip3009_message(buyer.address(), &req);
    h.assert_valid(&signed(&h, &req, &buyer, &good), "control")
        .await;
    (h, req, buyer, good)
}

/// A v2 request carrying `message` signed by `key` under the bed USDC's domain.
fn signed(
    h: &ExactHarness,
    req: &PaymentRequirementsV2,
    key: &PrivateKeySigner,
    message: &TransferWithAuthorization,
) -> VerifyRequest {
    request_v2(req, eip3009_signed(key, message, &h.usdc_domain()))
}

/// `buyer`'s authorization for `req`, its signature, and the v2 request carrying both.
fn authorization(
    h: &ExactHarness,
    req: &PaymentRequirementsV2,
    buyer: &PrivateKeySigner,
) -> (TransferWithAuthorization, Bytes, VerifyRequest) {
    let message = h.eip3009_message(buyer.address(), req);
    let signature = sign_eip712(buyer, &message, &h.usdc_domain());
    let request = request_v2(req, eip3009_with_signature(&message, signature.clone()));
    (message, signature, request)
}

/// `v2` and the same payload in a v1 envelope are both refused with `reason`.
async fn refused_v2_and_v1(
    h: &ExactHarness,
    req: &PaymentRequirementsV2,
    v2: &VerifyRequest,
    reason: Reason,
    watch: &[Address],
    what: &str,
) {
    h.assert_refused(v2, reason.clone(), watch, what).await;
    let v1 = request_v1(req, payload_of(v2));
    h.assert_refused(&v1, reason, watch, &format!("v1 {what}"))
        .await;
}

/// A v2 request in which `buyer` pays the price in `asset` (listed or not), signed over that
/// token's domain.
async fn signed_for_asset(
    h: &ExactHarness,
    buyer: &PrivateKeySigner,
    asset: Address,
) -> VerifyRequest {
    let req = PaymentRequirementsV2 {
        asset: asset.to_checksum(None),
        ..h.requirements(PRICE, TransferMethod::Eip3009).await
    };
    let message = h.eip3009_message(buyer.address(), &req);
    let domain = usdc_domain(h.bed.chain_id(), asset);
    request_v2(&req, eip3009_signed(buyer, &message, &domain))
}

/// A body the dispatcher cannot read: a 400-class `BadRequest` with `reason`, for verify and
/// settle alike.
async fn bad_request(h: &ExactHarness, body: &[u8], reason: Reason, what: &str) {
    for (op, result) in [
        (
            "verify",
            h.verify_body(body).await.map(|r| format!("{r:?}")),
        ),
        (
            "settle",
            h.settle_body(body).await.map(|r| format!("{r:?}")),
        ),
    ] {
        match result {
            Err(DispatchError::BadRequest(e)) => {
                assert_eq!(e.reason(), reason, "{what}: {op}: {e}");
            }
            Err(DispatchError::Internal(e)) => panic!("{what}: {op}: internal error {e}"),
            Ok(r) => panic!("{what}: {op}: answered {r}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2.A Input handling

#[tokio::test]
async fn s4_non_canonical_amounts_are_refused_cleanly() {
    let (h, req, buyer) = setup().await;
    let v2 = h.pay_v2(&buyer, &req).await;
    let v1 = h.pay_v1(&buyer, &req).await;
    h.assert_valid(&v2, "v2").await;
    h.assert_valid(&v1, "v1").await;
    let before = h.snapshot(&[buyer.address()]).await;
    for value in non_canonical_10000() {
        // In the signed payload: an answer, invalid_payload.
        for (version, request) in [("v1", &v1), ("v2", &v2)] {
            let body = body_with(
                request,
                "/paymentPayload/payload/authorization/value",
                &value,
            );
            h.assert_payload_refused(&body, &format!("{version} authorization.value = {value}"))
                .await;
        }
        // In the seller's requirements the body is malformed (HTTP 400,
        // invalid_payment_requirements); in the buyer's echo of them, the payload part is.
        for (request, pointer, reason) in [
            (
                &v2,
                "/paymentRequirements/amount",
                Reason::InvalidPaymentRequirements,
            ),
            (
                &v1,
                "/paymentRequirements/maxAmountRequired",
                Reason::InvalidPaymentRequirements,
            ),
            (
                &v2,
                "/paymentPayload/accepted/amount",
                Reason::InvalidPayload,
            ),
        ] {
            let body = body_with(request, pointer, &value);
            bad_request(&h, &body, reason, &format!("{pointer} = {value}")).await;
        }
    }
    h.assert_untouched(&before, "S4").await;
    // The unmodified payment still verifies: nothing above was refused for another reason.
    h.assert_valid(&v2, "v2 after S4").await;
}

#[tokio::test]
async fn s5_non_canonical_timestamps_nonces_signatures_and_addresses() {
    let (h, req, buyer) = setup().await;
    let request = h.pay_v2(&buyer, &req).await;
    h.assert_valid(&request, "control").await;
    let auth: Value = serde_json::from_str(payload_of(&request).get()).expect("payload json");
    let field = |name: &str| auth["authorization"][name].as_str().unwrap().to_owned();
    let (valid_after, valid_before, nonce) =
        (field("validAfter"), field("validBefore"), field("nonce"));
    let from = field("from");
    let signature = auth["signature"].as_str().unwrap().to_owned();
    let nonce_hex = nonce.trim_start_matches("0x").to_owned();
    let sig_hex = signature.trim_start_matches("0x").to_owned();
    let before = h.snapshot(&[buyer.address()]).await;
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for v in [
        format!("+{valid_before}"),
        format!("-{valid_before}"),
        format!("0x{:x}", valid_before.parse::<u64>().unwrap()),
        format!(" {valid_before}"),
        format!("0{valid_before}"),
        format!("{valid_before}.0"),
        "18446744073709551616".repeat(4),
    ] {
        cases.push(("validBefore", json!(v)));
    }
    cases.push(("validBefore", json!(valid_before.parse::<u64>().unwrap())));
    for v in [format!("+{valid_after}"), "-1".to_owned(), "0x0".to_owned()] {
        cases.push(("validAfter", json!(v)));
    }
    for v in [
        format!("0x{}", &nonce_hex[..62]),
        format!("0x{nonce_hex}00"),
        format!("0x{}", &nonce_hex[..63]),
        format!("0X{nonce_hex}"),
        nonce_hex.clone(),
        format!("0x{}", "g".repeat(64)),
        String::new(),
    ] {
        cases.push(("nonce", json!(v)));
    }
    for v in [
        format!("0X{}", &from[2..]),
        from[2..].to_owned(),
        format!("0x{}", &from[2..41]),
        // A mixed-case address with a broken EIP-55 checksum.
        format!(
            "0x{}{}",
            from[2..3].to_ascii_uppercase(),
            flip_case(&from[3..])
        ),
    ] {
        cases.push(("from", json!(v)));
    }
    for (pointer, value) in &cases {
        let body = body_with(
            &request,
            &format!("/paymentPayload/payload/authorization/{pointer}"),
            value,
        );
        h.assert_payload_refused(&body, &format!("authorization.{pointer} = {value}"))
            .await;
    }
    for v in [
        json!(""),
        json!("0x"),
        json!(format!("0x{}", &sig_hex[..129])),
        json!(format!("0X{sig_hex}")),
        json!(sig_hex.clone()),
        json!(format!("0x{}", "ab".repeat(4097))),
        json!(null),
    ] {
        let body = body_with(&request, "/paymentPayload/payload/signature", &v);
        h.assert_payload_refused(&body, &format!("signature = {v}"))
            .await;
    }
    // Shapes: nothing to pay with, or both methods at once.
    for (what, payload) in [
        ("no authorization", json!({ "signature": signature })),
        (
            "both methods",
            json!({
                "signature": signature,
                "authorization": auth["authorization"],
                "permit2Authorization": {},
            }),
        ),
        ("a string", json!("0x00")),
    ] {
        let body = body_with(&request, "/paymentPayload/payload", &payload);
        h.assert_payload_refused(&body, what).await;
    }
    h.assert_untouched(&before, "S5").await;

    // validBefore beyond u64 is a canonical uint256 (FiatToken accepts it): a far-future
    // deadline, not a parse failure.
    let mut message = h.eip3009_message(buyer.address(), &req);
    message.validBefore = U256::from(u64::MAX) + U256::from(1);
    h.assert_valid(&signed(&h, &req, &buyer, &message), "validBefore = 2^64")
        .await;
}

fn flip_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 2.B Binding what was signed to what is required

#[tokio::test]
async fn s8_recipient_other_than_pay_to() {
    let (h, req, buyer, good) = setup_with_control().await;
    for (what, to) in [
        ("buyer pays itself", buyer.address()),
        ("facilitator signer", h.bed.facilitator().address),
        ("zero address", Address::ZERO),
    ] {
        let message = TransferWithAuthorization { to, ..good.clone() };
        refused_v2_and_v1(
            &h,
            &req,
            &signed(&h, &req, &buyer, &message),
            Reason::InvalidExactEvmRecipientMismatch,
            &[buyer.address(), to],
            what,
        )
        .await;
    }
}

#[tokio::test]
async fn s9_amount_must_equal_the_price_exactly() {
    let (h, req, buyer, good) = setup_with_control().await;
    for value in [UNITS - 1, UNITS + 1, 0, UNITS * 100] {
        let message = TransferWithAuthorization {
            value: U256::from(value),
            ..good.clone()
        };
        refused_v2_and_v1(
            &h,
            &req,
            &signed(&h, &req, &buyer, &message),
            Reason::InvalidExactEvmAuthorizationValue,
            &[buyer.address()],
            &format!("value {value}"),
        )
        .await;
    }
}

#[tokio::test]
async fn s10_unlisted_asset_and_foreign_token_domain() {
    let (h, req, buyer) = setup().await;
    // Spelling of a listed asset does not matter (lower case), so the control is valid.
    let lower = PaymentRequirementsV2 {
        asset: format!("{:#x}", h.bed.usdc()),
        ..req.clone()
    };
    h.assert_valid(
        &signed(
            &h,
            &lower,
            &buyer,
            &h.eip3009_message(buyer.address(), &lower),
        ),
        "lower-case asset",
    )
    .await;
    // An asset the operator did not list: refused before any call to it.
    for unlisted in [
        h.bed.signature_checker(),
        CODELESS,
        Address::repeat_byte(0x11),
    ] {
        let request = signed_for_asset(&h, &buyer, unlisted).await;
        h.assert_refused(
            &request,
            Reason::UnsupportedAsset,
            &[buyer.address()],
            &format!("unlisted asset {unlisted}"),
        )
        .await;
    }
    // Requirements name USDC, the buyer signed over another token's domain.
    let message = h.eip3009_message(buyer.address(), &req);
    let foreign = usdc_domain(h.bed.chain_id(), CODELESS);
    let request = request_v2(&req, eip3009_signed(&buyer, &message, &foreign));
    h.assert_refused(
        &request,
        Reason::InvalidExactEvmSignature,
        &[buyer.address()],
        "signed over another token",
    )
    .await;
}

#[tokio::test]
async fn s11_network_mismatch_and_unserved_networks() {
    let (h, req, buyer) = setup().await;
    let good = h.pay_v2(&buyer, &req).await;
    h.assert_valid(&good, "control").await;
    // The buyer claims another network than the seller requires.
    let mut mismatch = good.clone();
    let PaymentPayload::V2(p) = &mut mismatch.payment_payload else {
        panic!("v2")
    };
    p.accepted.network = "eip155:8453".into();
    h.assert_refused(
        &mismatch,
        Reason::InvalidExactEvmNetworkMismatch,
        &[buyer.address()],
        "accepted on Base mainnet",
    )
    .await;
    // A network the facilitator does not serve, and non-canonical spellings of the served one.
    for network in [
        "eip155:8453",
        "eip155:084532",
        "EIP155:84532",
        "eip155:84532 ",
        " eip155:84532",
        "eip155:",
        "base-sepolia",
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    ] {
        let mut other = req.clone();
        other.network = network.into();
        let request = request_v2(&other, payload_of(&good));
        let before = h.snapshot(&[buyer.address()]).await;
        let body = serde_json::to_vec(&request).unwrap();
        match h.verify_body(&body).await {
            Ok(v) => {
                assert!(!v.is_valid, "{network:?}: {v:?}");
                assert_eq!(
                    v.invalid_reason,
                    Some(Reason::InvalidNetwork),
                    "{network:?}"
                );
            }
            Err(DispatchError::BadRequest(e)) => panic!("{network:?}: refused as malformed: {e}"),
            Err(e) => panic!("{network:?}: {e}"),
        }
        let s = h.settle_body(&body).await.expect("settle answers");
        assert_settle_refused(&s, Reason::InvalidNetwork, network);
        h.assert_untouched(&before, network).await;
    }
    // v1: the payload names an unknown or a different network.
    let v1 = h.pay_v1(&buyer, &req).await;
    h.assert_valid(&v1, "v1 control").await;
    for network in ["base", "base-sepolia-x", "eip155:84532"] {
        let mut request = v1.clone();
        let PaymentPayload::V1(p) = &mut request.payment_payload else {
            panic!("v1")
        };
        p.network = network.into();
        h.assert_refused(
            &request,
            Reason::InvalidExactEvmNetworkMismatch,
            &[buyer.address()],
            &format!("v1 payload on {network}"),
        )
        .await;
    }
}

#[tokio::test]
async fn s12_signature_for_another_chain_or_contract() {
    let (h, req, buyer, message) = setup_with_control().await;
    for (what, domain) in [
        (
            "Base mainnet chain id",
            usdc_domain(BASE_MAINNET, h.bed.usdc()),
        ),
        ("Ethereum chain id", usdc_domain(1, h.bed.usdc())),
        ("another token", usdc_domain(h.bed.chain_id(), CODELESS)),
        ("Permit2's domain", h.permit2_domain()),
    ] {
        let request = request_v2(&req, eip3009_signed(&buyer, &message, &domain));
        h.assert_refused(
            &request,
            Reason::InvalidExactEvmSignature,
            &[buyer.address()],
            what,
        )
        .await;
    }
}

#[tokio::test]
async fn s15_spoofed_or_missing_eip712_domain() {
    let (h, req, buyer) = setup().await;
    let with_extra = |extra: Option<Value>| PaymentRequirementsV2 {
        extra: extra.map(|e| to_raw(&e).unwrap()),
        ..req.clone()
    };
    // The buyer signs what the (spoofed) requirements say: the digest passes our check, the token
    // refuses it, and the diagnosis names the field.
    for (extra, reason) in [
        (
            json!({"name": "USDC", "version": USDC_VERSION}),
            Reason::InvalidExactEvmTokenNameMismatch,
        ),
        (
            json!({"name": USDC_NAME, "version": "1"}),
            Reason::InvalidExactEvmTokenVersionMismatch,
        ),
    ] {
        let spoofed = with_extra(Some(extra.clone()));
        let request = h.pay_v2(&buyer, &spoofed).await;
        h.assert_refused(&request, reason, &[buyer.address()], &extra.to_string())
            .await;
    }
    // The buyer signed the token's real domain, the requirements carry another one.
    let real = h.pay_v2(&buyer, &req).await;
    h.assert_valid(&real, "control").await;
    let spoofed = with_extra(Some(json!({"name": "USDC", "version": USDC_VERSION})));
    h.assert_refused(
        &request_v2(&spoofed, payload_of(&real)),
        Reason::InvalidExactEvmSignature,
        &[buyer.address()],
        "real signature, spoofed extra",
    )
    .await;
    // Missing name or version.
    for extra in [
        None,
        Some(json!({})),
        Some(json!({"version": USDC_VERSION})),
        Some(json!({"name": USDC_NAME})),
        Some(json!({"name": USDC_NAME, "version": null})),
    ] {
        let missing = with_extra(extra.clone());
        h.assert_refused(
            &request_v2(&missing, payload_of(&real)),
            Reason::InvalidExactEvmMissingEip712Domain,
            &[buyer.address()],
            &format!("extra {extra:?}"),
        )
        .await;
    }
    // An unreadable extra is the seller's error.
    h.assert_refused(
        &request_v2(
            &with_extra(Some(json!({"name": 5, "version": USDC_VERSION}))),
            payload_of(&real),
        ),
        Reason::InvalidPaymentRequirements,
        &[buyer.address()],
        "extra.name is a number",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2.C Time

#[tokio::test]
async fn s17_s18_outside_the_validity_window() {
    let (h, req, buyer, good) = setup_with_control().await;
    let t = now();
    for (what, valid_after, valid_before, reason) in [
        (
            "expired",
            t - 600,
            t - 1,
            Reason::InvalidExactEvmPayloadAuthorizationValidBefore,
        ),
        (
            "expires now",
            t - 600,
            t,
            Reason::InvalidExactEvmPayloadAuthorizationValidBefore,
        ),
        (
            "inside the 6 s margin",
            t - 600,
            t + 5,
            Reason::InvalidExactEvmPayloadAuthorizationValidBefore,
        ),
        (
            "zero",
            0,
            0,
            Reason::InvalidExactEvmPayloadAuthorizationValidBefore,
        ),
        (
            "valid in 30 s",
            t + 30,
            t + 120,
            Reason::InvalidExactEvmPayloadAuthorizationValidAfter,
        ),
        (
            "valid in a year",
            t + 365 * 86_400,
            t + 366 * 86_400,
            Reason::InvalidExactEvmPayloadAuthorizationValidAfter,
        ),
    ] {
        let message = TransferWithAuthorization {
            validAfter: U256::from(valid_after),
            validBefore: U256::from(valid_before),
            ..good.clone()
        };
        refused_v2_and_v1(
            &h,
            &req,
            &signed(&h, &req, &buyer, &message),
            reason,
            &[buyer.address()],
            what,
        )
        .await;
    }
}

#[tokio::test]
async fn s17_s18_settle_checks_the_window_again() {
    let (h, req, buyer) = setup().await;
    let t = now();
    let message = TransferWithAuthorization {
        validAfter: U256::from(t - 30),
        validBefore: U256::from(t + 60),
        ..h.eip3009_message(buyer.address(), &req)
    };
    h.assert_settle_rechecks_the_window(
        &signed(&h, &req, &buyer, &message),
        &[buyer.address()],
        &[
            (55, Reason::InvalidExactEvmPayloadAuthorizationValidBefore),
            (
                3_600,
                Reason::InvalidExactEvmPayloadAuthorizationValidBefore,
            ),
            (-60, Reason::InvalidExactEvmPayloadAuthorizationValidAfter),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2.D Replay, duplicates, concurrency

#[tokio::test]
async fn s21_replay_after_settlement() {
    let (h, req, buyer) = setup().await;
    let seller = h.bed.seller().address;
    let request = h.pay_v2(&buyer, &req).await;
    let (b0, s0, n0) = (
        h.usdc(buyer.address()).await,
        h.usdc(seller).await,
        h.signer_nonces().await,
    );
    let first = h.settle_json(&request).await;
    assert!(first.success, "{first:?}");
    let paid = h.snapshot(&[buyer.address()]).await;
    assert_eq!(paid.usdc[0].1, s0 + U256::from(UNITS));
    assert_eq!(h.usdc(buyer.address()).await, b0 - U256::from(UNITS));
    assert_eq!(paid.signer_nonces[0], n0[0] + 1);

    // Verify reads the nonce state on chain.
    let v = h.verify_json(&request).await;
    assert_eq!(
        v.invalid_reason,
        Some(Reason::InvalidExactEvmNonceAlreadyUsed),
        "{v:?}"
    );
    // Settle answers from the ledger: the recorded transaction, never a second success — in
    // either envelope.
    for (what, again) in [
        ("v2", request.clone()),
        ("v1", request_v1(&req, payload_of(&request))),
    ] {
        assert_duplicate(&h.settle_json(&again).await, &first.transaction, what);
    }
    // A facilitator without the ledger entry reads the chain instead.
    let fresh = h.fresh_facilitator(Policy::default(), x402_core::system_clock());
    let s = fresh.settle(&request).await.unwrap();
    assert_settle_refused(&s, Reason::InvalidExactEvmNonceAlreadyUsed, "fresh ledger");
    h.assert_untouched(&paid, "replays").await;
}

/// The same authorization written in every way a client could: all verify, so only the payment
/// identity (chain, token, from, nonce) can keep them from settling twice.
fn re_encodings(
    h: &ExactHarness,
    req: &PaymentRequirementsV2,
    message: &TransferWithAuthorization,
    signature: &Bytes,
) -> Vec<(&'static str, VerifyRequest)> {
    let canonical = eip3009_with_signature(message, signature.clone());
    let hex = |b: &[u8]| alloy::primitives::hex::encode(b);
    let mut v01 = signature.to_vec();
    v01[64] -= 27;
    let reversed = format!(
        r#"{{"authorization":{{"nonce":"0x{}","validBefore":"{}","validAfter":"{}","value":"{}","to":"{}","from":"{}"}},"signature":"0x{}"}}"#,
        hex(message.nonce.as_slice()),
        message.validBefore,
        message.validAfter,
        message.value,
        message.to.to_checksum(None),
        message.from.to_checksum(None),
        hex(signature),
    );
    let lower = format!(
        r#"{{"signature":"0x{}","authorization":{{"from":"{:#x}","to":"{:#x}","value":"{}","validAfter":"{}","validBefore":"{}","nonce":"0x{}"}}}}"#,
        hex(signature),
        message.from,
        message.to,
        message.value,
        message.validAfter,
        message.validBefore,
        hex(message.nonce.as_slice()),
    );
    let upper = format!(
        r#"{{"signature":"0x{}","authorization":{{"from":"0x{}","to":"0x{}","value":"{}","validAfter":"{}","validBefore":"{}","nonce":"0x{}"}}}}"#,
        hex(signature).to_uppercase(),
        hex(message.from.as_slice()).to_uppercase(),
        hex(message.to.as_slice()).to_uppercase(),
        message.value,
        message.validAfter,
        message.validBefore,
        hex(message.nonce.as_slice()).to_uppercase(),
    );
    let raw = |s: String| serde_json::value::RawValue::from_string(s).unwrap();
    let lower_req = PaymentRequirementsV2 {
        asset: format!("{:#x}", h.bed.usdc()),
        pay_to: format!("{:#x}", h.bed.seller().address),
        ..req.clone()
    };
    vec![
        ("canonical v2", request_v2(req, canonical.clone())),
        ("v1 envelope", request_v1(req, canonical.clone())),
        ("reversed key order", request_v2(req, raw(reversed))),
        ("lower-case addresses", request_v2(req, raw(lower))),
        ("upper-case hex", request_v2(req, raw(upper))),
        (
            "v as 0/1",
            request_v2(req, eip3009_with_signature(message, v01.into())),
        ),
        ("lower-case requirements", request_v2(&lower_req, canonical)),
    ]
}

#[tokio::test]
async fn s22_s24_concurrent_settles_of_re_encoded_authorization_settle_once() {
    let h = Arc::new(ExactHarness::start().await);
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(1).signer.clone();
    let message = h.eip3009_message(buyer.address(), &req);
    let signature = sign_eip712(&buyer, &message, &h.usdc_domain());
    let variants = re_encodings(&h, &req, &message, &signature);
    let winner = h
        .assert_variants_settle_once(buyer.address(), &variants, 3, Some(1))
        .await;

    // Sequential re-submissions in forms that do not verify on their own: each is still the
    // same payment, and is answered with the recorded transaction.
    let after = h.snapshot(&[buyer.address()]).await;
    let (r, s, v) = (&signature[..32], &signature[32..64], signature[64]);
    let compact = {
        let mut vs = s.to_vec();
        if v == 28 {
            vs[0] |= 0x80;
        }
        [r, &vs].concat()
    };
    let wrapped = contracts::erc6492_wrap(
        Address::repeat_byte(0x42),
        &Bytes::from(vec![1, 2, 3]),
        &signature,
    );
    for (what, sig) in [
        ("high-s", high_s_twin(&signature)),
        ("EIP-2098 compact", Bytes::from(compact)),
        ("ERC-6492 wrapped", wrapped),
    ] {
        let request = request_v2(&req, eip3009_with_signature(&message, sig));
        let v = h.verify_json(&request).await;
        assert!(!v.is_valid, "{what}: {v:?}");
        assert_duplicate(&h.settle_json(&request).await, &winner, what);
    }
    h.assert_untouched(&after, "re-submissions").await;
}

#[tokio::test]
async fn s27_n_payments_with_balance_for_one() {
    let h = Arc::new(ExactHarness::start().await);
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = PrivateKeySigner::random();
    h.bed.mint_usdc(buyer.address(), U256::from(UNITS)).await;
    let requests: Vec<VerifyRequest> = (0..6)
        .map(|_| {
            let message = h.eip3009_message(buyer.address(), &req);
            signed(&h, &req, &buyer, &message)
        })
        .collect();
    h.assert_only_one_affordable(
        buyer.address(),
        requests,
        &[Reason::InvalidExactEvmInsufficientBalance],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2.E EIP-3009 specifics

/// A dev account with ETH (to send its own transactions) holding exactly one price of USDC.
async fn spare_buyer(h: &ExactHarness, i: usize) -> PrivateKeySigner {
    let buyer = h.bed.spare_accounts()[i].signer.clone();
    h.bed.mint_usdc(buyer.address(), U256::from(UNITS)).await;
    buyer
}

/// The transaction by which `submitter` cancels `authorizer`'s `nonce` on FiatToken (anyone
/// may submit the signed cancellation).
fn cancel_tx(
    h: &ExactHarness,
    authorizer: &PrivateKeySigner,
    nonce: B256,
    submitter: Address,
) -> TransactionRequest {
    let message = CancelAuthorization {
        authorizer: authorizer.address(),
        nonce,
    };
    let (v, r, s) = split_signature(&sign_eip712(authorizer, &message, &h.usdc_domain()));
    let data = IFiatTokenCancel::cancelAuthorizationCall {
        authorizer: authorizer.address(),
        nonce,
        v,
        r,
        s,
    }
    .abi_encode();
    TransactionRequest::default()
        .from(submitter)
        .to(h.bed.usdc())
        .input(data.into())
}

/// `authorizer` cancels `nonce` on FiatToken, sent by `submitter`.
async fn cancel(h: &ExactHarness, authorizer: &PrivateKeySigner, nonce: B256, submitter: Address) {
    h.bed
        .send(
            cancel_tx(h, authorizer, nonce, submitter),
            "cancelAuthorization",
        )
        .await;
}

/// The transaction by which `from`, a third party, uses `message` itself (the `v, r, s`
/// overload).
fn front_run_tx(
    h: &ExactHarness,
    from: Address,
    message: &TransferWithAuthorization,
    signature: &Bytes,
) -> TransactionRequest {
    let (v, r, s) = split_signature(signature);
    let data = IEip3009Token::transferWithAuthorization_0Call {
        from: message.from,
        to: message.to,
        value: message.value,
        validAfter: message.validAfter,
        validBefore: message.validBefore,
        nonce: message.nonce,
        v,
        r,
        s,
    }
    .abi_encode();
    TransactionRequest::default()
        .from(from)
        .to(h.bed.usdc())
        .input(data.into())
}

#[tokio::test]
async fn s28_buyer_empties_its_balance_between_verify_and_settle() {
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = spare_buyer(&h, 0).await;
    let elsewhere = h.bed.spare_accounts()[1].address;
    let request = signed(&h, &req, &buyer, &h.eip3009_message(buyer.address(), &req));
    h.assert_valid(&request, "before the move").await;
    h.bed
        .transfer_usdc(buyer.address(), elsewhere, U256::from(UNITS))
        .await;
    h.assert_refused(
        &request,
        Reason::InvalidExactEvmInsufficientBalance,
        &[buyer.address(), elsewhere],
        "funds moved away",
    )
    .await;
}

#[tokio::test]
async fn s28_s30_cancelled_authorization() {
    let (h, req, buyer) = setup().await;
    let submitter = h.bed.spare_accounts()[0].address;
    // Cancelled before verify.
    let message = h.eip3009_message(buyer.address(), &req);
    cancel(&h, &buyer, message.nonce, submitter).await;
    h.assert_refused(
        &signed(&h, &req, &buyer, &message),
        Reason::InvalidExactEvmNonceAlreadyUsed,
        &[buyer.address()],
        "cancelled before verify",
    )
    .await;
    // Cancelled after a successful verify.
    let message = h.eip3009_message(buyer.address(), &req);
    let request = signed(&h, &req, &buyer, &message);
    h.assert_valid(&request, "before the cancellation").await;
    cancel(&h, &buyer, message.nonce, submitter).await;
    h.assert_refused(
        &request,
        Reason::InvalidExactEvmNonceAlreadyUsed,
        &[buyer.address()],
        "cancelled between verify and settle",
    )
    .await;
}

#[tokio::test]
async fn s29_invalid_signatures() {
    let (h, req, buyer) = setup().await;
    let message = h.eip3009_message(buyer.address(), &req);
    let good = sign_eip712(&buyer, &message, &h.usdc_domain());
    h.assert_valid(
        &request_v2(&req, eip3009_with_signature(&message, good.clone())),
        "control",
    )
    .await;
    let stranger = PrivateKeySigner::random();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut s = good.to_vec();
        f(&mut s);
        Bytes::from(s)
    };
    let n = SECP256K1_N.0;
    let receive = ReceiveWithAuthorization {
        from: message.from,
        to: message.to,
        value: message.value,
        validAfter: message.validAfter,
        validBefore: message.validBefore,
        nonce: message.nonce,
    };
    let other_field = TransferWithAuthorization {
        validBefore: message.validBefore + U256::from(1),
        ..message.clone()
    };
    let mut cases: Vec<(&str, Bytes, Reason)> = vec![
        (
            "another key",
            sign_eip712(&stranger, &message, &h.usdc_domain()),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "over another validBefore",
            sign_eip712(&buyer, &other_field, &h.usdc_domain()),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "ReceiveWithAuthorization typehash",
            sign_eip712(&buyer, &receive, &h.usdc_domain()),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "flipped bit in r",
            with(&|s| s[3] ^= 0x01),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "flipped bit in s",
            with(&|s| s[40] ^= 0x80),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "first 64 bytes",
            with(&|s| s.truncate(64)),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "all zero",
            Bytes::from(vec![0u8; 65]),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "r = 0",
            with(&|s| s[..32].fill(0)),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "s = 0",
            with(&|s| s[32..64].fill(0)),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "s = n",
            with(&|s| s[32..64].copy_from_slice(&n)),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "s = 2^256 - 1",
            with(&|s| s[32..64].fill(0xff)),
            Reason::InvalidExactEvmSignature,
        ),
        (
            "one byte",
            Bytes::from(vec![0u8]),
            Reason::InvalidExactEvmSignature,
        ),
        // A longer blob from an address without code is a smart-wallet signature for a wallet
        // that does not exist.
        (
            "66 bytes",
            with(&|s| s.push(0)),
            Reason::InvalidExactEvmPayloadUndeployedSmartWallet,
        ),
    ];
    for v in [2u8, 26, 29, 35, 36, 37, 38, 255] {
        cases.push((
            Box::leak(format!("v = {v}").into_boxed_str()),
            with(&|s| s[64] = v),
            Reason::InvalidExactEvmSignature,
        ));
    }
    for (what, sig, reason) in cases {
        let request = request_v2(&req, eip3009_with_signature(&message, sig));
        h.assert_refused(&request, reason, &[buyer.address()], what)
            .await;
    }
    // The control still verifies: the nonce was never spent by the attempts above.
    h.assert_valid(
        &request_v2(&req, eip3009_with_signature(&message, good)),
        "control after",
    )
    .await;
}

#[tokio::test]
async fn s29_high_s_signature_is_refused_before_broadcast() {
    // FiatToken refuses signatures with s in the upper half of the curve order; the local
    // recovery accepts them, so the simulation is what refuses — nothing is sent.
    let (h, req, buyer) = setup().await;
    let message = h.eip3009_message(buyer.address(), &req);
    let good = sign_eip712(&buyer, &message, &h.usdc_domain());
    h.assert_refused(
        &request_v2(&req, eip3009_with_signature(&message, high_s_twin(&good))),
        Reason::InvalidExactEvmTransactionSimulationFailed,
        &[buyer.address()],
        "high-s",
    )
    .await;
}

#[tokio::test]
async fn s30_nonce_used_on_chain_by_someone_else() {
    let (h, req, buyer) = setup().await;
    let third = h.bed.spare_accounts()[0].address;
    let (message, signature, request) = authorization(&h, &req, &buyer);
    h.assert_valid(&request, "before").await;
    let s0 = h.usdc(h.bed.seller().address).await;
    let tx = front_run_tx(&h, third, &message, &signature);
    h.bed.send(tx, "third party uses the authorization").await;
    assert_eq!(h.usdc(h.bed.seller().address).await, s0 + U256::from(UNITS));
    h.assert_refused(
        &request,
        Reason::InvalidExactEvmNonceAlreadyUsed,
        &[buyer.address()],
        "used by a third party",
    )
    .await;
}

#[tokio::test]
async fn s31_front_run_between_verify_and_broadcast() {
    let (h, req, buyer) = setup().await;
    let third = h.bed.spare_accounts()[0].address;
    let (message, signature, request) = authorization(&h, &req, &buyer);
    let front_run = front_run_tx(&h, third, &message, &signature);
    let s = h
        .assert_front_run_wins(front_run, &request, buyer.address())
        .await;
    // The hash is the front-runner's transaction, read from its AuthorizationUsed log.
    let foreign = h
        .bed
        .provider()
        .get_transaction_by_hash(s.transaction.parse().expect("a tx hash"))
        .await
        .unwrap()
        .expect("the named transaction exists");
    assert_eq!(foreign.inner.signer(), third, "{s:?}");
}

#[tokio::test]
async fn s31_cancelled_between_verify_and_broadcast() {
    let (h, req, buyer) = setup().await;
    let submitter = h.bed.spare_accounts()[0].address;
    let message = h.eip3009_message(buyer.address(), &req);
    let cancel = cancel_tx(&h, &buyer, message.nonce, submitter);
    let request = signed(&h, &req, &buyer, &message);
    let (_, before, s) = h
        .settle_racing(cancel, "cancel", &request, &[buyer.address()])
        .await;
    // A cancellation paid nobody: no transaction to name.
    assert_settle_refused(&s, Reason::AuthorizationAlreadyUsed, "cancelled");
    h.assert_untouched(&before, "cancelled").await;
}

/// Sends (without waiting for it to be mined) a transaction from `from` that uses `message` with
/// a tip far above what the facilitator may pay (so a block orders it first); returns its hash.
async fn send_high_tip_copy(
    h: &ExactHarness,
    from: Address,
    message: &TransferWithAuthorization,
    signature: &Bytes,
) -> TxHash {
    let tx = front_run_tx(h, from, message, signature)
        .gas_limit(200_000)
        .max_fee_per_gas(500_000_000_000)
        .max_priority_fee_per_gas(100_000_000_000);
    *h.bed
        .provider()
        .send_transaction(tx)
        .await
        .unwrap()
        .tx_hash()
}

async fn set_automine(h: &ExactHarness, on: bool) {
    let _: Value = h
        .bed
        .provider()
        .raw_request("evm_setAutomine".into(), (on,))
        .await
        .unwrap();
}

async fn mine(h: &ExactHarness) {
    let _: Value = h
        .bed
        .provider()
        .raw_request("evm_mine".into(), ())
        .await
        .unwrap();
}

#[tokio::test]
async fn s31_mempool_copies_before_and_after_our_broadcast() {
    let (h, req, buyer) = setup().await;
    let h = Arc::new(h);
    let third = h.bed.spare_accounts()[0].address;
    let provider = h.bed.provider();
    let seller = h.bed.seller().address;
    set_automine(&h, false).await;

    // A copy already waiting in the mempool: verification reads pending state, sees the nonce
    // taken and sends nothing.
    let (message, signature, request) = authorization(&h, &req, &buyer);
    let before = h.snapshot(&[buyer.address()]).await;
    let first_copy = send_high_tip_copy(&h, third, &message, &signature).await;
    let s = h.facilitator.settle(&request).await.unwrap();
    assert_settle_refused(
        &s,
        Reason::InvalidExactEvmNonceAlreadyUsed,
        "a copy is pending",
    );
    assert_eq!(h.pool.stats().sent, 0);
    mine(&h).await;
    let landed = provider
        .get_transaction_receipt(first_copy)
        .await
        .unwrap()
        .expect("the copy was mined");
    assert!(landed.status());
    let after_first = h.snapshot(&[buyer.address()]).await;
    assert_eq!(after_first.signer_nonces, before.signer_nonces);
    assert_eq!(after_first.usdc[0].1, before.usdc[0].1 + U256::from(UNITS));

    // A copy of our broadcast with a higher tip lands first in the same block: our transaction
    // reverts, the settle reports failure with our own hash, the payment moved once.
    let (message, signature, request) = authorization(&h, &req, &buyer);
    let settling = {
        let (h, request) = (h.clone(), request.clone());
        tokio::spawn(async move { h.facilitator.settle(&request).await.unwrap() })
    };
    let started = std::time::Instant::now();
    while h.pool.stats().sent == 0 {
        if settling.is_finished() {
            panic!("settle returned before broadcasting: {:?}", settling.await);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the facilitator never broadcast"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let copy_hash = send_high_tip_copy(&h, third, &message, &signature).await;
    mine(&h).await;
    let s = settling.await.unwrap();
    set_automine(&h, true).await;
    assert!(!s.success, "{s:?}");
    assert_eq!(
        s.error_reason,
        Some(Reason::AuthorizationAlreadyUsed),
        "{s:?}"
    );
    assert_ne!(s.transaction, format!("{copy_hash:#x}"));
    let ours = provider
        .get_transaction_receipt(s.transaction.parse().unwrap())
        .await
        .unwrap()
        .expect("our receipt");
    assert!(!ours.status(), "our transaction reverted");
    assert!(ours.gas_used <= Policy::default().gas_limit_eip3009);
    let copy = provider
        .get_transaction_receipt(copy_hash)
        .await
        .unwrap()
        .expect("the copy was mined");
    assert!(copy.status());
    assert_eq!(copy.block_number, ours.block_number, "same block");
    let after = h.snapshot(&[buyer.address()]).await;
    assert_eq!(after.signer_nonces[0], after_first.signer_nonces[0] + 1);
    assert_eq!(
        h.usdc(seller).await,
        after_first.usdc[0].1 + U256::from(UNITS),
        "paid once"
    );
    // The recorded failure answers any retry.
    assert_duplicate(&h.settle_json(&request).await, &s.transaction, "retry");
}

#[tokio::test]
async fn s32_asset_without_code_is_refused() {
    let h = ExactHarness::start().await;
    let buyer = h.bed.buyer(0).signer.clone();
    let f = h.facilitator_listing(CODELESS);
    let request = signed_for_asset(&h, &buyer, CODELESS).await;
    let before = h.snapshot(&[buyer.address()]).await;
    let v = f.verify(&request).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(Reason::InvalidExactEvmEip3009NotSupported),
        "{v:?}"
    );
    for attempt in 0..2 {
        let s = f.settle(&request).await.unwrap();
        assert_settle_refused(
            &s,
            Reason::InvalidExactEvmEip3009NotSupported,
            &format!("#{attempt}"),
        );
    }
    h.assert_untouched(&before, "codeless asset").await;
}

#[tokio::test]
async fn s32_token_that_succeeds_without_transferring() {
    // A listed "token" whose every call succeeds and emits nothing (runtime code STOP): the
    // simulation cannot tell, the receipt check does.
    let h = ExactHarness::start().await;
    let hollow = Address::repeat_byte(0x5a);
    let _: Value = h
        .bed
        .provider()
        .raw_request("anvil_setCode".into(), (hollow, "0x00"))
        .await
        .unwrap();
    let f = h.facilitator_listing(hollow);
    let buyer = h.bed.buyer(0).signer.clone();
    let request = signed_for_asset(&h, &buyer, hollow).await;
    let before = h.snapshot(&[buyer.address()]).await;
    let s = f.settle(&request).await.unwrap();
    assert!(!s.success, "{s:?}");
    assert_eq!(s.error_reason, Some(Reason::TransferNotObserved), "{s:?}");
    assert_eq!(s.transaction.len(), 66, "the transaction sent is named");
    let after = h.snapshot(&[buyer.address()]).await;
    assert_eq!(after.usdc, before.usdc, "no USDC moved");
    assert_eq!(after.signer_nonces[0], before.signer_nonces[0] + 1);
    // The same payload cannot be "settled" again and again (issue #773).
    let again = f.settle(&request).await.unwrap();
    assert_duplicate(&again, &s.transaction, "second attempt");
    h.assert_untouched(&after, "second attempt").await;
}

#[tokio::test]
async fn s34_smart_wallet_turns_invalid_after_verify() {
    let h = ExactHarness::start().await;
    let (wallet, owner) = h.funded_wallet().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let request = signed(&h, &req, &owner, &h.eip3009_message(wallet, &req));
    h.assert_valid(&request, "wallet signature").await;
    let flip = set_signatures_disabled(&h.bed, wallet, owner.address(), true);
    h.bed.send(flip, "flip").await;
    h.assert_refused(
        &request,
        Reason::InvalidExactEvmSignature,
        &[wallet],
        "wallet flipped before settle",
    )
    .await;
}

#[tokio::test]
async fn s34_smart_wallet_flips_after_simulation_costs_one_capped_revert() {
    let h = ExactHarness::start().await;
    let (wallet, owner) = h.funded_wallet().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let request = signed(&h, &req, &owner, &h.eip3009_message(wallet, &req));
    let flip = set_signatures_disabled(&h.bed, wallet, owner.address(), true);
    let (f, before, s) = h.settle_racing(flip, "flip", &request, &[wallet]).await;
    assert!(!s.success, "{s:?}");
    assert_eq!(
        s.error_reason,
        Some(Reason::InvalidExactEvmTransactionFailed),
        "{s:?}"
    );
    let receipt = h
        .bed
        .provider()
        .get_transaction_receipt(s.transaction.parse().unwrap())
        .await
        .unwrap()
        .expect("our receipt");
    assert!(!receipt.status());
    assert!(receipt.gas_used <= Policy::default().gas_limit_eip3009_contract);
    let after = h.snapshot(&[wallet]).await;
    assert_eq!(after.usdc, before.usdc, "nothing moved");
    assert_eq!(after.signer_nonces[0], before.signer_nonces[0] + 1);
    // The failed attempt is recorded: no automatic second attempt at the facilitator's cost.
    let again = f.settle(&request).await.unwrap();
    assert_duplicate(&again, &s.transaction, "second attempt");
    h.assert_untouched(&after, "second attempt").await;
}

#[tokio::test]
async fn s35_garbage_and_forged_erc6492_wrappers() {
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.buyer(0).signer.clone();
    let message = h.eip3009_message(buyer.address(), &req);
    let good = sign_eip712(&buyer, &message, &h.usdc_domain());
    let magic = ERC6492_MAGIC;
    for (what, sig) in [
        (
            "junk before the magic",
            [&[7u8; 10][..], magic.as_slice()].concat(),
        ),
        ("magic only", magic.to_vec()),
        (
            "EOA signature then magic",
            [&good[..], magic.as_slice()].concat(),
        ),
    ] {
        h.assert_refused(
            &request_v2(&req, eip3009_with_signature(&message, sig.into())),
            Reason::InvalidPayload,
            &[buyer.address()],
            what,
        )
        .await;
    }
    // A deployed wallet with a garbage wrapper.
    let (wallet, _owner) = h.funded_wallet().await;
    let wallet_message = h.eip3009_message(wallet, &req);
    let junk = [&[9u8; 40][..], magic.as_slice()].concat();
    h.assert_refused(
        &request_v2(&req, eip3009_with_signature(&wallet_message, junk.into())),
        Reason::InvalidPayload,
        &[wallet],
        "deployed wallet, junk wrapper",
    )
    .await;

    // A well-formed wrapper through an allow-listed factory that deploys the victim's wallet,
    // around a signature by somebody else: the simulation refuses, nothing is deployed or sent.
    let factory = contracts::deploy_wallet_factory(&h.bed).await;
    let f = h.fresh_facilitator(
        Policy {
            erc6492_factories: vec![factory],
            ..Policy::default()
        },
        x402_core::system_clock(),
    );
    let victim = PrivateKeySigner::random();
    let attacker = PrivateKeySigner::random();
    let salt = random_b256();
    let counterfactual = contracts::wallet_factory(&h.bed, factory)
        .predict(victim.address(), salt)
        .call()
        .await
        .unwrap();
    h.bed.mint_usdc(counterfactual, U256::from(UNITS)).await;
    let message = h.eip3009_message(counterfactual, &req);
    for (what, deploy_owner) in [
        ("victim's wallet, attacker's signature", victim.address()),
        ("attacker's wallet deployed instead", attacker.address()),
    ] {
        let deploy = IWalletFactory::deployCall {
            owner: deploy_owner,
            salt,
        }
        .abi_encode();
        let sig = contracts::erc6492_wrap(
            factory,
            &deploy.into(),
            &sign_eip712(&attacker, &message, &h.usdc_domain()),
        );
        let request = request_v2(&req, eip3009_with_signature(&message, sig));
        let before = h.snapshot(&[counterfactual]).await;
        let v = f.verify(&request).await.unwrap();
        assert_eq!(
            v.invalid_reason,
            Some(Reason::InvalidExactEvmTransactionSimulationFailed),
            "{what}: {v:?}"
        );
        let s = f.settle(&request).await.unwrap();
        assert!(!s.success);
        assert_eq!(
            s.error_reason,
            Some(Reason::InvalidExactEvmTransactionSimulationFailed),
            "{what}: {s:?}"
        );
        h.assert_untouched(&before, what).await;
        assert!(
            h.bed
                .provider()
                .get_code_at(counterfactual)
                .await
                .unwrap()
                .is_empty(),
            "{what}: nothing deployed"
        );
    }
}

#[tokio::test]
async fn s36_fee_and_gas_caps_refuse_before_broadcast() {
    for (what, policy, tx, reason) in [
        (
            "max fee cap of 1 wei",
            Policy::default(),
            TxConfig {
                max_fee_per_gas_cap: 1,
                ..harness_tx_config()
            },
            Reason::GasPriceTooHigh,
        ),
        (
            "gas limit above the pool's cap",
            Policy {
                gas_limit_eip3009: 2_000_000,
                ..Policy::default()
            },
            harness_tx_config(),
            Reason::GasLimitExceeded,
        ),
    ] {
        let h = ExactHarness::start_with_tx(1, policy, tx).await;
        let req = h.requirements(PRICE, TransferMethod::Eip3009).await;
        let buyer = h.bed.buyer(0).signer.clone();
        let request = h.pay_v2(&buyer, &req).await;
        h.assert_settle_refused_twice(&request, reason, &[buyer.address()], what)
            .await;
    }
}
