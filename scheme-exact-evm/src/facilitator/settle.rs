//! Settlement at most once per payment identity.
//!
//! 1. Verify again, with simulation, right before anything is sent.
//! 2. Claim the payment's identity in the settlement store: of concurrent settles exactly one
//!    proceeds; the others get `duplicate_settlement` (with the recorded transaction once known).
//! 3. Check the nonce on chain once more: an authorization used by someone else (front-running)
//!    is reported as `authorization_already_used` with the transaction that used it — never as
//!    our success.
//! 4. Broadcast through the signer pool, wait for the receipt within a bound, and accept success
//!    only when the receipt shows the exact transfer. An unobserved outcome is
//!    `settlement_pending` with the transaction hash.

use alloy::primitives::{Address, B256, TxHash};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::sol_types::SolEvent;
use x402_core::{Claim, Outcome, PaymentContext, Reason, Rejection, SchemeError, Settlement};
use x402_evm::abi::eip3009::IEip3009Token;
use x402_evm::error::SendError;
use x402_evm::receipt::ReceiptOutcome;
use x402_evm::signers::TxRequest;

use super::eip3009::NonceCheck;
use super::rpc;
use super::{Facilitator, SettlePlan, Transfer};
use crate::payload::{self, ExactEvmPayload};

/// How far back to look for the transaction that used a front-run authorization.
const FRONT_RUN_LOOKBACK_BLOCKS: u64 = 10_000;

fn store_error(e: x402_core::settlement::StoreError) -> SchemeError {
    SchemeError::Other(e.to_string())
}

fn settled(payer: Address, tx: String) -> Settlement {
    Settlement {
        payer: Some(payer.to_checksum(None)),
        transaction: Some(tx),
        amount: None,
        result: Ok(()),
        extensions: None,
    }
}

fn failed(payer: Address, tx: Option<String>, rejection: Rejection) -> Settlement {
    Settlement {
        payer: Some(payer.to_checksum(None)),
        transaction: tx,
        amount: None,
        result: Err(rejection),
        extensions: None,
    }
}

/// The answer to a settle of a payment that was already settled or attempted: never a second
/// success.
fn duplicate(payer: Address, outcome: &Outcome) -> Settlement {
    let what = match outcome {
        Outcome::Settled { .. } => "this payment was already settled",
        Outcome::Failed { .. } => "this payment was already attempted and failed",
        Outcome::Pending { .. } => "this payment's settlement is pending",
    };
    failed(
        payer,
        outcome.transaction().map(str::to_owned),
        Rejection::with_message(Reason::DuplicateSettlement, what),
    )
}

impl Facilitator {
    /// Settles a payment (see the module documentation).
    pub(crate) async fn settle_payment(
        &self,
        ctx: &PaymentContext<'_>,
    ) -> Result<Settlement, SchemeError> {
        // One settle per payer at a time, receipt included: a second payment from the same payer
        // is simulated only after the first has landed, so "N payments, balance for one" cannot
        // broadcast N transactions (threat-model S27).
        let _payer_turn = match payload::parse(ctx.payload.payload) {
            Ok(p) => Some(self.payer_locks.lock(&format!("{:#x}", p.payer())).await),
            Err(_) => None,
        };
        let (payload, verdict) = self.check(ctx).await?;
        let Some(payload) = payload else {
            let hint = payload::payer_hint(ctx.payload.payload);
            let r = verdict
                .err()
                .unwrap_or_else(|| Rejection::new(Reason::InvalidPayload));
            return Ok(Settlement::refused(hint, r));
        };
        let payer = payload.payer();
        let plan = match verdict {
            Ok(plan) => plan,
            Err(rejection) => {
                // A payment this facilitator settled before fails verification (its nonce is
                // spent): answer with what was recorded, not a fresh failure.
                if let Some(id) = self.identity(ctx, &payload)
                    && let Some(outcome) = self.store.outcome(&id).await.map_err(store_error)?
                {
                    return Ok(duplicate(payer, &outcome));
                }
                return Ok(failed(payer, None, rejection));
            }
        };
        match self
            .store
            .claim(&plan.id, plan.expires)
            .await
            .map_err(store_error)?
        {
            Claim::Acquired => {}
            Claim::InFlight => {
                return Ok(failed(
                    payer,
                    None,
                    Rejection::with_message(
                        Reason::DuplicateSettlement,
                        "a settlement of this payment is in progress",
                    ),
                ));
            }
            Claim::Recorded(outcome) => return Ok(duplicate(payer, &outcome)),
        }
        let result = self.broadcast_claimed(&plan).await;
        if result.is_err() {
            // The facilitator failed before anything left it: the payment may be retried.
            self.store.release(&plan.id).await.map_err(store_error)?;
        }
        result
    }

