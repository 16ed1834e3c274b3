//! Negative cases of `exact` on EVM through Permit2 and the exact proxy (threat-model S4–S40).
//! Every refusal is checked for its reason string, for NO-FUNDS and NO-BROADCAST unless the case
//! itself must broadcast; client input never makes the dispatcher fail or panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use alloy::primitives::{Address, Bytes, U256};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use scheme_exact_evm::Policy;
use serde_json::{Value, json};
use x402_core::wire::{PaymentPayload, PaymentRequirementsV2, VerifyRequest};
use x402_core::{Facilitator as _, Reason};
use x402_evm::abi::permit2_exact::{PermitWitnessTransferFrom, TokenPermissions, Witness};
use x402_evm::assets::TransferMethod;
use x402_evm::signers::TxConfig;
use x402_tests::evm::exact::{
    CODELESS, ExactHarness, PRICE, UNITS, assert_duplicate, assert_settle_refused, body_with,
    harness_tx_config, non_canonical_10000, now, payload_of, permit2_signed,
    permit2_with_signature, request_v2,
};
use x402_tests::evm::x402::{
    EXACT_PERMIT2_PROXY, IExactPermit2Proxy, ProxyArgs as _, UPTO_PERMIT2_PROXY, high_s_twin,
    set_signatures_disabled, sign_eip712, upto_payment, upto_proxy, wallet_approves_permit2,
};
use x402_tests::evm::{PERMIT2_ADDRESS, permit2_domain, usdc_domain};

alloy::sol! {
    /// Permit2's owner-side nonce invalidation.
    interface IPermit2Invalidate {
        function invalidateUnorderedNonces(uint256 wordPos, uint256 mask) external;
    }
}

/// A bed, Permit2 requirements, and buyer #0 with an unlimited allowance to Permit2 (so only
/// the mutation under test can be wrong).
async fn setup() -> (ExactHarness, PaymentRequirementsV2, PrivateKeySigner) {
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Permit2).await;
    let buyer = h.bed.buyer(0).signer.clone();
    h.bed
        .approve_usdc(buyer.address(), PERMIT2_ADDRESS, U256::MAX)
        .await;
    (h, req, buyer)
}

/// [`setup`] and the buyer's valid payment (the control a negative variant is derived from),
/// checked to verify.
async fn setup_with_control() -> (
    ExactHarness,
    PaymentRequirementsV2,
    PrivateKeySigner,
    PermitWitnessTransferFrom,
) {
    let (h, req, buyer) = setup().await;
    let good = h.permit2_message(&req);
    h.assert_valid(&signed(&h, &req, &buyer, &good), "control")
        .await;
    (h, req, buyer, good)
}

/// A v2 request with `message` signed by `key` (also the owner) under Permit2's domain.
fn signed(
    h: &ExactHarness,
    req: &PaymentRequirementsV2,
    key: &PrivateKeySigner,
    message: &PermitWitnessTransferFrom,
) -> VerifyRequest {
    request_v2(
        req,
        permit2_signed(key, key.address(), message, &h.permit2_domain()),
    )
}

// ---------------------------------------------------------------------------------------------
// 2.A Input handling

