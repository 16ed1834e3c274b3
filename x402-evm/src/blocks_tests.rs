//! The block watcher over a fake chain: gaps are read block by block, a replacement's hash wakes
//! the same waiter, dropped waiters leave nothing behind, a node without a block is asked again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use alloy::primitives::B256;
use alloy::rpc::types::TransactionReceipt;

use super::*;

/// A chain in memory: blocks of transaction hashes; counts every read.
#[derive(Default)]
struct Chain {
    head: AtomicU64,
    blocks: Mutex<HashMap<u64, Vec<TxHash>>>,
    /// Blocks the node answers `null` for (as a backend that does not have them yet).
    withheld: Mutex<Vec<u64>>,
    /// Whether `eth_getBlockReceipts` is served.
    no_block_receipts: bool,
    reads: Mutex<Vec<String>>,
}

fn receipt(hash: TxHash, block: u64) -> TransactionReceipt {
    serde_json::from_value(serde_json::json!({
        "transactionHash": hash,
        "transactionIndex": "0x0",
        "blockHash": B256::repeat_byte(block as u8),
        "blockNumber": format!("{block:#x}"),
        "from": Address::ZERO,
        "to": Address::ZERO,
        "cumulativeGasUsed": "0x1",
        "gasUsed": "0x1",
        "effectiveGasPrice": "0x1",
        "contractAddress": null,
        "logs": [],
        "logsBloom": format!("0x{}", "00".repeat(256)),
        "status": "0x1",
        "type": "0x2",
    }))
    .expect("a receipt")
}

use alloy::primitives::Address;

impl Chain {
    fn mine(&self, hashes: &[TxHash]) -> u64 {
        let n = self.head.fetch_add(1, Ordering::SeqCst) + 1;
        lock(&self.blocks).insert(n, hashes.to_vec());
        n
    }

    fn read(&self, what: String) {
        lock(&self.reads).push(what);
    }

    fn count(&self, prefix: &str) -> usize {
        lock(&self.reads)
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    fn block_reads(&self, number: u64) -> usize {
        let name = format!("block {number}");
        lock(&self.reads).iter().filter(|r| **r == name).count()
    }

    fn mined_in(&self, hash: TxHash) -> Option<u64> {
        lock(&self.blocks)
            .iter()
            .find(|(_, list)| list.contains(&hash))
            .map(|(n, _)| *n)
    }
}

#[async_trait::async_trait]
impl BlockSource for Chain {
    async fn head(&self) -> Result<u64, SourceError> {
        self.read("head".into());
        Ok(self.head.load(Ordering::SeqCst))
    }

    async fn block_receipts(
        &self,
        number: u64,
    ) -> Result<Option<Vec<TransactionReceipt>>, SourceError> {
        if self.no_block_receipts {
            self.read("unsupported".into());
            return Err(SourceError::Unsupported);
        }
        self.read(format!("block {number}"));
        if lock(&self.withheld).contains(&number) {
            return Ok(None);
        }
        Ok(lock(&self.blocks)
            .get(&number)
            .map(|list| list.iter().map(|h| receipt(*h, number)).collect()))
    }

    async fn block_hashes(&self, number: u64) -> Result<Option<Vec<TxHash>>, SourceError> {
        self.read(format!("block {number}"));
        if lock(&self.withheld).contains(&number) {
            return Ok(None);
        }
        Ok(lock(&self.blocks).get(&number).cloned())
    }

