//! Bounded receipt waits: poll `eth_getTransactionReceipt` until a receipt arrives or the
//! deadline passes; RPC errors are retried until the deadline; never waits forever.
//!
//! The facilitator's own waits (settlements, [`crate::signers::SignerPool::wait`]) do not poll
//! per transaction: they go through the chain's block watcher ([`crate::blocks`]) and share
//! [`ReceiptOutcome`]. These functions remain for one-off waits outside a pool.

use std::time::Duration;

use alloy::primitives::TxHash;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use tokio::time::{Instant, sleep_until, timeout_at};
use tracing::debug;

use crate::error::describe_rpc_error;

/// The smallest poll interval used (a zero interval would spin).
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// How a bounded receipt wait ended.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a receipt is returned once per settlement
pub enum ReceiptOutcome {
    /// Mined with status 1.
    Success(TransactionReceipt),
    /// Mined with status 0 (the fee was paid, the call's effects were undone).
    Reverted(TransactionReceipt),
    /// No receipt before the deadline: the transaction may still be mined (or dropped).
    Pending,
}

impl ReceiptOutcome {
    /// Whether the transaction was mined and succeeded.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success(_))
    }

    /// The receipt, when the transaction was mined.
    pub fn receipt(&self) -> Option<&TransactionReceipt> {
        match self {
            Self::Success(receipt) | Self::Reverted(receipt) => Some(receipt),
            Self::Pending => None,
        }
    }
}

/// Polls for `hash`'s receipt every `poll_interval` until it is found or `timeout` has passed.
///
/// The first poll is immediate; a slow RPC call is cut off at the deadline.
pub async fn wait_for_receipt<P: Provider + ?Sized>(
    provider: &P,
    hash: TxHash,
    timeout: Duration,
    poll_interval: Duration,
) -> ReceiptOutcome {
    wait_for_confirmations(provider, hash, timeout, poll_interval, 1).await
}

/// Like [`wait_for_receipt`], but a receipt counts only once `confirmations` blocks (its own
/// included) are on top of it and it is still there: a receipt that a reorg removes is waited
/// for again. Not confirmed deeply enough by the deadline is [`ReceiptOutcome::Pending`].
pub async fn wait_for_confirmations<P: Provider + ?Sized>(
    provider: &P,
    hash: TxHash,
    timeout: Duration,
    poll_interval: Duration,
    confirmations: u64,
) -> ReceiptOutcome {
    let deadline = Instant::now() + timeout;
    let interval = poll_interval.max(MIN_POLL_INTERVAL);
    loop {
        match poll_receipt(provider, hash, deadline, interval).await {
            ReceiptOutcome::Pending => return ReceiptOutcome::Pending,
            found if confirmations <= 1 => return found,
            found => {
                let Some(mined_at) = found.receipt().and_then(|r| r.block_number) else {
                    return found;
                };
                let target = mined_at.saturating_add(confirmations - 1);
                loop {
                    match timeout_at(deadline, provider.get_block_number()).await {
                        Ok(Ok(head)) if head >= target => break,
                        Ok(_) => {}
                        Err(_elapsed) => return ReceiptOutcome::Pending,
                    }
                    if Instant::now() + interval >= deadline {
                        return ReceiptOutcome::Pending;
                    }
                    sleep_until(Instant::now() + interval).await;
                }
                // Deep enough: the receipt must still be there, in the same block.
                match timeout_at(deadline, provider.get_transaction_receipt(hash)).await {
                    Ok(Ok(Some(again))) if again.block_number == Some(mined_at) => return found,
                    Ok(_) => {} // reorganised away, or unreadable: wait for it again
                    Err(_elapsed) => return ReceiptOutcome::Pending,
                }
            }
        }
    }
}

/// Polls until the receipt appears (mined once) or the deadline passes.
async fn poll_receipt<P: Provider + ?Sized>(
    provider: &P,
    hash: TxHash,
    deadline: Instant,
    interval: Duration,
) -> ReceiptOutcome {
    loop {
        let next_poll = Instant::now() + interval;
        match timeout_at(deadline, provider.get_transaction_receipt(hash)).await {
            Ok(Ok(Some(receipt))) => {
                return if receipt.status() {
                    ReceiptOutcome::Success(receipt)
                } else {
                    ReceiptOutcome::Reverted(receipt)
                };
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                debug!(%hash, error = %describe_rpc_error(&e), "receipt poll failed; retrying");
            }
            Err(_elapsed) => return ReceiptOutcome::Pending,
        }
        if next_poll >= deadline {
            return ReceiptOutcome::Pending;
        }
        sleep_until(next_poll).await;
    }
}
