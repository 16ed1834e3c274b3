//! Bounded confirmation (threat-model R14): a dropped transaction ends as a definite failure once
//! its blockhash expires, or as `settlement_pending` with its signature at the time bound.

use std::sync::Arc;
use std::time::Duration;

use scheme_exact_svm::{Facilitator, Policy};
use solana_keypair::Keypair;
use x402_core::{MemoryStore, Outcome, Reason, SettlementStore as _};
use x402_tests::solana::exact::{SendMode, SvmHarness, harness_policy, rpc};

use super::AMOUNT;

#[tokio::test]
async fn a_transaction_whose_blockhash_expires_fails_definitely_within_the_bound() {
    // Far above a blockhash's lifetime (about a minute of slots, longer on a loaded machine):
    // the test is that expiry ends the wait with a definite answer, whenever it comes.
    let bound = Duration::from_secs(600);
    let policy = Policy {
        confirm_timeout: bound,
        ..harness_policy()
    };
    // The node "accepts" every send and loses it.
    let h = SvmHarness::start_with(policy, SendMode::Drop).await;
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    let before = h.snapshot(&[mint.address], &[]).await;
    let s = h.settle(&request).await;
    // Expired, not pending: the definite answer came before the bound.
    assert!(!s.success);
    assert_eq!(
        s.error_reason,
        Some(scheme_exact_svm::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED),
        "{s:?}"
    );
    assert!(
        s.error_message
            .as_deref()
            .unwrap_or_default()
            .contains("expired"),
        "{s:?}"
    );
    assert!(s.transaction.is_empty(), "nothing landed: {s:?}");
    let after = h.snapshot(&[mint.address], &[]).await;
    assert_eq!(after.fee_payer_sol, before.fee_payer_sol);
    assert_eq!(after.tokens, before.tokens);
    assert!(after.sends >= 1);
    // The failure is recorded: settling again is a duplicate, and the payment no longer verifies
    // (the store answers before the chain is asked, threat-model S78).
    let again = h.settle(&request).await;
    assert_eq!(again.error_reason, Some(Reason::DUPLICATE_SETTLEMENT));
    let v = h.verify(&request).await;
    assert_eq!(v.invalid_reason, Some(Reason::DUPLICATE_SETTLEMENT));
}

#[tokio::test]
async fn an_unobserved_transaction_is_pending_with_its_signature_at_the_time_bound() {
    let policy = Policy {
        confirm_timeout: Duration::from_secs(3),
        ..harness_policy()
    };
    let h = SvmHarness::start_with(policy, SendMode::Drop).await;
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    // Pending, not expired: the 3 s bound ended the wait before the blockhash could expire.
    let s = h.settle(&request).await;
    assert_eq!(s.error_reason, Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    let signature: solana_signature::Signature = s.transaction.parse().unwrap();
    // Settling again reconciles the record first: still unseen (the node keeps losing it), so
    // still pending, naming the same transaction.
    let again = h.settle(&request).await;
    assert_eq!(again.error_reason, Some(Reason::SETTLEMENT_PENDING));
    assert_eq!(again.transaction, signature.to_string());
    assert_eq!(h.store.len(), 1);
    let ctx = x402_core::PaymentContext::of(&request).unwrap();
    let f = facilitator_for(&h).await;
    let id = f.inspect(&ctx).unwrap().payment_id(f.network());
    assert_eq!(
        h.store.outcome(&id).await.unwrap(),
        Some(Outcome::Pending {
            transaction: signature.to_string()
        })
    );
}

/// A facilitator over the harness proxy with the harness fee payers (for reading identities).
async fn facilitator_for(h: &SvmHarness) -> Facilitator {
    Facilitator::new(
        h.network.clone(),
        rpc(h.proxy.url()),
        h.fee_payers.iter().map(Keypair::insecure_clone).collect(),
        Arc::new(MemoryStore::new()),
        Policy::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_facilitators_answer_deadline_ends_the_wait_before_the_schemes_own_bound() {
    // The scheme alone would wait until the blockhash expires (a definite `transaction_failed`);
    // the facilitator must answer within 3 s, so the settle answers pending with its signature.
    let policy = Policy {
        confirm_timeout: Duration::from_secs(600),
        ..harness_policy()
    };
    let h = SvmHarness::start_with(policy, SendMode::Drop).await;
    let facilitator = h
        .facilitator
        .clone()
        .with_timeouts(x402_core::SettleTimeouts::new(Duration::from_secs(3)));
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    let before = h.snapshot(&[mint.address], &[]).await;
    let body = serde_json::to_vec(&request).unwrap();
    let s = facilitator
        .settle_json(&body, x402_core::json::JsonLimits::DEFAULT)
        .await
        .unwrap();
    assert_eq!(s.error_reason, Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    let signature: solana_signature::Signature = s.transaction.parse().unwrap();
    let after = h.snapshot(&[mint.address], &[]).await;
    assert_eq!(
        after.tokens, before.tokens,
        "the dropped transaction moved nothing"
    );
    // Recorded as pending: a retry is still pending and names the same transaction (at most its
    // identical bytes are sent again), never a new one.
    let again = h.settle(&request).await;
    assert_eq!(again.error_reason, Some(Reason::SETTLEMENT_PENDING));
    assert_eq!(again.transaction, signature.to_string());
    assert_eq!(h.proxy.transactions_sent(), 1);
}

#[tokio::test]
async fn a_settle_out_of_time_before_sending_sends_nothing_and_can_be_retried() {
    let h = SvmHarness::start().await;
    // An answer bound of zero: the deadline has passed by the time the settle could send.
    let hurried = h
        .facilitator
        .clone()
        .with_timeouts(x402_core::SettleTimeouts::new(Duration::ZERO));
    let mint = h.bed.spl_token_mint();
    let req = h.requirements(&mint, AMOUNT, None).await;
    let request = h.pay_v2(&h.buyer, &req).await;
    let before = h.snapshot(&[mint.address], &[]).await;
    let body = serde_json::to_vec(&request).unwrap();
    let s = hurried
        .settle_json(&body, x402_core::json::JsonLimits::DEFAULT)
        .await
        .unwrap();
    assert!(!s.success, "{s:?}");
    assert_eq!(
        s.error_reason,
        Some(Reason::UNEXPECTED_SETTLE_ERROR),
        "{s:?}"
    );
    assert!(s.transaction.is_empty(), "{s:?}");
    let after = h.snapshot(&[mint.address], &[]).await;
    assert_eq!(after, before, "nothing was sent, nothing moved");
    // The claim was released: the same payment settles once, normally.
    let s = h.settle(&request).await;
    assert!(s.success, "{s:?}");
    let again = h.settle(&request).await;
    assert_eq!(again.error_reason, Some(Reason::DUPLICATE_SETTLEMENT));
}
