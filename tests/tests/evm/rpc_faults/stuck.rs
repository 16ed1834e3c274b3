//! Lost and stuck settlement transactions: one the node does not have is sent again byte for byte;
//! one not mined after `stuck_after_blocks` is replaced with the same nonce and fees raised by at
//! least 10 % on both fields, never above the caps. Whichever copy is mined settles the payment,
//! once, and the store names it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use alloy::consensus::Transaction as _;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{TxHash, U256};
use alloy::providers::{DynProvider, Provider};
use x402_core::{
    Facilitator as _, Outcome, PaymentId, Reason, SettleTimeouts, SettlementStore as _,
};
use x402_evm::signers::TxConfig;
use x402_tests::evm::exact::{ExactHarness, UNITS, harness_tx_config};
use x402_tests::evm::rpc_proxy::Fault;

use super::{Proxied, SEND, options};

/// Blocks after which the tests' settlements count as stuck.
const STUCK_AFTER: u64 = 2;

fn tx_config() -> TxConfig {
    TxConfig {
        stuck_after_blocks: STUCK_AFTER,
        // The market as it is when replacing (the base fee is moved under the transaction).
        fee_cache_ttl: Duration::ZERO,
        receipt_timeout: Duration::from_secs(30),
        ..harness_tx_config()
    }
}

async fn proxied(tx: TxConfig) -> Proxied {
    let h = ExactHarness::start().await;
    let options = options(&h);
    Proxied::with_tx(h, 1, options, tx).await
}

async fn raw(provider: &DynProvider, method: &'static str, params: serde_json::Value) {
    let _: serde_json::Value = provider
        .raw_request(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
}

/// The payment being settled and its first transaction, once it reached the node.
async fn first_send(p: &Proxied) -> (PaymentId, TxHash) {
    for _ in 0..500 {
        if p.proxies[0].forwarded(SEND) >= 1 {
            let records = p.store.unresolved(p.h.network.as_str(), 10).await.unwrap();
            let (id, record) = records.into_iter().next().expect("written ahead");
            let hash = record.intent.expect("intent").transaction.parse().unwrap();
            return (id, hash);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the settlement was never sent");
}

/// How many transactions were signed (and written ahead) for the payment.
async fn signed(p: &Proxied, id: &PaymentId) -> usize {
    let record = p.store.record(id).await.unwrap().expect("recorded");
    record.intent.expect("intent").detail["attempts"]
        .as_array()
        .expect("attempts")
        .len()
}

/// `(maxFeePerGas, maxPriorityFeePerGas)` of a transaction the node has.
async fn fees(p: &Proxied, hash: TxHash) -> (u128, u128) {
    let tx =
        p.h.bed
            .provider()
            .get_transaction_by_hash(hash)
            .await
            .unwrap();
    let tx = tx.expect("known to the node");
    (tx.max_fee_per_gas(), tx.max_priority_fee_per_gas().unwrap())
}

/// Mines a block every 300 ms (up to `limit`) until stopped.
fn miner(provider: DynProvider, limit: usize) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let task = tokio::spawn(async move {
        for _ in 0..limit {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            raw(&provider, "evm_mine", serde_json::json!([])).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    (stop, task)
}

async fn lost_send_is_sent_again(fault: Fault) {
    let p = proxied(tx_config()).await;
    let request = p.payment(0).await;
    let seller = p.h.bed.seller().address;
    let s0 = p.h.usdc(seller).await;
    let signer = p.pool.addresses()[0];
    let n0 = p.h.nonce_of(signer, false).await;
    p.proxies[0].fault_times(SEND, fault.clone(), 1);

    let s = p.facilitator.settle(&request).await.unwrap();
    assert!(s.success, "{fault:?}: {s:?}");
    assert_eq!(
        p.proxies[0].received(SEND),
        2,
        "{fault:?}: sent, then again"
    );
    assert_eq!(p.broadcasts(), 1, "{fault:?}: the node got it once");
    assert_eq!(p.pool.stats().rebroadcasts, 1);
    assert_eq!(p.pool.stats().replacements, 0);
    assert_eq!(p.h.nonce_of(signer, false).await, n0 + 1, "one nonce");
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS), "paid once");
    let again = p.facilitator.settle(&request).await.unwrap();
    assert_eq!(again.error_reason, Some(Reason::DUPLICATE_SETTLEMENT));
    assert_eq!(again.transaction, s.transaction);
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS));
}

#[tokio::test]
async fn a_send_the_node_never_got_is_sent_again_and_lands_once() {
    // "Accepted" by a gateway that lost it.
    lost_send_is_sent_again(Fault::Result(serde_json::json!(TxHash::ZERO))).await;
}

#[tokio::test]
async fn a_send_whose_connection_dropped_before_the_node_is_sent_again_and_lands_once() {
    lost_send_is_sent_again(Fault::Drop).await;
}

#[tokio::test]
async fn a_stuck_settlement_is_replaced_with_higher_fees_and_the_replacement_settles_once() {
    let p = proxied(tx_config()).await;
    let request = p.payment(0).await;
    let (seller, signer) = (p.h.bed.seller().address, p.pool.addresses()[0]);
    let (s0, n0) = (p.h.usdc(seller).await, p.h.nonce_of(signer, false).await);
    p.h.set_automine(false).await;
    let f = p.facilitator.clone();
    let r = request.clone();
    let settling = tokio::spawn(async move { f.settle(&r).await });
    let (id, first) = first_send(&p).await;
    let (fee, tip) = fees(&p, first).await;

    // The base fee jumps above the transaction's fee cap: blocks go by without it.
    raw(
        &p.h.bed.provider(),
        "anvil_setNextBlockBaseFeePerGas",
        serde_json::json!([U256::from(fee * 2)]),
    )
    .await;
    let (stop, mining) = miner(p.h.bed.provider(), 40);
    let s = settling.await.unwrap().unwrap();
    stop.store(true, Ordering::SeqCst);
    mining.await.unwrap();
    assert!(s.success, "{s:?}");
    let replacement: TxHash = s.transaction.parse().unwrap();
    assert_ne!(replacement, first, "the replacement was mined");

    let (new_fee, new_tip) = fees(&p, replacement).await;
    assert!(
        new_fee * 10 >= fee * 11,
        "maxFeePerGas +10 %: {fee} → {new_fee}"
    );
    assert!(
        new_tip * 10 >= tip * 11,
        "priority fee +10 %: {tip} → {new_tip}"
    );
    let caps = tx_config();
    assert!(new_fee <= caps.max_fee_per_gas_cap && new_tip <= caps.max_priority_fee_cap);
    let bed = p.h.bed.provider();
    let receipt = bed.get_transaction_receipt(replacement).await.unwrap();
    assert!(receipt.expect("mined").status());
    assert!(bed.get_transaction_receipt(first).await.unwrap().is_none());
    assert!(bed.get_transaction_by_hash(first).await.unwrap().is_none());
    assert_eq!(p.pool.stats().replacements, 1);
    assert_eq!(
        signed(&p, &id).await,
        2,
        "the first and its replacement, written ahead"
    );
    assert_eq!(p.h.nonce_of(signer, false).await, n0 + 1, "one nonce");
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS), "paid once");
    let record = p.store.record(&id).await.unwrap().unwrap();
    assert_eq!(
        record.outcome,
        Some(Outcome::Settled {
            transaction: s.transaction.clone()
        })
    );
    let sent = p.broadcasts();
    let again = p.facilitator.settle(&request).await.unwrap();
    assert_eq!(again.error_reason, Some(Reason::DUPLICATE_SETTLEMENT));
    assert_eq!(again.transaction, s.transaction);
    assert_eq!(p.broadcasts(), sent);
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS));
}