    async fn receipt(&self, hash: TxHash) -> Result<Option<TransactionReceipt>, SourceError> {
        self.read(format!("receipt {hash}"));
        Ok(self.mined_in(hash).map(|n| receipt(hash, n)))
    }
}

fn watcher(chain: &Arc<Chain>) -> Blocks {
    Blocks::with_source(
        Arc::clone(chain) as Arc<dyn BlockSource>,
        Duration::from_millis(40),
        Duration::from_millis(10),
        Duration::from_millis(50),
    )
}

fn hash(n: u8) -> TxHash {
    TxHash::repeat_byte(n)
}

/// The next receipt, skipping block events; panics after a generous bound (a hang, not a speed
/// check: the fake chain answers at once).
async fn receipt_of(waiter: &mut Waiter) -> TransactionReceipt {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        match waiter.next(until).await {
            Event::Mined(r) => return r,
            Event::Block(_) => {}
            Event::Timeout => panic!("no receipt"),
        }
    }
}

/// Waits until the watcher read block `n`.
async fn read_up_to(waiter: &mut Waiter, n: u64) {
    let until = Instant::now() + Duration::from_secs(30);
    while waiter.last_read() < n {
        if let Event::Timeout = waiter.next(until).await {
            panic!("block {n} never read");
        }
    }
}

#[tokio::test]
async fn a_gap_of_blocks_is_read_block_by_block_and_none_is_skipped() {
    let chain = Arc::new(Chain::default());
    chain.mine(&[]);
    let blocks = watcher(&chain);
    let mut first = blocks.waiter().await;
    // The watcher learns the head (1) and starts after it.
    read_up_to(&mut first, 0).await;
    while first.mark().is_none() {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mark = first.mark();
    first.add(hash(7), mark);
    // Six blocks appear at once (a missed stretch); ours is in the fifth.
    for i in 0..6u8 {
        let list = if i == 4 {
            vec![hash(9), hash(7)]
        } else {
            vec![hash(9)]
        };
        chain.mine(&list);
    }
    let r = receipt_of(&mut first).await;
    assert_eq!(r.transaction_hash, hash(7));
    assert_eq!(r.block_number, Some(6));
    read_up_to(&mut first, 7).await;
    for n in 2..=7 {
        assert_eq!(chain.block_reads(n), 1, "block {n} read exactly once");
    }
    assert_eq!(chain.count("receipt"), 0, "no receipt read by hash");
}

#[tokio::test]
async fn a_block_the_node_does_not_have_is_read_again_not_skipped() {
    let chain = Arc::new(Chain::default());
    chain.mine(&[]);
    let blocks = watcher(&chain);
    let mut waiter = blocks.waiter().await;
    while waiter.mark().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mark = waiter.mark();
    waiter.add(hash(1), mark);
    lock(&chain.withheld).push(2);
    chain.mine(&[hash(1)]);
    chain.mine(&[]);
    // The node keeps answering null for block 2: nothing past it is read, and it is asked again.
    while chain.block_reads(2) < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(chain.block_reads(3), 0, "block 3 not read before block 2");
    assert_eq!(waiter.last_read(), 0);
    lock(&chain.withheld).clear();
    let r = receipt_of(&mut waiter).await;
    assert_eq!(r.block_number, Some(2));
}

#[tokio::test]
async fn a_replacement_with_another_hash_wakes_the_same_waiter() {
    let chain = Arc::new(Chain::default());
    chain.mine(&[]);
    let blocks = watcher(&chain);
    let mut waiter = blocks.waiter().await;
    while waiter.mark().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let made = waiter.mark();
    waiter.add(hash(1), made);
    chain.mine(&[hash(8)]);
    read_up_to(&mut waiter, 2).await;
    // The replacement (same nonce, new hash) goes out; it is the one mined.
    let mark = waiter.mark();
    chain.mine(&[hash(2)]);
    waiter.add(hash(2), mark);
    let r = receipt_of(&mut waiter).await;
    assert_eq!(r.transaction_hash, hash(2), "the replacement's receipt");
    // Mined before its hash was added, in a block already read: found in the recent blocks and
    // read by hash, or delivered from the block — either way once.
    assert!(chain.count("receipt") <= 1);
}

#[tokio::test]
async fn dropped_waiters_leave_nothing_behind_and_the_watcher_stops_when_idle() {
    let chain = Arc::new(Chain::default());
    chain.mine(&[]);
    let blocks = watcher(&chain);
    let mut waiters: Vec<Waiter> = Vec::new();
    for i in 0..50u8 {
        let mut w = blocks.waiter().await;
        w.add(hash(i), None);
        waiters.push(w);
    }
    assert_eq!(blocks.waiting(), 50);
    assert_eq!(blocks.waited_hashes(), 50);
    // A wait that times out (nothing mined) and is dropped, as a settle answering pending.
    let until = Instant::now() + Duration::from_millis(30);
    let mut timed_out = waiters.pop().unwrap();
    loop {
        if let Event::Timeout = timed_out.next(until).await {
            break;
        }
    }
    drop(timed_out);
    // Cancelled waits: the futures dropped mid-wait.
    for mut w in waiters.drain(..25) {
        let _ = tokio::time::timeout(
            Duration::from_millis(1),
            w.next(Instant::now() + Duration::from_secs(60)),
        )
        .await;
    }
    assert_eq!(blocks.waiting(), 24);
    assert_eq!(blocks.waited_hashes(), 24);
    drop(waiters);
    assert_eq!(blocks.waiting(), 0);
    assert_eq!(blocks.waited_hashes(), 0);
    // Idle past the linger: the task ends (no more head reads).
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !lock(&blocks.shared.state).running {
            break;
        }
    }
    let heads = chain.count("head");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(chain.count("head"), heads, "no reads once idle");
}

