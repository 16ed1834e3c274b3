//! One signer's nonce state and the serialized assign → sign → broadcast step.
//!
//! The state is changed *before* every await so that dropping the future (a caller's timeout)
//! leaves it consistent: the nonce is advanced and the signed bytes are recorded as "in flight"
//! before `eth_sendRawTransaction`; a definitive rejection undoes both. An in-flight record left
//! behind (an ambiguous broadcast or a dropped future) is reconciled on the signer's next send:
//! the node is asked for the hash and, if it does not know it, the *same* bytes are broadcast
//! again — a different transaction is never built for that nonce unless the node says the old
//! one cannot be accepted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, Bytes, TxHash, TxKind};
use alloy::providers::{DynProvider, Provider};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::{RpcError, TransportErrorKind};
use tracing::{debug, info, warn};

use super::fees::{FeeCaps, FeeOracle, FeeQuote};
use super::{Counters, Journal, Sent, Signed, TxRequest};
use crate::error::{SendError, describe_rpc_error, may_have_reached_node, truncate};

/// At most this many unreconciled broadcasts are remembered per signer.
const MAX_IN_FLIGHT: usize = 64;

/// One signer of the pool.
pub(crate) struct Slot {
    pub(crate) signer: PrivateKeySigner,
    pub(crate) address: Address,
    pub(crate) state: tokio::sync::Mutex<SlotState>,
    /// Sends waiting for or holding `state`.
    pub(crate) queued: AtomicUsize,
    /// Set when the node refused a transaction for lack of funds: skipped until then.
    pub(crate) low_funds_until: std::sync::Mutex<Option<Instant>>,
}

/// What the pool knows about one signer's nonces.
#[derive(Debug, Default)]
pub(crate) struct SlotState {
    /// The nonce the next transaction gets; `None` when it must be read from the node.
    pub(crate) next_nonce: Option<u64>,
    /// Broadcasts whose acceptance was not confirmed, oldest first.
    in_flight: Vec<InFlight>,
    /// Until when this process holds the key's lease (pools with leases only).
    pub(crate) lease_until: Option<Instant>,
}

#[derive(Debug, Clone)]
struct InFlight {
    nonce: u64,
    hash: TxHash,
    raw: Bytes,
}

/// The pool-wide context a send needs.
pub(crate) struct Ctx<'a> {
    pub(crate) provider: &'a DynProvider,
    pub(crate) chain_id: u64,
    pub(crate) fees: &'a FeeOracle,
    pub(crate) caps: FeeCaps,
    pub(crate) counters: &'a Counters,
}

/// How the node answered `eth_sendRawTransaction`.
pub(super) enum Answer {
    Accepted,
    /// Nonce too low / too high, or a different transaction holds the nonce.
    NonceConflict(String),
    InsufficientFunds(String),
    Rejected(String),
    /// The request failed without reaching any node.
    NotDelivered(String),
    /// The request may have reached a node; no answer.
    Unknown(String),
}

impl SlotState {
    /// Starts with `next_nonce` (the account's `pending` count).
    pub(crate) fn new(next_nonce: u64) -> Self {
        Self {
            next_nonce: Some(next_nonce),
            in_flight: Vec::new(),
            lease_until: None,
        }
    }

    fn forget(&mut self, hash: TxHash) {
        self.in_flight.retain(|f| f.hash != hash);
    }
}

