//! One block watcher per chain: settlements are confirmed from one block-level read per new
//! block, not from receipt polls per payment.
//!
//! - **New blocks** are learnt by polling `eth_blockNumber` every [`Blocks::interval`] (the
//!   chain's block time ÷ 4, never more than the pool's `poll_interval`), and only while some
//!   settlement waits (then for a short linger, so back-to-back settles do not restart it). The
//!   configured endpoints are HTTP(S) only ([`crate::provider`] refuses other schemes), so there
//!   is no `eth_subscribe` channel to listen on.
//! - **Each new block is read once**: `eth_getBlockReceipts(number)` where the node serves it;
//!   where it does not (method unknown), `eth_getBlockByNumber(number, false)` and
//!   `eth_getTransactionReceipt` for our waited-for hashes in that block only. The receipts wake
//!   the waiters whose hashes they carry.
//! - **No block is skipped.** The watcher keeps the next block number to read and reads every
//!   block up to the head in order; a block the node cannot serve (an error, or `null` — a
//!   backend behind a load balancer that does not have it yet) stops the round there, and the
//!   same block is read again on the next round. A node that answers a block without our
//!   transaction when it holds it cannot fail a settlement: the watch's drop check
//!   ([`crate::watch`]) asks for the transaction by hash, finds it mined, and reads its receipt.
//! - **No lost wakeups.** A [`Waiter`] is created before its transaction is sent and records the
//!   next block the watcher will read: every block that can hold the transaction is read after
//!   the waiter exists. A hash added after its transaction went out (a replacement, or a send
//!   whose answer was lost) is also looked up in the transaction lists of the last
//!   [`RECENT_BLOCKS`] blocks read; when those do not reach back to the mark given, its receipt is
//!   read once by hash. A waiter created while the watcher is idle reads the head first (one
//!   call, shared by the waiters created meanwhile).
//! - **Bounded memory.** A waiter's registrations are removed when it is dropped (its settle
//!   answered, timed out or was cancelled); the watcher remembers the transaction hashes of
//!   [`RECENT_BLOCKS`] blocks and stops when nobody waits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::primitives::TxHash;
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::transports::RpcError;
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, warn};

use crate::error::describe_rpc_error;

/// How many read blocks' transaction hashes are remembered for hashes added late.
pub const RECENT_BLOCKS: usize = 16;

/// How long the watcher keeps polling once nobody waits.
pub const LINGER: Duration = Duration::from_secs(5);

/// The shortest poll interval used.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Why a block-level read gave nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The node does not serve the method.
    Unsupported,
    /// The read failed (transport, node error); worth trying again.
    Failed(String),
}

/// The reads the watcher makes; implemented for a provider, and by fakes in tests.
#[async_trait::async_trait]
pub trait BlockSource: Send + Sync + 'static {
    /// The newest block number.
    async fn head(&self) -> Result<u64, SourceError>;
    /// Every receipt of block `number`; `Ok(None)` when the node does not have the block.
    async fn block_receipts(
        &self,
        number: u64,
    ) -> Result<Option<Vec<TransactionReceipt>>, SourceError>;
    /// The transaction hashes of block `number`; `Ok(None)` when the node does not have it.
    async fn block_hashes(&self, number: u64) -> Result<Option<Vec<TxHash>>, SourceError>;
    /// The receipt of `hash`, if mined.
    async fn receipt(&self, hash: TxHash) -> Result<Option<TransactionReceipt>, SourceError>;
}

fn failed(e: &RpcError<alloy::transports::TransportErrorKind>) -> SourceError {
    if let RpcError::ErrorResp(payload) = e {
        let message = payload.message.to_ascii_lowercase();
        if payload.code == -32601
            || message.contains("method not found")
            || message.contains("not supported")
            || message.contains("does not exist")
            || message.contains("not available")
            || message.contains("unknown method")
        {
            return SourceError::Unsupported;
        }
    }
    SourceError::Failed(describe_rpc_error(e))
}

