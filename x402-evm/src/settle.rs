//! The settlement engine both EVM schemes use: at most once per payment identity.
//!
//! 1. Claim the payment's identity in the settlement store: of concurrent settles (in any
//!    process sharing the store) exactly one proceeds; the others are answered from the record
//!    (below).
//! 2. The last check, under the claim: the scheme's check once more with the simulation of
//!    exactly what will be sent, at `pending` (so a copy of the payment waiting in the mempool is
//!    seen) — the settle's only simulation (its check before the claim reads nothing that can
//!    change). A payment refused there is answered with the scheme's reason and the claim given
//!    back, except an authorization used by someone else (front-running, threat-model S31): it is
//!    reported as the reference reports a used nonce (`invalid_exact_evm_nonce_already_used` for
//!    EIP-3009, `permit2_invalid_nonce` for Permit2) with the transaction that used it when it
//!    can be found, and recorded — never as our success.
//! 3. Sign, **write ahead** (the store records the signed transaction: signer, nonce, hash,
//!    bytes — before it can leave the process), broadcast through the signer pool, wait for the
//!    receipt within a bound, and accept success only when the receipt shows the exact transfer.
//!    While waiting ([`crate::watch`]), a transaction the node lost (or a send whose answer was
//!    lost) is sent again byte for byte, and one still unmined after `stuck_after_blocks` is
//!    replaced with the same nonce and higher fees within the caps (written ahead too): whichever
//!    copy is mined is the settlement. An unobserved outcome is `settlement_pending` with the
//!    transaction hash.
//! 4. The claim is released only when nothing was written ahead. A definitive refusal by the node
//!    of what was written ahead removes the record through the reconciliation compare-and-set;
//!    every other failure after the write-ahead leaves the record for reconciliation.
//!
//! **Reconciliation** ([`Settler::reconcile`], and [`Settler::answer_existing`] for a repeated
//! settle) judges a record written ahead from the chain: a receipt decides (landed with the
//! transfer → [`Outcome::Landed`], whose next settle answers success once; reverted → failed);
//! without one, a transaction the node knows is left pending; one it does not know is sent again
//! with the identical bytes while the authorization is valid and the signer's nonce unused,
//! failed once the authorization expired unused, and removed (the payment may be settled again)
//! once the signer's nonce was used by another transaction while the authorization is unused.
//! Records written ahead by a settle still running (younger than the receipt bound) are only
//! read, never sent again; one whose settle is running in this process is not even read (its
//! watch follows the chain for it, and records what happens).
//!
//! **Cool-down.** A settlement transaction mined reverted cost the facilitator its gas: the payer
//! is refused `payer_throttled` for the network's cool-down ([`PayerCooldown`], recorded in the
//! store under [`payer_key`]), whether the settle saw the receipt or reconciliation found it.
//!
//! Verification happens in the scheme: before it hands a plan here (every check but the
//! simulation), and as the last check under the claim (see 2.).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, Bytes, TxHash, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::sol_types::SolEvent;
use serde::{Deserialize, Serialize};
use x402_core::timing::time_left;
use x402_core::{
    Claim, ClaimToken, Intent, Network, Outcome, PayerCooldown, PaymentId, Reason, Reconciled,
    Record, Rejection, SchemeError, Settlement, SettlementStore, UnixTime,
};

use crate::abi::eip3009::IEip3009Token;
use crate::chain;
use crate::error::SendError;
use crate::receipt::ReceiptOutcome;
use crate::signers::{Journal, Signed, SignerPool, TxRequest};

/// How long a repeated settle waits for a concurrent settle of the same payment to write its
/// transaction ahead, so its answer can name it.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(2);

/// How far back to look for the transaction that used a front-run authorization.
const FRONT_RUN_LOOKBACK_BLOCKS: u64 = 10_000;

/// The token transfer a settlement's receipt must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl NonceCheck {
    /// The reason a settlement whose authorization was used by another transaction is answered
    /// with.
    pub fn used_reason(&self) -> Reason {
        match self {
            Self::Eip3009 { .. } => crate::reason::INVALID_EXACT_EVM_NONCE_ALREADY_USED,
            Self::Permit2 { .. } => crate::reason::PERMIT2_INVALID_NONCE,
        }
    }
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
    /// The reason a reverted settlement transaction is answered with (the scheme's
    /// `invalid_<scheme>_evm_transaction_failed`).
    pub reverted: Reason,
}

