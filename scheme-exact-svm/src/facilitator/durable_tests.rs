//! The durable settle without a validator: the x402-spec §6.3 vector settled against a scripted
//! chain (`fake_chain`) and a `MemoryStore`, sometimes wrapped to fail. Covers the write-ahead
//! before the send, never releasing after it, a refused send withdrawn, the payer's turn, answers
//! from each kind of record, reconciliation, and verify reading the store (threat-model R10, S78,
//! S80, S81).
#![cfg(feature = "buyer")] // the vector helpers of `tests` sign with the buyer role

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signature::Signature;
use x402_core::wire::VerifyRequest;
use x402_core::{
    Claim, FacilitatorRole, Intent, MemoryStore, Network, Outcome, PaymentContext, PaymentId,
    Reason, Reconciled, SchemeError, Settlement, SettlementStore, UnixTime, Verdict,
};

use super::fake_chain::{Chain, OnSend, mint_data, token_account_data, token_program_account};
use super::tests::{CLIENT, CO_SIGNED, DEVNET, PAY_TO, fee_payer, good_extra, requirements, v2};
use super::{Facilitator, IntentDetail, Policy, VECTOR_TRANSACTION};
use crate::instructions::USDC_DEVNET;
use crate::payload::encode_transaction;
use crate::rpc::Rpc;

const FAR: UnixTime = UnixTime(u64::MAX / 4);
const NOWHERE: &str = "http://127.0.0.1:1";

/// A store that fails, or loses to a reconciler, on demand.
use x402_core::settlement::faulty::FaultyStore as Faulty;

/// A chain where the vector's mint, destination and source exist.
fn chain() -> Arc<Chain> {
    let pay_to: Pubkey = PAY_TO.parse().unwrap();
    let client: Pubkey = CLIENT.parse().unwrap();
    Chain::new(vec![
        token_program_account(&mint_data(6)),
        token_program_account(&token_account_data(&USDC_DEVNET, &pay_to, 0)),
        token_program_account(&token_account_data(&USDC_DEVNET, &client, 1_000_000)),
    ])
}

/// Fast polling, and a confirmation bound of `confirm_ms`.
fn policy(confirm_ms: u64) -> Policy {
    Policy {
        confirm_timeout: Duration::from_millis(confirm_ms),
        poll_interval: Duration::from_millis(10),
        resend_interval: Duration::from_millis(30),
        ..Policy::default()
    }
}

fn facilitator(urls: &[String], store: Arc<dyn SettlementStore>, policy: Policy) -> Facilitator {
    Facilitator::new(
        Network::parse(DEVNET).unwrap(),
        Rpc::new(urls, Duration::from_secs(5)).unwrap(),
        vec![fee_payer(), Keypair::new_from_array([9; 32])],
        store,
        policy,
    )
    .unwrap()
}

fn request() -> VerifyRequest {
    v2(
        &requirements("1000", PAY_TO, &good_extra()),
        VECTOR_TRANSACTION,
    )
}

fn id_of(f: &Facilitator, request: &VerifyRequest) -> PaymentId {
    let ctx = PaymentContext::of(request).unwrap();
    f.inspect(&ctx).unwrap().payment_id(f.network())
}

async fn settle(f: &Facilitator, request: &VerifyRequest) -> Settlement {
    let ctx = PaymentContext::of(request).unwrap();
    FacilitatorRole::settle(f, &ctx).await.unwrap()
}

async fn verify(f: &Facilitator, request: &VerifyRequest) -> Verdict {
    let ctx = PaymentContext::of(request).unwrap();
    FacilitatorRole::verify(f, &ctx).await.unwrap()
}

fn reason(s: &Settlement) -> Option<Reason> {
    s.result.as_ref().err().map(|r| r.reason.clone())
}

fn message(s: &Settlement) -> String {
    s.result
        .as_ref()
        .err()
        .and_then(|r| r.message.clone())
        .unwrap_or_default()
}

/// The intent a settle of the vector writes ahead, held by its settle until `holder_until`.
fn vector_intent(f: &Facilitator, holder_until: u64) -> Intent {
    let request = request();
    let ctx = PaymentContext::of(&request).unwrap();
    let tx = f.co_sign(&f.inspect(&ctx).unwrap()).unwrap();
    IntentDetail::of(&tx, CLIENT, UnixTime(holder_until))
        .unwrap()
        .intent(f.network(), &tx)
        .unwrap()
}

