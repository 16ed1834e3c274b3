//! Watching a settlement transaction until it is mined: the receipt of any copy of it, the
//! identical bytes sent again when the node lost them, and a replacement with higher fees when it
//! stays unmined.
//!
//! Receipts come from the chain's block watcher ([`crate::blocks`]): every copy's hash is
//! registered with one [`Waiter`], made before the first copy was sent, and the watcher's one
//! block-level read per new block wakes it — no receipt polls per payment. The copy that is mined
//! is the settlement, whichever it is. On the blocks read meanwhile:
//!
//! - **Dropped.** Once the newest copy missed two blocks read after it went out, and from then on
//!   at most every [`DROP_CHECK_EVERY`] (or two block times, if longer) — also when no block
//!   comes at all — the node is asked for it (`eth_getTransactionByHash`); one it does not know
//!   (lost by a load-balanced backend, evicted, or never received after a send whose answer was
//!   lost) is sent again, byte for byte ([`SignerPool::rebroadcast`]). One it reports mined that
//!   the watcher did not see (a node that answered a block without it) has its receipt read by
//!   hash. Only the watch of a signer's lowest nonce not yet seen mined asks: a transaction
//!   cannot be mined before its signer's lower nonces, so while one of those is watched and not
//!   seen mined, whether the node still holds this one changes nothing yet (one call per signer
//!   and check interval under load, not one per transaction); its turn comes once the lower ones
//!   are seen mined. When the node reports a transaction mined that no block read showed, block
//!   reads are not trusted for that signer for two blocks: every watch asks for itself.
//! - **Stuck.** A copy not mined [`crate::signers::TxConfig::stuck_after_blocks`] blocks after it
//!   was sent is replaced ([`SignerPool::replace`]: same nonce, fees +10 % at least, never above
//!   the caps, written ahead first). At the cap nothing more is signed: the settle answers
//!   pending and reconciliation follows the copies already out.
//! - **Confirmations.** With [`crate::signers::TxConfig::confirmations`] above one, a receipt
//!   counts once that many blocks (its own included) were read and a read by hash still finds it
//!   in the same block; one a reorganisation removed is waited for again (then also by hash on
//!   each new block, as it may land in a block number already read).
//!
//! All copies share one nonce, so at most one is ever mined. The wait ends at the receipt bound
//! and the settle's answer deadline, like [`SignerPool::wait_until`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use alloy::primitives::{Address, Bytes, TxHash};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use tokio::time::{Instant, timeout_at};
use tracing::{debug, warn};

use crate::blocks::{Event, Waiter};
use crate::receipt::ReceiptOutcome;
use crate::signers::{Journal, Rebroadcast, Replacement, SignerPool};

/// How often, at least, the node is asked whether it still has the newest copy once it missed
/// its first blocks (two block times when that is longer).
pub const DROP_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Per signer, the nonces whose settlements are being watched and not yet seen mined, and the
/// last block read when the node reported one of them mined that no block read had shown.
#[derive(Debug, Default)]
pub(crate) struct Watched(Mutex<HashMap<Address, Nonces>>);

#[derive(Debug, Default)]
struct Nonces {
    watched: BTreeMap<u64, usize>,
    unseen_at: Option<u64>,
}

impl Watched {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Address, Nonces>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// One watch's place in [`Watched`], left when it is dropped or its transaction is mined.
struct Watching<'a> {
    watched: &'a Watched,
    from: Address,
    nonce: u64,
    left: bool,
}

impl<'a> Watching<'a> {
    fn enter(watched: &'a Watched, from: Address, nonce: u64) -> Self {
        watched.with(|map| {
            *map.entry(from)
                .or_default()
                .watched
                .entry(nonce)
                .or_default() += 1
        });
        Self {
            watched,
            from,
            nonce,
            left: false,
        }
    }

    /// Whether a lower nonce of the same signer is watched and not yet seen mined — unless, at
    /// most two blocks before `head`, the node reported one of the signer's transactions mined
    /// that no block read had shown (block reads are not to be trusted then: each asks).
    fn behind_another(&self, head: u64) -> bool {
        self.watched.with(|map| {
            map.get(&self.from).is_some_and(|signer| {
                signer
                    .unseen_at
                    .is_none_or(|at| head > at.saturating_add(2))
                    && signer
                        .watched
                        .keys()
                        .next()
                        .is_some_and(|lowest| *lowest < self.nonce)
            })
        })
    }

    /// The node reported this transaction mined, though no block read up to `head` showed it.
    fn unseen(&self, head: u64) {
        self.watched.with(|map| {
            if let Some(signer) = map.get_mut(&self.from) {
                signer.unseen_at = Some(head);
            }
        });
    }

