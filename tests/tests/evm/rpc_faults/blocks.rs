//! Receipts per block, not per payment: with 1-second blocks, settlements are confirmed by the
//! block watcher's one read per block, counted at the proxy. A node without
//! `eth_getBlockReceipts`, or one that answers a block without our transaction, still settles
//! every payment once. Counts are asserted; durations are only printed.

use std::collections::BTreeMap;

use alloy::providers::Provider;
use x402_core::Facilitator as _;
use x402_evm::signers::TxConfig;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::evm::rpc_proxy::{Fault, RpcProxy};

use super::{Proxied, SEND, options};

const METHODS: &[&str] = &[
    "batch",
    "eth_blockNumber",
    "eth_getBlockReceipts",
    "eth_getBlockByNumber",
    "eth_getTransactionReceipt",
    "eth_getTransactionByHash",
    "eth_call",
    "eth_getCode",
    "eth_feeHistory",
    SEND,
    "eth_chainId",
    "eth_getTransactionCount",
];

pub(super) fn counts(proxy: &RpcProxy) -> BTreeMap<&'static str, usize> {
    METHODS.iter().map(|m| (*m, proxy.received(m))).collect()
}

fn delta(
    before: &BTreeMap<&'static str, usize>,
    after: &BTreeMap<&'static str, usize>,
) -> BTreeMap<&'static str, usize> {
    after
        .iter()
        .map(|(m, n)| (*m, n - before.get(m).copied().unwrap_or(0)))
        .collect()
}

/// A bed mining a block every second, a facilitator with the default receipt settings (the
/// watcher polls every 250 ms at most) behind one counting proxy.
pub(super) async fn one_second_blocks() -> Proxied {
    let h = ExactHarness::start().await;
    let options = options(&h);
    let p = Proxied::with_tx(h, 1, options, TxConfig::default()).await;
    let _: serde_json::Value =
        p.h.bed
            .provider()
            .raw_request("evm_setIntervalMining".into(), (1,))
            .await
            .expect("interval mining");
    p
}

/// Settles `rounds` payments from each of the bed's buyers, the buyers concurrently; returns the
/// per-method calls the facilitator made (`"batch"`: JSON-RPC batches, not a call) and the
/// blocks mined meanwhile.
async fn settle_rounds(p: &Proxied, rounds: usize) -> (BTreeMap<&'static str, usize>, u64, usize) {
    settle_rounds_in(p, rounds, false).await
}

/// [`settle_rounds`], each settle inside [`x402_evm::provider::coalescing`] when `coalesced`.
pub(super) async fn settle_rounds_in(
    p: &Proxied,
    rounds: usize,
    coalesced: bool,
) -> (BTreeMap<&'static str, usize>, u64, usize) {
    let buyers = p.h.bed.buyers().len();
    let first_block = p.h.bed.provider().get_block_number().await.unwrap();
    let before = counts(&p.proxies[0]);
    let started = std::time::Instant::now();
    let lanes = (0..buyers).map(|buyer| async move {
        for round in 0..rounds {
            let request = p.payment(buyer).await;
            let settle = p.facilitator.settle(&request);
            let s = if coalesced {
                x402_evm::provider::coalescing(settle).await
            } else {
                settle.await
            }
            .unwrap();
            assert!(s.success, "buyer {buyer} round {round}: {s:?}");
        }
    });
    futures::future::join_all(lanes).await;
    let calls = delta(&before, &counts(&p.proxies[0]));
    let blocks = p.h.bed.provider().get_block_number().await.unwrap() - first_block;
    let settles = buyers * rounds;
    let total: usize = calls
        .iter()
        .filter(|(m, _)| **m != "batch")
        .map(|(_, n)| n)
        .sum();
    eprintln!(
        "{settles} settles in {:?} over {blocks} blocks: {total} RPC calls ({:.2} per settle): {calls:?}",
        started.elapsed(),
        total as f64 / settles as f64
    );
    (calls, blocks, settles)
}

#[tokio::test]
async fn with_one_second_blocks_receipts_come_from_one_read_per_block_not_polls_per_payment() {
    let p = one_second_blocks().await;
    let (calls, blocks, settles) = settle_rounds(&p, 3).await;
    assert_eq!(calls[SEND], settles, "one broadcast each, none again");
    assert_eq!(
        calls["eth_call"], settles,
        "one simulation each, under the payment's claim"
    );
    assert_eq!(calls["eth_getTransactionReceipt"], 0, "no receipt polls");
    assert!(
        calls["eth_getBlockReceipts"] as u64 <= blocks,
        "each block read at most once: {} reads, {blocks} blocks",
        calls["eth_getBlockReceipts"]
    );
    assert!(calls["eth_getBlockReceipts"] > 0);
    assert_eq!(p.pool.stats().sent, settles as u64);
    let stats = p.pool.blocks().stats();
    assert_eq!(stats.delivered, settles as u64, "{stats:?}");
    assert_eq!(p.pool.blocks().waited_hashes(), 0, "nothing left waiting");
}

