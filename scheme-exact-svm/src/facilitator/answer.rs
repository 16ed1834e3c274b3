//! The answers of a settle, and the one function that answers from a payment's record.
//!
//! A settle that finds its payment already in the store (a retry, a concurrent settle, a second
//! replica) never sends anything of its own. It answers from the record, after reconciling it
//! from the chain when the chain may still change it (threat-model R10):
//!
//! | record | answer |
//! |---|---|
//! | claimed, nothing written ahead | `duplicate_settlement`: in progress |
//! | written ahead or pending, still undecided | `settlement_pending` with the signature |
//! | landed after a pending answer | success with the signature, for exactly one caller ([`x402_core::SettlementStore::deliver`]); `duplicate_settlement` for the others |
//! | settled, failed | `duplicate_settlement` naming the transaction, when there is one |

use x402_core::{Outcome, PaymentId, Reason, Record, Rejection, SchemeError, Settlement};

use super::Facilitator;
use super::reconcile::Reconciliation;

/// A settlement that succeeded with `transaction`.
pub(crate) fn success(payer: &str, transaction: &str) -> Settlement {
    Settlement {
        payer: Some(payer.to_owned()),
        transaction: Some(transaction.to_owned()),
        amount: None,
        result: Ok(()),
        extensions: None,
    }
}

/// A settlement that did not succeed (or is pending), naming `transaction` when there is one.
pub(crate) fn failed(payer: &str, transaction: Option<String>, rejection: Rejection) -> Settlement {
    Settlement {
        payer: Some(payer.to_owned()),
        transaction,
        amount: None,
        result: Err(rejection),
        extensions: None,
    }
}

/// `settlement_pending` with the transaction sent, whose outcome is still to be decided.
pub(crate) fn pending(payer: &str, transaction: &str, why: &str) -> Settlement {
    failed(
        payer,
        Some(transaction.to_owned()),
        Rejection::with_message(Reason::SETTLEMENT_PENDING, why),
    )
}

/// `duplicate_settlement` for a payment whose settle is in progress elsewhere.
pub(crate) fn in_progress(payer: &str, why: &str) -> Settlement {
    failed(
        payer,
        None,
        Rejection::with_message(Reason::DUPLICATE_SETTLEMENT, why),
    )
}

/// What the store holds for a payment, as a `duplicate_settlement` rejection naming its
/// transaction when one is known (for settle and for verify, threat-model S78).
pub(crate) fn recorded(record: &Record) -> Rejection {
    let what = match &record.outcome {
        None if record.intent.is_none() => "a settlement of this payment is in progress",
        None | Some(Outcome::Pending { .. }) => {
            "this payment's transaction was sent; its outcome is not yet decided"
        }
        Some(Outcome::Landed { .. } | Outcome::Settled { .. }) => {
            "this payment was already settled"
        }
        Some(Outcome::Failed {
            transaction: Some(_),
            ..
        }) => "this payment was already attempted: its transaction failed",
        Some(Outcome::Failed {
            transaction: None, ..
        }) => "this payment was already attempted and did not settle",
    };
    let message = match named(record) {
        Some(tx) => format!("{what} (transaction {tx})"),
        None => what.to_owned(),
    };
    Rejection::with_message(Reason::DUPLICATE_SETTLEMENT, message)
}

/// The transaction an answer from `record` names: its outcome's once it has one (a failure
/// whose transaction never landed names none), else the one written ahead.
pub(crate) fn named(record: &Record) -> Option<&str> {
    match &record.outcome {
        Some(outcome) => outcome.transaction().filter(|t| !t.is_empty()),
        None => record.transaction(),
    }
}

