//! Permit2's own cases: re-encodings of one permit settling once (S22–S24), the allowance to
//! Permit2 missing, short or revoked (S28, S39), a nonce spent by an `upto` payment (S40).

use std::sync::Arc;

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use x402_core::wire::{PaymentRequirementsV2, VerifyRequest};
use x402_evm::abi::permit2_exact::PermitWitnessTransferFrom;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::PERMIT2_ADDRESS;
use x402_tests::evm::exact::{
    ExactHarness, PRICE, UNITS, assert_duplicate, now, permit2_signed, permit2_with_signature,
    request_v2,
};
use x402_tests::evm::x402::{ProxyArgs as _, high_s_twin, sign_eip712, upto_payment, upto_proxy};

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
        x402_evm::reason::PERMIT2_INVALID_NONCE,
        &[buyer.address()],
        "nonce spent by upto",
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
async fn s28_s39_allowance_missing_short_or_revoked_after_verify() {
    // (Funds moved away after verify: `state`, for both kinds.)
    let (h, req, buyer) = setup().await;
    // No allowance at all (a fresh buyer), then one unit short.
    let other = h.bed.buyer(1).signer.clone();
    let request = signed(&h, &req, &other, &h.permit2_message(&req));
    h.assert_refused(
        &request,
        x402_evm::reason::PERMIT2_ALLOWANCE_REQUIRED,
        &[other.address()],
        "no allowance",
    )
    .await;
    h.bed
        .approve_usdc(other.address(), PERMIT2_ADDRESS, U256::from(UNITS - 1))
        .await;
    h.assert_refused(
        &request,
        x402_evm::reason::PERMIT2_ALLOWANCE_REQUIRED,
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
        x402_evm::reason::PERMIT2_ALLOWANCE_REQUIRED,
        &[buyer.address()],
        "allowance revoked after verify",
    )
    .await;
}