/// The key of a payer on `network` in the store, for its turn and its cool-down:
/// `<CAIP-2 network>/<payer, lower-case hex>` (shared by every EVM scheme on the network).
pub fn payer_key(network: &Network, payer: Address) -> String {
    format!("{network}/{payer:#x}")
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
        Outcome::Settled { .. } | Outcome::Landed { .. } => "this payment was already settled",
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

/// The answer while a payment's transaction is out and undecided.
fn pending_answer(payer: Address, transaction: String) -> Settlement {
    failed(
        payer,
        Some(transaction),
        Rejection::with_message(
            Reason::SETTLEMENT_PENDING,
            "broadcast; the receipt was not observed in time",
        ),
    )
}

/// The verify answer for a payment the store has any record of (threat-model S78).
pub fn recorded_rejection(record: &Record) -> Rejection {
    let what = match &record.outcome {
        None => "a settlement of this payment is in progress".to_owned(),
        Some(o) => duplicate(Address::ZERO, o)
            .result
            .err()
            .and_then(|r| r.message)
            .unwrap_or_default(),
    };
    let what = match record.transaction() {
        Some(tx) => format!("{what} (transaction {tx})"),
        None => what,
    };
    Rejection::with_message(Reason::DUPLICATE_SETTLEMENT, what)
}

/// One signed transaction of a settle, as written ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Attempt {
    hash: TxHash,
    from: Address,
    nonce: u64,
    raw: Bytes,
}

/// What the engine writes ahead ([`Intent::detail`]): enough to judge the payment from the chain
/// after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Detail {
    /// Every transaction signed for the payment (a nonce conflict re-signs), oldest first.
    attempts: Vec<Attempt>,
    payer: Address,
    transfer: Transfer,
    nonce_check: NonceCheck,
    /// The reason a revert is answered with; absent in records written before it was kept,
    /// which are answered as an `exact` revert.
    #[serde(default)]
    reverted: Option<Reason>,
    expires: u64,
    amount: Option<U256>,
    /// When it was written (unix seconds).
    written_at: u64,
}

/// The engine's [`Journal`]: writes each signed transaction ahead under the settle's claim.
struct WriteAhead<'a> {
    store: &'a dyn SettlementStore,
    network: &'a Network,
    id: &'a PaymentId,
    token: &'a ClaimToken,
    plan: &'a SettlePlan,
    attempts: Mutex<Vec<Attempt>>,
    /// Whether a write may have reached the store (then the claim is never released).
    tried: std::sync::atomic::AtomicBool,
    /// Whether the store said the claim is no longer this settle's.
    lost: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Journal for WriteAhead<'_> {
    async fn record(&self, tx: &Signed) -> Result<(), SendError> {
        let attempts = {
            let mut list = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
            list.push(Attempt {
                hash: tx.hash,
                from: tx.from,
                nonce: tx.nonce,
                raw: tx.raw.clone(),
            });
            list.clone()
        };
        let detail = Detail {
            attempts,
            payer: self.plan.payer,
            transfer: self.plan.transfer,
            nonce_check: self.plan.nonce_check.clone(),
            reverted: Some(self.plan.reverted.clone()),
            expires: self.plan.expires.0,
            amount: self.plan.report_amount,
            written_at: UnixTime::now().0,
        };
        let intent = Intent {
            network: self.network.to_string(),
            transaction: format!("{:#x}", tx.hash),
            detail: serde_json::to_value(&detail)
                .map_err(|e| SendError::NotRecorded(e.to_string()))?,
        };
        self.tried.store(true, std::sync::atomic::Ordering::SeqCst);
        match self.store.write_ahead(self.id, self.token, &intent).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.lost.store(true, std::sync::atomic::Ordering::SeqCst);
                Err(SendError::NotRecorded(
                    "the claim on this payment was taken over".into(),
                ))
            }
            Err(e) => Err(SendError::NotRecorded(e.0)),
        }
    }
}

impl WriteAhead<'_> {
    fn written(&self) -> bool {
        self.tried.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The transaction written ahead with `hash`.
    fn attempt(&self, hash: TxHash) -> Option<Attempt> {
        let list = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().find(|a| a.hash == hash).cloned()
    }
}