#[tokio::test]
async fn a_stuck_settlement_at_the_fee_cap_is_never_replaced_above_it_and_lands_once() {
    // A cap the first transaction is signed at (twice the base fee would be above it).
    let h = ExactHarness::start().await;
    let base = h
        .bed
        .provider()
        .get_fee_history(1, BlockNumberOrTag::Latest, &[])
        .await
        .unwrap()
        .next_block_base_fee()
        .unwrap();
    let cap = base * 3 / 2;
    let options = options(&h);
    let tx = TxConfig {
        max_fee_per_gas_cap: cap,
        ..tx_config()
    };
    let p = Proxied::with_tx(h, 1, options, tx).await;
    let request = p.payment(0).await;
    let (seller, signer) = (p.h.bed.seller().address, p.pool.addresses()[0]);
    let (s0, n0) = (p.h.usdc(seller).await, p.h.nonce_of(signer, false).await);
    p.h.set_automine(false).await;
    let f = p
        .facilitator
        .clone()
        .with_timeouts(SettleTimeouts::new(Duration::from_secs(4)));
    let r = request.clone();
    let settling = tokio::spawn(async move { f.settle(&r).await });
    let (id, first) = first_send(&p).await;
    let (fee, _) = fees(&p, first).await;
    assert!(fee <= cap);
    assert!(fee * 11 > cap * 10, "signed at the cap: {fee} of {cap}");

    // Four blocks with a base fee above the cap: stuck, and no replacement can be signed.
    raw(
        &p.h.bed.provider(),
        "anvil_setNextBlockBaseFeePerGas",
        serde_json::json!([U256::from(fee * 2)]),
    )
    .await;
    let (_, mining) = miner(p.h.bed.provider(), 4);
    mining.await.unwrap();
    let s = settling.await.unwrap().unwrap();
    assert_eq!(s.error_reason, Some(Reason::SETTLEMENT_PENDING), "{s:?}");
    assert_eq!(s.transaction.parse::<TxHash>().unwrap(), first);
    assert_eq!(p.pool.stats().replacements, 0);
    assert_eq!(signed(&p, &id).await, 1, "nothing above the cap was signed");
    assert_eq!(p.h.usdc(seller).await, s0, "not yet");

    // The base fee comes down under the cap: the first transaction is mined — by the node that
    // kept it, or sent again by reconciliation to one that dropped it — and answered once.
    let (_, mining) = miner(p.h.bed.provider(), 4);
    mining.await.unwrap();
    p.h.set_automine(true).await;
    let mut landed = false;
    for _ in 0..5 {
        let lines = p.facilitator.reconcile().await;
        let pass = lines[0].result.as_ref().unwrap();
        if pass.landed == 1 {
            landed = true;
            break;
        }
        assert_eq!(pass.failed, 0, "{lines:?}");
        p.h.mine().await;
    }
    assert!(landed, "the transaction at the cap landed");
    let s = p.facilitator.settle(&request).await.unwrap();
    assert!(s.success, "{s:?}");
    assert_eq!(s.transaction.parse::<TxHash>().unwrap(), first);
    let again = p.facilitator.settle(&request).await.unwrap();
    assert_eq!(again.error_reason, Some(Reason::DUPLICATE_SETTLEMENT));
    let record = p.store.record(&id).await.unwrap().unwrap();
    assert!(
        record
            .outcome
            .is_some_and(|o| o.transaction() == Some(s.transaction.as_str()))
    );
    assert_eq!(p.h.nonce_of(signer, false).await, n0 + 1, "one nonce");
    assert_eq!(p.h.usdc(seller).await, s0 + U256::from(UNITS), "paid once");
}