#[tokio::test]
async fn s4_s5_non_canonical_permit2_fields_are_invalid_payload() {
    let (h, req, buyer) = setup().await;
    let message = h.permit2_message(&req);
    let request = signed(&h, &req, &buyer, &message);
    h.assert_valid(&request, "control").await;
    let deadline = message.deadline.to_string();
    let from = buyer.address().to_checksum(None);
    let over_max = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for v in non_canonical_10000() {
        cases.push(("permitted/amount", v));
    }
    for v in [
        json!("0x01"),
        json!("+1"),
        json!("-1"),
        json!("01"),
        json!(over_max),
        json!(1),
        json!(""),
    ] {
        cases.push(("nonce", v));
    }
    for v in [
        json!(format!("+{deadline}")),
        json!(format!("0x{:x}", message.deadline)),
        json!(message.deadline.to::<u64>()),
        json!(format!("{deadline} ")),
    ] {
        cases.push(("deadline", v));
    }
    for v in [json!("-1"), json!(" 0"), json!("0x0")] {
        cases.push(("witness/validAfter", v));
    }
    cases.push(("from", json!(from[2..].to_owned())));
    cases.push(("from", json!(format!("0X{}", &from[2..]))));
    cases.push((
        "spender",
        json!(format!("{EXACT_PERMIT2_PROXY:#x}")[..41].to_owned()),
    ));
    cases.push((
        "witness/to",
        json!(format!("{:#x}", h.bed.seller().address)[2..].to_owned()),
    ));
    cases.push(("permitted/token", json!(null)));
    cases.push(("witness", json!(null)));
    let before = h.snapshot(&[buyer.address()]).await;
    for (pointer, value) in &cases {
        let body = body_with(
            &request,
            &format!("/paymentPayload/payload/permit2Authorization/{pointer}"),
            value,
        );
        h.assert_payload_refused(&body, &format!("permit2Authorization.{pointer} = {value}"))
            .await;
    }
    h.assert_untouched(&before, "S4/S5 Permit2").await;
    // The largest uint256 nonce is canonical and valid (its bitmap word is read, not overflowed).
    let top = PermitWitnessTransferFrom {
        nonce: U256::MAX,
        ..h.permit2_message(&req)
    };
    h.assert_valid(&signed(&h, &req, &buyer, &top), "nonce 2^256-1")
        .await;
}

// ---------------------------------------------------------------------------------------------
// 2.B Binding what was signed to what is required

#[tokio::test]
async fn s8_witness_recipient_other_than_pay_to() {
    let (h, req, buyer, good) = setup_with_control().await;
    for (what, to) in [
        ("buyer pays itself", buyer.address()),
        ("facilitator signer", h.bed.facilitator().address),
        ("the proxy", EXACT_PERMIT2_PROXY),
    ] {
        let message = PermitWitnessTransferFrom {
            witness: Witness {
                to,
                validAfter: good.witness.validAfter,
            },
            ..good.clone()
        };
        h.assert_refused(
            &signed(&h, &req, &buyer, &message),
            Reason::InvalidPermit2RecipientMismatch,
            &[buyer.address(), to],
            what,
        )
        .await;
    }
}

#[tokio::test]
async fn s9_permitted_amount_must_equal_the_price() {
    let (h, req, buyer, good) = setup_with_control().await;
    for amount in [UNITS - 1, UNITS + 1, 0, UNITS * 100] {
        let message = PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token: good.permitted.token,
                amount: U256::from(amount),
            },
            ..good.clone()
        };
        h.assert_refused(
            &signed(&h, &req, &buyer, &message),
            Reason::Permit2AmountMismatch,
            &[buyer.address()],
            &format!("amount {amount}"),
        )
        .await;
    }
}

#[tokio::test]
async fn s10_token_mismatch_and_unlisted_asset() {
    let (h, req, buyer, good) = setup_with_control().await;
    for token in [CODELESS, h.bed.signature_checker(), PERMIT2_ADDRESS] {
        let message = PermitWitnessTransferFrom {
            permitted: TokenPermissions {
                token,
                amount: good.permitted.amount,
            },
            ..good.clone()
        };
        h.assert_refused(
            &signed(&h, &req, &buyer, &message),
            Reason::Permit2TokenMismatch,
            &[buyer.address()],
            &format!("permitted.token {token}"),
        )
        .await;
    }
    // Requirements naming a token the operator did not list, signed consistently.
    for asset in [CODELESS, h.bed.signature_checker()] {
        let other = PaymentRequirementsV2 {
            asset: asset.to_checksum(None),
            ..req.clone()
        };
        h.assert_refused(
            &signed(&h, &other, &buyer, &h.permit2_message(&other)),
            Reason::UnsupportedAsset,
            &[buyer.address()],
            &format!("unlisted asset {asset}"),
        )
        .await;
    }
}