    /// Everything after the claim. `Err` only when nothing was broadcast.
    async fn broadcast_claimed(&self, plan: &SettlePlan) -> Result<Settlement, SchemeError> {
        let payer = plan.payer;
        if self.nonce_used(&plan.nonce_check).await? {
            let foreign = self.find_front_runner(&plan.nonce_check).await;
            let outcome = Outcome::Failed {
                reason: Reason::AuthorizationAlreadyUsed,
                transaction: foreign.map(|h| format!("{h:#x}")),
            };
            self.complete(plan, outcome.clone()).await?;
            return Ok(failed(
                payer,
                outcome.transaction().map(str::to_owned),
                Rejection::with_message(
                    Reason::AuthorizationAlreadyUsed,
                    "the authorization was used on chain by another transaction",
                ),
            ));
        }
        let sent = match self
            .signers
            .send(TxRequest {
                to: plan.to,
                data: plan.data.clone(),
                gas_limit: plan.gas_limit,
                from: None,
            })
            .await
        {
            Ok(sent) => sent,
            Err(SendError::Ambiguous { hash, .. }) => {
                return self.pending(plan, hash).await;
            }
            Err(e) => {
                // Nothing was broadcast: give the claim back, so the payment can be retried.
                self.store.release(&plan.id).await.map_err(store_error)?;
                let reason = match &e {
                    SendError::FeeAboveCap { .. } => Reason::GasPriceTooHigh,
                    SendError::GasLimitAboveCap { .. } => Reason::GasLimitExceeded,
                    _ => Reason::UnexpectedSettleError,
                };
                return Ok(failed(
                    payer,
                    None,
                    Rejection::with_message(reason, format!("settlement not sent: {e}")),
                ));
            }
        };
        let hash = format!("{:#x}", sent.hash);
        match self.signers.wait(sent.hash).await {
            ReceiptOutcome::Success(receipt) if shows_transfer(&receipt, &plan.transfer) => {
                self.complete(
                    plan,
                    Outcome::Settled {
                        transaction: hash.clone(),
                    },
                )
                .await?;
                Ok(settled(payer, hash))
            }
            ReceiptOutcome::Success(_) => {
                let reason = Reason::TransferNotObserved;
                self.record_failure(plan, reason.clone(), Some(hash.clone()))
                    .await?;
                Ok(failed(
                    payer,
                    Some(hash),
                    Rejection::with_message(
                        reason,
                        "the transaction succeeded but shows no transfer of the exact amount",
                    ),
                ))
            }
            ReceiptOutcome::Reverted(_) => {
                let (reason, message) = if self.nonce_used(&plan.nonce_check).await? {
                    (
                        Reason::AuthorizationAlreadyUsed,
                        "the authorization was used by another transaction first",
                    )
                } else if matches!(plan.nonce_check, NonceCheck::Permit2 { .. }) {
                    (
                        Reason::InvalidTransactionState,
                        "the settlement transaction reverted",
                    )
                } else {
                    (
                        Reason::InvalidExactEvmTransactionFailed,
                        "the settlement transaction reverted",
                    )
                };
                self.record_failure(plan, reason.clone(), Some(hash.clone()))
                    .await?;
                Ok(failed(
                    payer,
                    Some(hash),
                    Rejection::with_message(reason, message),
                ))
            }
            ReceiptOutcome::Pending => self.pending(plan, sent.hash).await,
        }
    }