/// What reconciling one record concluded.
enum Judgement {
    Outcome(Outcome),
    Release,
    Undecided,
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

/// Claims, writes ahead, broadcasts, waits, records and reconciles, for one network.
#[derive(Debug, Clone)]
pub struct Settler {
    network: Network,
    provider: DynProvider,
    signers: SignerPool,
    store: Arc<dyn SettlementStore>,
    cooldown: PayerCooldown,
    /// The payments this process is settling (claimed, answer not given yet): reconciliation
    /// leaves them to their settle.
    settling: Arc<Settling>,
}

/// The payments a process is settling.
#[derive(Debug, Default)]
struct Settling(std::sync::Mutex<std::collections::HashSet<PaymentId>>);

impl Settling {
    fn with<T>(&self, f: impl FnOnce(&mut std::collections::HashSet<PaymentId>) -> T) -> T {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// One settle's entry in [`Settling`], removed when the settle ends (answered or dropped).
struct SettlingEntry<'a>(&'a Settling, PaymentId);

impl<'a> SettlingEntry<'a> {
    fn enter(settling: &'a Settling, id: &PaymentId) -> Self {
        settling.with(|ids| ids.insert(id.clone()));
        Self(settling, id.clone())
    }
}

impl Drop for SettlingEntry<'_> {
    fn drop(&mut self) {
        self.0.with(|ids| ids.remove(&self.1));
    }
}

impl Settler {
    /// An engine for `network` over `provider`, `signers` and `store`.
    pub fn new(
        network: Network,
        provider: DynProvider,
        signers: SignerPool,
        store: Arc<dyn SettlementStore>,
    ) -> Self {
        let cooldown = PayerCooldown::new(Arc::clone(&store), PayerCooldown::DEFAULT);
        Self {
            network,
            provider,
            signers,
            store,
            cooldown,
            settling: Arc::default(),
        }
    }

    /// Sets how long a payer whose settlement reverted is refused (zero: never).
    pub fn set_payer_cooldown(&mut self, period: Duration) {
        self.cooldown = PayerCooldown::new(Arc::clone(&self.store), period);
    }

    /// Until when `payer` is refused after a settlement of theirs reverted, if it still is.
    pub async fn throttled(&self, payer: Address) -> Result<Option<UnixTime>, SchemeError> {
        Ok(self
            .cooldown
            .until(&payer_key(&self.network, payer))
            .await?)
    }

    /// Starts `payer`'s cool-down: a settlement transaction of theirs was mined reverted, at
    /// our gas. A store failure is logged; the settlement's answer stands.
    async fn cool_down(&self, payer: Address) {
        match self.cooldown.start(&payer_key(&self.network, payer)).await {
            Ok(Some(until)) => {
                tracing::info!(network = %self.network, %payer, %until, "payer cool-down after a reverted settlement");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(network = %self.network, %payer, error = %e, "recording a payer cool-down failed");
            }
        }
    }

    /// The settlement store.
    pub fn store(&self) -> &Arc<dyn SettlementStore> {
        &self.store
    }

    fn simulate_from(&self) -> Address {
        self.signers
            .addresses()
            .first()
            .copied()
            .unwrap_or_default()
    }

    /// The answer for a payment the store has a record of (a repeat whose verification now
    /// fails because its nonce is spent), if any; see [`Settler::answer_existing`].
    pub async fn recorded(
        &self,
        id: &PaymentId,
        payer: Address,
    ) -> Result<Option<Settlement>, SchemeError> {
        match self.store.record(id).await? {
            Some(record) => self.answer_existing(id, payer, record).await.map(Some),
            None => Ok(None),
        }
    }

