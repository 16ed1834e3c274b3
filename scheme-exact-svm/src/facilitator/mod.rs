//! Facilitator side of `exact` on Solana: the facilitator co-signs, as fee payer, a transaction
//! the buyer built, so every check below exists to keep its SOL from being drained
//! (threat-model S48–S62).
//!
//! * [`inspect()`] — the offline checks: the reference's ordered checks (x402-spec §3.4) plus the
//!   fee-payer safety rules, on a sanitized message, with the buyer's signature verified locally.
//! * `verify` — the offline checks, then the settlement store (a payment already settled or
//!   attempted is `duplicate_settlement`, S78), then the chain checks (mint extensions, token
//!   accounts) and a simulation of the transaction as the buyer sent it.
//! * `settle` — all of the above again under the payer's turn, then at most once per message:
//!   claim, co-sign and simulate, write the intent ahead, send, confirm until the blockhash
//!   expires (success, failure, or pending with the signature — never unbounded).
//! * `answer` — a settle of a payment the store already holds answers from its record.
//! * `reconcile` — records left unresolved (pending, or in flight after a crash) decided from the
//!   chain: [`FacilitatorRole::reconcile`], and a repeated settle for its own record.
//! * `intent` — what is written ahead: [`IntentDetail`].

mod answer;
mod confirm;
#[cfg(test)]
mod durable_tests;
#[cfg(test)]
mod fake_chain;
mod inspect;
mod intent;
#[cfg(test)]
mod layout_tests;
pub mod priority;
mod reconcile;
mod settle;
#[cfg(test)]
mod tests;
mod verify;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use x402_core::wire::Raw;
use x402_core::{
    FacilitatorRole, Network, PayerCooldown, PaymentContext, Reconciled, Rejection, SchemeError,
    SchemeStatus, Settlement, SettlementStore, Verdict,
};

pub use inspect::{Inspection, inspect};
pub use intent::IntentDetail;

use crate::instructions::MAX_COMPUTE_UNIT_PRICE;
use crate::rpc::{Rpc, rpc_get};

pub use crate::payload::VECTOR_TRANSACTION;

/// Operator policy for one network: what the fee payer may be charged, and how long settle waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The mints payments may be made in; `None` accepts any mint that passes the checks.
    pub assets: Option<Vec<Pubkey>>,
    /// The highest compute-unit limit accepted.
    pub max_compute_unit_limit: u32,
    /// The highest compute-unit price accepted, in micro-lamports.
    pub max_compute_unit_price: u64,
    /// The highest priority fee (limit × price) accepted, in lamports, whatever the payment.
    pub max_priority_fee_lamports: u64,
    /// The priority fee any payment may carry whatever its value, in lamports (see
    /// [`priority`]: otherwise the fee must stay below what the payment is worth).
    pub priority_fee_floor_lamports: u64,
    /// What one atomic unit of each mint is worth at least, in nano-lamports, for the priority
    /// fee's cap relative to the payment's value ([`priority`]); a mint not listed is worth
    /// nothing there. Default: each built-in stablecoin mint at 1 lamport per unit.
    pub priority_fee_valuations: std::collections::BTreeMap<Pubkey, u64>,
    /// The most signatures a transaction may require (fee payer + transfer authority).
    pub max_signatures: u8,
    /// Fee payers below this balance (lamports) are reported unfunded.
    pub min_signer_balance: Option<u64>,
    /// The longest a settle waits for confirmation before answering `settlement_pending`
    /// (it stops earlier, with a definite answer, once the blockhash has expired, and at the
    /// settle's answer deadline — see `x402_core::timing`).
    pub confirm_timeout: Duration,
    /// How often settle polls the transaction's status.
    pub poll_interval: Duration,
    /// How often settle re-sends a transaction not yet seen, while its blockhash is valid.
    pub resend_interval: Duration,
    /// How long a payer whose transaction landed with an error (the fee payer paid its fee) is
    /// refused `payer_throttled`, by every process sharing the settlement store; zero: never.
    pub failed_payer_cooldown: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            assets: None,
            max_compute_unit_limit: 200_000,
            max_compute_unit_price: MAX_COMPUTE_UNIT_PRICE,
            max_priority_fee_lamports: 100_000,
            priority_fee_floor_lamports: priority::DEFAULT_PRIORITY_FEE_FLOOR_LAMPORTS,
            priority_fee_valuations: priority::default_valuations(),
            max_signatures: 2,
            min_signer_balance: None,
            confirm_timeout: x402_core::SettleTimeouts::DEFAULT_ANSWER_WITHIN,
            poll_interval: Duration::from_millis(400),
            resend_interval: Duration::from_secs(2),
            failed_payer_cooldown: PayerCooldown::DEFAULT,
        }
    }
}

