//! Settlement at most once per transaction message.
//!
//! 1. The offline checks, then one settle per payer at a time (a second payment of the same
//!    buyer is simulated only after the first has landed — threat-model S27), then the chain
//!    checks.
//! 2. Claim the payment identity (the hash of the message, shared by v1 and v2) in the settlement
//!    store: of concurrent settles exactly one proceeds; the others get `duplicate_settlement`
//!    and send nothing (S23). Solana itself would answer every duplicate submission with the same
//!    signature, so without the claim each caller would report success.
//! 3. Co-sign and simulate once more, right before sending; a refusal releases the claim.
//! 4. Send, then confirm until the blockhash can no longer land the transaction: landed → success;
//!    landed with an error → `transaction_failed` with the signature (S59); expired unseen →
//!    `transaction_failed`; no answer within the time bound → `settlement_pending` with the
//!    signature (R14).

use std::time::{Duration, Instant};

use x402_core::timing::time_left;
use x402_core::{
    Claim, Outcome, PaymentContext, PaymentId, Reason, Rejection, SchemeError, Settlement, UnixTime,
};

use super::confirm::{Confirmation, Sent};
use super::{Facilitator, Inspection};

/// How long a claim is kept in flight at most: past any blockhash's lifetime.
const CLAIM_SECONDS: u64 = 300;

/// Why a settle that reached its answer deadline before sending sent nothing.
const OUT_OF_TIME: &str =
    "the settle reached its answer deadline before sending; nothing was sent, it may be retried";

fn failed(payer: &str, tx: Option<String>, rejection: Rejection) -> Settlement {
    Settlement {
        payer: Some(payer.to_owned()),
        transaction: tx,
        amount: None,
        result: Err(rejection),
        extensions: None,
    }
}

/// The answer to a settle of a transaction already settled or attempted: never a second success.
fn duplicate(payer: &str, outcome: Option<&Outcome>) -> Settlement {
    let what = match outcome {
        None => "a settlement of this transaction is in progress",
        Some(Outcome::Settled { .. } | Outcome::Landed { .. }) => {
            "this transaction was already settled"
        }
        Some(Outcome::Failed { .. }) => "this transaction was already attempted and failed",
        Some(Outcome::Pending { .. }) => "this transaction's settlement is pending",
    };
    failed(
        payer,
        outcome.and_then(Outcome::transaction).map(str::to_owned),
        Rejection::with_message(Reason::DUPLICATE_SETTLEMENT, what),
    )
}

impl Facilitator {
    /// Settles a payment (see the module documentation).
    pub(crate) async fn settle_payment(
        &self,
        ctx: &PaymentContext<'_>,
    ) -> Result<Settlement, SchemeError> {
        let inspection = match self.inspect(ctx) {
            Ok(i) => i,
            Err(r) => return Ok(Settlement::refused(r.payer, r.rejection)),
        };
        let payer = inspection.payer().to_string();
        let _turn = self.payer_locks.lock(&payer).await;
        let id = inspection.payment_id(&self.network);
        if let Err(rejection) = self.check_accounts(&inspection).await? {
            // A transaction settled before may fail the checks now: answer with its record.
            if let Some(outcome) = self.store.outcome(&id).await? {
                return Ok(duplicate(&payer, Some(&outcome)));
            }
            return Ok(failed(&payer, None, rejection));
        }
        let expires = UnixTime(UnixTime::now().0.saturating_add(CLAIM_SECONDS));
        let token = match self.store.claim(&id, expires).await? {
            Claim::Acquired(token) => token,
            Claim::Taken(record) => return Ok(duplicate(&payer, record.outcome.as_ref())),
        };
        let result = self
            .settle_claimed(&inspection, &id, &token, &payer, ctx.deadline)
            .await;
        if result.is_err() {
            // The facilitator failed before anything was sent: the payment may be retried.
            self.store.release(&id, &token).await?;
        }
        result
    }

    /// Everything after the claim. `Err` only when nothing was sent.
    async fn settle_claimed(
        &self,
        inspection: &Inspection,
        id: &PaymentId,
        token: &x402_core::ClaimToken,
        payer: &str,
        deadline: Option<Instant>,
    ) -> Result<Settlement, SchemeError> {
        let tx = match self.sign_and_simulate(inspection).await? {
            Ok(tx) => tx,
            Err(rejection) => {
                self.store.release(id, token).await?;
                return Ok(failed(payer, None, rejection));
            }
        };
        if time_left(deadline) == Some(Duration::ZERO) {
            // Waiting for this payer's earlier settles used up the time to answer: send nothing.
            self.store.release(id, token).await?;
            return Ok(failed(
                payer,
                None,
                Rejection::with_message(Reason::UNEXPECTED_SETTLE_ERROR, OUT_OF_TIME),
            ));
        }
        let signature = tx.signatures.first().copied().unwrap_or_default();
        if let Sent::Refused(why) = self.send(&tx).await {
            // The node refused it before forwarding (its own preflight simulation): nothing was
            // broadcast, unless an earlier copy already landed.
            if self.status_of(&signature).await.ok().flatten().is_none() {
                self.store.release(id, token).await?;
                return Ok(failed(
                    payer,
                    None,
                    Rejection::with_message(Reason::TRANSACTION_FAILED, why),
                ));
            }
        }
        let sig = signature.to_string();
        let (outcome, rejection) = match self.confirm(&tx, &signature, deadline).await {
            Confirmation::Landed => (
                Outcome::Settled {
                    transaction: sig.clone(),
                },
                None,
            ),
            Confirmation::LandedWithError(err) => (
                Outcome::Failed {
                    reason: Reason::TRANSACTION_FAILED,
                    transaction: Some(sig.clone()),
                },
                Some(Rejection::with_message(
                    Reason::TRANSACTION_FAILED,
                    format!("the transaction landed with an error: {err}"),
                )),
            ),
            Confirmation::Expired => (
                Outcome::Failed {
                    reason: Reason::TRANSACTION_FAILED,
                    transaction: None,
                },
                Some(Rejection::with_message(
                    Reason::TRANSACTION_FAILED,
                    "the transaction did not land before its blockhash expired",
                )),
            ),
            Confirmation::Unknown => (
                Outcome::Pending {
                    transaction: sig.clone(),
                },
                Some(Rejection::with_message(
                    Reason::SETTLEMENT_PENDING,
                    "sent; its confirmation was not observed in time",
                )),
            ),
        };
        let transaction = outcome.transaction().map(str::to_owned);
        tracing::info!(network = %self.network, payer, ?outcome, "exact settlement on Solana");
        self.store.complete(id, token, outcome).await?;
        Ok(match rejection {
            None => Settlement {
                payer: Some(payer.to_owned()),
                transaction,
                amount: None,
                result: Ok(()),
                extensions: None,
            },
            Some(r) => failed(payer, transaction, r),
        })
    }
}
