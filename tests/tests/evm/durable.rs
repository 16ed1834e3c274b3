//! The settlement engine's durable path on anvil: the write-ahead precedes every broadcast, a
//! failed write sends nothing, and reconciliation turns a pending settlement into one success.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use x402_core::settlement::faulty::FaultyStore;
use x402_core::{
    Facilitator as _, FacilitatorError, Reason, SchemeError, SettleTimeouts, SettlementStore as _,
};
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::ExactHarness;

#[tokio::test]
async fn a_failed_write_ahead_sends_nothing_and_keeps_the_payment_settleable() {
    let h = ExactHarness::start().await;
    let store = Arc::new(FaultyStore::default());
    store.write_ahead_fails.store(true, Ordering::SeqCst);
    let f = h.facilitator_with(
        store.clone(),
        scheme_exact_evm::Policy::default(),
        x402_core::system_clock(),
    );
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let request = h.pay_v2(&buyer, &req).await;
    let (b0, s0, n0) = (
        h.usdc(buyer.address()).await,
        h.usdc(seller).await,
        h.signer_nonces().await,
    );
    let sent0 = h.pool.stats().sent;

    let err = f.settle(&request).await.expect_err("the store failed");
    assert!(
        matches!(err, FacilitatorError::Scheme(SchemeError::Store(_))),
        "{err:?}"
    );
    assert_eq!(h.pool.stats().sent, sent0, "nothing was broadcast");
    assert_eq!(h.signer_nonces().await, n0);
    assert_eq!(h.usdc(buyer.address()).await, b0);
    assert_eq!(h.usdc(seller).await, s0);

    // The store is back: the record of the failed write is reconciled away (its bytes can never
    // land once the nonce is reused) or the claim is free, and the payment settles once.
    store.write_ahead_fails.store(false, Ordering::SeqCst);
    let s = f.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(
        h.usdc(seller).await,
        s0 + alloy::primitives::U256::from(10_000)
    );
    let again = f.settle(&request).await.unwrap();
    assert_eq!(
        again.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_pending_settlement_is_reconciled_by_the_timer_and_answered_success_once() {
    let h = ExactHarness::start().await;
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let request = h.pay_v2(&buyer, &req).await;
    let s0 = h.usdc(seller).await;
    h.set_automine(false).await;
    let patient = h
        .facilitator
        .clone()
        .with_timeouts(SettleTimeouts::new(Duration::from_secs(2)));
    let pending = patient.settle(&request).await.unwrap();
    assert_eq!(
        pending.error_reason,
        Some(Reason::SETTLEMENT_PENDING),
        "{pending:?}"
    );
    assert_eq!(h.store.counts().await.unwrap().unresolved, 1);

    // Not mined yet: a pass leaves it pending (the node knows the transaction).
    let lines = h.facilitator.reconcile().await;
    let pass = lines[0].result.as_ref().unwrap();
    assert_eq!((pass.examined, pass.pending), (1, 1), "{lines:?}");
    // A verify meanwhile: the payment is recorded.
    let v = h.facilitator.verify(&request).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );

    h.set_automine(true).await;
    h.mine().await;
    let lines = h.facilitator.reconcile().await;
    let pass = lines[0].result.as_ref().unwrap();
    assert_eq!((pass.examined, pass.landed), (1, 1), "{lines:?}");
    assert_eq!(h.store.counts().await.unwrap().unresolved, 0);
    assert_eq!(
        h.usdc(seller).await,
        s0 + alloy::primitives::U256::from(10_000)
    );

    // Landed, its success not yet delivered: the buyer's retry verifies, so the seller settles.
    let v = h.facilitator.verify(&request).await.unwrap();
    assert!(v.is_valid, "{v:?}");
    let s = h.facilitator.settle(&request).await.unwrap();
    assert!(s.success, "the landed payment is answered success: {s:?}");
    let v = h.facilitator.verify(&request).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    assert_eq!(s.transaction, pending.transaction);
    let again = h.facilitator.settle(&request).await.unwrap();
    assert_eq!(
        again.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(again.transaction, pending.transaction);
    assert_eq!(h.pool.stats().sent, 1, "one transaction, ever");
}

#[tokio::test]
async fn a_recorded_failure_never_verifies_again_though_the_chain_would_pass_it() {
    let h = ExactHarness::start().await;
    let buyer = h.bed.buyer(0).signer.clone();
    let spare = h.bed.spare_accounts()[0].address;
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let request = h.pay_v2(&buyer, &req).await;
    let balance = h.usdc(buyer.address()).await;
    // Between verification and broadcast the buyer's funds move away: the transfer reverts on
    // chain (its nonce stays unused), and the failure is recorded.
    let drain = h
        .bed
        .usdc_contract()
        .transfer(spare, balance)
        .into_transaction_request()
        .from(buyer.address());
    let (f, _, s) = h
        .settle_racing_the_send(drain, "drain", &request, &[buyer.address()])
        .await;
    assert!(!s.success, "{s:?}");
    assert!(
        !s.transaction.is_empty(),
        "the reverted transaction is named: {s:?}"
    );
    // The funds come back: on chain the authorization would pass again...
    h.bed.transfer_usdc(spare, buyer.address(), balance).await;
    let fresh = h.fresh_facilitator(
        scheme_exact_evm::Policy::default(),
        x402_core::system_clock(),
    );
    assert!(fresh.verify(&request).await.unwrap().is_valid);
    // ...but the facilitator that recorded the failure refuses it (threat-model S78).
    let v = f.verify(&request).await.unwrap();
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    let again = f.settle(&request).await.unwrap();
    assert_eq!(
        again.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(again.transaction, s.transaction);
    assert_eq!(h.usdc(buyer.address()).await, balance, "nothing moved");
}