/// A record of `id` written ahead with `intent`, completed with `outcome` when given.
async fn written_ahead(
    store: &dyn SettlementStore,
    id: &PaymentId,
    intent: &Intent,
    outcome: Option<Outcome>,
) {
    let Claim::Acquired(token) = store.claim(id, FAR).await.unwrap() else {
        panic!("{id} is taken");
    };
    assert!(store.write_ahead(id, &token, intent).await.unwrap());
    if let Some(outcome) = outcome {
        assert!(store.complete(id, &token, outcome).await.unwrap());
    }
}

fn pending_outcome() -> Outcome {
    Outcome::Pending {
        transaction: CO_SIGNED.into(),
    }
}

#[test]
fn the_intent_detail_round_trips_through_stored_text() {
    let f = facilitator(
        &[NOWHERE.into()],
        Arc::new(MemoryStore::new()),
        policy(1000),
    );
    let request = request();
    let ctx = PaymentContext::of(&request).unwrap();
    let tx = f.co_sign(&f.inspect(&ctx).unwrap()).unwrap();
    let detail = IntentDetail::of(&tx, CLIENT, UnixTime(1_000)).unwrap();
    let intent = detail.intent(f.network(), &tx).unwrap();
    assert_eq!(intent.network, DEVNET);
    assert_eq!(
        intent.transaction, CO_SIGNED,
        "named by the fee payer's signature"
    );
    assert_eq!(intent.detail["holderUntil"], 1_000);
    assert_eq!(intent.detail["payer"], CLIENT);
    let back = Intent::from_stored(&intent.to_stored()).unwrap();
    assert_eq!(back, intent);
    let read = IntentDetail::read(&back).unwrap();
    assert_eq!(read, detail);
    // The bytes as sent, and the blockhash that decides when they can no longer land.
    assert_eq!(read.transaction, encode_transaction(&tx).unwrap());
    let signature: Signature = CO_SIGNED.parse().unwrap();
    assert_eq!(read.signed_transaction(&signature).unwrap(), tx);
    assert_eq!(
        read.recent_blockhash().unwrap(),
        *tx.message.recent_blockhash()
    );
    // Bytes of another transaction, or another scheme's detail, are refused.
    assert!(read.signed_transaction(&Signature::from([3; 64])).is_err());
    let foreign = Intent {
        detail: serde_json::json!({ "raw": "0x01", "nonce": 7 }),
        ..intent.clone()
    };
    assert!(IntentDetail::read(&foreign).is_err());
    assert!(read.held_at(UnixTime(999)));
    assert!(!read.held_at(UnixTime(1_000)));
}

#[tokio::test]
async fn each_kind_of_record_is_answered_from_the_store() {
    // The chain cannot be read: an unresolved record stays as it is.
    let store = Arc::new(MemoryStore::new());
    let f = facilitator(&[NOWHERE.into()], store.clone(), policy(1000));
    let intent = vector_intent(&f, 0);
    let id = PaymentId::new("solana-message", ["answers", "1"]);

    // Claimed, nothing written ahead: in progress, no transaction.
    let Claim::Acquired(token) = store.claim(&id, FAR).await.unwrap() else {
        panic!("fresh id");
    };
    let record = store.record(&id).await.unwrap().unwrap();
    let s = f.answer_from_record(&id, CLIENT, record).await.unwrap();
    assert_eq!(reason(&s), Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
    assert!(message(&s).contains("in progress"), "{s:?}");
    assert_eq!(s.transaction, None);

    // Written ahead, undecided: pending naming it, and the record unchanged.
    assert!(store.write_ahead(&id, &token, &intent).await.unwrap());
    let record = store.record(&id).await.unwrap().unwrap();
    let s = f
        .answer_from_record(&id, CLIENT, record.clone())
        .await
        .unwrap();
    assert_eq!(reason(&s), Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));
    assert_eq!(store.record(&id).await.unwrap(), Some(record));

    // Answered pending: the same.
    assert!(
        store
            .complete(&id, &token, pending_outcome())
            .await
            .unwrap()
    );
    let record = store.record(&id).await.unwrap().unwrap();
    let s = f.answer_from_record(&id, CLIENT, record).await.unwrap();
    assert_eq!(reason(&s), Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));

    // Landed after the pending answer: success for exactly one caller.
    let landed = Outcome::Landed {
        transaction: CO_SIGNED.into(),
    };
    assert!(store.resolve(&id, CO_SIGNED, Some(landed)).await.unwrap());
    let stale = store.record(&id).await.unwrap().unwrap();
    let s = f
        .answer_from_record(&id, CLIENT, stale.clone())
        .await
        .unwrap();
    assert!(s.result.is_ok(), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));
    // A caller that read the record before the delivery: a duplicate naming it.
    let s = f.answer_from_record(&id, CLIENT, stale).await.unwrap();
    assert_eq!(reason(&s), Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));
    assert!(message(&s).contains("already settled"), "{s:?}");
    // Settled: a duplicate naming it.
    let record = store.record(&id).await.unwrap().unwrap();
    assert_eq!(
        record.outcome,
        Some(Outcome::Settled {
            transaction: CO_SIGNED.into()
        })
    );
    let s = f.answer_from_record(&id, CLIENT, record).await.unwrap();
    assert_eq!(reason(&s), Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));

    // Failed: a duplicate naming the transaction that landed, and none when none did.
    for (n, transaction) in [(2, Some(CO_SIGNED.to_owned())), (3, None)] {
        let id = PaymentId::new("solana-message", ["answers", &n.to_string()]);
        let failed = Outcome::Failed {
            reason: crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
            transaction: transaction.clone(),
        };
        written_ahead(store.as_ref(), &id, &intent, Some(failed)).await;
        let record = store.record(&id).await.unwrap().unwrap();
        let s = f.answer_from_record(&id, CLIENT, record).await.unwrap();
        assert_eq!(reason(&s), Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
        assert_eq!(s.transaction, transaction);
    }
}