#[tokio::test]
async fn a_node_without_block_receipts_is_read_by_block_lists_and_our_receipts_only() {
    let p = one_second_blocks().await;
    p.proxies[0].fault(
        "eth_getBlockReceipts",
        Fault::error(
            -32601,
            "the method eth_getBlockReceipts does not exist/is not available",
        ),
    );
    let (calls, blocks, settles) = settle_rounds(&p, 2).await;
    assert_eq!(calls[SEND], settles);
    assert_eq!(
        calls["eth_getBlockReceipts"], 1,
        "asked once, then not again"
    );
    assert!(calls["eth_getBlockByNumber"] as u64 <= blocks);
    assert_eq!(
        calls["eth_getTransactionReceipt"], settles,
        "one receipt per settlement, ours only"
    );
}

#[tokio::test]
async fn a_node_answering_blocks_without_our_transactions_still_settles_each_payment_once() {
    let p = one_second_blocks().await;
    // Every block "has" no receipts: the watcher never sees ours in a block.
    p.proxies[0].fault("eth_getBlockReceipts", Fault::Result(serde_json::json!([])));
    let seller = p.h.bed.seller().address;
    let s0 = p.h.usdc(seller).await;
    let (calls, _, settles) = settle_rounds(&p, 1).await;
    assert_eq!(calls[SEND], settles, "nothing sent twice");
    assert!(
        calls["eth_getTransactionByHash"] >= settles,
        "found by the drop check"
    );
    assert_eq!(
        p.h.usdc(seller).await,
        s0 + alloy::primitives::U256::from(x402_tests::evm::exact::UNITS * settles as u64),
        "each paid once"
    );
}

/// Waits until `done` holds, at most `bound` (the settle's own receipt bound: a hang guard, not a
/// timing check).
async fn until(what: &str, bound: std::time::Duration, mut done: impl FnMut() -> bool) {
    let give_up = std::time::Instant::now() + bound;
    while !done() {
        assert!(std::time::Instant::now() < give_up, "{what} never happened");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_receipt_reorganised_away_before_its_confirmations_is_waited_for_again_and_settles_once()
{
    let h = ExactHarness::start().await;
    let options = options(&h);
    let tx = TxConfig {
        confirmations: 2,
        receipt_timeout: std::time::Duration::from_secs(60),
        ..x402_tests::evm::exact::harness_tx_config()
    };
    let p = Proxied::with_tx(h, 1, options, tx).await;
    let seller = p.h.bed.seller().address;
    let s0 = p.h.usdc(seller).await;
    p.h.set_automine(false).await;
    let request = p.payment(0).await;
    let settle = p.facilitator.settle(&request);
    let bound = p.pool.config().receipt_timeout;
    let chain = async {
        until("the settlement's send", bound, || {
            p.proxies[0].forwarded(SEND) >= 1
        })
        .await;
        p.h.mine().await;
        let mined_at = p.h.bed.provider().get_block_number().await.unwrap();
        // The watcher hands the receipt over (one confirmation of two)…
        until("the receipt's delivery", bound, || {
            p.pool.blocks().stats().delivered >= 1
        })
        .await;
        // …then the block is replaced by an empty one: the transaction is gone from the chain.
        let _: serde_json::Value =
            p.h.bed
                .provider()
                .raw_request("anvil_reorg".into(), (1, Vec::<()>::new()))
                .await
                .expect("anvil_reorg");
        let provider = p.h.bed.provider();
        for _ in 0..120 {
            let _: serde_json::Value = provider
                .raw_request("evm_mine".into(), ())
                .await
                .expect("evm_mine");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if p.pool.blocks().waited_hashes() == 0 {
                break;
            }
        }
        mined_at
    };
    let (s, reorged_block) = futures::join!(settle, chain);
    let s = s.unwrap();
    assert!(s.success, "{s:?}");
    let receipt =
        p.h.bed
            .provider()
            .get_transaction_receipt(s.transaction.parse().unwrap())
            .await
            .unwrap()
            .expect("on the chain after the reorganisation");
    assert!(receipt.status());
    let head = p.h.bed.provider().get_block_number().await.unwrap();
    assert!(
        receipt.block_number.unwrap() < head,
        "two confirmations on the canonical chain"
    );
    assert!(
        p.pool.blocks().stats().delivered >= 2,
        "delivered again after the reorganisation: {:?} (first in block {reorged_block})",
        p.pool.blocks().stats()
    );
    assert_eq!(p.pool.stats().sent, 1, "one transaction signed");
    assert_eq!(
        p.h.usdc(seller).await,
        s0 + alloy::primitives::U256::from(x402_tests::evm::exact::UNITS),
        "paid once"
    );
}