#[async_trait::async_trait]
impl BlockSource for DynProvider {
    async fn head(&self) -> Result<u64, SourceError> {
        self.get_block_number()
            .await
            .map_err(|e| SourceError::Failed(describe_rpc_error(&e)))
    }

    async fn block_receipts(
        &self,
        number: u64,
    ) -> Result<Option<Vec<TransactionReceipt>>, SourceError> {
        self.get_block_receipts(BlockId::Number(BlockNumberOrTag::Number(number)))
            .await
            .map_err(|e| failed(&e))
    }

    async fn block_hashes(&self, number: u64) -> Result<Option<Vec<TxHash>>, SourceError> {
        let block = self
            .get_block_by_number(BlockNumberOrTag::Number(number))
            .await
            .map_err(|e| SourceError::Failed(describe_rpc_error(&e)))?;
        Ok(block.map(|b| b.transactions.hashes().collect()))
    }

    async fn receipt(&self, hash: TxHash) -> Result<Option<TransactionReceipt>, SourceError> {
        self.get_transaction_receipt(hash)
            .await
            .map_err(|e| SourceError::Failed(describe_rpc_error(&e)))
    }
}

/// Counters since the watcher was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Blocks read (each once, unless the node could not serve it).
    pub blocks_read: u64,
    /// Block reads the node could not serve (read again later).
    pub block_read_failures: u64,
    /// Receipts read by hash (late hashes, idle starts, the fallback without block receipts).
    pub receipts_by_hash: u64,
    /// Receipts handed to waiters.
    pub delivered: u64,
}

/// The chain's block watcher; cheap to clone (shared).
#[derive(Clone)]
pub struct Blocks {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocks")
            .field("interval", &self.shared.interval)
            .finish_non_exhaustive()
    }
}

struct Shared {
    source: Arc<dyn BlockSource>,
    interval: Duration,
    block_time: Duration,
    linger: Duration,
    state: Mutex<State>,
    /// Held while an idle watcher reads the head for its first waiters.
    starting: tokio::sync::Mutex<()>,
    /// The last block read (0: none yet).
    read: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// The next block to read; `None` while idle.
    next: Option<u64>,
    waiters: HashMap<u64, Arc<Slot>>,
    /// Waited-for hash → its waiters (usually one).
    hashes: HashMap<TxHash, Vec<u64>>,
    /// The transaction hashes of the last blocks read, oldest first.
    recent: VecDeque<(u64, Vec<TxHash>)>,
    running: bool,
    next_id: u64,
    /// The node does not serve `eth_getBlockReceipts`.
    per_tx: bool,
    stats: BlockStats,
}

#[derive(Default)]
struct Slot {
    /// Receipts found for the waiter's hashes, in the order found.
    found: Mutex<VecDeque<TransactionReceipt>>,
    /// Hashes whose receipt is to be read by hash on the next round.
    lookups: Mutex<Vec<TxHash>>,
    notify: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What [`Waiter::next`] saw.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // one receipt per settlement
pub enum Event {
    /// A receipt of one of the waiter's hashes.
    Mined(TransactionReceipt),
    /// Blocks up to this number were read (none of them holds a hash of the waiter's).
    Block(u64),
    /// The time given passed.
    Timeout,
}

impl Blocks {
    /// A watcher reading through `provider`, for a chain whose blocks come every `block_time`,
    /// polling at most every `max_interval`.
    pub fn new(provider: DynProvider, block_time: Duration, max_interval: Duration) -> Self {
        Self::with_source(Arc::new(provider), block_time, max_interval, LINGER)
    }

    /// A watcher over any [`BlockSource`] (tests), lingering `linger` once nobody waits.
    pub fn with_source(
        source: Arc<dyn BlockSource>,
        block_time: Duration,
        max_interval: Duration,
        linger: Duration,
    ) -> Self {
        let interval = (block_time / 4).min(max_interval).max(MIN_INTERVAL);
        Self {
            shared: Arc::new(Shared {
                source,
                interval,
                block_time,
                linger,
                state: Mutex::new(State::default()),
                starting: tokio::sync::Mutex::new(()),
                read: watch::channel(0).0,
            }),
        }
    }

