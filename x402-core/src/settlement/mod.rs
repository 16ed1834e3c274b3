//! At most once per payment identity: the settlement store.
//!
//! Before a scheme signs or broadcasts anything for a payment it **claims** the payment's
//! identity — EIP-3009 `(chain, token, from, nonce)`, Permit2 `(chain, owner, nonce)`, Solana the
//! hash of the transaction message. The claim is atomic across every process sharing the store:
//! of any number of concurrent settles of one payment exactly one acquires it (with a
//! [`ClaimToken`]); the others see its [`Record`] and never broadcast.
//!
//! The holder then follows one path:
//!
//! 1. **Write ahead.** Before a transaction can leave the process, [`SettlementStore::write_ahead`]
//!    durably records an [`Intent`]: the transaction's id and what the scheme needs to find it on
//!    chain again (EVM: signer, nonce, the signed bytes; Solana: the signed transaction and its
//!    blockhash). A write that fails, or finds the claim no longer the holder's, sends nothing.
//! 2. **End.** [`SettlementStore::release`] when nothing was written ahead (a refused payment may
//!    be retried; the store refuses to release a claim with an intent), or
//!    [`SettlementStore::complete`] with the outcome.
//!
//! A record left unresolved — in flight with an intent (a crash, a dropped request, a store write
//! that failed after the send) or [`Outcome::Pending`] — is **reconciled** by its scheme from the
//! chain: [`SettlementStore::unresolved`] lists them, [`SettlementStore::resolve`] moves one to
//! its outcome (compare-and-set on the transaction, so a live holder and any number of
//! reconcilers agree). A payment found landed after it was answered pending is
//! [`Outcome::Landed`]: the next settle of it answers success exactly once
//! ([`SettlementStore::deliver`]).
//!
//! A claim without an intent whose holder vanished (a crash before the write-ahead) is taken over
//! by a later claim once [`StoreOptions::abandon_after`] has passed: its holder provably sent
//! nothing, and its write-ahead would now fail.
//!
//! The store also serializes settles per payer across schemes and processes
//! ([`SettlementStore::payer_turn`]), leases names (EVM signer keys) to one process at a time
//! ([`SettlementStore::lease`]), and keeps the cool-downs of payers whose payments failed on
//! chain at the facilitator's cost ([`SettlementStore::throttle`]), so every process sharing the
//! store refuses them, across restarts.
//!
//! [`MemoryStore`] serves one process; the `x402-store` crate holds the durable backends.

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod cooldown;
#[cfg(any(test, feature = "testing"))]
pub mod faulty;
mod memory;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Reason, UnixTime};

pub use cooldown::PayerCooldown;
pub use memory::{KeyedLocks, MemoryStore};

/// The identity of a payment: what may be settled at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PaymentId(String);

impl PaymentId {
    /// Builds an identity from its parts, joined with `/` (parts should be canonical: lower-case
    /// hex, CAIP-2 networks, decimal numbers).
    pub fn new<I, S>(kind: &str, parts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut id = kind.to_owned();
        for p in parts {
            id.push('/');
            id.push_str(p.as_ref());
        }
        Self(id)
    }

    /// An identity read back from a store.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened to a claimed payment once something was written ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    /// The facilitator's own transaction landed and moved the funds, and a settle answered
    /// success (or the payment needed no transaction: `transaction` is empty).
    Settled {
        /// The transaction.
        transaction: String,
    },
    /// The transaction landed and moved the funds after its settle had answered pending: the
    /// next settle of the payment answers success with it, once ([`SettlementStore::deliver`]).
    Landed {
        /// The transaction.
        transaction: String,
    },
    /// It definitively did not settle (the transaction, if any, failed).
    Failed {
        /// Why.
        #[serde(with = "reason_text")]
        reason: Reason,
        /// The transaction, when one landed.
        transaction: Option<String>,
    },
    /// Broadcast, but its fate was not observed within the bound: to be reconciled.
    Pending {
        /// The transaction.
        transaction: String,
    },
}

mod reason_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Reason;

    pub(super) fn serialize<S: Serializer>(r: &Reason, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(r.as_str())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        Ok(Reason::from_wire(&String::deserialize(d)?))
    }
}