#[tokio::test]
async fn without_block_receipts_only_our_receipts_are_read() {
    let chain = Arc::new(Chain {
        no_block_receipts: true,
        ..Chain::default()
    });
    chain.mine(&[]);
    let blocks = watcher(&chain);
    let mut waiter = blocks.waiter().await;
    while waiter.mark().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mark = waiter.mark();
    waiter.add(hash(3), mark);
    chain.mine(&[hash(10), hash(11), hash(3), hash(12)]);
    let r = receipt_of(&mut waiter).await;
    assert_eq!(r.transaction_hash, hash(3));
    assert_eq!(chain.count("unsupported"), 1, "asked once, then not again");
    assert_eq!(chain.count("receipt"), 1, "ours only");
}

#[tokio::test]
async fn a_waiter_made_while_idle_reads_its_receipt_once_by_hash() {
    let chain = Arc::new(Chain::default());
    let mined = hash(5);
    chain.mine(&[mined]);
    let blocks = watcher(&chain);
    // Made while idle: the head is read once, for every waiter made meanwhile.
    let made = futures::future::join_all((0..8).map(|_| blocks.waiter())).await;
    assert!(made.iter().all(|w| w.made_at() == Some(2)), "after block 1");
    assert_eq!(chain.count("head"), 1, "one head read for all");
    drop(made);
    // A transaction sent before its wait began (mark unknown) is read by hash once.
    let mut waiter = blocks.waiter().await;
    waiter.add(mined, None);
    let r = receipt_of(&mut waiter).await;
    assert_eq!(r.transaction_hash, mined);
    assert_eq!(chain.count("receipt"), 1);
}

#[tokio::test]
async fn two_waits_for_one_hash_are_both_woken() {
    let chain = Arc::new(Chain::default());
    chain.mine(&[]);
    let blocks = watcher(&chain);
    let mut a = blocks.waiter().await;
    let mut b = blocks.waiter().await;
    let mark = a.mark();
    a.add(hash(4), mark);
    b.add(hash(4), mark);
    assert_eq!(blocks.waited_hashes(), 1);
    chain.mine(&[hash(4)]);
    assert_eq!(receipt_of(&mut a).await.transaction_hash, hash(4));
    assert_eq!(receipt_of(&mut b).await.transaction_hash, hash(4));
    drop(a);
    assert_eq!(blocks.waited_hashes(), 1, "still waited for by the other");
    drop(b);
    assert_eq!(blocks.waited_hashes(), 0);
}