    /// How often the head is polled while someone waits.
    pub fn interval(&self) -> Duration {
        self.shared.interval
    }

    /// The chain's block time.
    pub fn block_time(&self) -> Duration {
        self.shared.block_time
    }

    /// Counters since the watcher was made.
    pub fn stats(&self) -> BlockStats {
        lock(&self.shared.state).stats
    }

    /// Whether the watcher is polling (someone waits, or the linger after has not run out).
    pub fn running(&self) -> bool {
        lock(&self.shared.state).running
    }

    /// How many waiters are registered (each removed when dropped).
    pub fn waiting(&self) -> usize {
        lock(&self.shared.state).waiters.len()
    }

    /// How many hashes are waited for.
    pub fn waited_hashes(&self) -> usize {
        lock(&self.shared.state).hashes.len()
    }

    /// A waiter; create it **before** sending the transactions it will wait for. While the
    /// watcher is idle this reads the head once (shared by concurrent callers): every block up
    /// to it existed before anything the waiter waits for was sent.
    pub async fn waiter(&self) -> Waiter {
        if lock(&self.shared.state).next.is_none() {
            let _one = self.shared.starting.lock().await;
            if lock(&self.shared.state).next.is_none() {
                match self.shared.source.head().await {
                    Ok(head) => {
                        lock(&self.shared.state)
                            .next
                            .get_or_insert(head.saturating_add(1));
                    }
                    // Unknown: the waiter's hashes are read by hash once.
                    Err(e) => debug!(error = ?e, "block watcher: head read failed at start"),
                }
            }
        }
        let slot = Arc::new(Slot::default());
        let (id, from) = {
            let mut state = lock(&self.shared.state);
            let id = state.next_id;
            state.next_id += 1;
            state.waiters.insert(id, Arc::clone(&slot));
            let from = state.next;
            if !state.running {
                state.running = true;
                tokio::spawn(run(Arc::clone(&self.shared)));
            }
            (id, from)
        };
        Waiter {
            shared: Arc::clone(&self.shared),
            id,
            slot,
            from,
            hashes: Vec::new(),
            read: self.shared.read.subscribe(),
        }
    }
}

/// One settlement's wait: the hashes of its copies, woken by the watcher.
pub struct Waiter {
    shared: Arc<Shared>,
    id: u64,
    slot: Arc<Slot>,
    /// The next block the watcher was to read when the waiter was made.
    from: Option<u64>,
    hashes: Vec<TxHash>,
    read: watch::Receiver<u64>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("from", &self.from)
            .field("hashes", &self.hashes)
            .finish_non_exhaustive()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.waiters.remove(&self.id);
        for hash in &self.hashes {
            if let Some(ids) = state.hashes.get_mut(hash) {
                ids.retain(|id| *id != self.id);
                if ids.is_empty() {
                    state.hashes.remove(hash);
                }
            }
        }
    }
}

impl Waiter {
    /// The mark for a transaction sent from now on: the next block the watcher will read.
    pub fn mark(&self) -> Option<u64> {
        lock(&self.shared.state).next
    }

    /// The mark taken when the waiter was made.
    pub fn made_at(&self) -> Option<u64> {
        self.from
    }

    /// The last block read (0: none yet).
    pub fn last_read(&self) -> u64 {
        *self.read.borrow()
    }