impl Outcome {
    /// The transaction, if any.
    pub fn transaction(&self) -> Option<&str> {
        match self {
            Self::Settled { transaction }
            | Self::Landed { transaction }
            | Self::Pending { transaction } => Some(transaction),
            Self::Failed { transaction, .. } => transaction.as_deref(),
        }
    }

    /// Whether the chain may still change this outcome (it must be reconciled).
    pub fn is_unresolved(&self) -> bool {
        matches!(self, Self::Pending { .. })
    }

    /// The outcome as stored text (JSON).
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An outcome read back from stored text.
    pub fn from_stored(text: &str) -> Result<Self, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError(format!("corrupt outcome: {e}")))
    }
}

/// What a settle is about to broadcast, recorded before it can leave the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The network (CAIP-2), so each network's schemes reconcile their own records.
    pub network: String,
    /// The transaction as its chain names it (EVM hash, Solana signature).
    pub transaction: String,
    /// What the scheme needs to find and judge the transaction again (its own format).
    pub detail: serde_json::Value,
}

impl Intent {
    /// The intent as stored text (JSON).
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An intent read back from stored text.
    pub fn from_stored(text: &str) -> Result<Self, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError(format!("corrupt intent: {e}")))
    }
}

/// What the store holds for a payment identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The outcome; `None` while a settle holds the claim.
    pub outcome: Option<Outcome>,
    /// What was written ahead, if anything.
    pub intent: Option<Intent>,
}

impl Record {
    /// Whether the chain may still change this record: in flight with an intent, or pending.
    pub fn is_unresolved(&self) -> bool {
        self.intent.is_some() && self.outcome.as_ref().is_none_or(Outcome::is_unresolved)
    }

    /// The transaction the record names (its outcome's, else its intent's).
    pub fn transaction(&self) -> Option<&str> {
        self.outcome
            .as_ref()
            .and_then(Outcome::transaction)
            .or_else(|| self.intent.as_ref().map(|i| i.transaction.as_str()))
            .filter(|t| !t.is_empty())
    }
}

/// Proof of holding a claim; the store checks it on every write, so a holder whose claim was taken
/// over (as abandoned) can no longer write ahead or complete.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimToken(String);

impl ClaimToken {
    /// A fresh random token.
    pub fn random() -> Self {
        Self(random_hex())
    }

    /// A token read back from a store.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 128 random bits as hex.
pub fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the claim and must end it (see the module documentation).
    Acquired(ClaimToken),
    /// Another settle holds it, or it ended: here is its record.
    Taken(Record),
}

/// The store itself failed (a shared store's backend, say). The text never carries credentials.
#[derive(Debug, thiserror::Error)]
#[error("settlement store unavailable: {0}")]
pub struct StoreError(pub String);

/// A turn to settle for one payer; the turn ends when this is dropped.
pub struct PayerTurn(#[allow(dead_code)] Box<dyn Send + Sync>);

impl PayerTurn {
    /// A turn that ends when `guard` is dropped.
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self(Box::new(guard))
    }
}

impl fmt::Debug for PayerTurn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PayerTurn")
    }
}

/// Timings every backend applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// A claim without an intent older than this is taken over by the next claim: its holder
    /// vanished before writing ahead (crash), so it sent nothing. Must exceed the longest time
    /// a live settle spends between its claim and its write-ahead (bounded by the settle's
    /// answer deadline).
    pub abandon_after: Duration,
    /// How long entries are kept past their payment's expiry.
    pub grace: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            abandon_after: Duration::from_secs(120),
            grace: Duration::from_secs(3600),
        }
    }
}

/// Counts of what the store holds, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Records the chain may still change (in flight with an intent, or pending).
    pub unresolved: u64,
}

/// Where claims, intents and outcomes live.
#[async_trait]
pub trait SettlementStore: Send + Sync + fmt::Debug {
    /// Claims `id` atomically. `expires` is when the payment itself stops being settleable; the
    /// store may forget the entry after it (plus a grace period).
    async fn claim(&self, id: &PaymentId, expires: UnixTime) -> Result<Claim, StoreError>;