    /// The answer for a payment whose identity is taken: an unresolved record is reconciled
    /// from the chain first; a payment found landed is answered success exactly once
    /// ([`SettlementStore::deliver`]), every other repeat `duplicate_settlement` or
    /// `settlement_pending` naming its transaction.
    pub async fn answer_existing(
        &self,
        id: &PaymentId,
        payer: Address,
        record: Record,
    ) -> Result<Settlement, SchemeError> {
        let record = self.wait_for_write_ahead(id, record).await?;
        let record = match self.current(id, record).await? {
            Some(r) => r,
            None => {
                return Ok(failed(
                    payer,
                    None,
                    Rejection::with_message(
                        Reason::UNEXPECTED_SETTLE_ERROR,
                        "an earlier attempt at this payment can no longer land; nothing was \
                         settled, it may be retried",
                    ),
                ));
            }
        };
        Ok(match (&record.outcome, record.transaction()) {
            (None, Some(tx)) => pending_answer(payer, tx.to_owned()),
            (None, None) => in_progress(payer),
            (Some(Outcome::Pending { transaction }), _) => {
                pending_answer(payer, transaction.clone())
            }
            (Some(landed @ Outcome::Landed { transaction }), _) => {
                if self.store.deliver(id).await? {
                    let amount = record
                        .intent
                        .as_ref()
                        .and_then(|i| serde_json::from_value::<Detail>(i.detail.clone()).ok())
                        .and_then(|d| d.amount);
                    settled(payer, transaction.clone(), amount)
                } else {
                    duplicate(payer, landed)
                }
            }
            (Some(outcome), _) => duplicate(payer, outcome),
        })
    }

    /// The record as the chain has it now: an unresolved record is reconciled first (`None`:
    /// reconciliation proved nothing can land and removed it).
    pub async fn current(
        &self,
        id: &PaymentId,
        record: Record,
    ) -> Result<Option<Record>, SchemeError> {
        if !record.is_unresolved() {
            return Ok(Some(record));
        }
        self.reconcile_one(id, &record).await?;
        Ok(self.store.record(id).await?)
    }

