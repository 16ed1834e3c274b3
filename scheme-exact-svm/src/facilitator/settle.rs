//! Settlement at most once per transaction message, written ahead before anything is sent.
//!
//! 1. The offline checks — the payment is authenticated locally before anything else (S76) —
//!    then the payer's turn from the settlement store: one settle per payer at a time, across
//!    schemes and processes (S27, S83), so a second payment of the same buyer is simulated only
//!    after the first has landed. The turn is waited for until the settle's answer deadline (the
//!    confirmation bound without one); still busy → `payer_busy`, nothing sent. Then the chain
//!    checks.
//! 2. Claim the payment identity (the hash of the message, shared by v1 and v2) in the store:
//!    of concurrent settles, in any process, exactly one proceeds (S23, S25). Solana itself
//!    would answer every duplicate submission with the same signature, so without the claim each
//!    caller would report success. A settle that finds the identity taken answers from its
//!    record, reconciling it from the chain first when it is unresolved (`answer`); so does one
//!    whose payment fails the chain checks now because it was settled before.
//! 3. Co-sign and simulate once more. A refusal, a facilitator error or running out of time
//!    releases the claim: nothing was written ahead, nothing sent, the payment may be retried.
//! 4. **Write ahead**: the intent — the signature, the signed bytes as they will be sent, the
//!    blockhash (`intent`) — is recorded before the transaction can leave the process (R10).
//!    The claim lost meanwhile → `duplicate_settlement`, nothing sent. The store failed → the
//!    error, nothing sent, and the claim is **not** released: the intent may have been written,
//!    and reconciliation will find its transaction never landed.
//! 5. Send, then confirm until the blockhash can no longer land the transaction: landed →
//!    success; landed with an error → `transaction_failed` with the signature (S59), and the
//!    payer is refused `payer_throttled` for the cool-down (checked before the turn); expired
//!    unseen → `transaction_failed`; no answer within the time bound → `settlement_pending` with
//!    the signature (R14). From the send on, no path releases the claim (S80, S81): a store write
//!    that fails leaves the record in flight for reconciliation and the answer is
//!    `settlement_pending` with the signature; a record a reconciler decided first answers for
//!    itself (a landed payment's success is delivered once).
//!
//! **A send the node refused.** With preflight on, a node that answers with an error forwards
//! nothing, and `send` reports a refusal only when no endpoint tried before it may have taken
//! the transaction. The record is then *withdrawn* — removed with
//! [`x402_core::SettlementStore::resolve`] and no outcome, so the payment may be retried — and the
//! answer is `transaction_failed`. That removal claims the bytes cannot land later, although the
//! blockhash is still valid; it holds because nothing else can have sent them: this settle did
//! not (refused, and no ambiguous endpoint), no earlier settle did (the claim; a removed record's
//! bytes were never sent either), and no reconciler did — reconciliation sends the bytes of a
//! record still in flight only once its settle can no longer be at work on it (the intent's
//! `holder_until`), and this settle withdraws only while that time is still ahead, by more than
//! any clock skew between processes. What remains is the RPC provider, which has held the same
//! co-signed bytes since the simulation; trusting it not to broadcast them is already what
//! releasing a claim after a failed simulation relies on. An earlier copy already seen on chain
//! (the node refused it as processed) is confirmed as usual; a status that cannot be read, a
//! refusal that came too late to be sure, or a store that fails the removal leaves the record to
//! reconciliation and answers `settlement_pending`; a record someone else resolved meanwhile
//! answers for itself.

use std::time::Duration;

use solana_signature::Signature;
use solana_transaction::versioned::VersionedTransaction;
use x402_core::timing::{capped, time_left};
use x402_core::{
    Claim, ClaimToken, Intent, Outcome, PaymentContext, PaymentId, Reason, Rejection, SchemeError,
    Settlement, UnixTime,
};

use super::answer::{failed, in_progress, pending, success};
use super::confirm::{Confirmation, Sent};
use super::intent::{IntentDetail, first_signature};
use super::{Facilitator, Inspection};

/// How long a claim is kept in flight at most: past any blockhash's lifetime.
const CLAIM_SECONDS: u64 = 300;

/// How long past its confirmation bound a settle may still be at work on its transaction
/// (sending to several endpoints, recording the outcome): reconciliation leaves sending the
/// bytes of a record in flight to the settle until then.
const HOLDER_MARGIN_SECONDS: u64 = 30;

/// How far apart the clocks of processes sharing a store may be. A settle withdraws a refused
/// transaction only while its intent's `holder_until` is at least this far ahead, so no
/// reconciler, whatever its clock, can have sent the bytes yet.
const CLOCK_SKEW_SECONDS: u64 = 10;

/// Why a settle that reached its answer deadline before sending sent nothing.
const OUT_OF_TIME: &str =
    "the settle reached its answer deadline before sending; nothing was sent, it may be retried";

/// Why a settle refused a payer whose turn did not come.
const PAYER_BUSY: &str = "another settlement of this payer is in progress and did not end in time; \
     nothing was sent, it may be retried";

