//! The settlement engine both EVM schemes use: at most once per payment identity.
//!
//! 1. Claim the payment's identity in the settlement store: of concurrent settles exactly one
//!    proceeds; the others get `duplicate_settlement` (with the recorded transaction once known).
//! 2. Check the nonce on chain once more: an authorization used by someone else (front-running)
//!    is reported as `authorization_already_used` with the transaction that used it when it can
//!    be found — never as our success.
//! 3. Broadcast through the signer pool, wait for the receipt within a bound, and accept success
//!    only when the receipt shows the exact transfer. An unobserved outcome is
//!    `settlement_pending` with the transaction hash. Nothing broadcast = the claim is released.
//!
//! Verification (with simulation) happens in the scheme right before it hands a plan here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, TxHash, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::sol_types::SolEvent;
use x402_core::timing::time_left;
use x402_core::{
    Claim, Outcome, PaymentId, Reason, Rejection, SchemeError, Settlement, SettlementStore,
    UnixTime,
};

use crate::abi::eip3009::IEip3009Token;
use crate::chain;
use crate::error::SendError;
use crate::receipt::ReceiptOutcome;
use crate::signers::{SignerPool, TxRequest};

/// How far back to look for the transaction that used a front-run authorization.
const FRONT_RUN_LOOKBACK_BLOCKS: u64 = 10_000;

/// The token transfer a settlement's receipt must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// The token.
    pub token: Address,
    /// The payer.
    pub from: Address,
    /// The recipient.
    pub to: Address,
    /// The exact amount.
    pub value: U256,
}

/// How the engine re-checks, right before broadcasting, that nobody used the authorization.
#[derive(Debug, Clone)]
pub enum NonceCheck {
    /// EIP-3009 `authorizationState(authorizer, nonce)`.
    Eip3009 {
        /// The token.
        token: Address,
        /// The payer.
        authorizer: Address,
        /// The nonce.
        nonce: B256,
    },
    /// Permit2's unordered nonce bitmap.
    Permit2 {
        /// The owner.
        owner: Address,
        /// The nonce.
        nonce: U256,
    },
}

/// What a verified payment settles with.
#[derive(Debug, Clone)]
pub struct SettlePlan {
    /// The contract called.
    pub to: Address,
    /// The calldata.
    pub data: Bytes,
    /// The gas limit.
    pub gas_limit: u64,
    /// The signer that must send it (`upto`: the witness facilitator); `None` = any.
    pub from: Option<Address>,
    /// The payment identity.
    pub id: PaymentId,
    /// When the authorization expires.
    pub expires: UnixTime,
    /// The payer.
    pub payer: Address,
    /// The transfer the receipt must show.
    pub transfer: Transfer,
    /// The on-chain nonce re-check.
    pub nonce_check: NonceCheck,
    /// The amount to report in the response (`upto`).
    pub report_amount: Option<U256>,
}

/// A successful settlement.
pub fn settled(payer: Address, tx: String, amount: Option<U256>) -> Settlement {
    Settlement {
        payer: Some(payer.to_checksum(None)),
        transaction: Some(tx),
        amount: amount.map(Into::into),
        result: Ok(()),
        extensions: None,
    }
}

/// A failed or refused settlement.
pub fn failed(payer: Address, tx: Option<String>, rejection: Rejection) -> Settlement {
    Settlement {
        payer: Some(payer.to_checksum(None)),
        transaction: tx,
        amount: None,
        result: Err(rejection),
        extensions: None,
    }
}

/// The answer to a settle of a payment already settled or attempted: never a second success.
pub fn duplicate(payer: Address, outcome: &Outcome) -> Settlement {
    let what = match outcome {
        Outcome::Settled { .. } => "this payment was already settled",
        Outcome::Failed { .. } => "this payment was already attempted and failed",
        Outcome::Pending { .. } => "this payment's settlement is pending",
    };
    failed(
        payer,
        outcome
            .transaction()
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
        Rejection::with_message(Reason::DUPLICATE_SETTLEMENT, what),
    )
}