/// A refused payment: why, and who was paying when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The payer (transfer authority), when the transaction names one.
    pub payer: Option<String>,
    /// The reason.
    pub rejection: Rejection,
}

/// The facilitator of `exact` on one Solana network.
pub struct Facilitator {
    pub(crate) network: Network,
    pub(crate) rpc: Rpc,
    pub(crate) fee_payers: Vec<Keypair>,
    pub(crate) fee_payer_keys: Vec<Pubkey>,
    pub(crate) store: Arc<dyn SettlementStore>,
    pub(crate) policy: Policy,
    cooldown: PayerCooldown,
    next: AtomicUsize,
}

impl std::fmt::Debug for Facilitator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Facilitator")
            .field("network", &self.network)
            .field("fee_payers", &self.fee_payer_keys)
            .field("rpc", &self.rpc)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Facilitator {
    /// A facilitator on `network` reading and sending through `rpc`, paying fees with
    /// `fee_payers` (at least one). No chain check happens here: the configuration builder
    /// ([`crate::build_facilitator`]) checks the genesis hash and the fee payers' funding.
    pub fn new(
        network: Network,
        rpc: Rpc,
        fee_payers: Vec<Keypair>,
        store: Arc<dyn SettlementStore>,
        policy: Policy,
    ) -> Result<Self, SchemeError> {
        if network.namespace() != "solana" {
            return Err(SchemeError::Config(format!(
                "{network} is not a Solana network"
            )));
        }
        if fee_payers.is_empty() {
            return Err(SchemeError::Config(
                "at least one fee payer key is required".into(),
            ));
        }
        let fee_payer_keys: Vec<Pubkey> = fee_payers.iter().map(Keypair::pubkey).collect();
        for (i, k) in fee_payer_keys.iter().enumerate() {
            if fee_payer_keys[..i].contains(k) {
                return Err(SchemeError::Config(format!(
                    "fee payer {k} is listed twice"
                )));
            }
        }
        if policy.max_signatures < 2 {
            return Err(SchemeError::Config(
                "max_signatures must be at least 2 (fee payer and buyer)".into(),
            ));
        }
        let cooldown = PayerCooldown::new(Arc::clone(&store), policy.failed_payer_cooldown);
        Ok(Self {
            network,
            rpc,
            fee_payers,
            fee_payer_keys,
            store,
            policy,
            cooldown,
            next: AtomicUsize::new(0),
        })
    }

    /// The network served.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The fee payers' public keys.
    pub fn fee_payers(&self) -> &[Pubkey] {
        &self.fee_payer_keys
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The RPC endpoints.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// The fee payer to advertise next (round robin over the keys).
    pub fn next_fee_payer(&self) -> Pubkey {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.fee_payer_keys[n % self.fee_payer_keys.len()]
    }

    /// The offline checks of [`inspect()`] with this facilitator's keys and policy.
    pub fn inspect(&self, ctx: &PaymentContext<'_>) -> Result<Inspection, Refusal> {
        inspect(ctx, &self.network, &self.fee_payer_keys, &self.policy)
    }

    /// The key of `payer`'s turn and cool-down: `<CAIP-2 network>/<payer>`, shared by every
    /// scheme on the network that pays from the same account.
    pub(crate) fn payer_key(&self, payer: &str) -> String {
        format!("{}/{payer}", self.network)
    }

    /// The refusal of `payer` while a transaction of theirs that landed with an error keeps
    /// them in a cool-down.
    pub(crate) async fn throttled(&self, payer: &str) -> Result<Option<Rejection>, SchemeError> {
        let until = self.cooldown.until(&self.payer_key(payer)).await?;
        Ok(until.map(PayerCooldown::rejection))
    }

    /// Starts `payer`'s cool-down: a transaction of theirs landed with an error, its fee paid by
    /// our fee payer. A store failure is logged; the settlement's answer stands.
    pub(crate) async fn cool_down(&self, payer: &str) {
        match self.cooldown.start(&self.payer_key(payer)).await {
            Ok(Some(until)) => {
                tracing::info!(network = %self.network, payer, %until, "payer cool-down after a failed transaction");
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(network = %self.network, payer, error = %e, "recording a payer cool-down failed");
            }
        }
    }

    /// The keypair of fee payer `key`.
    pub(crate) fn fee_payer(&self, key: &Pubkey) -> Option<&Keypair> {
        self.fee_payers.iter().find(|k| k.pubkey() == *key)
    }

    /// Probes the chain: the RPC answers, and each fee payer's balance against the floor.
    pub async fn probe(&self) -> Result<x402_core::SchemeStatus, SchemeError> {
        rpc_get!(self.rpc, "getBlockHeight", |c| c.get_block_height())?;
        let floor = self.policy.min_signer_balance.unwrap_or(0);
        let mut signers = Vec::new();
        for key in &self.fee_payer_keys {
            let balance = rpc_get!(self.rpc, "getBalance", |c| c.get_balance(key))?;
            signers.push(x402_core::SignerStatus {
                address: key.to_string(),
                balance: balance.into(),
                funded: balance >= floor && balance > 0,
            });
        }
        Ok(x402_core::SchemeStatus { signers })
    }
}

/// The facilitator role of `exact` on Solana.
#[async_trait]
impl FacilitatorRole for Facilitator {
    fn scheme(&self) -> &'static str {
        crate::SCHEME
    }

    fn payer(&self, payment: &PaymentContext<'_>) -> Option<String> {
        inspect::payer_of(payment.payload.payload).map(|p| p.to_string())
    }

    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        let verdict = self.verify_payment(payment).await?;
        Ok(verdict.for_version(payment.payload.version, crate::reason::V1_SPELLINGS))
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        let settlement = self.settle_payment(payment).await?;
        Ok(settlement.for_version(payment.payload.version, crate::reason::V1_SPELLINGS))
    }

    fn supported_extra(&self, _network: &Network) -> Option<Raw> {
        x402_core::wire::to_raw(&crate::Extra {
            fee_payer: Some(self.next_fee_payer().to_string()),
            memo: None,
        })
        .ok()
    }

    async fn status(&self, _network: &Network) -> Result<Option<SchemeStatus>, SchemeError> {
        self.probe().await.map(Some)
    }

    fn signers(&self, _network: &Network) -> Vec<String> {
        self.fee_payers().iter().map(Pubkey::to_string).collect()
    }

    async fn reconcile(&self, network: &Network) -> Result<Reconciled, SchemeError> {
        if *network != self.network {
            return Ok(Reconciled::default());
        }
        self.reconcile_unresolved().await
    }
}