    /// Records, durably, what the holder of `token` is about to broadcast (replacing an earlier
    /// intent of the same claim: a re-signed transaction). `Ok(false)`: the claim is not
    /// `token`'s any more, or already ended — send nothing.
    async fn write_ahead(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        intent: &Intent,
    ) -> Result<bool, StoreError>;

    /// Ends a claim whose settle wrote nothing ahead: the payment may be claimed again. A claim
    /// with an intent, or not `token`'s, is left as it is.
    async fn release(&self, id: &PaymentId, token: &ClaimToken) -> Result<(), StoreError>;

    /// Ends `token`'s claim with `outcome`. `Ok(false)`: it was no longer `token`'s in flight
    /// (a reconciler resolved it first, or it was taken over); the caller answers from
    /// [`SettlementStore::record`] then.
    async fn complete(
        &self,
        id: &PaymentId,
        token: &ClaimToken,
        outcome: Outcome,
    ) -> Result<bool, StoreError>;

    /// Reconciliation: moves an unresolved record whose intent names `transaction` (in flight or
    /// pending) to `outcome`; `None` removes the record, for when the chain proves nothing
    /// written ahead can land any more. `Ok(false)`: the record changed meanwhile.
    async fn resolve(
        &self,
        id: &PaymentId,
        transaction: &str,
        outcome: Option<Outcome>,
    ) -> Result<bool, StoreError>;

    /// Turns a [`Outcome::Landed`] record into [`Outcome::Settled`]: `true` for exactly one
    /// caller, who answers success.
    async fn deliver(&self, id: &PaymentId) -> Result<bool, StoreError>;

    /// The record of `id`, if any.
    async fn record(&self, id: &PaymentId) -> Result<Option<Record>, StoreError>;

    /// Up to `limit` unresolved records of `network` (see [`Record::is_unresolved`]), oldest
    /// first.
    async fn unresolved(
        &self,
        network: &str,
        limit: usize,
    ) -> Result<Vec<(PaymentId, Record)>, StoreError>;

    /// Waits up to `wait` for the turn of payer `key` (one settle per payer at a time, across
    /// schemes and processes). `Ok(None)`: still busy after `wait`.
    async fn payer_turn(&self, key: &str, wait: Duration) -> Result<Option<PayerTurn>, StoreError>;

    /// Takes or renews the lease of `name` for this store's process for `ttl`; `false` while
    /// another process holds it.
    async fn lease(&self, name: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Gives a lease back.
    async fn unlease(&self, name: &str) -> Result<(), StoreError>;

    /// Refuses payer `key` until `until` (a payment of theirs failed on chain at the
    /// facilitator's cost): the later of an instant already recorded and `until` is kept.
    async fn throttle(&self, key: &str, until: UnixTime) -> Result<(), StoreError>;

    /// Until when payer `key` is refused, while that instant is still ahead (by the store's
    /// clock); `None` once it has passed, or when the payer was never throttled.
    async fn throttled(&self, key: &str) -> Result<Option<UnixTime>, StoreError>;

    /// Whether the store answers (`/ready`).
    async fn health(&self) -> Result<(), StoreError>;

    /// Counts for metrics.
    async fn counts(&self) -> Result<StoreCounts, StoreError>;

    /// The store's kind, for logs and metrics (`memory`, `sqlite`, `postgres`).
    fn kind(&self) -> &'static str;

    /// The bazaar's discovery catalogue kept in this store ([`crate::extension::catalog`]),
    /// when the backend keeps one.
    fn catalog(&self) -> Option<&dyn crate::extension::catalog::ResourceCatalog> {
        None
    }

    /// Sign-in-with-x's payment history and spent nonces kept in this store
    /// ([`crate::extension::sign_in`]), when the backend keeps them.
    fn sign_in(&self) -> Option<&dyn crate::extension::sign_in::SignInStore> {
        None
    }

    /// The outcome of `id`, if it ended.
    async fn outcome(&self, id: &PaymentId) -> Result<Option<Outcome>, StoreError> {
        Ok(self.record(id).await?.and_then(|r| r.outcome))
    }
}
