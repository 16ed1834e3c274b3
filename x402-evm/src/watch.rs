//! Watching a settlement transaction until it is mined: the receipt of any copy of it, the
//! identical bytes sent again when the node lost them, and a replacement with higher fees when it
//! stays unmined.
//!
//! Every poll asks for the receipt of each copy (newest first): the copy that is mined is the
//! settlement, whichever it is. Between polls:
//!
//! - **Dropped.** Whenever the chain moved, and at least every [`DROP_CHECK_EVERY`], the node is
//!   asked for the newest copy; one it does not know (lost by a load-balanced backend, evicted,
//!   or never received after a send whose answer was lost) is sent again, byte for byte
//!   ([`SignerPool::rebroadcast`]).
//! - **Stuck.** A copy not mined [`crate::signers::TxConfig::stuck_after_blocks`] blocks after it
//!   was sent is replaced ([`SignerPool::replace`]: same nonce, fees +10 % at least, never above
//!   the caps, written ahead first). At the cap nothing more is signed: the settle answers
//!   pending and reconciliation follows the copies already out.
//!
//! All copies share one nonce, so at most one is ever mined. The wait ends at the receipt bound
//! and the settle's answer deadline, like [`SignerPool::wait_until`].

use std::time::Duration;

use alloy::primitives::{Address, Bytes, TxHash};
use alloy::providers::Provider;
use tokio::time::{Instant, sleep_until, timeout_at};
use tracing::{debug, warn};

use crate::receipt::{ReceiptOutcome, wait_for_confirmations};
use crate::signers::{Journal, Rebroadcast, Replacement, SignerPool};

/// How often, at least, the node is asked whether it still has the newest copy.
pub const DROP_CHECK_EVERY: Duration = Duration::from_secs(1);

/// One signed copy of the settlement.
#[derive(Debug, Clone)]
pub struct Copy {
    /// Its hash.
    pub hash: TxHash,
    /// Its bytes.
    pub raw: Bytes,
}

/// Watches the settlement `first` (signed by `from`) until a copy is mined, or the receipt bound
/// or `deadline` passes; returns the hash of the copy mined (else the newest) and the outcome.
pub async fn watch(
    pool: &SignerPool,
    journal: Option<&dyn Journal>,
    from: Address,
    first: Copy,
    deadline: Option<std::time::Instant>,
) -> (TxHash, ReceiptOutcome) {
    let config = pool.config();
    let provider = pool.provider();
    let end = Instant::now() + x402_core::timing::capped(config.receipt_timeout, deadline);
    let interval = config.poll_interval.max(Duration::from_millis(10));
    let mut copies = vec![first];
    // The head when the newest copy went out, the last head seen, the last drop check.
    let mut sent_at: Option<u64> = None;
    let mut last_head = 0;
    let mut checked = Instant::now();
    let mut at_cap = false;
    loop {
        let next_poll = Instant::now() + interval;
        for copy in copies.iter().rev() {
            match timeout_at(end, provider.get_transaction_receipt(copy.hash)).await {
                Ok(Ok(Some(_))) => {
                    let left = end.saturating_duration_since(Instant::now());
                    let outcome = wait_for_confirmations(
                        provider,
                        copy.hash,
                        left,
                        interval,
                        config.confirmations,
                    )
                    .await;
                    return (copy.hash, outcome);
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    debug!(hash = %copy.hash, error = %crate::error::describe_rpc_error(&e), "receipt poll failed; retrying");
                }
                Err(_elapsed) => return (newest(&copies), ReceiptOutcome::Pending),
            }
        }
        let Some(newest_copy) = copies.last().cloned() else {
            return (TxHash::ZERO, ReceiptOutcome::Pending);
        };
        if let Ok(Ok(head)) = timeout_at(end, provider.get_block_number()).await {
            let since = *sent_at.get_or_insert(head);
            if head > last_head || checked.elapsed() >= DROP_CHECK_EVERY {
                last_head = last_head.max(head);
                checked = Instant::now();
                if let Ok(Ok(None)) =
                    timeout_at(end, provider.get_transaction_by_hash(newest_copy.hash)).await
                {
                    match pool.rebroadcast(&newest_copy.raw).await {
                        Rebroadcast::Accepted => {
                            warn!(hash = %newest_copy.hash, "the node had lost the settlement transaction; sent again");
                        }
                        Rebroadcast::NonceUsed => {
                            debug!(hash = %newest_copy.hash, "nonce used: a copy was mined, or another transaction");
                        }
                        Rebroadcast::Failed(reason) => {
                            warn!(hash = %newest_copy.hash, %reason, "sending a lost settlement transaction again failed");
                        }
                    }
                }
            }
            if !at_cap && head >= since.saturating_add(config.stuck_after_blocks) {
                match pool.replace(from, &newest_copy.raw, journal).await {
                    Ok(Replacement::Sent(signed)) => {
                        copies.push(Copy {
                            hash: signed.hash,
                            raw: signed.raw,
                        });
                        sent_at = Some(head);
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
        if next_poll >= end {
            return (newest(&copies), ReceiptOutcome::Pending);
        }
        sleep_until(next_poll.max(Instant::now())).await;
    }
}

fn newest(copies: &[Copy]) -> TxHash {
    copies.last().map(|c| c.hash).unwrap_or_default()
}
