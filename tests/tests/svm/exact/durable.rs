//! The durable settle on the validator (threat-model R10, S78, S81): a pending settlement is
//! reconciled from the chain and its success delivered to exactly one later settle; a recorded
//! payment no longer verifies; nothing leaves the process before its intent is written ahead.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use scheme_exact_svm::{Facilitator, Policy};
use solana_keypair::Keypair;
use x402_core::settlement::faulty::FaultyStore;
use x402_core::{
    FacilitatorRole as _, Outcome, PaymentContext, Reason, SchemeError, SettlementStore,
};
use x402_tests::solana::exact::{SendMode, SvmHarness, harness_policy, rpc};

use super::{AMOUNT, TX_FEE};

/// Another facilitator over the harness's proxy, fee payers and `store` (the harness's own is
/// behind its dispatcher): the reconciler of a second process, say.
fn facilitator_on(h: &SvmHarness, store: Arc<dyn SettlementStore>) -> Facilitator {
    Facilitator::new(
        h.network.clone(),
        rpc(h.proxy.url()),
        h.fee_payers.iter().map(Keypair::insecure_clone).collect(),
        store,
        harness_policy(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_pending_settlement_is_reconciled_and_its_success_delivered_once() {
    let policy = Policy {
        confirm_timeout: Duration::from_secs(3),
        ..harness_policy()
    };
    // The node "accepts" every send and loses it: the settle answers pending.
    let h = SvmHarness::start_with(policy, SendMode::Drop).await;
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    let before = h.snapshot(&[mint.address], &[]).await;
    let s = h.settle(&request).await;
    assert_eq!(s.error_reason, Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    let signature = s.transaction.clone();
    signature
        .parse::<solana_signature::Signature>()
        .expect("pending names its signature");

    // The node forwards from now on: reconciliation sends the identical bytes again, then finds
    // them landed.
    h.proxy.set_mode(SendMode::Forward).await;
    let reconciler = facilitator_on(&h, h.store.clone());
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut passes = Vec::new();
    loop {
        let done = reconciler.reconcile(&h.network).await.unwrap();
        passes.push(done);
        if done.landed == 1 {
            break;
        }
        assert_eq!(done.pending, 1, "undecided until it lands: {passes:?}");
        assert!(Instant::now() < give_up, "not reconciled: {passes:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let id = {
        let ctx = PaymentContext::of(&request).unwrap();
        reconciler
            .inspect(&ctx)
            .unwrap()
            .payment_id(reconciler.network())
    };
    assert_eq!(
        h.store.outcome(&id).await.unwrap(),
        Some(Outcome::Landed {
            transaction: signature.clone()
        })
    );
    assert_eq!(
        h.proxy.transactions_sent(),
        1,
        "one transaction, sent again only as its identical bytes"
    );
    let after = h.snapshot(&[mint.address], &[]).await;
    let paid: u64 =
        before.fee_payer_sol.iter().sum::<u64>() - after.fee_payer_sol.iter().sum::<u64>();
    assert_eq!(paid, TX_FEE, "one fee");
    let moved: Vec<i128> = before
        .tokens
        .iter()
        .zip(&after.tokens)
        .map(|(b, a)| i128::from(a.2) - i128::from(b.2))
        .collect();
    assert_eq!(
        moved,
        vec![i128::from(AMOUNT), -i128::from(AMOUNT)],
        "seller +amount, buyer −amount, once"
    );

    // The next settle of the same payment hears success, once; the one after it a duplicate.
    let sends = h.proxy.sends();
    let s = h.settle(&request).await;
    assert!(s.success, "{s:?}");
    assert_eq!(s.transaction, signature);
    let third = h.settle(&request).await;
    assert_eq!(
        third.error_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{third:?}"
    );
    assert_eq!(third.transaction, signature);
    // Threat-model S78: the recorded payment no longer verifies.
    let v = h.verify(&request).await;
    assert!(!v.is_valid);
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    assert_eq!(
        h.proxy.sends(),
        sends,
        "answered from the record: nothing sent"
    );
    // Nothing is left to reconcile.
    assert_eq!(
        reconciler.reconcile(&h.network).await.unwrap(),
        x402_core::Reconciled::default()
    );
}

#[tokio::test]
async fn a_settled_payment_sent_to_verify_is_a_duplicate() {
    let h = SvmHarness::start().await;
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    assert!(h.verify(&request).await.is_valid);
    let s = h.settle(&request).await;
    assert!(s.success, "{s:?}");
    let (simulated, _) = h.proxy.simulations();
    let v = h.verify(&request).await;
    assert!(!v.is_valid, "{v:?}");
    assert_eq!(
        v.invalid_reason,
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{v:?}"
    );
    assert!(
        v.invalid_message
            .as_deref()
            .unwrap_or_default()
            .contains(&s.transaction),
        "names the transaction: {v:?}"
    );
    assert_eq!(v.payer.as_deref(), s.payer.as_deref());
    assert_eq!(
        h.proxy.simulations().0,
        simulated,
        "answered from the store, before any chain call"
    );
}

#[tokio::test]
async fn nothing_is_sent_before_the_intent_is_written_ahead() {
    let h = SvmHarness::start().await;
    let store = Arc::new(FaultyStore::default());
    store.write_ahead_fails.store(true, Ordering::SeqCst);
    let f = facilitator_on(&h, store.clone());
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    let before = h.snapshot(&[mint.address], &[]).await;
    let ctx = PaymentContext::of(&request).unwrap();
    let e = f.settle(&ctx).await.unwrap_err();
    assert!(matches!(e, SchemeError::Store(_)), "a store failure: {e:?}");
    let after = h.snapshot(&[mint.address], &[]).await;
    assert_eq!(after.sends, 0, "nothing sent");
    assert_eq!(
        after, before,
        "the fee payers' SOL and the buyer's and seller's tokens are unchanged"
    );
    // The claim is not released (the intent may have been written): a retry sends nothing and
    // is told a settlement is in progress.
    store.write_ahead_fails.store(false, Ordering::SeqCst);
    let again = f.settle(&ctx).await.unwrap();
    assert_eq!(
        again.result.as_ref().err().map(|r| r.reason.clone()),
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(h.proxy.sends(), 0);
    let id = f.inspect(&ctx).unwrap().payment_id(f.network());
    let record = store.record(&id).await.unwrap().expect("the claim is kept");
    assert_eq!(record.outcome, None);
}
