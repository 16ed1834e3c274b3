//! What settle checks again or refuses before broadcasting: the validity window at settle time
//! (S17/S18), an asset without code (S32), a smart wallet that stops validating after verify
//! (S34), fee and gas caps (S36); the payer's turn is taken only for a payload its payer signed
//! (S76).

use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use scheme_exact_evm::Policy;
use x402_core::wire::VerifyRequest;
use x402_core::{Facilitator as _, Reason, SettleTimeouts, SettlementStore as _, system_clock};
use x402_evm::signers::TxConfig;
use x402_tests::evm::exact::{
    CODELESS, ExactHarness, assert_settle_refused, harness_tx_config, now, request_v2,
};
use x402_tests::evm::usdc_domain;
use x402_tests::evm::x402::{set_signatures_disabled, wallet_approves_permit2};

use super::{Ctx, Kind, Row, each_kind, run_kind_rows};

async fn s17_s18(kind: Kind) {
    let ctx = Ctx::start(kind).await;
    let t = now();
    let mut message = ctx.message();
    message.set_window(t - 30, t + 60);
    let (expired, early) = kind.pick(
        (
            scheme_exact_evm::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_BEFORE,
            scheme_exact_evm::reason::INVALID_EXACT_EVM_PAYLOAD_AUTHORIZATION_VALID_AFTER,
        ),
        (
            x402_evm::reason::PERMIT2_DEADLINE_EXPIRED,
            x402_evm::reason::PERMIT2_NOT_YET_VALID,
        ),
    );
    ctx.h
        .assert_settle_rechecks_the_window(
            &ctx.signed(&message),
            &[ctx.payer],
            &[(55, expired.clone()), (3_600, expired), (-60, early)],
        )
        .await;
}
each_kind!(s17_s18_settle_checks_the_window_again, s17_s18);

async fn s32(kind: Kind) {
    let ctx = Ctx::start(kind).await;
    let f = ctx.h.facilitator_listing(CODELESS);
    let req = ctx.requirements_for(CODELESS);
    let message = ctx.message_for(&req);
    // EIP-3009 signs over that token's own domain.
    let domain = kind.pick(usdc_domain(ctx.h.bed.chain_id(), CODELESS), ctx.domain());
    let request = request_v2(
        &req,
        message.payload(ctx.payer, message.sign(&ctx.key, &domain)),
    );
    let reason = x402_evm::reason::ASSET_NOT_DEPLOYED_CONTRACT;
    let before = ctx.h.snapshot(&[ctx.payer]).await;
    let v = f.verify(&request).await.unwrap();
    assert_eq!(v.invalid_reason, Some(reason.clone()), "{v:?}");
    for attempt in 0..2 {
        let s = f.settle(&request).await.unwrap();
        assert_settle_refused(&s, reason.clone(), &format!("#{attempt}"));
    }
    ctx.h.assert_untouched(&before, "codeless asset").await;
}
each_kind!(s32_asset_without_code_is_refused, s32);

async fn s34(kind: Kind) {
    let h = Arc::new(ExactHarness::start().await);
    let (wallet, owner) = h.funded_wallet().await;
    let mut ctx = Ctx::for_key(h, kind, owner.clone()).await;
    ctx.payer = wallet;
    if kind == Kind::Permit2 {
        wallet_approves_permit2(&ctx.h.bed, wallet, owner.address()).await;
    }
    let request = ctx.signed(&ctx.message());
    ctx.h
        .assert_valid(&request, &ctx.what("wallet signature"))
        .await;
    let flip = set_signatures_disabled(&ctx.h.bed, wallet, owner.address(), true);
    ctx.h.bed.send(flip, "flip").await;
    ctx.h
        .assert_refused(
            &request,
            kind.pick(
                scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE,
                x402_evm::reason::INVALID_PERMIT2_SIGNATURE,
            ),
            &[wallet],
            &ctx.what("wallet flipped before settle"),
        )
        .await;
}
each_kind!(s34_smart_wallet_turns_invalid_after_verify, s34);