fn in_progress(payer: Address) -> Settlement {
    failed(
        payer,
        None,
        Rejection::with_message(
            Reason::DUPLICATE_SETTLEMENT,
            "a settlement of this payment is in progress",
        ),
    )
}

/// Claims, broadcasts, waits and records, for one network.
#[derive(Debug, Clone)]
pub struct Settler {
    provider: DynProvider,
    signers: SignerPool,
    store: Arc<dyn SettlementStore>,
}

impl Settler {
    /// An engine over `provider`, `signers` and `store`.
    pub fn new(
        provider: DynProvider,
        signers: SignerPool,
        store: Arc<dyn SettlementStore>,
    ) -> Self {
        Self {
            provider,
            signers,
            store,
        }
    }

    fn simulate_from(&self) -> Address {
        self.signers
            .addresses()
            .first()
            .copied()
            .unwrap_or_default()
    }

    /// The answer for a payment already recorded (a repeat whose verification now fails because
    /// its nonce is spent), if any.
    pub async fn recorded(
        &self,
        id: &PaymentId,
        payer: Address,
    ) -> Result<Option<Settlement>, SchemeError> {
        Ok(self.store.outcome(id).await?.map(|o| duplicate(payer, &o)))
    }

    /// Records a payment as consumed without any transaction (a zero-amount `upto` settle), so no
    /// later settle of it can succeed.
    pub async fn consume_without_transfer(
        &self,
        id: &PaymentId,
        expires: UnixTime,
        payer: Address,
    ) -> Result<Result<(), Settlement>, SchemeError> {
        match self.store.claim(id, expires).await? {
            Claim::Acquired => {}
            Claim::InFlight => return Ok(Err(in_progress(payer))),
            Claim::Recorded(o) => return Ok(Err(duplicate(payer, &o))),
        }
        self.store
            .complete(
                id,
                Outcome::Settled {
                    transaction: String::new(),
                },
            )
            .await?;
        Ok(Ok(()))
    }

    /// Claims the plan's identity and settles it (see the module documentation).
    /// `deadline` is when the settle must answer (see [`x402_core::timing`]): nothing is sent
    /// once it has passed, and the receipt wait ends there (`settlement_pending`).
    pub async fn settle(
        &self,
        plan: &SettlePlan,
        deadline: Option<Instant>,
    ) -> Result<Settlement, SchemeError> {
        match self.store.claim(&plan.id, plan.expires).await? {
            Claim::Acquired => {}
            Claim::InFlight => return Ok(in_progress(plan.payer)),
            Claim::Recorded(outcome) => return Ok(duplicate(plan.payer, &outcome)),
        }
        let result = self.broadcast_claimed(plan, deadline).await;
        if result.is_err() {
            // The facilitator failed before anything left it: the payment may be retried.
            self.store.release(&plan.id).await?;
        }
        result
    }