/// Why a pending answer names a transaction whose outcome could not be recorded.
const NOT_RECORDED: &str =
    "sent; its outcome could not be recorded, so it is left to reconciliation";

/// A claim this settle holds.
struct Held<'a> {
    id: &'a PaymentId,
    token: &'a ClaimToken,
    payer: &'a str,
}

/// A co-signed, simulated transaction and the intent to write ahead for it.
struct Prepared {
    tx: VersionedTransaction,
    signature: Signature,
    intent: Intent,
    /// Until when (unix seconds) the intent tells reconcilers this settle is at work.
    holder_until: u64,
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
        let id = inspection.payment_id(&self.network);
        // A repeat is answered from its record without waiting for the payer's turn: it sends
        // nothing new (and the turn may be held by a crashed replica until its lease lapses).
        if let Some(record) = self.store.record(&id).await? {
            return self.answer_from_record(&id, &payer, record).await;
        }
        // A payer in a cool-down (a transaction of theirs landed with an error) sends nothing.
        if let Some(rejection) = self.throttled(&payer).await? {
            return Ok(failed(&payer, None, rejection));
        }
        let wait = time_left(ctx.deadline).unwrap_or(self.policy.confirm_timeout);
        let Some(_turn) = self.store.payer_turn(&self.payer_key(&payer), wait).await? else {
            return Ok(failed(
                &payer,
                None,
                Rejection::with_message(Reason::PAYER_BUSY, PAYER_BUSY),
            ));
        };
        if let Err(rejection) = self.check_accounts(&inspection).await? {
            // A transaction settled before may fail the checks now: answer with its record.
            if let Some(record) = self.store.record(&id).await? {
                return self.answer_from_record(&id, &payer, record).await;
            }
            return Ok(failed(&payer, None, rejection));
        }
        let expires = UnixTime(UnixTime::now().0.saturating_add(CLAIM_SECONDS));
        let token = match self.store.claim(&id, expires).await? {
            Claim::Acquired(token) => token,
            Claim::Taken(record) => return self.answer_from_record(&id, &payer, record).await,
        };
        let held = Held {
            id: &id,
            token: &token,
            payer: &payer,
        };
        self.settle_claimed(&inspection, &held, ctx.deadline).await
    }

    /// Everything after the claim. `Err` only when nothing was sent.
    async fn settle_claimed(
        &self,
        inspection: &Inspection,
        held: &Held<'_>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Settlement, SchemeError> {
        let prepared = match self.prepare(inspection, held.payer, deadline).await {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(rejection)) => {
                self.release(held).await;
                return Ok(failed(held.payer, None, rejection));
            }
            Err(e) => {
                // The facilitator failed before anything was written ahead or sent.
                self.release(held).await;
                return Err(e);
            }
        };
        // A store error here may still have written the intent: the claim stays (`?` below),
        // and reconciliation finds the transaction never landed.
        if !self
            .store
            .write_ahead(held.id, held.token, &prepared.intent)
            .await?
        {
            return Ok(in_progress(
                held.payer,
                "a settlement of this payment is in progress; nothing was sent by this one",
            ));
        }
        Ok(self.send_and_confirm(held, &prepared, deadline).await)
    }

    /// Co-signs and simulates, checks the time left, and builds the intent; a rejection means
    /// nothing may be sent.
    async fn prepare(
        &self,
        inspection: &Inspection,
        payer: &str,
        deadline: Option<std::time::Instant>,
    ) -> Result<Result<Prepared, Rejection>, SchemeError> {
        let tx = match self.sign_and_simulate(inspection).await? {
            Ok(tx) => tx,
            Err(rejection) => return Ok(Err(rejection)),
        };
        if time_left(deadline) == Some(Duration::ZERO) {
            // Waiting for this payer's earlier settles used up the time to answer: send nothing.
            return Ok(Err(Rejection::with_message(
                Reason::UNEXPECTED_SETTLE_ERROR,
                OUT_OF_TIME,
            )));
        }
        let signature = first_signature(&tx)
            .ok_or_else(|| SchemeError::other("a transaction without signatures"))?;
        let bound = capped(self.policy.confirm_timeout, deadline);
        let holder_until = UnixTime(
            UnixTime::now()
                .0
                .saturating_add(bound.as_secs())
                .saturating_add(HOLDER_MARGIN_SECONDS),
        );
        let intent = IntentDetail::of(&tx, payer, holder_until)?.intent(&self.network, &tx)?;
        Ok(Ok(Prepared {
            tx,
            signature,
            intent,
            holder_until: holder_until.0,
        }))
    }

    /// Ends a claim nothing was written ahead for. Failing, it only delays a retry: the claim is
    /// taken over once abandoned.
    async fn release(&self, held: &Held<'_>) {
        if let Err(e) = self.store.release(held.id, held.token).await {
            tracing::warn!(id = %held.id, error = %e, "releasing a claim failed; it will be taken over once abandoned");
        }
    }

    /// Sends and confirms the transaction written ahead, and records what happened. Every path
    /// from here names the transaction or withdraws it (see the module documentation); none
    /// releases the claim.
    async fn send_and_confirm(
        &self,
        held: &Held<'_>,
        prepared: &Prepared,
        deadline: Option<std::time::Instant>,
    ) -> Settlement {
        let Prepared {
            tx,
            signature,
            holder_until,
            ..
        } = prepared;
        let sig = signature.to_string();
        if let Sent::Refused(why) = self.send(tx).await {
            let status = self.status_of(signature).await;
            let in_time = UnixTime::now().0.saturating_add(CLOCK_SKEW_SECONDS) < *holder_until;
            match status {
                // An earlier copy landed (the node refused this one as processed): confirm it.
                Ok(Some(_)) => {}
                Ok(None) if in_time => return self.withdraw(held, &sig, why).await,
                Ok(None) => {
                    return self
                        .left_pending(
                            held,
                            &sig,
                            &why,
                            "it came too late to be sure no reconciler has sent it since",
                        )
                        .await;
                }
                Err(e) => {
                    tracing::warn!(%sig, error = %crate::rpc::describe(&e), "after a refused send, getSignatureStatuses failed");
                    return self
                        .left_pending(held, &sig, &why, "its status could not be read")
                        .await;
                }
            }
        }
        let (outcome, rejection) = match self.confirm(tx, signature, deadline).await {
            Confirmation::Landed => (
                Outcome::Settled {
                    transaction: sig.clone(),
                },
                None,
            ),
            Confirmation::LandedWithError(err) => {
                self.cool_down(held.payer).await;
                (
                    Outcome::Failed {
                        reason: crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
                        transaction: Some(sig.clone()),
                    },
                    Some(Rejection::with_message(
                        crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
                        format!("the transaction landed with an error: {err}"),
                    )),
                )
            }
            Confirmation::Expired => (
                Outcome::Failed {
                    reason: crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
                    transaction: None,
                },
                Some(Rejection::with_message(
                    crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED,
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
        self.finish(held, &sig, outcome, rejection).await
    }

    /// Records `outcome` and answers: success when `rejection` is `None`.
    async fn finish(
        &self,
        held: &Held<'_>,
        sig: &str,
        outcome: Outcome,
        rejection: Option<Rejection>,
    ) -> Settlement {
        tracing::info!(network = %self.network, payer = held.payer, ?outcome, "exact settlement on Solana");
        match self
            .store
            .complete(held.id, held.token, outcome.clone())
            .await
        {
            Ok(true) => match rejection {
                None => success(held.payer, sig),
                Some(r) => failed(held.payer, outcome.transaction().map(str::to_owned), r),
            },
            // A reconciler decided first: the record answers.
            Ok(false) => self.answer_after_send(held, sig).await,
            Err(e) => {
                tracing::warn!(id = %held.id, %sig, error = %e, "recording a settlement failed; left to reconciliation");
                pending(held.payer, sig, NOT_RECORDED)
            }
        }
    }

    /// The node refused the transaction written ahead, but whether it may land is not certain:
    /// recorded pending, for reconciliation.
    async fn left_pending(&self, held: &Held<'_>, sig: &str, why: &str, but: &str) -> Settlement {
        let outcome = Outcome::Pending {
            transaction: sig.to_owned(),
        };
        let message = format!(
            "the node refused the transaction ({why}), but {but}; it is left to reconciliation"
        );
        let rejection = Rejection::with_message(Reason::SETTLEMENT_PENDING, message);
        self.finish(held, sig, outcome, Some(rejection)).await
    }

    /// The node refused the transaction written ahead and it is not on chain: the record is
    /// removed and the refusal answered (see the module documentation).
    async fn withdraw(&self, held: &Held<'_>, sig: &str, why: String) -> Settlement {
        match self.store.resolve(held.id, sig, None).await {
            Ok(true) => failed(
                held.payer,
                None,
                Rejection::with_message(crate::reason::INVALID_EXACT_SVM_TRANSACTION_FAILED, why),
            ),
            Ok(false) => self.answer_after_send(held, sig).await,
            Err(e) => {
                tracing::warn!(id = %held.id, %sig, error = %e, "withdrawing a refused transaction failed; left to reconciliation");
                pending(held.payer, sig, NOT_RECORDED)
            }
        }
    }

    /// Answers from the record after this settle's own write lost to someone else's; a store
    /// that cannot be read leaves the answer pending.
    async fn answer_after_send(&self, held: &Held<'_>, sig: &str) -> Settlement {
        let answer = match self.store.record(held.id).await {
            Ok(Some(record)) => self.answer_from_record(held.id, held.payer, record).await,
            Ok(None) => return pending(held.payer, sig, NOT_RECORDED),
            Err(e) => Err(e.into()),
        };
        answer.unwrap_or_else(|e| {
            tracing::warn!(id = %held.id, %sig, error = %e, "reading a settlement record failed");
            pending(held.payer, sig, NOT_RECORDED)
        })
    }
}