/// A record, a chain, and what one reconciliation pass must make of them.
struct Case {
    what: &'static str,
    /// The intent's `holder_until`.
    holder_until: u64,
    /// Completed as pending (else still in flight).
    answered_pending: bool,
    set_up: fn(&Chain),
    counts: Reconciled,
    /// The record's outcome after the pass.
    outcome: Option<Outcome>,
    /// Sends that reached the chain.
    sends: usize,
}

#[tokio::test]
async fn reconciliation_decides_each_record_from_the_chain() {
    let network = Network::parse(DEVNET).unwrap();
    let id = PaymentId::new("solana-message", [DEVNET, "reconcile"]);
    let now = UnixTime::now().0;
    let counted = |landed, failed, pending| Reconciled {
        examined: 1,
        landed,
        failed,
        pending,
        released: 0,
    };
    let failed = |transaction: Option<&str>| {
        Some(Outcome::Failed {
            reason: crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
            transaction: transaction.map(str::to_owned),
        })
    };
    let cases = [
        Case {
            what: "landed",
            holder_until: 0,
            answered_pending: true,
            set_up: |c| c.land(true),
            counts: counted(1, 0, 0),
            outcome: Some(Outcome::Landed {
                transaction: CO_SIGNED.into(),
            }),
            sends: 0,
        },
        Case {
            what: "landed with an error",
            holder_until: 0,
            answered_pending: true,
            set_up: |c| c.land(false),
            counts: counted(0, 1, 0),
            outcome: failed(Some(CO_SIGNED)),
            sends: 0,
        },
        Case {
            what: "pending, unseen, still valid: sent again",
            holder_until: u64::MAX,
            answered_pending: true,
            set_up: |_| {},
            counts: counted(0, 0, 1),
            outcome: Some(pending_outcome()),
            sends: 1,
        },
        Case {
            what: "in flight, its settle may be at work: not sent",
            holder_until: now + 3_600,
            answered_pending: false,
            set_up: |_| {},
            counts: counted(0, 0, 1),
            outcome: None,
            sends: 0,
        },
        Case {
            what: "in flight, its settle gone: sent again",
            holder_until: now.saturating_sub(1),
            answered_pending: false,
            set_up: |_| {},
            counts: counted(0, 0, 1),
            outcome: None,
            sends: 1,
        },
        Case {
            what: "unseen, expired",
            holder_until: 0,
            answered_pending: true,
            set_up: |c| c.blockhash_valid.store(false, Ordering::SeqCst),
            counts: counted(0, 1, 0),
            outcome: failed(None),
            sends: 0,
        },
        Case {
            what: "the chain cannot be read",
            holder_until: 0,
            answered_pending: true,
            set_up: |c| c.status_fails.store(true, Ordering::SeqCst),
            counts: counted(0, 0, 1),
            outcome: Some(pending_outcome()),
            sends: 0,
        },
    ];
    for Case {
        what,
        holder_until,
        answered_pending,
        set_up,
        counts,
        outcome,
        sends,
    } in cases
    {
        let chain = chain();
        set_up(&chain);
        let store = Arc::new(MemoryStore::new());
        let f = facilitator(&[chain.endpoint(false)], store.clone(), policy(1000));
        let intent = vector_intent(&f, holder_until);
        let first = answered_pending.then(pending_outcome);
        written_ahead(store.as_ref(), &id, &intent, first).await;
        let done = f.reconcile(&network).await.unwrap();
        assert_eq!(done, counts, "{what}");
        let record = store.record(&id).await.unwrap().unwrap();
        assert_eq!(record.outcome, outcome, "{what}");
        assert_eq!(record.intent, Some(intent), "{what}: the intent is kept");
        assert_eq!(chain.sends.load(Ordering::SeqCst), sends, "{what}");
        // Only a transaction that landed with an error (its fee was ours) cools the payer down.
        let throttled = store
            .throttled(&format!("{DEVNET}/{CLIENT}"))
            .await
            .unwrap();
        assert_eq!(
            throttled.is_some(),
            what == "landed with an error",
            "{what}: the payer's cool-down"
        );
        if what == "unseen, expired" {
            assert_eq!(
                chain.called("getSignatureStatuses"),
                2,
                "read again once the blockhash expired"
            );
        }
    }

    // Another network's pass, and another scheme's records on this network, are left alone.
    let chain = chain();
    chain.land(true);
    let store = Arc::new(MemoryStore::new());
    let f = facilitator(&[chain.endpoint(false)], store.clone(), policy(1000));
    let foreign = PaymentId::new("eip3009", [DEVNET, "x"]);
    written_ahead(
        store.as_ref(),
        &foreign,
        &vector_intent(&f, 0),
        Some(pending_outcome()),
    )
    .await;
    let mainnet = Network::parse("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp").unwrap();
    assert_eq!(f.reconcile(&mainnet).await.unwrap(), Reconciled::default());
    assert_eq!(f.reconcile(&network).await.unwrap(), Reconciled::default());
    assert_eq!(chain.calls.lock().unwrap().len(), 0, "no RPC call");
}