    /// Everything after the claim. `Err` only when nothing was broadcast.
    async fn broadcast_claimed(
        &self,
        plan: &SettlePlan,
        deadline: Option<Instant>,
    ) -> Result<Settlement, SchemeError> {
        let payer = plan.payer;
        if self.nonce_used(&plan.nonce_check).await? {
            let foreign = self.find_front_runner(&plan.nonce_check).await;
            let outcome = Outcome::Failed {
                reason: Reason::AUTHORIZATION_ALREADY_USED,
                transaction: foreign.map(|h| format!("{h:#x}")),
            };
            self.complete(plan, outcome.clone()).await?;
            return Ok(failed(
                payer,
                outcome.transaction().map(str::to_owned),
                Rejection::with_message(
                    Reason::AUTHORIZATION_ALREADY_USED,
                    "the authorization was used on chain by another transaction",
                ),
            ));
        }
        if time_left(deadline) == Some(Duration::ZERO) {
            // Waiting for this payer's earlier settles used up the time to answer: send nothing.
            self.store.release(&plan.id).await?;
            return Ok(failed(
                payer,
                None,
                Rejection::with_message(
                    Reason::UNEXPECTED_SETTLE_ERROR,
                    "the settle reached its answer deadline before sending; nothing was sent, it \
                     may be retried",
                ),
            ));
        }
        let request = TxRequest {
            to: plan.to,
            data: plan.data.clone(),
            gas_limit: plan.gas_limit,
            from: plan.from,
        };
        let sent = match self.signers.send(request).await {
            Ok(sent) => sent,
            Err(SendError::Ambiguous { hash, .. }) => return self.pending(plan, hash).await,
            Err(e) => {
                // Nothing was broadcast: give the claim back, so the payment can be retried.
                self.store.release(&plan.id).await?;
                let reason = match &e {
                    SendError::FeeAboveCap { .. } => crate::reason::GAS_PRICE_TOO_HIGH,
                    SendError::GasLimitAboveCap { .. } => crate::reason::GAS_LIMIT_EXCEEDED,
                    _ => Reason::UNEXPECTED_SETTLE_ERROR,
                };
                return Ok(failed(
                    payer,
                    None,
                    Rejection::with_message(reason, format!("settlement not sent: {e}")),
                ));
            }
        };
        let hash = format!("{:#x}", sent.hash);
        match self.signers.wait_until(sent.hash, deadline).await {
            ReceiptOutcome::Success(receipt) if shows_transfer(&receipt, &plan.transfer) => {
                self.complete(
                    plan,
                    Outcome::Settled {
                        transaction: hash.clone(),
                    },
                )
                .await?;
                Ok(settled(payer, hash, plan.report_amount))
            }
            ReceiptOutcome::Success(_) => {
                self.fail(
                    plan,
                    hash,
                    crate::reason::TRANSFER_NOT_OBSERVED,
                    "the transaction succeeded but shows no transfer of the exact amount",
                )
                .await
            }
            ReceiptOutcome::Reverted(_) => {
                let (reason, message) = if self.nonce_used(&plan.nonce_check).await? {
                    (
                        Reason::AUTHORIZATION_ALREADY_USED,
                        "the authorization was used by another transaction first",
                    )
                } else if matches!(plan.nonce_check, NonceCheck::Permit2 { .. }) {
                    (
                        Reason::INVALID_TRANSACTION_STATE,
                        "the settlement transaction reverted",
                    )
                } else {
                    (
                        crate::reason::INVALID_EXACT_EVM_TRANSACTION_FAILED,
                        "the settlement transaction reverted",
                    )
                };
                self.fail(plan, hash, reason, message).await
            }
            ReceiptOutcome::Pending => self.pending(plan, sent.hash).await,
        }
    }

    async fn fail(
        &self,
        plan: &SettlePlan,
        hash: String,
        reason: Reason,
        message: &str,
    ) -> Result<Settlement, SchemeError> {
        self.complete(
            plan,
            Outcome::Failed {
                reason: reason.clone(),
                transaction: Some(hash.clone()),
            },
        )
        .await?;
        Ok(failed(
            plan.payer,
            Some(hash),
            Rejection::with_message(reason, message),
        ))
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
                Reason::SETTLEMENT_PENDING,
                "broadcast; the receipt was not observed in time",
            ),
        ))
    }

    async fn complete(&self, plan: &SettlePlan, outcome: Outcome) -> Result<(), SchemeError> {
        self.store
            .complete(&plan.id, outcome)
            .await
            .map_err(SchemeError::from)
    }

    /// Whether the authorization's nonce is spent on chain.
    pub async fn nonce_used(&self, check: &NonceCheck) -> Result<bool, SchemeError> {
        match check {
            NonceCheck::Eip3009 {
                token,
                authorizer,
                nonce,
            } => Ok(chain::view(
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
            NonceCheck::Permit2 { owner, nonce } => {
                crate::permit2::nonce_used(&self.provider, self.simulate_from(), *owner, *nonce)
                    .await
            }
        }
    }

    /// The transaction that used an EIP-3009 authorization, from its `AuthorizationUsed` log.
    /// (Permit2 emits no per-nonce event.)
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
            .topic2(*nonce)
            .from_block(latest.saturating_sub(FRONT_RUN_LOOKBACK_BLOCKS))
            .to_block(latest);
        let logs = self.provider.get_logs(&filter).await.ok()?;
        logs.first().and_then(|l| l.transaction_hash)
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