/// A v1 payment is answered with the v1 mechanism's spelling of a reason, a v2 payment with the
/// current one (`crate::reason::V1_SPELLINGS`).
#[cfg(test)]
#[cfg(feature = "buyer")] // the request is the buyer-signed vector
mod v1_spelling_tests {
    use x402_core::json::JsonLimits;
    use x402_core::wire::VerifyRequest;
    use x402_core::{FacilitatorRole as _, PaymentContext, Reason};

    use super::tests::{PAY_TO, facilitator, requirements, v2};
    use crate::instructions::USDC_DEVNET;
    use crate::payload::VECTOR_TRANSACTION;

    /// The vector's transaction as a v1 payment whose requirements name `extra`.
    fn v1(extra: &str) -> VerifyRequest {
        let req = format!(
            r#"{{"scheme":"exact","network":"solana-devnet","maxAmountRequired":"1000","resource":"https://x.test/","description":"","mimeType":"","payTo":"{PAY_TO}","maxTimeoutSeconds":60,"asset":"{USDC_DEVNET}","extra":{extra}}}"#
        );
        let body = format!(
            r#"{{"x402Version":1,"paymentPayload":{{"x402Version":1,"scheme":"exact","network":"solana-devnet","payload":{{"transaction":"{VECTOR_TRANSACTION}"}}}},"paymentRequirements":{req}}}"#
        );
        VerifyRequest::from_json(body.as_bytes(), JsonLimits::DEFAULT).unwrap()
    }

    async fn answers(request: &VerifyRequest) -> (Option<Reason>, Option<Reason>) {
        let f = facilitator();
        let ctx = PaymentContext::of(request).unwrap();
        let verdict = f.verify(&ctx).await.unwrap();
        let settlement = f.settle(&ctx).await.unwrap();
        (
            verdict.result.err().map(|r| r.reason),
            settlement.result.err().map(|r| r.reason),
        )
    }

    #[tokio::test]
    async fn a_fee_payer_not_ours_is_spelled_as_each_version_spells_it() {
        let not_ours = format!(r#"{{"feePayer":"{PAY_TO}"}}"#);
        let current = Some(crate::reason::FEE_PAYER_NOT_MANAGED_BY_FACILITATOR);
        let request = v2(&requirements("1000", PAY_TO, &not_ours), VECTOR_TRANSACTION);
        assert_eq!(answers(&request).await, (current.clone(), current));
        let older = Some(crate::reason::V1_FEE_PAYER_NOT_MANAGED_BY_FACILITATOR);
        assert_eq!(
            answers(&v1(&not_ours)).await,
            (older.clone(), older.clone())
        );
        assert_eq!(
            older.map(|r| r.to_string()).as_deref(),
            Some("fee_payer_not_managed_by_facilitator")
        );
        // A reason without a v1 spelling is the same in both versions.
        let missing = Some(crate::reason::INVALID_EXACT_SVM_PAYLOAD_MISSING_FEE_PAYER);
        assert_eq!(answers(&v1("{}")).await.0, missing);
    }
}