    /// Waits for `hash` too, a transaction sent after `mark` was taken ([`Waiter::mark`];
    /// `None`: unknown).
    pub fn add(&mut self, hash: TxHash, mark: Option<u64>) {
        let mut state = lock(&self.shared.state);
        let ids = state.hashes.entry(hash).or_default();
        if !ids.contains(&self.id) {
            ids.push(self.id);
        }
        self.hashes.push(hash);
        let look_up = match (mark, state.next) {
            (None, _) | (_, None) => true,
            // Nothing read since the mark: every block that can hold it is still to come.
            (Some(mark), Some(next)) if next <= mark => false,
            (Some(mark), Some(_)) => {
                let covered = state.recent.front().is_some_and(|(n, _)| *n <= mark);
                !covered
                    || state
                        .recent
                        .iter()
                        .any(|(n, list)| *n >= mark && list.contains(&hash))
            }
        };
        if look_up {
            lock(&self.slot.lookups).push(hash);
        }
    }

    /// Reads `hash`'s receipt by hash on the watcher's next round (a receipt that went missing).
    pub fn look_up(&self, hash: TxHash) {
        lock(&self.slot.lookups).push(hash);
    }

    /// The next receipt of one of the waiter's hashes, or the next block read, or `until`.
    pub async fn next(&mut self, until: Instant) -> Event {
        loop {
            if let Some(receipt) = lock(&self.slot.found).pop_front() {
                return Event::Mined(receipt);
            }
            if self.read.has_changed().unwrap_or(false) {
                return Event::Block(*self.read.borrow_and_update());
            }
            tokio::select! {
                () = self.slot.notify.notified() => {}
                changed = self.read.changed() => {
                    if changed.is_err() {
                        // The watcher is gone with its sender: only the time is left.
                        sleep_until(until).await;
                        return Event::Timeout;
                    }
                    if let Some(receipt) = lock(&self.slot.found).pop_front() {
                        return Event::Mined(receipt);
                    }
                    return Event::Block(*self.read.borrow_and_update());
                }
                () = sleep_until(until) => return Event::Timeout,
            }
        }
    }
}

/// The watcher's task: runs while someone waits (and for the linger after).
async fn run(shared: Arc<Shared>) {
    let mut idle_since: Option<Instant> = None;
    loop {
        let round = Instant::now();
        {
            let mut state = lock(&shared.state);
            if state.waiters.is_empty() {
                let since = *idle_since.get_or_insert(round);
                if since.elapsed() >= shared.linger {
                    state.running = false;
                    state.next = None;
                    state.recent.clear();
                    return;
                }
            } else {
                idle_since = None;
            }
        }
        match shared.source.head().await {
            Ok(head) => read_up_to(&shared, head).await,
            Err(e) => debug!(error = ?e, "block watcher: head read failed; trying again"),
        }
        look_up(&shared).await;
        sleep_until(round + shared.interval).await;
    }
}

/// Reads every block from the next one up to `head`, in order, stopping at one the node cannot
/// serve.
async fn read_up_to(shared: &Shared, head: u64) {
    loop {
        let number = {
            let mut state = lock(&shared.state);
            let next = *state.next.get_or_insert(head.saturating_add(1));
            if next > head {
                return;
            }
            if state.waiters.is_empty() {
                // Nobody waits: nothing to read in these blocks.
                state.next = Some(head.saturating_add(1));
                state.recent.clear();
                return;
            }
            next
        };
        match read_block(shared, number).await {
            Ok((hashes, receipts)) => {
                // Delivered, advanced and remembered in one step: a hash added meanwhile either
                // sees the block read (and is looked up) or is in the map when it is delivered.
                let mut state = lock(&shared.state);
                if state.next != Some(number) {
                    return;
                }
                let mut delivered = Vec::with_capacity(receipts.len());
                for receipt in receipts {
                    delivered.push(receipt.transaction_hash);
                    deliver(&mut state, receipt);
                }
                for hash in hashes.iter().filter(|h| !delivered.contains(h)) {
                    // Registered after its receipts were read: read by hash.
                    for id in state.hashes.get(hash).into_iter().flatten() {
                        if let Some(slot) = state.waiters.get(id) {
                            lock(&slot.lookups).push(*hash);
                        }
                    }
                }
                state.next = Some(number + 1);
                state.recent.push_back((number, hashes));
                while state.recent.len() > RECENT_BLOCKS {
                    state.recent.pop_front();
                }
                state.stats.blocks_read += 1;
                drop(state);
                shared.read.send_replace(number);
            }
            Err(e) => {
                lock(&shared.state).stats.block_read_failures += 1;
                debug!(block = number, error = %e, "block watcher: block not read; trying again next round");
                return;
            }
        }
    }
}