#[tokio::test]
async fn a_settle_lands_once_and_every_later_settle_or_verify_is_a_duplicate() {
    let chain = chain();
    let store = Arc::new(MemoryStore::new());
    let f = facilitator(&[chain.endpoint(false)], store.clone(), policy(2000));
    let request = request();
    let v = verify(&f, &request).await;
    assert!(v.result.is_ok(), "{v:?}");
    let s = settle(&f, &request).await;
    assert!(s.result.is_ok(), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));
    assert_eq!(chain.sends.load(Ordering::SeqCst), 1);
    let record = store.record(&id_of(&f, &request)).await.unwrap().unwrap();
    assert_eq!(
        record.outcome,
        Some(Outcome::Settled {
            transaction: CO_SIGNED.into()
        })
    );
    assert_eq!(
        record.intent.map(|i| i.transaction).as_deref(),
        Some(CO_SIGNED)
    );
    let again = settle(&f, &request).await;
    assert_eq!(
        reason(&again),
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(again.transaction.as_deref(), Some(CO_SIGNED));
    // Threat-model S78: the payment no longer verifies.
    let v = verify(&f, &request).await;
    let rejection = v.result.unwrap_err();
    assert_eq!(rejection.reason, Reason::DUPLICATE_SETTLEMENT);
    assert!(
        rejection.message.unwrap_or_default().contains(CO_SIGNED),
        "names the transaction"
    );
    assert_eq!(chain.sends.load(Ordering::SeqCst), 1, "sent once");
}