#[tokio::test]
async fn s11_network_mismatch() {
    let (h, req, buyer) = setup().await;
    let good = signed(&h, &req, &buyer, &h.permit2_message(&req));
    h.assert_valid(&good, "control").await;
    for network in ["eip155:8453", "eip155:1", "base-sepolia"] {
        let mut request = good.clone();
        let PaymentPayload::V2(p) = &mut request.payment_payload else {
            panic!("v2")
        };
        p.accepted.network = network.into();
        h.assert_refused(
            &request,
            Reason::InvalidExactEvmNetworkMismatch,
            &[buyer.address()],
            &format!("accepted on {network}"),
        )
        .await;
    }
    let mut unserved = req.clone();
    unserved.network = "eip155:8453".into();
    h.assert_refused(
        &request_v2(&unserved, payload_of(&good)),
        Reason::InvalidNetwork,
        &[buyer.address()],
        "requirements on an unserved network",
    )
    .await;
}

#[tokio::test]
async fn s12_permit2_signature_for_another_chain_contract_or_key() {
    let (h, req, buyer, message) = setup_with_control().await;
    let stranger = PrivateKeySigner::random();
    let foreign_permit2 = alloy::sol_types::Eip712Domain::new(
        Some("Permit2".into()),
        None,
        Some(U256::from(h.bed.chain_id())),
        Some(Address::repeat_byte(0x22)),
        None,
    );
    for (what, key, domain) in [
        ("Base mainnet", &buyer, permit2_domain(8453)),
        ("Ethereum", &buyer, permit2_domain(1)),
        ("another Permit2 deployment", &buyer, foreign_permit2),
        (
            "USDC's EIP-3009 domain",
            &buyer,
            usdc_domain(h.bed.chain_id(), h.bed.usdc()),
        ),
        ("another key", &stranger, h.permit2_domain()),
    ] {
        let request = request_v2(
            &req,
            permit2_signed(key, buyer.address(), &message, &domain),
        );
        h.assert_refused(
            &request,
            Reason::InvalidPermit2Signature,
            &[buyer.address()],
            what,
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// 2.C Time

#[tokio::test]
async fn s17_s18_outside_the_permit2_window() {
    let (h, req, buyer, good) = setup_with_control().await;
    let t = now();
    for (what, valid_after, deadline, reason) in [
        ("expired", t - 600, t - 1, Reason::Permit2DeadlineExpired),
        ("expires now", t - 600, t, Reason::Permit2DeadlineExpired),
        (
            "inside the 6 s margin",
            t - 600,
            t + 5,
            Reason::Permit2DeadlineExpired,
        ),
        ("valid in 30 s", t + 30, t + 120, Reason::Permit2NotYetValid),
        (
            "valid in a year",
            t + 365 * 86_400,
            t + 366 * 86_400,
            Reason::Permit2NotYetValid,
        ),
    ] {
        let message = PermitWitnessTransferFrom {
            deadline: U256::from(deadline),
            witness: Witness {
                to: good.witness.to,
                validAfter: U256::from(valid_after),
            },
            ..good.clone()
        };
        h.assert_refused(
            &signed(&h, &req, &buyer, &message),
            reason,
            &[buyer.address()],
            what,
        )
        .await;
    }
}

#[tokio::test]
async fn s17_s18_settle_checks_the_permit2_window_again() {
    let (h, req, buyer) = setup().await;
    let t = now();
    let message = PermitWitnessTransferFrom {
        deadline: U256::from(t + 60),
        witness: Witness {
            to: h.bed.seller().address,
            validAfter: U256::from(t - 30),
        },
        ..h.permit2_message(&req)
    };
    h.assert_settle_rechecks_the_window(
        &signed(&h, &req, &buyer, &message),
        &[buyer.address()],
        &[
            (55, Reason::Permit2DeadlineExpired),
            (-60, Reason::Permit2NotYetValid),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2.D Replay, duplicates, concurrency

#[tokio::test]
async fn s21_s40_replay_and_nonce_reuse() {
    let (h, req, buyer) = setup().await;
    let seller = h.bed.seller().address;
    let message = h.permit2_message(&req);
    let request = signed(&h, &req, &buyer, &message);
    let s0 = h.usdc(seller).await;
    let first = h.settle_json(&request).await;
    assert!(first.success, "{first:?}");
    assert_eq!(h.usdc(seller).await, s0 + U256::from(UNITS));
    let paid = h.snapshot(&[buyer.address()]).await;

    let v = h.verify_json(&request).await;
    assert_eq!(v.invalid_reason, Some(Reason::Permit2InvalidNonce), "{v:?}");
    assert_duplicate(&h.settle_json(&request).await, &first.transaction, "replay");
    // A new authorization (another deadline) reusing the spent nonce: the same payment identity.
    let reuse = PermitWitnessTransferFrom {
        deadline: message.deadline + U256::from(30),
        ..message.clone()
    };
    let reuse = signed(&h, &req, &buyer, &reuse);
    let v = h.verify_json(&reuse).await;
    assert_eq!(v.invalid_reason, Some(Reason::Permit2InvalidNonce), "{v:?}");
    assert_duplicate(&h.settle_json(&reuse).await, &first.transaction, "reuse");
    // Without the ledger entry the chain's bitmap answers.
    let fresh = h.fresh_facilitator(Policy::default(), x402_core::system_clock());
    for (what, r) in [("replay", &request), ("reuse", &reuse)] {
        let s = fresh.settle(r).await.unwrap();
        assert_settle_refused(&s, Reason::Permit2InvalidNonce, what);
    }
    h.assert_untouched(&paid, "replays").await;
}

#[tokio::test]
async fn s40_nonce_spent_by_an_upto_payment() {
    // Permit2 nonces are one bitmap per owner: an upto payment that used nonce N makes an exact
    // payment with N unusable.
    let (h, req, buyer) = setup().await;
    let upto_facilitator = h.bed.spare_accounts()[0].address;
    let message = h.permit2_message(&req);
    let t = now();
    let upto_message = upto_payment(
        h.bed.usdc(),
        U256::from(UNITS),
        h.bed.seller().address,
        upto_facilitator,
        message.nonce,
        t + 300,
        t - 600,
    );
    let upto_sig = sign_eip712(&buyer, &upto_message, &h.permit2_domain());
    let request = signed(&h, &req, &buyer, &message);
    h.assert_valid(&request, "before the upto payment").await;
    let tx = upto_proxy(&h.bed)
        .settle(
            upto_message.transfer_permit(),
            U256::from(UNITS / 2),
            buyer.address(),
            upto_message.proxy_witness(),
            upto_sig,
        )
        .into_transaction_request()
        .from(upto_facilitator);
    h.bed.send(tx, "upto settle with the same nonce").await;
    h.assert_refused(
        &request,
        Reason::Permit2InvalidNonce,
        &[buyer.address()],
        "nonce spent by upto",
    )
    .await;
}

async fn invalidate(h: &ExactHarness, owner: Address, nonce: U256) {
    let data = IPermit2Invalidate::invalidateUnorderedNoncesCall {
        wordPos: nonce >> 8,
        mask: U256::from(1) << (nonce & U256::from(0xff)).to::<usize>(),
    }
    .abi_encode();
    let tx = TransactionRequest::default()
        .from(owner)
        .to(PERMIT2_ADDRESS)
        .input(data.into());
    h.bed.send(tx, "invalidateUnorderedNonces").await;
}

#[tokio::test]
async fn s28_s40_nonce_invalidated_by_the_owner() {
    let (h, req, buyer) = setup().await;
    // Before verify.
    let message = h.permit2_message(&req);
    invalidate(&h, buyer.address(), message.nonce).await;
    h.assert_refused(
        &signed(&h, &req, &buyer, &message),
        Reason::Permit2InvalidNonce,
        &[buyer.address()],
        "invalidated before verify",
    )
    .await;
    // Between verify and settle.
    let message = h.permit2_message(&req);
    let request = signed(&h, &req, &buyer, &message);
    h.assert_valid(&request, "before invalidation").await;
    invalidate(&h, buyer.address(), message.nonce).await;
    h.assert_refused(
        &request,
        Reason::Permit2InvalidNonce,
        &[buyer.address()],
        "invalidated between verify and settle",
    )
    .await;
}

#[tokio::test]
async fn s22_s24_concurrent_settles_of_re_encoded_permit2_settle_once() {
    let (h, req, buyer) = setup().await;
    let h = Arc::new(h);
    let message = h.permit2_message(&req);
    let signature = sign_eip712(&buyer, &message, &h.permit2_domain());
    let canonical = permit2_with_signature(buyer.address(), &message, signature.clone());
    let doc: Value = serde_json::from_str(canonical.get()).unwrap();
    let auth = &doc["permit2Authorization"];
    let reversed = format!(
        r#"{{"permit2Authorization":{{"witness":{{"validAfter":{},"to":"{:#x}"}},"spender":{},"permitted":{{"amount":{},"token":{}}},"nonce":{},"from":"{:#x}","deadline":{}}},"signature":{}}}"#,
        auth["witness"]["validAfter"],
        message.witness.to,
        auth["spender"],
        auth["permitted"]["amount"],
        auth["permitted"]["token"],
        auth["nonce"],
        buyer.address(),
        auth["deadline"],
        doc["signature"],
    );
    let variants: Vec<(&str, VerifyRequest)> = vec![
        ("canonical", request_v2(&req, canonical.clone())),
        (
            "reversed keys, lower-case addresses",
            request_v2(
                &req,
                serde_json::value::RawValue::from_string(reversed).unwrap(),
            ),
        ),
        // Permit2 recovers with plain ecrecover, which takes the high-s twin of a signature too.
        (
            "high-s twin",
            request_v2(
                &req,
                permit2_with_signature(buyer.address(), &message, high_s_twin(&signature)),
            ),
        ),
        (
            "lower-case requirements",
            request_v2(
                &PaymentRequirementsV2 {
                    asset: format!("{:#x}", h.bed.usdc()),
                    pay_to: format!("{:#x}", h.bed.seller().address),
                    ..req.clone()
                },
                canonical,
            ),
        ),
    ];
    let winner = h
        .assert_variants_settle_once(buyer.address(), &variants, 4, None)
        .await;
    // Once settled, every spelling is answered with the recorded transaction.
    let after = h.snapshot(&[buyer.address()]).await;
    for (what, r) in &variants {
        assert_duplicate(&h.settle_json(r).await, &winner, what);
    }
    h.assert_untouched(&after, "re-submissions").await;
}

#[tokio::test]
async fn s27_n_payments_across_both_methods_with_balance_for_one() {
    let h = Arc::new(ExactHarness::start().await);
    let permit2_req = h.requirements(PRICE, TransferMethod::Permit2).await;
    let eip3009_req = h.requirements(PRICE, TransferMethod::Eip3009).await;
    let buyer = h.bed.spare_accounts()[0].signer.clone();
    h.bed.mint_usdc(buyer.address(), U256::from(UNITS)).await;
    h.bed
        .approve_usdc(buyer.address(), PERMIT2_ADDRESS, U256::MAX)
        .await;
    let mut requests = Vec::new();
    for _ in 0..3 {
        requests.push(signed(
            &h,
            &permit2_req,
            &buyer,
            &h.permit2_message(&permit2_req),
        ));
        requests.push(h.pay_v2(&buyer, &eip3009_req).await);
    }
    h.assert_only_one_affordable(
        buyer.address(),
        requests,
        &[
            Reason::Permit2InsufficientBalance,
            Reason::InvalidExactEvmInsufficientBalance,
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2.E/F State changes, signatures, front-running, allowances

#[tokio::test]
async fn s28_s39_allowance_and_balance_change_after_verify() {
    let (h, req, buyer) = setup().await;
    // No allowance at all (a fresh buyer), then one unit short.
    let other = h.bed.buyer(1).signer.clone();
    let request = signed(&h, &req, &other, &h.permit2_message(&req));
    h.assert_refused(
        &request,
        Reason::Permit2AllowanceRequired,
        &[other.address()],
        "no allowance",
    )
    .await;
    h.bed
        .approve_usdc(other.address(), PERMIT2_ADDRESS, U256::from(UNITS - 1))
        .await;
    h.assert_refused(
        &request,
        Reason::Permit2AllowanceRequired,
        &[other.address()],
        "allowance one unit short",
    )
    .await;
    // Revoked between verify and settle.
    let request = signed(&h, &req, &buyer, &h.permit2_message(&req));
    h.assert_valid(&request, "with the allowance").await;
    h.bed
        .approve_usdc(buyer.address(), PERMIT2_ADDRESS, U256::ZERO)
        .await;
    h.assert_refused(
        &request,
        Reason::Permit2AllowanceRequired,
        &[buyer.address()],
        "allowance revoked after verify",
    )
    .await;
    // Funds moved away between verify and settle.
    let poor = h.bed.spare_accounts()[0].signer.clone();
    h.bed.mint_usdc(poor.address(), U256::from(UNITS)).await;
    h.bed
        .approve_usdc(poor.address(), PERMIT2_ADDRESS, U256::MAX)
        .await;
    let request = signed(&h, &req, &poor, &h.permit2_message(&req));
    h.assert_valid(&request, "funded").await;
    let elsewhere = h.bed.spare_accounts()[1].address;
    h.bed
        .transfer_usdc(poor.address(), elsewhere, U256::from(1))
        .await;
    h.assert_refused(
        &request,
        Reason::Permit2InsufficientBalance,
        &[poor.address(), elsewhere],
        "balance one unit short after verify",
    )
    .await;
}

#[tokio::test]
async fn s29_invalid_permit2_signatures() {
    let (h, req, buyer) = setup().await;
    let message = h.permit2_message(&req);
    let good = sign_eip712(&buyer, &message, &h.permit2_domain());
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut s = good.to_vec();
        f(&mut s);
        Bytes::from(s)
    };
    let request =
        |sig: Bytes| request_v2(&req, permit2_with_signature(buyer.address(), &message, sig));
    h.assert_valid(&request(good.clone()), "control").await;
    for (what, sig) in [
        ("flipped bit in r", with(&|s| s[5] ^= 0x10)),
        ("first 64 bytes", with(&|s| s.truncate(64))),
        ("all zero", Bytes::from(vec![0u8; 65])),
        ("s = 0", with(&|s| s[32..64].fill(0))),
        ("v = 29", with(&|s| s[64] = 29)),
        ("v = 36 (EIP-155 style)", with(&|s| s[64] += 9)),
        ("v = 37 (EIP-155 style)", with(&|s| s[64] += 10)),
        ("one byte", Bytes::from(vec![1u8])),
        ("66 bytes", with(&|s| s.push(0))),
    ] {
        h.assert_refused(
            &request(sig),
            Reason::InvalidPermit2Signature,
            &[buyer.address()],
            what,
        )
        .await;
    }
    // v written as 0/1 recovers locally but not in Permit2's ecrecover: the simulation refuses.
    h.assert_refused(
        &request(with(&|s| s[64] -= 27)),
        Reason::Permit2SimulationFailed,
        &[buyer.address()],
        "v as 0/1",
    )
    .await;
    h.assert_valid(&request(good), "control after").await;
}

#[tokio::test]
async fn s31_permit2_front_run_between_verify_and_broadcast() {
    let (h, req, buyer) = setup().await;
    let third = h.bed.spare_accounts()[0].address;
    let message = h.permit2_message(&req);
    let signature = sign_eip712(&buyer, &message, &h.permit2_domain());
    let request = request_v2(
        &req,
        permit2_with_signature(buyer.address(), &message, signature.clone()),
    );
    h.assert_valid(&request, "control").await;
    // The exact proxy has no caller binding: anyone may submit the buyer's permit.
    let data = IExactPermit2Proxy::settleCall {
        permit: message.transfer_permit(),
        owner: buyer.address(),
        witness: message.proxy_witness(),
        signature,
    }
    .abi_encode();
    let tx = TransactionRequest::default()
        .from(third)
        .to(EXACT_PERMIT2_PROXY)
        .input(data.into());
    h.assert_front_run_wins(tx, &request, buyer.address()).await;
}

#[tokio::test]
async fn s32_permit2_asset_without_code() {
    let (h, req, buyer) = setup().await;
    let f = h.facilitator_listing(CODELESS);
    let codeless = PaymentRequirementsV2 {
        asset: CODELESS.to_checksum(None),
        ..req
    };
    let request = signed(&h, &codeless, &buyer, &h.permit2_message(&codeless));
    let before = h.snapshot(&[buyer.address()]).await;
    let v = f.verify(&request).await.unwrap();
    assert_eq!(v.invalid_reason, Some(Reason::UnsupportedAsset), "{v:?}");
    let s = f.settle(&request).await.unwrap();
    assert_settle_refused(&s, Reason::UnsupportedAsset, "codeless asset");
    h.assert_untouched(&before, "codeless asset").await;
}

#[tokio::test]
async fn s34_permit2_smart_wallet_turns_invalid_after_verify() {
    let h = ExactHarness::start().await;
    let req = h.requirements(PRICE, TransferMethod::Permit2).await;
    let (wallet, owner) = h.funded_wallet().await;
    wallet_approves_permit2(&h.bed, wallet, owner.address()).await;
    let message = h.permit2_message(&req);
    let request = request_v2(
        &req,
        permit2_signed(&owner, wallet, &message, &h.permit2_domain()),
    );
    h.assert_valid(&request, "wallet signature").await;
    let flip = set_signatures_disabled(&h.bed, wallet, owner.address(), true);
    h.bed.send(flip, "flip").await;
    h.assert_refused(
        &request,
        Reason::InvalidPermit2Signature,
        &[wallet],
        "wallet flipped before settle",
    )
    .await;
}

#[tokio::test]
async fn s36_permit2_fee_cap_refuses_before_broadcast() {
    let h = ExactHarness::start_with_tx(
        1,
        Policy::default(),
        TxConfig {
            max_fee_per_gas_cap: 1,
            ..harness_tx_config()
        },
    )
    .await;
    let req = h.requirements(PRICE, TransferMethod::Permit2).await;
    let buyer = h.bed.buyer(0).signer.clone();
    h.bed
        .approve_usdc(buyer.address(), PERMIT2_ADDRESS, U256::MAX)
        .await;
    let request = signed(&h, &req, &buyer, &h.permit2_message(&req));
    h.assert_settle_refused_twice(
        &request,
        Reason::GasPriceTooHigh,
        &[buyer.address()],
        "fee cap",
    )
    .await;
}

#[tokio::test]
async fn s38_wrong_permit2_spender() {
    let (h, req, buyer, good) = setup_with_control().await;
    for (what, spender) in [
        ("facilitator EOA", h.bed.facilitator().address),
        ("upto proxy", UPTO_PERMIT2_PROXY),
        ("Permit2 itself", PERMIT2_ADDRESS),
        ("an attacker contract", h.bed.signature_checker()),
        ("zero", Address::ZERO),
    ] {
        let message = PermitWitnessTransferFrom {
            spender,
            ..good.clone()
        };
        h.assert_refused(
            &signed(&h, &req, &buyer, &message),
            Reason::InvalidPermit2Spender,
            &[buyer.address()],
            what,
        )
        .await;
    }
}