/// Reads block `number`: its transaction hashes and the receipts of interest (all of them with
/// `eth_getBlockReceipts`, ours only without).
async fn read_block(
    shared: &Shared,
    number: u64,
) -> Result<(Vec<TxHash>, Vec<TransactionReceipt>), String> {
    let per_tx = lock(&shared.state).per_tx;
    if !per_tx {
        match shared.source.block_receipts(number).await {
            Ok(Some(receipts)) => {
                let hashes = receipts.iter().map(|r| r.transaction_hash).collect();
                return Ok((hashes, receipts));
            }
            // The node does not have the block (yet): its transaction list is asked below.
            Ok(None) => {}
            Err(SourceError::Unsupported) => {
                warn!(
                    "the node does not serve eth_getBlockReceipts; reading block transaction lists and our receipts"
                );
                lock(&shared.state).per_tx = true;
            }
            Err(SourceError::Failed(e)) => return Err(e),
        }
    }
    let hashes = match shared.source.block_hashes(number).await {
        Ok(Some(hashes)) => hashes,
        Ok(None) => return Err("the node does not have the block".into()),
        Err(SourceError::Unsupported) => return Err("eth_getBlockByNumber unsupported".into()),
        Err(SourceError::Failed(e)) => return Err(e),
    };
    let ours: Vec<TxHash> = {
        let state = lock(&shared.state);
        hashes
            .iter()
            .filter(|h| state.hashes.contains_key(*h))
            .copied()
            .collect()
    };
    let mut receipts = Vec::with_capacity(ours.len());
    for hash in ours {
        lock(&shared.state).stats.receipts_by_hash += 1;
        match shared.source.receipt(hash).await {
            Ok(Some(receipt)) => receipts.push(receipt),
            // Listed in the block but without a receipt: the node is inconsistent; again later.
            Ok(None) => return Err(format!("no receipt for {hash} listed in the block")),
            Err(e) => return Err(format!("{e:?}")),
        }
    }
    Ok((hashes, receipts))
}

/// Hands `receipt` to the waiters of its hash, if any.
fn deliver(state: &mut State, receipt: TransactionReceipt) {
    let Some(ids) = state.hashes.get(&receipt.transaction_hash) else {
        return;
    };
    let slots: Vec<Arc<Slot>> = ids
        .iter()
        .filter_map(|id| state.waiters.get(id).cloned())
        .collect();
    for slot in slots {
        state.stats.delivered += 1;
        lock(&slot.found).push_back(receipt.clone());
        slot.notify.notify_one();
    }
}

/// Reads by hash the receipts waiters asked for (late hashes, idle starts).
async fn look_up(shared: &Shared) {
    let wanted: Vec<(Arc<Slot>, Vec<TxHash>)> = {
        let state = lock(&shared.state);
        state
            .waiters
            .values()
            .filter_map(|slot| {
                let list = std::mem::take(&mut *lock(&slot.lookups));
                (!list.is_empty()).then(|| (Arc::clone(slot), list))
            })
            .collect()
    };
    for (slot, hashes) in wanted {
        for hash in hashes {
            lock(&shared.state).stats.receipts_by_hash += 1;
            match shared.source.receipt(hash).await {
                Ok(Some(receipt)) => {
                    let mut state = lock(&shared.state);
                    state.stats.delivered += 1;
                    drop(state);
                    lock(&slot.found).push_back(receipt);
                    slot.notify.notify_one();
                }
                // Not mined yet: every block that can hold it is still to be read.
                Ok(None) => {}
                Err(_) => lock(&slot.lookups).push(hash),
            }
        }
    }
}

#[cfg(test)]
#[path = "blocks_tests.rs"]
mod tests;