#[tokio::test]
async fn nothing_is_sent_before_the_intent_is_written() {
    let chain = chain();
    let store = Arc::new(Faulty::default());
    store.write_ahead_fails.store(true, Ordering::SeqCst);
    let f = facilitator(&[chain.endpoint(false)], store.clone(), policy(1000));
    let request = request();
    let e = FacilitatorRole::settle(&f, &PaymentContext::of(&request).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, SchemeError::Store(_)), "{e:?}");
    assert_eq!(chain.called("sendTransaction"), 0, "nothing sent");
    // Not released (the write may have happened): a retry is told it is in progress.
    let id = id_of(&f, &request);
    let record = store.record(&id).await.unwrap().unwrap();
    assert_eq!(record.outcome, None);
    store.write_ahead_fails.store(false, Ordering::SeqCst);
    let again = settle(&f, &request).await;
    assert_eq!(
        reason(&again),
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(chain.called("sendTransaction"), 0);

    // A claim lost before the write-ahead sends nothing either.
    let chain = self::chain();
    let store = Arc::new(Faulty::default());
    store.write_ahead_loses.store(true, Ordering::SeqCst);
    let f = facilitator(&[chain.endpoint(false)], store, policy(1000));
    let s = settle(&f, &request).await;
    assert_eq!(reason(&s), Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
    assert!(message(&s).contains("nothing was sent"), "{s:?}");
    assert_eq!(chain.called("sendTransaction"), 0);
}

#[tokio::test]
async fn a_send_the_node_refused_is_withdrawn_and_may_be_retried() {
    let chain = chain();
    chain.on_send(OnSend::Refuse);
    let store = Arc::new(MemoryStore::new());
    let f = facilitator(&[chain.endpoint(false)], store.clone(), policy(1000));
    let request = request();
    let s = settle(&f, &request).await;
    assert_eq!(
        reason(&s),
        Some(crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED),
        "{s:?}"
    );
    assert!(message(&s).contains("simulation failed"), "{s:?}");
    assert_eq!(s.transaction, None);
    assert_eq!(store.record(&id_of(&f, &request)).await.unwrap(), None);
    assert_eq!(chain.sends.load(Ordering::SeqCst), 1, "never sent again");
    chain.on_send(OnSend::Land);
    let s = settle(&f, &request).await;
    assert!(s.result.is_ok(), "{s:?}");
}

#[tokio::test]
async fn a_refusal_after_an_endpoint_that_may_have_taken_it_is_not_trusted() {
    // Threat-model S80: the first endpoint fails the send (it may have forwarded it), the second
    // refuses; the transaction may be on its way, so it is confirmed, never withdrawn.
    let chain = chain();
    chain.on_send(OnSend::Refuse);
    let store = Arc::new(MemoryStore::new());
    let urls = [chain.endpoint(true), chain.endpoint(false)];
    let f = facilitator(&urls, store.clone(), policy(300));
    let request = request();
    let s = settle(&f, &request).await;
    assert_eq!(reason(&s), Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));
    let record = store.record(&id_of(&f, &request)).await.unwrap().unwrap();
    assert_eq!(record.outcome, Some(pending_outcome()));
}

#[tokio::test]
async fn a_store_failure_after_the_send_is_pending_then_reconciled_and_delivered_once() {
    let chain = chain();
    chain.on_send(OnSend::Drop);
    let store = Arc::new(Faulty::default());
    store.complete_fails.store(true, Ordering::SeqCst);
    let f = facilitator(&[chain.endpoint(false)], store.clone(), policy(300));
    let request = request();
    let s = settle(&f, &request).await;
    assert_eq!(reason(&s), Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));
    // Never released: in flight with its intent, for reconciliation.
    let id = id_of(&f, &request);
    let record = store.record(&id).await.unwrap().unwrap();
    assert!(
        record.is_unresolved() && record.outcome.is_none(),
        "{record:?}"
    );
    // A re-send reached a leader.
    chain.land(true);
    let done = f.reconcile(f.network()).await.unwrap();
    assert_eq!(done.landed, 1, "{done:?}");
    let sends = chain.sends.load(Ordering::SeqCst);
    let s = settle(&f, &request).await;
    assert!(s.result.is_ok(), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));
    let again = settle(&f, &request).await;
    assert_eq!(
        reason(&again),
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(again.transaction.as_deref(), Some(CO_SIGNED));
    assert_eq!(
        chain.sends.load(Ordering::SeqCst),
        sends,
        "nothing new sent"
    );
}