    async fn pending(&self, plan: &SettlePlan, hash: TxHash) -> Result<Settlement, SchemeError> {
        let tx = format!("{hash:#x}");
        self.complete(
            plan,
            Outcome::Pending {
                transaction: tx.clone(),
            },
        )
        .await?;
        Ok(failed(
            plan.payer,
            Some(tx),
            Rejection::with_message(
                Reason::SettlementPending,
                "broadcast; the receipt was not observed in time",
            ),
        ))
    }

    async fn record_failure(
        &self,
        plan: &SettlePlan,
        reason: Reason,
        transaction: Option<String>,
    ) -> Result<(), SchemeError> {
        self.complete(
            plan,
            Outcome::Failed {
                reason,
                transaction,
            },
        )
        .await
    }

    async fn complete(&self, plan: &SettlePlan, outcome: Outcome) -> Result<(), SchemeError> {
        self.store
            .complete(&plan.id, outcome)
            .await
            .map_err(store_error)
    }

    /// Whether the authorization's nonce is spent on chain.
    async fn nonce_used(&self, check: &NonceCheck) -> Result<bool, SchemeError> {
        match check {
            NonceCheck::Eip3009 {
                token,
                authorizer,
                nonce,
            } => Ok(rpc::view(
                &self.provider,
                self.simulate_from(),
                *token,
                IEip3009Token::authorizationStateCall {
                    authorizer: *authorizer,
                    nonce: *nonce,
                },
            )
            .await?
            .unwrap_or(false)),
            NonceCheck::Permit2 { owner, nonce } => self.permit2_nonce_used(*owner, *nonce).await,
        }
    }

    /// The transaction that used an EIP-3009 authorization, from its `AuthorizationUsed` log.
    async fn find_front_runner(&self, check: &NonceCheck) -> Option<TxHash> {
        let NonceCheck::Eip3009 {
            token,
            authorizer,
            nonce,
        } = check
        else {
            return None;
        };
        let latest = self.provider.get_block_number().await.ok()?;
        let filter = Filter::new()
            .address(*token)
            .event_signature(IEip3009Token::AuthorizationUsed::SIGNATURE_HASH)
            .topic1(authorizer.into_word())
            .topic2(B256::from(*nonce))
            .from_block(latest.saturating_sub(FRONT_RUN_LOOKBACK_BLOCKS))
            .to_block(latest);
        let logs = self.provider.get_logs(&filter).await.ok()?;
        logs.first().and_then(|l| l.transaction_hash)
    }

    /// The identity of a payment without verifying it (for answering repeats).
    fn identity(
        &self,
        ctx: &PaymentContext<'_>,
        payload: &ExactEvmPayload,
    ) -> Option<x402_core::PaymentId> {
        match payload {
            ExactEvmPayload::Eip3009(p) => {
                let asset = x402_evm::parse::address("asset", ctx.requirements.asset).ok()?;
                Some(super::eip3009::eip3009_id(&self.network, asset, p))
            }
            ExactEvmPayload::Permit2(p) => Some(super::permit2_id(&self.network, p.from, p.nonce)),
        }
    }
}

/// Whether the receipt shows the token's `Transfer(from → to, value)` exactly.
fn shows_transfer(receipt: &TransactionReceipt, t: &Transfer) -> bool {
    receipt.inner.logs().iter().any(|log| {
        log.address() == t.token
            && IEip3009Token::Transfer::decode_log(&log.inner)
                .is_ok_and(|e| e.from == t.from && e.to == t.to && e.value == t.value)
    })
}