impl Facilitator {
    /// Answers a settle of payment `id` from its `record` (see the module documentation),
    /// reconciling the record from the chain first when the chain may still change it. `Err`
    /// only when the store failed; nothing new is ever sent (a re-send of the recorded bytes
    /// lands them at most once).
    pub(crate) async fn answer_from_record(
        &self,
        id: &PaymentId,
        payer: &str,
        record: Record,
    ) -> Result<Settlement, SchemeError> {
        let record = if record.is_unresolved() {
            match self.reconcile_record(id, &record).await? {
                Reconciliation::Resolved(outcome) => Record {
                    outcome: Some(outcome),
                    ..record
                },
                Reconciliation::Undecided => record,
                // Resolved meanwhile by someone else: answer from what they recorded.
                Reconciliation::Changed => match self.store.record(id).await? {
                    Some(now) => now,
                    None => {
                        return Ok(in_progress(
                            payer,
                            "a settlement of this payment just ended without settling it; it may be retried",
                        ));
                    }
                },
            }
        } else {
            record
        };
        self.answer_recorded(id, payer, &record).await
    }

    /// The record as the chain has it now: an unresolved record is reconciled first (`None`:
    /// it ended meanwhile without settling).
    pub(crate) async fn current(
        &self,
        id: &PaymentId,
        record: Record,
    ) -> Result<Option<Record>, SchemeError> {
        if !record.is_unresolved() {
            return Ok(Some(record));
        }
        Ok(match self.reconcile_record(id, &record).await? {
            Reconciliation::Resolved(outcome) => Some(Record {
                outcome: Some(outcome),
                ..record
            }),
            Reconciliation::Undecided => Some(record),
            Reconciliation::Changed => self.store.record(id).await?,
        })
    }

    /// Answers from `record` as it stands, without reading the chain.
    async fn answer_recorded(
        &self,
        id: &PaymentId,
        payer: &str,
        record: &Record,
    ) -> Result<Settlement, SchemeError> {
        if let Some(Outcome::Landed { transaction }) = &record.outcome {
            // Landed after its settle answered pending: the first to ask hears success.
            return Ok(if self.store.deliver(id).await? {
                tracing::info!(network = %self.network, payer, transaction, "exact settlement on Solana delivered after reconciliation");
                success(payer, transaction)
            } else {
                let settled = Record {
                    outcome: Some(Outcome::Settled {
                        transaction: transaction.clone(),
                    }),
                    intent: None,
                };
                failed(payer, Some(transaction.clone()), recorded(&settled))
            });
        }
        if record.is_unresolved()
            && let Some(transaction) = named(record)
        {
            return Ok(pending(
                payer,
                transaction,
                "sent earlier; its outcome is not yet decided and is being reconciled",
            ));
        }
        Ok(failed(
            payer,
            named(record).map(str::to_owned),
            recorded(record),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x402_core::Intent;

    fn intent() -> Intent {
        Intent {
            network: "solana:test".into(),
            transaction: "sig".into(),
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn each_record_is_a_duplicate_naming_its_transaction_when_known() {
        let cases = [
            (None, None, "in progress", None),
            (None, Some(intent()), "not yet decided", Some("sig")),
            (
                Some(Outcome::Settled {
                    transaction: "s".into(),
                }),
                Some(intent()),
                "already settled",
                Some("s"),
            ),
            (
                Some(Outcome::Failed {
                    reason: crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
                    transaction: None,
                }),
                Some(intent()),
                "did not settle",
                // Its transaction never landed: none is named.
                None,
            ),
            (
                Some(Outcome::Failed {
                    reason: crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
                    transaction: Some("f".into()),
                }),
                None,
                "its transaction failed",
                Some("f"),
            ),
        ];
        for (outcome, intent, words, tx) in cases {
            let record = Record { outcome, intent };
            let r = recorded(&record);
            assert_eq!(r.reason, Reason::DUPLICATE_SETTLEMENT);
            let message = r.message.unwrap_or_default();
            assert!(message.contains(words), "{message}");
            match tx {
                Some(t) => assert!(message.contains(&format!("(transaction {t})")), "{message}"),
                None => assert!(!message.contains("(transaction"), "{message}"),
            }
            assert_eq!(named(&record), tx);
        }
    }
}