#[tokio::test]
async fn a_settle_whose_record_a_reconciler_decided_first_answers_from_it() {
    let chain = chain();
    let store = Arc::new(Faulty::default());
    store.reconciler_wins.store(true, Ordering::SeqCst);
    let f = facilitator(&[chain.endpoint(false)], store.clone(), policy(2000));
    let request = request();
    let s = settle(&f, &request).await;
    assert!(
        s.result.is_ok(),
        "the landed record is delivered to it: {s:?}"
    );
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));
    let again = settle(&f, &request).await;
    assert_eq!(
        reason(&again),
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_pending_settle_is_decided_by_the_next_one() {
    let chain = chain();
    chain.on_send(OnSend::Drop);
    let store = Arc::new(MemoryStore::new());
    let f = facilitator(&[chain.endpoint(false)], store.clone(), policy(300));
    let request = request();
    let s = settle(&f, &request).await;
    assert_eq!(reason(&s), Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    // Still unseen: pending again, and the same bytes were sent once more.
    let sends = chain.sends.load(Ordering::SeqCst);
    let again = settle(&f, &request).await;
    assert_eq!(
        reason(&again),
        Some(Reason::SETTLEMENT_PENDING),
        "{again:?}"
    );
    assert_eq!(again.transaction.as_deref(), Some(CO_SIGNED));
    assert_eq!(chain.sends.load(Ordering::SeqCst), sends + 1);
    // Landed meanwhile: success once, then duplicates. Verify refuses it while it is pending,
    // accepts it once landed until its success is delivered (the buyer's retry), then refuses.
    assert_eq!(
        verify(&f, &request).await.result.unwrap_err().reason,
        Reason::DUPLICATE_SETTLEMENT
    );
    chain.land(true);
    assert!(verify(&f, &request).await.result.is_ok());
    let s = settle(&f, &request).await;
    assert!(s.result.is_ok(), "{s:?}");
    assert_eq!(s.transaction.as_deref(), Some(CO_SIGNED));
    let third = settle(&f, &request).await;
    assert_eq!(
        reason(&third),
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{third:?}"
    );
    assert_eq!(third.transaction.as_deref(), Some(CO_SIGNED));
    assert_eq!(
        verify(&f, &request).await.result.unwrap_err().reason,
        Reason::DUPLICATE_SETTLEMENT
    );

    // Another pending payment whose blockhash expires unseen: a failure naming no transaction.
    let chain = self::chain();
    chain.on_send(OnSend::Drop);
    let f = facilitator(
        &[chain.endpoint(false)],
        Arc::new(MemoryStore::new()),
        policy(300),
    );
    assert_eq!(
        reason(&settle(&f, &request).await),
        Some(Reason::SETTLEMENT_PENDING)
    );
    chain.blockhash_valid.store(false, Ordering::SeqCst);
    let s = settle(&f, &request).await;
    assert_eq!(reason(&s), Some(Reason::DUPLICATE_SETTLEMENT), "{s:?}");
    assert_eq!(s.transaction, None);
    assert!(message(&s).contains("did not settle"), "{s:?}");
}

#[tokio::test]
async fn a_busy_payer_is_refused_before_anything_is_read_or_sent() {
    let store = Arc::new(MemoryStore::new());
    // No chain at all: a settle that went on would fail reading it.
    let f = facilitator(&[NOWHERE.into()], store.clone(), policy(1000));
    let turn = store
        .payer_turn(&format!("{DEVNET}/{CLIENT}"), Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    let request = request();
    let ctx = PaymentContext::of(&request)
        .unwrap()
        .with_deadline(Some(Instant::now() + Duration::from_millis(200)));
    let s = FacilitatorRole::settle(&f, &ctx).await.unwrap();
    assert_eq!(reason(&s), Some(Reason::PAYER_BUSY), "{s:?}");
    assert_eq!(s.transaction, None);
    assert_eq!(store.record(&id_of(&f, &request)).await.unwrap(), None);
    drop(turn);
}

#[tokio::test]
async fn a_transaction_that_lands_with_an_error_is_recorded_failed_with_its_signature() {
    let chain = chain();
    chain.on_send(OnSend::LandWithError);
    let store = Arc::new(MemoryStore::new());
    let f = facilitator(&[chain.endpoint(false)], store.clone(), policy(2000));
    let request = request();
    let s = settle(&f, &request).await;
    assert_eq!(
        reason(&s),
        Some(crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED),
        "{s:?}"
    );
    assert_eq!(
        s.transaction.as_deref(),
        Some(CO_SIGNED),
        "named, for audit"
    );
    let again = settle(&f, &request).await;
    assert_eq!(
        reason(&again),
        Some(Reason::DUPLICATE_SETTLEMENT),
        "{again:?}"
    );
    assert_eq!(again.transaction.as_deref(), Some(CO_SIGNED));
    assert!(
        message(&again).contains("its transaction failed"),
        "{again:?}"
    );
    assert_eq!(chain.sends.load(Ordering::SeqCst), 1);
    // The payer is in its cool-down.
    let key = format!("{DEVNET}/{CLIENT}");
    assert!(store.throttled(&key).await.unwrap().is_some());
}
