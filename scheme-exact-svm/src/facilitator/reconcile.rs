//! Reconciliation: deciding, from the chain, the records a settle left unresolved — written ahead
//! and never completed (a crash, a store write that failed after the send) or answered
//! `settlement_pending` (threat-model R10, R14).
//!
//! For each record the transaction written ahead is looked up by its signature, with history, at
//! `confirmed`:
//!
//! * landed without error → [`Outcome::Landed`] (its next settle answers success, once);
//! * landed with an error → [`Outcome::Failed`] naming it, and the payer's cool-down starts;
//! * unseen while its blockhash is still valid → the identical bytes are sent again (without
//!   preflight, the answer ignored) and the record is left as it is — unless the settle that
//!   wrote it may still be at work on it ([`IntentDetail::held_at`]): that settle sends and
//!   confirms on its own, and may withdraw a transaction its node refused;
//! * unseen once its blockhash is no longer valid → the status is read once more (whatever landed
//!   is visible now), and still unseen is [`Outcome::Failed`] without a transaction.
//!
//! An RPC error leaves the record as it is. Every change is a compare-and-set on the transaction
//! ([`x402_core::SettlementStore::resolve`]), so a live settle and any number of reconcilers, in
//! any process, agree. Nothing is ever built or signed here.

use solana_signature::Signature;
use x402_core::{
    Intent, Outcome, PaymentId, Reconciled, Record, SchemeError, StoreError, UnixTime,
};

use super::Facilitator;
use super::inspect::PAYMENT_KIND;
use super::intent::IntentDetail;
use crate::rpc::describe;

/// The most records one reconciliation pass examines (the oldest first).
const RECONCILE_BATCH: usize = 256;

/// What reconciling one record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reconciliation {
    /// The record now holds this outcome.
    Resolved(Outcome),
    /// Still undecided: unseen while its blockhash is valid, or the chain could not be read.
    Undecided,
    /// Someone else changed the record meanwhile (a settle completed it, another reconciler
    /// resolved it).
    Changed,
}

impl Facilitator {
    /// One reconciliation pass over this network's unresolved records (the oldest, at most
    /// `RECONCILE_BATCH`); `Err` only when the store failed.
    pub(crate) async fn reconcile_unresolved(&self) -> Result<Reconciled, SchemeError> {
        let records = self
            .store
            .unresolved(self.network.as_str(), RECONCILE_BATCH)
            .await?;
        let mut done = Reconciled::default();
        for (id, record) in records {
            if !is_ours(&id) {
                continue;
            }
            done.examined += 1;
            match self.reconcile_record(&id, &record).await? {
                Reconciliation::Resolved(Outcome::Landed { .. }) => done.landed += 1,
                Reconciliation::Resolved(_) => done.failed += 1,
                Reconciliation::Undecided => done.pending += 1,
                Reconciliation::Changed => {}
            }
        }
        if done != Reconciled::default() {
            tracing::info!(network = %self.network, ?done, "exact on Solana: reconciliation pass");
        }
        Ok(done)
    }

    /// Reconciles one record (see the module documentation); `Err` only when the store failed.
    pub(crate) async fn reconcile_record(
        &self,
        id: &PaymentId,
        record: &Record,
    ) -> Result<Reconciliation, StoreError> {
        let Some(intent) = record.intent.as_ref().filter(|_| record.is_unresolved()) else {
            return Ok(Reconciliation::Undecided);
        };
        let Ok(signature) = intent.transaction.parse::<Signature>() else {
            tracing::error!(%id, transaction = intent.transaction, "the intent names no Solana signature; left for an operator");
            return Ok(Reconciliation::Undecided);
        };
        let Some(outcome) = self.chain_verdict(&signature, record, intent).await else {
            return Ok(Reconciliation::Undecided);
        };
        Ok(
            if self
                .store
                .resolve(id, &intent.transaction, Some(outcome.clone()))
                .await?
            {
                tracing::info!(%id, ?outcome, "exact on Solana: record reconciled");
                if matches!(
                    outcome,
                    Outcome::Failed {
                        transaction: Some(_),
                        ..
                    }
                ) {
                    // It landed with an error: the fee was ours.
                    match IntentDetail::read(intent) {
                        Ok(detail) => self.cool_down(&detail.payer).await,
                        Err(e) => {
                            tracing::error!(%id, error = e, "reconciliation: no payer to cool down")
                        }
                    }
                }
                Reconciliation::Resolved(outcome)
            } else {
                Reconciliation::Changed
            },
        )
    }

    /// What the chain says of the transaction written ahead; `None` while undecided.
    async fn chain_verdict(
        &self,
        signature: &Signature,
        record: &Record,
        intent: &Intent,
    ) -> Option<Outcome> {
        let transaction = intent.transaction.clone();
        match self.status_of(signature).await {
            Ok(Some(status)) => return Some(landed(status, transaction)),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(%signature, error = %describe(&e), "reconciliation: getSignatureStatuses failed");
                return None;
            }
        }
        let detail = match IntentDetail::read(intent) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(%signature, error = e, "reconciliation: left for an operator");
                return None;
            }
        };
        let blockhash = match detail.recent_blockhash() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(%signature, error = e, "reconciliation: left for an operator");
                return None;
            }
        };
        match self.blockhash_valid(&blockhash).await {
            Ok(true) => {
                // Its settle answered (pending) or is gone: help it land with the same bytes.
                if record.outcome.is_some() || !detail.held_at(UnixTime::now()) {
                    match detail.signed_transaction(signature) {
                        Ok(tx) => self.resend(&tx).await,
                        Err(e) => {
                            tracing::error!(%signature, error = e, "reconciliation: cannot send it again")
                        }
                    }
                }
                None
            }
            // Read after the blockhash expired: whatever landed is visible now.
            Ok(false) => match self.status_of(signature).await {
                Ok(Some(status)) => Some(landed(status, transaction)),
                Ok(None) => Some(Outcome::Failed {
                    reason: crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
                    transaction: None,
                }),
                Err(e) => {
                    tracing::warn!(%signature, error = %describe(&e), "reconciliation: getSignatureStatuses failed");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(%signature, error = %describe(&e), "reconciliation: isBlockhashValid failed");
                None
            }
        }
    }
}

/// The outcome of a transaction seen on chain with `status`.
fn landed(status: Result<(), String>, transaction: String) -> Outcome {
    match status {
        Ok(()) => Outcome::Landed { transaction },
        Err(_) => Outcome::Failed {
            reason: crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
            transaction: Some(transaction),
        },
    }
}

/// Whether `id` is a payment of this scheme (another scheme's records on the same network are
/// its own to reconcile).
fn is_ours(id: &PaymentId) -> bool {
    id.as_str()
        .strip_prefix(PAYMENT_KIND)
        .is_some_and(|rest| rest.starts_with('/'))
}