/// A row of S36: the facilitator's policy (for the kind) and its signer pool's settings.
#[derive(Debug, Clone, Copy)]
struct Caps {
    policy: fn(Kind) -> Policy,
    tx: fn() -> TxConfig,
}

async fn s36(kind: Kind) {
    let rows = vec![
        Row::both(
            "S36 max fee cap of 1 wei",
            Caps {
                policy: |_| Policy::default(),
                tx: || TxConfig {
                    max_fee_per_gas_cap: 1,
                    ..harness_tx_config()
                },
            },
            x402_evm::reason::GAS_PRICE_TOO_HIGH,
            x402_evm::reason::GAS_PRICE_TOO_HIGH,
        ),
        Row::both(
            "S36 gas limit above the pool's cap",
            Caps {
                policy: |kind| match kind {
                    Kind::Eip3009 => Policy {
                        gas_limit_eip3009: 2_000_000,
                        ..Policy::default()
                    },
                    Kind::Permit2 => Policy {
                        gas_limit_permit2: 2_000_000,
                        ..Policy::default()
                    },
                },
                tx: harness_tx_config,
            },
            x402_evm::reason::GAS_LIMIT_EXCEEDED,
            x402_evm::reason::GAS_LIMIT_EXCEEDED,
        ),
    ];
    run_kind_rows(kind, "S36", rows, move |row, reason| async move {
        let h = ExactHarness::start_with_tx(1, (row.edit.policy)(kind), (row.edit.tx)()).await;
        let buyer = h.bed.buyer(0).signer.clone();
        let ctx = Ctx::for_key(Arc::new(h), kind, buyer).await;
        ctx.approve_permit2().await;
        let request: VerifyRequest = ctx.signed(&ctx.message());
        ctx.h
            .assert_settle_refused_twice(&request, reason, &[ctx.payer], &ctx.what(&row.case))
            .await;
    })
    .await;
}
each_kind!(s36_fee_and_gas_caps_refuse_before_broadcast, s36);

async fn s76(kind: Kind) {
    let ctx = Ctx::start(kind).await;
    let before = ctx.h.snapshot(&[ctx.payer]).await;
    // The payer's turn is held (a settle of another payment of theirs is running).
    let key = format!("{}/{:#x}", ctx.h.network, ctx.payer);
    let held = ctx
        .h
        .store
        .payer_turn(&key, std::time::Duration::from_secs(1))
        .await
        .unwrap()
        .expect("the turn is free");
    // A payload naming the payer but signed by a stranger does not wait for (nor take) the
    // turn: it is refused for its signature at once.
    // A dispatcher on the same store that answers within two seconds, so a settle waiting for
    // the turn gives up soon.
    let f = ctx
        .h
        .facilitator_with(ctx.h.store.clone(), Policy::default(), system_clock())
        .with_timeouts(SettleTimeouts::new(std::time::Duration::from_secs(2)));
    let message = ctx.message();
    let forged = ctx.with_signature(
        &message,
        message.sign(&PrivateKeySigner::random(), &ctx.domain()),
    );
    let s = f.settle(&forged).await.unwrap();
    let signature = kind.pick(
        scheme_exact_evm::reason::INVALID_EXACT_EVM_SIGNATURE,
        x402_evm::reason::INVALID_PERMIT2_SIGNATURE,
    );
    assert_settle_refused(&s, signature, &ctx.what("forged while the turn is held"));
    // The payer's own payment waits for the turn, which stays held: busy, nothing sent.
    let genuine = ctx.signed(&message);
    let s = f.settle(&genuine).await.unwrap();
    assert_settle_refused(
        &s,
        Reason::PAYER_BUSY,
        &ctx.what("genuine while the turn is held"),
    );
    ctx.h
        .assert_untouched(&before, &ctx.what("turn held"))
        .await;
    // Once the turn is free, the genuine payment settles.
    drop(held);
    let s = ctx.h.facilitator.settle(&genuine).await.unwrap();
    assert!(s.success, "{}: {s:?}", ctx.what("genuine after the turn"));
}
each_kind!(s76_only_a_signed_payload_takes_the_payers_turn, s76);