/// Assigns a nonce, signs and broadcasts `request` from `slot`; the caller holds the state lock.
pub(crate) async fn send_locked(
    ctx: &Ctx<'_>,
    slot: &Slot,
    state: &mut SlotState,
    request: &TxRequest,
    journal: Option<&dyn Journal>,
) -> Result<Sent, SendError> {
    let from = slot.address;
    reconcile(ctx, slot, state).await;
    let mut resynced = false;
    loop {
        let nonce = match state.next_nonce {
            Some(nonce) => nonce,
            None => resync(ctx, slot, state).await?,
        };
        let fees = ctx.fees.quote(ctx.provider, ctx.caps).await?;
        let (hash, raw) = sign(&slot.signer, ctx.chain_id, nonce, fees, request)?;
        if let Some(journal) = journal {
            // Written ahead before the state changes: a failure here leaves nothing to undo,
            // and a cancelled write leaves at worst a record whose nonce is reused (the
            // reconciler then finds it can never land).
            let signed = Signed {
                hash,
                from,
                nonce,
                raw: raw.clone(),
            };
            journal.record(&signed).await?;
        }

        state.next_nonce = Some(nonce.saturating_add(1));
        state.in_flight.push(InFlight {
            nonce,
            hash,
            raw: raw.clone(),
        });
        let answer = classify(ctx.provider.send_raw_transaction(&raw).await);
        let sent = Sent { hash, from, nonce };
        match answer {
            Answer::Accepted => {
                state.forget(hash);
                ctx.counters.sent.fetch_add(1, Ordering::Relaxed);
                debug!(%from, nonce, %hash, "transaction broadcast");
                return Ok(sent);
            }
            Answer::NonceConflict(message) => {
                state.forget(hash);
                ctx.counters.nonce_conflicts.fetch_add(1, Ordering::Relaxed);
                warn!(%from, nonce, %message, "nonce conflict; resyncing from the node");
                // Our own transaction may already be in (a transport retry delivered it twice).
                match ctx.provider.get_transaction_by_hash(hash).await {
                    Ok(Some(_)) => {
                        ctx.counters.sent.fetch_add(1, Ordering::Relaxed);
                        return Ok(sent);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Cannot tell whether it landed: never sign a second one for it.
                        state.in_flight.push(InFlight { nonce, hash, raw });
                        ctx.counters.ambiguous.fetch_add(1, Ordering::Relaxed);
                        warn!(%from, nonce, %hash, error = %describe_rpc_error(&e), "cannot check the conflicting transaction");
                        return Err(SendError::Ambiguous { hash, from, nonce });
                    }
                }
                state.next_nonce = None;
                if resynced {
                    return Err(SendError::NonceConflict { from, message });
                }
                resynced = true;
            }
            Answer::InsufficientFunds(message) => {
                undo(state, hash, nonce);
                ctx.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(SendError::InsufficientFunds { from, message });
            }
            Answer::Rejected(message) => {
                undo(state, hash, nonce);
                ctx.counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(SendError::Rejected { from, message });
            }
            Answer::NotDelivered(reason) => {
                undo(state, hash, nonce);
                return Err(SendError::Unavailable(reason));
            }
            Answer::Unknown(reason) => {
                ctx.counters.ambiguous.fetch_add(1, Ordering::Relaxed);
                if state.in_flight.len() > MAX_IN_FLIGHT {
                    let dropped = state.in_flight.remove(0);
                    warn!(%from, nonce = dropped.nonce, hash = %dropped.hash, "too many unreconciled broadcasts; forgetting the oldest");
                }
                warn!(%from, nonce, %hash, %reason, "broadcast outcome unknown; nonce kept as used");
                return Err(SendError::Ambiguous { hash, from, nonce });
            }
        }
    }
}

/// Gives back a nonce the node definitively refused (nothing was accepted).
fn undo(state: &mut SlotState, hash: TxHash, nonce: u64) {
    state.forget(hash);
    state.next_nonce = Some(nonce);
}

/// Reads the account's `pending` transaction count into `state`.
async fn resync(ctx: &Ctx<'_>, slot: &Slot, state: &mut SlotState) -> Result<u64, SendError> {
    let pending = ctx
        .provider
        .get_transaction_count(slot.address)
        .pending()
        .await
        .map_err(|e| SendError::Unavailable(format!("nonce lookup: {}", describe_rpc_error(&e))))?;
    info!(from = %slot.address, nonce = pending, "nonce resynced from the node");
    state.next_nonce = Some(pending);
    Ok(pending)
}

/// Settles earlier broadcasts whose acceptance is unknown: known to the node → forgotten;
/// unknown → the same bytes are sent again; refused for good → forgotten, and the nonce is
/// re-read so the gap is filled.
async fn reconcile(ctx: &Ctx<'_>, slot: &Slot, state: &mut SlotState) {
    while let Some(entry) = state.in_flight.first().cloned() {
        match ctx.provider.get_transaction_by_hash(entry.hash).await {
            Ok(Some(_)) => {
                state.forget(entry.hash);
                continue;
            }
            Ok(None) => {}
            Err(_) => return,
        }
        match classify(ctx.provider.send_raw_transaction(&entry.raw).await) {
            Answer::Accepted => {
                ctx.counters.rebroadcasts.fetch_add(1, Ordering::Relaxed);
                info!(from = %slot.address, nonce = entry.nonce, hash = %entry.hash, "re-broadcast an unconfirmed transaction");
                state.forget(entry.hash);
            }
            Answer::NonceConflict(_) => {
                // The nonce is used (by this transaction, mined meanwhile, or another one).
                state.forget(entry.hash);
            }
            Answer::InsufficientFunds(message) | Answer::Rejected(message) => {
                warn!(from = %slot.address, nonce = entry.nonce, hash = %entry.hash, %message, "an unconfirmed transaction cannot be re-broadcast; its nonce will be reused");
                state.forget(entry.hash);
                state.next_nonce = None;
            }
            Answer::NotDelivered(_) | Answer::Unknown(_) => return,
        }
    }
}