    /// A claim still without intent or outcome is being settled right now: waits briefly for its
    /// write-ahead, so the answer can name the transaction.
    async fn wait_for_write_ahead(
        &self,
        id: &PaymentId,
        mut record: Record,
    ) -> Result<Record, SchemeError> {
        let give_up = Instant::now() + IN_PROGRESS_WAIT;
        while record.outcome.is_none() && record.intent.is_none() && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(50)).await;
            match self.store.record(id).await? {
                Some(r) => record = r,
                None => break,
            }
        }
        Ok(record)
    }

    /// Records a payment as consumed without any transaction (a zero-amount `upto` settle), so no
    /// later settle of it can succeed.
    pub async fn consume_without_transfer(
        &self,
        id: &PaymentId,
        expires: UnixTime,
        payer: Address,
    ) -> Result<Result<(), Settlement>, SchemeError> {
        let token = match self.store.claim(id, expires).await? {
            Claim::Acquired(token) => token,
            Claim::Taken(record) => {
                return Ok(Err(self.answer_existing(id, payer, record).await?));
            }
        };
        let consumed = Outcome::Settled {
            transaction: String::new(),
        };
        if !self.store.complete(id, &token, consumed).await? {
            return Ok(Err(in_progress(payer)));
        }
        Ok(Ok(()))
    }

    /// Claims the plan's identity and settles it (see the module documentation).
    /// `deadline` is when the settle must answer (see [`x402_core::timing`]): nothing is sent
    /// once it has passed, and the receipt wait ends there (`settlement_pending`).
    /// `last_check` runs once the claim is held, right before anything is signed: the scheme's
    /// check with the simulation of what will be sent (see the module documentation, 2.).
    pub async fn settle<F>(
        &self,
        plan: &SettlePlan,
        deadline: Option<Instant>,
        last_check: F,
    ) -> Result<Settlement, SchemeError>
    where
        F: std::future::Future<Output = Result<Result<(), Rejection>, SchemeError>> + Send,
    {
        let token = match self.store.claim(&plan.id, plan.expires).await? {
            Claim::Acquired(token) => token,
            Claim::Taken(record) => {
                return self.answer_existing(&plan.id, plan.payer, record).await;
            }
        };
        let _settling = SettlingEntry::enter(&self.settling, &plan.id);
        let journal = WriteAhead {
            store: self.store.as_ref(),
            network: &self.network,
            id: &plan.id,
            token: &token,
            plan,
            attempts: Mutex::new(Vec::new()),
            tried: std::sync::atomic::AtomicBool::new(false),
            lost: std::sync::atomic::AtomicBool::new(false),
        };
        let result = self
            .broadcast_claimed(plan, &token, &journal, deadline, last_check)
            .await;
        if result.is_err() && !journal.written() {
            // The facilitator failed before anything was written ahead: nothing can have left
            // it, so the payment may be retried. After a write-ahead the record stays for
            // reconciliation.
            self.store.release(&plan.id, &token).await?;
        }
        result
    }

    /// Everything after the claim. `Err` leaves the claim to [`Settler::settle`].
    async fn broadcast_claimed<F>(
        &self,
        plan: &SettlePlan,
        token: &ClaimToken,
        journal: &WriteAhead<'_>,
        deadline: Option<Instant>,
        last_check: F,
    ) -> Result<Settlement, SchemeError>
    where
        F: std::future::Future<Output = Result<Result<(), Rejection>, SchemeError>> + Send,
    {
        let payer = plan.payer;
        // The last check under the claim, with the settle's one simulation: a payment refused
        // now sends nothing. An `Err` (an RPC failure) gives the claim back in `settle`.
        let used_reason = plan.nonce_check.used_reason();
        let used = match last_check.await? {
            Ok(()) => false,
            // Used by another transaction (front-running, threat-model S31): named and recorded.
            Err(rejection) if rejection.reason == used_reason => true,
            Err(rejection) => {
                self.store.release(&plan.id, token).await?;
                return Ok(failed(payer, None, rejection));
            }
        };
        if used {
            let foreign = self.find_front_runner(&plan.nonce_check).await;
            let outcome = Outcome::Failed {
                reason: used_reason.clone(),
                transaction: foreign.map(|h| format!("{h:#x}")),
            };
            if !self.complete(plan, token, outcome.clone()).await? {
                return self.answer_now(plan).await;
            }
            return Ok(failed(
                payer,
                outcome.transaction().map(str::to_owned),
                Rejection::with_message(
                    used_reason,
                    "the authorization was used on chain by another transaction",
                ),
            ));
        }
        if time_left(deadline) == Some(Duration::ZERO) {
            // Waiting for this payer's earlier settles used up the time to answer: send nothing.
            self.store.release(&plan.id, token).await?;
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
            value: U256::ZERO,
        };
        // Made before the send: every block that can hold the transaction is read after it.
        let waiter = self.signers.blocks().waiter().await;
        let sent = match self.signers.send_recorded(request, Some(journal)).await {
            Ok(sent) => sent.hash,
            // Written ahead and possibly out: watched like any other (sent again if lost).
            Err(SendError::Ambiguous { hash, .. }) => hash,
            Err(e) => {
                // Nothing was broadcast. Without a write-ahead the claim is simply given back;
                // with one, the record is removed through the reconciliation compare-and-set
                // (the node refused these bytes and their nonce was given back, so they cannot
                // land) — unless the write itself may have failed half-way, which reconciliation
                // settles.
                if journal.written() {
                    if let SendError::NotRecorded(text) = e {
                        if journal.lost.load(std::sync::atomic::Ordering::SeqCst) {
                            return Ok(in_progress(payer));
                        }
                        // Nothing was sent. Whether the write landed is unknown: the store
                        // releases the claim only if it holds no intent (else reconciliation
                        // judges the bytes, which never left); failing that, the claim is taken
                        // over once abandoned.
                        let _ = self.store.release(&plan.id, token).await;
                        return Err(SchemeError::Store(x402_core::StoreError(text)));
                    }
                    let attempts = journal
                        .attempts
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    for attempt in attempts {
                        let tx = format!("{:#x}", attempt.hash);
                        let _ = self.store.resolve(&plan.id, &tx, None).await;
                    }
                } else {
                    self.store.release(&plan.id, token).await?;
                }
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
        let Some(copy) = journal.attempt(sent) else {
            return self.pending(plan, token, sent).await;
        };
        // Whichever copy is mined (a replacement of a stuck one, or the first) is the settlement.
        let (mined, outcome) = crate::watch::watch(
            &self.signers,
            Some(journal as &dyn Journal),
            (copy.from, copy.nonce),
            crate::watch::Copy {
                hash: copy.hash,
                raw: copy.raw,
            },
            waiter,
            deadline,
        )
        .await;
        let hash = format!("{mined:#x}");
        match outcome {
            ReceiptOutcome::Success(receipt) if shows_transfer(&receipt, &plan.transfer) => {
                let outcome = Outcome::Settled {
                    transaction: hash.clone(),
                };
                if !self.complete(plan, token, outcome).await? {
                    return self.answer_now(plan).await;
                }
                Ok(settled(payer, hash, plan.report_amount))
            }
            ReceiptOutcome::Success(_) => {
                self.fail(
                    plan,
                    token,
                    hash,
                    crate::reason::TRANSFER_NOT_OBSERVED,
                    "the transaction succeeded but shows no transfer of the exact amount",
                )
                .await
            }
            ReceiptOutcome::Reverted(_) => {
                self.cool_down(payer).await;
                let (reason, message) = self
                    .revert_reason(&plan.nonce_check, &plan.reverted)
                    .await?;
                self.fail(plan, token, hash, reason, message).await
            }
            ReceiptOutcome::Pending => self.pending(plan, token, mined).await,
        }
    }

    /// Why a settlement transaction reverted: its authorization used first by another
    /// transaction, or else `reverted` (the scheme's reason for a revert).
    async fn revert_reason(
        &self,
        check: &NonceCheck,
        reverted: &Reason,
    ) -> Result<(Reason, &'static str), SchemeError> {
        Ok(if self.nonce_used(check).await? {
            (
                check.used_reason(),
                "the authorization was used by another transaction first",
            )
        } else {
            (reverted.clone(), "the settlement transaction reverted")
        })
    }

    /// The answer when a reconciler resolved the record before this settle could complete it.
    async fn answer_now(&self, plan: &SettlePlan) -> Result<Settlement, SchemeError> {
        match self.store.record(&plan.id).await? {
            Some(record) => self.answer_existing(&plan.id, plan.payer, record).await,
            None => Ok(in_progress(plan.payer)),
        }
    }

    async fn fail(
        &self,
        plan: &SettlePlan,
        token: &ClaimToken,
        hash: String,
        reason: Reason,
        message: &str,
    ) -> Result<Settlement, SchemeError> {
        let outcome = Outcome::Failed {
            reason: reason.clone(),
            transaction: Some(hash.clone()),
        };
        if !self.complete(plan, token, outcome).await? {
            return self.answer_now(plan).await;
        }
        Ok(failed(
            plan.payer,
            Some(hash),
            Rejection::with_message(reason, message),
        ))
    }

    async fn pending(
        &self,
        plan: &SettlePlan,
        token: &ClaimToken,
        hash: TxHash,
    ) -> Result<Settlement, SchemeError> {
        let tx = format!("{hash:#x}");
        let outcome = Outcome::Pending {
            transaction: tx.clone(),
        };
        if !self.complete(plan, token, outcome).await? {
            return self.answer_now(plan).await;
        }
        Ok(pending_answer(plan.payer, tx))
    }

    async fn complete(
        &self,
        plan: &SettlePlan,
        token: &ClaimToken,
        outcome: Outcome,
    ) -> Result<bool, SchemeError> {
        self.store
            .complete(&plan.id, token, outcome)
            .await
            .map_err(SchemeError::from)
    }

    /// Judges this network's unresolved records from the chain (see the module documentation).
    pub async fn reconcile(&self, limit: usize) -> Result<Reconciled, SchemeError> {
        let mut report = Reconciled::default();
        for (id, record) in self.store.unresolved(self.network.as_str(), limit).await? {
            report.examined += 1;
            // Its settle is running here: it reads the chain for it already (receipts from the
            // block watcher) and records what happens.
            if self.settling.with(|ids| ids.contains(&id)) {
                report.pending += 1;
                continue;
            }
            match self.reconcile_one(&id, &record).await {
                Ok(Some(Judgement::Outcome(Outcome::Landed { .. }))) => report.landed += 1,
                Ok(Some(Judgement::Outcome(_))) => report.failed += 1,
                Ok(Some(Judgement::Release)) => report.released += 1,
                Ok(Some(Judgement::Undecided) | None) => report.pending += 1,
                Err(e) => {
                    tracing::warn!(network = %self.network, %id, error = %e, "reconciliation failed; kept");
                    report.pending += 1;
                }
            }
        }
        Ok(report)
    }

    /// Judges one record and stores the judgement; `None` when the record is not ours to judge.
    async fn reconcile_one(
        &self,
        id: &PaymentId,
        record: &Record,
    ) -> Result<Option<Judgement>, SchemeError> {
        let Some(intent) = &record.intent else {
            return Ok(None);
        };
        let Ok(detail) = serde_json::from_value::<Detail>(intent.detail.clone()) else {
            tracing::error!(%id, "unreadable write-ahead record; left for an operator");
            return Ok(None);
        };
        let judgement = self.judge(record, &detail).await?;
        let resolved = match &judgement {
            Judgement::Outcome(o) => {
                self.store
                    .resolve(id, &intent.transaction, Some(o.clone()))
                    .await?
            }
            Judgement::Release => self.store.resolve(id, &intent.transaction, None).await?,
            Judgement::Undecided => false,
        };
        if resolved {
            tracing::info!(network = %self.network, %id, transaction = %intent.transaction, outcome = ?record_outcome(&judgement), "reconciled");
        }
        Ok(Some(judgement))
    }

    async fn judge(&self, record: &Record, detail: &Detail) -> Result<Judgement, SchemeError> {
        for attempt in detail.attempts.iter().rev() {
            let receipt = self
                .provider
                .get_transaction_receipt(attempt.hash)
                .await
                .map_err(|e| SchemeError::Rpc(crate::error::describe_rpc_error(&e)))?;
            let Some(receipt) = receipt else { continue };
            let tx = format!("{:#x}", attempt.hash);
            if !receipt.status() {
                self.cool_down(detail.payer).await;
                let reverted = detail
                    .reverted
                    .clone()
                    .unwrap_or(crate::reason::INVALID_EXACT_EVM_TRANSACTION_FAILED);
                let (reason, _) = self.revert_reason(&detail.nonce_check, &reverted).await?;
                return Ok(Judgement::Outcome(Outcome::Failed {
                    reason,
                    transaction: Some(tx),
                }));
            }
            return Ok(Judgement::Outcome(
                if shows_transfer(&receipt, &detail.transfer) {
                    Outcome::Landed { transaction: tx }
                } else {
                    Outcome::Failed {
                        reason: crate::reason::TRANSFER_NOT_OBSERVED,
                        transaction: Some(tx),
                    }
                },
            ));
        }
        let Some(last) = detail.attempts.last() else {
            return Ok(Judgement::Undecided);
        };
        // Any copy the node still has (a replacement it refused leaves the one it replaces).
        for attempt in detail.attempts.iter().rev() {
            let known = self
                .provider
                .get_transaction_by_hash(attempt.hash)
                .await
                .map_err(|e| SchemeError::Rpc(crate::error::describe_rpc_error(&e)))?;
            if known.is_some() {
                return Ok(Judgement::Undecided);
            }
        }
        let bound = self
            .signers
            .config()
            .receipt_timeout
            .as_secs()
            .saturating_add(30);
        let live =
            record.outcome.is_none() && detail.written_at.saturating_add(bound) > UnixTime::now().0;
        if live {
            // Its settle may still be sending: read only.
            return Ok(Judgement::Undecided);
        }
        let mined_nonce = self
            .provider
            .get_transaction_count(last.from)
            .latest()
            .await
            .map_err(|e| SchemeError::Rpc(crate::error::describe_rpc_error(&e)))?;
        if mined_nonce > last.nonce {
            // The nonce went to another transaction: ours can never land.
            if self.nonce_used(&detail.nonce_check).await? {
                let foreign = self.find_front_runner(&detail.nonce_check).await;
                return Ok(Judgement::Outcome(Outcome::Failed {
                    reason: detail.nonce_check.used_reason(),
                    transaction: foreign.map(|h| format!("{h:#x}")),
                }));
            }
            return Ok(Judgement::Release);
        }
        if detail.expires <= UnixTime::now().0 {
            return Ok(Judgement::Outcome(Outcome::Failed {
                reason: Reason::INVALID_TRANSACTION_STATE,
                transaction: None,
            }));
        }
        // Unknown to the node, nonce unused, still valid: the identical bytes again.
        if let Err(e) = self.provider.send_raw_transaction(&last.raw).await {
            tracing::warn!(hash = %last.hash, error = %crate::error::describe_rpc_error(&e), "re-broadcast of a written-ahead transaction failed");
        }
        Ok(Judgement::Undecided)
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

fn record_outcome(j: &Judgement) -> Option<&Outcome> {
    match j {
        Judgement::Outcome(o) => Some(o),
        _ => None,
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