    fn leave(&mut self) {
        if std::mem::replace(&mut self.left, true) {
            return;
        }
        self.watched.with(|map| {
            if let Some(signer) = map.get_mut(&self.from) {
                if let Some(count) = signer.watched.get_mut(&self.nonce) {
                    *count -= 1;
                    if *count == 0 {
                        signer.watched.remove(&self.nonce);
                    }
                }
                if signer.watched.is_empty() {
                    map.remove(&self.from);
                }
            }
        });
    }
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// One signed copy of the settlement.
#[derive(Debug, Clone)]
pub struct Copy {
    /// Its hash.
    pub hash: TxHash,
    /// Its bytes.
    pub raw: Bytes,
}

fn outcome(receipt: TransactionReceipt) -> ReceiptOutcome {
    if receipt.status() {
        ReceiptOutcome::Success(receipt)
    } else {
        ReceiptOutcome::Reverted(receipt)
    }
}

/// Watches the settlement `first` (signed by `from` with `nonce`, sent after `waiter` was made)
/// until a copy is mined, or the receipt bound or `deadline` passes; returns the hash of the copy
/// mined (else the newest) and the outcome.
pub async fn watch(
    pool: &SignerPool,
    journal: Option<&dyn Journal>,
    (from, nonce): (Address, u64),
    first: Copy,
    mut waiter: Waiter,
    deadline: Option<std::time::Instant>,
) -> (TxHash, ReceiptOutcome) {
    let mut watching = Watching::enter(pool.watched(), from, nonce);
    let config = pool.config();
    let provider = pool.provider();
    let end = Instant::now() + x402_core::timing::capped(config.receipt_timeout, deadline);
    let recheck = DROP_CHECK_EVERY.max(pool.blocks().block_time() * 2);
    waiter.add(first.hash, waiter.made_at());
    let mut copies = vec![first];
    // The last block read when the newest copy went out; whether it was checked for a drop.
    let mut sent_at: Option<u64> = Some(waiter.last_read()).filter(|n| *n > 0);
    let mut checked = false;
    let mut next_check = Instant::now() + recheck;
    let mut at_cap = false;
    let mut reorged = false;
    loop {
        let event = waiter.next(end.min(next_check)).await;
        let head = match event {
            Event::Mined(receipt) => {
                // Mined: the signer's next nonces may be mined now, and ask for themselves.
                watching.leave();
                let hash = receipt.transaction_hash;
                match confirm(pool, &mut waiter, receipt, end).await {
                    Some(outcome) => return (hash, outcome),
                    None => {
                        reorged = true;
                        continue;
                    }
                }
            }
            Event::Timeout if Instant::now() >= end => {
                return (newest(&copies), ReceiptOutcome::Pending);
            }
            Event::Timeout => None,
            Event::Block(n) => Some(n),
        };
        if reorged {
            for copy in &copies {
                waiter.look_up(copy.hash);
            }
        }
        let Some(newest_copy) = copies.last().cloned() else {
            return (TxHash::ZERO, ReceiptOutcome::Pending);
        };
        let missed = match (head, sent_at) {
            (Some(n), Some(since)) => n >= since.saturating_add(2),
            _ => false,
        };
        let due = (missed && !checked) || Instant::now() >= next_check;
        let read = head.unwrap_or_else(|| waiter.last_read());
        if due {
            next_check = Instant::now() + recheck;
        }
        if due && !watching.behind_another(read) {
            checked = true;
            match timeout_at(end, provider.get_transaction_by_hash(newest_copy.hash)).await {
                Ok(Ok(None)) => match pool.rebroadcast(&newest_copy.raw).await {
                    Rebroadcast::Accepted => {
                        warn!(hash = %newest_copy.hash, "the node had lost the settlement transaction; sent again");
                    }
                    Rebroadcast::NonceUsed => {
                        debug!(hash = %newest_copy.hash, "nonce used: a copy was mined, or another transaction");
                        for copy in &copies {
                            waiter.look_up(copy.hash);
                        }
                    }
                    Rebroadcast::Failed(reason) => {
                        warn!(hash = %newest_copy.hash, %reason, "sending a lost settlement transaction again failed");
                    }
                },
                Ok(Ok(Some(tx))) if tx.block_number.is_some() => {
                    // Mined, yet no block read showed it: its receipt by hash.
                    debug!(hash = %newest_copy.hash, "mined but not seen in a block read; reading its receipt");
                    watching.unseen(read);
                    waiter.look_up(newest_copy.hash);
                    // Mined is not stuck: no replacement while its receipt is on its way.
                    continue;
                }
                Ok(_) => {}
                Err(_elapsed) => return (newest(&copies), ReceiptOutcome::Pending),
            }
        }
        let Some(head) = head else { continue };
        let since = *sent_at.get_or_insert(head);
        if !at_cap && head >= since.saturating_add(config.stuck_after_blocks) {
            let mark = waiter.mark();
            match pool.replace(from, &newest_copy.raw, journal).await {
                Ok(Replacement::Sent(signed)) => {
                    waiter.add(signed.hash, mark);
                    copies.push(Copy {
                        hash: signed.hash,
                        raw: signed.raw,
                    });
                    sent_at = Some(head);
                    checked = false;
                }
                Ok(Replacement::AtCap {
                    max_fee_per_gas,
                    max_priority_fee_per_gas,
                }) => {
                    warn!(hash = %newest_copy.hash, max_fee_per_gas, max_priority_fee_per_gas, "a stuck settlement transaction cannot be replaced within the fee caps; left as it is");
                    at_cap = true;
                }
                Ok(Replacement::Refused(_)) => sent_at = Some(head),
                Err(e) => {
                    warn!(hash = %newest_copy.hash, error = %e, "replacing a stuck settlement transaction failed");
                    sent_at = Some(head);
                }
            }
        }
    }
}

/// Waits until a receipt of one of `hashes` (registered with `waiter`) arrives, confirmed to the
/// pool's depth, or `end`; returns the hash mined (else the last of `hashes`) and the outcome.
pub async fn mined(
    pool: &SignerPool,
    waiter: &mut Waiter,
    hashes: &[TxHash],
    end: Instant,
) -> (TxHash, ReceiptOutcome) {
    let mut reorged = false;
    loop {
        match waiter.next(end).await {
            Event::Timeout => {
                return (
                    hashes.last().copied().unwrap_or_default(),
                    ReceiptOutcome::Pending,
                );
            }
            Event::Mined(receipt) => {
                let hash = receipt.transaction_hash;
                match confirm(pool, waiter, receipt, end).await {
                    Some(outcome) => return (hash, outcome),
                    None => reorged = true,
                }
            }
            Event::Block(_) if reorged => {
                for hash in hashes {
                    waiter.look_up(*hash);
                }
            }
            Event::Block(_) => {}
        }
    }
}

/// The outcome of `receipt` once it has the pool's confirmations (`Pending` at `end`), or `None`
/// when a read by hash at that depth no longer finds it in the same block (reorganised away, or
/// unreadable): wait for it again.
async fn confirm(
    pool: &SignerPool,
    waiter: &mut Waiter,
    receipt: TransactionReceipt,
    end: Instant,
) -> Option<ReceiptOutcome> {
    let confirmations = pool.config().confirmations;
    let Some(mined_at) = receipt.block_number.filter(|_| confirmations > 1) else {
        return Some(outcome(receipt));
    };
    let target = mined_at.saturating_add(confirmations - 1);
    while waiter.last_read() < target {
        if let Event::Timeout = waiter.next(end).await {
            return Some(ReceiptOutcome::Pending);
        }
    }
    let hash = receipt.transaction_hash;
    match timeout_at(end, pool.provider().get_transaction_receipt(hash)).await {
        Ok(Ok(Some(again))) if again.block_number == Some(mined_at) => Some(outcome(receipt)),
        Ok(_) => None,
        Err(_elapsed) => Some(ReceiptOutcome::Pending),
    }
}

fn newest(copies: &[Copy]) -> TxHash {
    copies.last().map(|c| c.hash).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_signers_lowest_watched_nonce_is_not_behind() {
        let watched = Watched::default();
        let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let mut a5 = Watching::enter(&watched, a, 5);
        let a7 = Watching::enter(&watched, a, 7);
        let a7_again = Watching::enter(&watched, a, 7);
        let b9 = Watching::enter(&watched, b, 9);
        assert!(!a5.behind_another(10));
        assert!(a7.behind_another(10) && a7_again.behind_another(10));
        assert!(
            !b9.behind_another(10),
            "another signer's nonces do not count"
        );
        // Seen mined: the next ones ask for themselves.
        a5.leave();
        a5.leave();
        assert!(!a7.behind_another(10));
        drop(a7);
        assert!(!a7_again.behind_another(10));
        let a6 = Watching::enter(&watched, a, 6);
        assert!(a7_again.behind_another(10) && !a6.behind_another(10));
        // A transaction reported mined that no block read showed: each asks for two blocks.
        a6.unseen(10);
        assert!(!a7_again.behind_another(10) && !a7_again.behind_another(12));
        assert!(a7_again.behind_another(13));
        assert!(!b9.behind_another(11));
        drop((a5, a6, a7_again, b9));
        assert!(watched.with(|map| map.is_empty()), "every place left");
    }
}