/// Builds and signs the transaction; returns its hash and EIP-2718 bytes.
pub(super) fn sign(
    signer: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    fees: FeeQuote,
    request: &TxRequest,
) -> Result<(TxHash, Bytes), SendError> {
    let failed = |e: alloy::signers::Error| SendError::Signing {
        from: signer.address(),
        reason: e.to_string(),
    };
    let envelope: TxEnvelope = match fees {
        FeeQuote::Eip1559 {
            max_fee_per_gas,
            max_priority_fee_per_gas,
        } => {
            let mut tx = TxEip1559 {
                chain_id,
                nonce,
                gas_limit: request.gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to: TxKind::Call(request.to),
                value: request.value,
                access_list: Default::default(),
                input: request.data.clone(),
            };
            let signature = signer.sign_transaction_sync(&mut tx).map_err(failed)?;
            tx.into_signed(signature).into()
        }
        FeeQuote::Legacy { gas_price } => {
            let mut tx = TxLegacy {
                chain_id: Some(chain_id),
                nonce,
                gas_price,
                gas_limit: request.gas_limit,
                to: TxKind::Call(request.to),
                value: request.value,
                input: request.data.clone(),
            };
            let signature = signer.sign_transaction_sync(&mut tx).map_err(failed)?;
            tx.into_signed(signature).into()
        }
    };
    Ok((*envelope.tx_hash(), Bytes::from(envelope.encoded_2718())))
}

/// Messages of a node refusing a transaction outright (lower case), beyond nonce conflicts and
/// insufficient funds: geth's and anvil's pool admission errors.
const REFUSALS: &[&str] = &[
    "intrinsic gas",
    "gas too low",
    "gas limit",
    "base fee",
    "underpriced",
    "fee cap",
    "tip higher",
    "priority fee",
    "exceeds the configured cap",
    "txpool is full",
    "oversized data",
    "invalid sender",
    "invalid signature",
    "replay-protected",
    "not supported",
    "chain id",
    "failed to decode",
    "out of gas",
    "gas required exceeds",
];

/// Sorts the node's answer by what it means for the nonce.
///
/// Only a recognised refusal gives the nonce back; an error answer the node does not explain
/// (`internal error`, a gateway's own error, an error after the request was forwarded) may
/// follow an acceptance, so the send is treated as possibly broadcast.
pub(super) fn classify<T>(result: Result<T, RpcError<TransportErrorKind>>) -> Answer {
    let error = match result {
        Ok(_) => return Answer::Accepted,
        Err(error) => error,
    };
    if let RpcError::ErrorResp(payload) = &error {
        let message = payload.message.to_ascii_lowercase();
        let has = |needle: &str| message.contains(needle);
        let text = truncate(&payload.message);
        return if has("already known") || has("already imported") || has("known transaction") {
            // The node holds exactly these bytes (same hash): accepted.
            Answer::Accepted
        } else if has("nonce too low")
            || has("nonce too high")
            || has("invalid nonce")
            || has("nonce has already been used")
            || has("replacement transaction underpriced")
            || has("replacement underpriced")
        {
            Answer::NonceConflict(text)
        } else if has("insufficient funds") {
            Answer::InsufficientFunds(text)
        } else if REFUSALS.iter().any(|r| has(r)) {
            Answer::Rejected(text)
        } else {
            Answer::Unknown(format!("JSON-RPC error {}: {text}", payload.code))
        };
    }
    let reason = describe_rpc_error(&error);
    if may_have_reached_node(&error) {
        Answer::Unknown(reason)
    } else {
        Answer::NotDelivered(reason)
    }
}

#[cfg(test)]
mod tests {
    use alloy::rpc::json_rpc::ErrorPayload;

    use super::*;

    fn answer(code: i64, message: &str) -> Answer {
        classify::<()>(Err(RpcError::ErrorResp(ErrorPayload {
            code,
            message: message.to_owned().into(),
            data: None,
        })))
    }

    #[test]
    fn only_recognised_refusals_give_the_nonce_back() {
        assert!(matches!(
            answer(-32000, "intrinsic gas too low"),
            Answer::Rejected(_)
        ));
        assert!(matches!(
            answer(-32003, "max fee per gas less than block base fee"),
            Answer::Rejected(_)
        ));
        assert!(matches!(
            answer(-32003, "nonce too low"),
            Answer::NonceConflict(_)
        ));
        assert!(matches!(
            answer(-32003, "Insufficient funds for gas * price + value"),
            Answer::InsufficientFunds(_)
        ));
        assert!(matches!(answer(-32000, "already known"), Answer::Accepted));
        for unexplained in [
            answer(-32603, "internal error"),
            answer(-32000, "request timed out upstream"),
            answer(-32601, "method not found"),
        ] {
            assert!(matches!(unexplained, Answer::Unknown(_)));
        }
    }
}
