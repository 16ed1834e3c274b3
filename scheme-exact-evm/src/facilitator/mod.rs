//! Facilitator side of `exact` on EVM: verify (EIP-3009 and Permit2) and settle at most once.
//! The state, the verify answer, the settle prologue and the Permit2 check sequence are
//! [`x402_evm::facilitator`]'s; this module says what `exact` adds (EIP-3009, its policy).

mod eip3009;
mod permit2;

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use async_trait::async_trait;
use serde_json::value::RawValue;
use x402_core::{
    FacilitatorRole, Network, PaymentContext, PaymentId, Reason, Rejection, SchemeError,
    SchemeStatus, Settlement, SettlementStore, Verdict,
};
use x402_evm::facilitator::{EvmFacilitatorCore, EvmScheme, Phase};
use x402_evm::settle::SettlePlan;
use x402_evm::signers::SignerPool;

pub use x402_evm::permit2::permit2_id;

use crate::Extra;
use crate::payload::{self, ExactEvmPayload};

/// Operator policy for one network.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The tokens payments may be made in; `None` accepts any token (not recommended).
    pub assets: Option<Vec<Address>>,
    /// ERC-6492 factories the facilitator may call to deploy a buyer's wallet.
    pub erc6492_factories: Vec<Address>,
    /// Gas limit of an EIP-3009 settle from an EOA.
    pub gas_limit_eip3009: u64,
    /// Gas limit of an EIP-3009 settle whose signature a contract wallet checks.
    pub gas_limit_eip3009_contract: u64,
    /// Gas limit of a deploy-and-settle batch for a counterfactual wallet.
    pub gas_limit_counterfactual: u64,
    /// Gas limit of a Permit2 proxy settle.
    pub gas_limit_permit2: u64,
    /// Signers below this native balance (wei) are reported unfunded.
    pub min_signer_balance: Option<U256>,
    /// Whether Permit2 payments are served; when not, they are refused at verify and settle
    /// before any chain call (config `permit2 = false`).
    pub permit2: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            assets: None,
            erc6492_factories: Vec::new(),
            gas_limit_eip3009: 150_000,
            gas_limit_eip3009_contract: 250_000,
            gas_limit_counterfactual: 1_000_000,
            gas_limit_permit2: 300_000,
            min_signer_balance: None,
            permit2: true,
        }
    }
}

/// The facilitator role of `exact` on one EVM network.
#[derive(Debug)]
pub struct Facilitator {
    pub(crate) core: EvmFacilitatorCore,
    pub(crate) policy: Policy,
}

impl Facilitator {
    /// A facilitator on `network` reading through `provider` and settling with `signers`.
    pub fn new(
        network: Network,
        provider: DynProvider,
        signers: SignerPool,
        store: Arc<dyn SettlementStore>,
        policy: Policy,
    ) -> Result<Self, SchemeError> {
        let core = EvmFacilitatorCore::new(network, provider, signers, store)?;
        Ok(Self::from_core(core, policy))
    }

    /// A facilitator over a connected core.
    pub fn from_core(core: EvmFacilitatorCore, policy: Policy) -> Self {
        Self { core, policy }
    }

    /// Sets how long a payer whose settlement reverted is refused `payer_throttled` (zero:
    /// never; the configuration's `failed_payer_cooldown_secs`).
    pub fn with_payer_cooldown(mut self, period: std::time::Duration) -> Self {
        self.core.set_payer_cooldown(period);
        self
    }

    /// Serves `erc20ApprovalGasSponsoring` with `sponsor` (give `exact` and `upto` on one network
    /// the same one: one funding budget).
    pub fn with_erc20_sponsor(
        mut self,
        sponsor: std::sync::Arc<x402_evm::facilitator::Erc20Sponsor>,
    ) -> Self {
        self.core.set_erc20_sponsor(sponsor);
        self
    }

    /// Replaces the clock (tests pin time to a vector's window).
    pub fn with_clock(mut self, clock: x402_core::SharedClock) -> Self {
        self.core.set_clock(clock);
        self
    }

    /// The signer addresses.
    pub fn signer_addresses(&self) -> Vec<Address> {
        self.core.signer_addresses()
    }
}

/// What `exact` says to the shared verify answer and settle prologue: its payload (EIP-3009 or
/// Permit2, routed by shape), and the identity a refused repeat was recorded under.
#[async_trait]
impl EvmScheme for Facilitator {
    type Payload = ExactEvmPayload;

    const UNPARSED: Reason = Reason::INVALID_PAYLOAD;

    fn core(&self) -> &EvmFacilitatorCore {
        &self.core
    }

    fn parse(raw: &RawValue) -> Result<ExactEvmPayload, Rejection> {
        payload::parse(raw)
    }

    fn payer(payload: &ExactEvmPayload) -> Address {
        payload.payer()
    }

    fn payer_hint(raw: &RawValue) -> Option<String> {
        payload::payer_hint(raw)
    }

    async fn authentic(
        &self,
        ctx: &PaymentContext<'_>,
        payload: &ExactEvmPayload,
    ) -> Result<bool, SchemeError> {
        match payload {
            ExactEvmPayload::Eip3009(p) => self.eip3009_authentic(ctx, p).await,
            ExactEvmPayload::Permit2(p) => x402_evm::facilitator::permit2_authentic(self, p).await,
        }
    }

    /// Verifies (the same at verify and settle); `Ok(plan)` when the payment is valid.
    async fn check_parsed(
        &self,
        ctx: &PaymentContext<'_>,
        payload: &ExactEvmPayload,
        phase: Phase,
    ) -> Result<Result<SettlePlan, Rejection>, SchemeError> {
        if matches!(payload, ExactEvmPayload::Permit2(_)) && !self.policy.permit2 {
            let m = "Permit2 payments are not served on this network (permit2 = false)";
            return Ok(Err(Rejection::with_message(
                Reason::UNSUPPORTED_PAYLOAD_TYPE,
                m,
            )));
        }
        let extra: Extra = match ctx.requirements.extra_as() {
            Ok(e) => e.unwrap_or_default(),
            Err(e) => {
                return Ok(Err(Rejection::with_message(
                    Reason::INVALID_PAYMENT_REQUIREMENTS,
                    format!("extra: {e}"),
                )));
            }
        };
        // A transfer of nothing still costs our gas, and anyone could repeat it (threat-model S4).
        if ctx.requirements.amount.is_zero() {
            let m = "exact moves a positive amount; the requirements ask for 0";
            return Ok(Err(Rejection::with_message(
                Reason::INVALID_PAYMENT_REQUIREMENTS,
                m,
            )));
        }
        match payload {
            ExactEvmPayload::Eip3009(p) => self.verify_eip3009(ctx, p, &extra, phase).await,
            ExactEvmPayload::Permit2(p) => {
                x402_evm::facilitator::verify_permit2(self, ctx, p, phase).await
            }
        }
    }

    /// The identity of a payment without verifying it, whatever refused it.
    fn replay_identity(
        &self,
        ctx: &PaymentContext<'_>,
        payload: &ExactEvmPayload,
        _rejection: &Rejection,
    ) -> Option<PaymentId> {
        match payload {
            ExactEvmPayload::Eip3009(p) => {
                let asset = x402_evm::parse::address("asset", ctx.requirements.asset).ok()?;
                Some(crate::payload::eip3009_id(&self.core.network, asset, p))
            }
            ExactEvmPayload::Permit2(p) => Some(permit2_id(&self.core.network, p.from, p.nonce)),
        }
    }
}

#[async_trait]
impl FacilitatorRole for Facilitator {
    fn scheme(&self) -> &'static str {
        crate::SCHEME
    }

    fn payer(&self, payment: &PaymentContext<'_>) -> Option<String> {
        x402_evm::facilitator::payer_of::<Self>(payment)
    }

    async fn verify(&self, payment: &PaymentContext<'_>) -> Result<Verdict, SchemeError> {
        let verdict = x402_evm::facilitator::verify(self, payment).await?;
        Ok(verdict.for_version(payment.payload.version, crate::reason::V1_SPELLINGS))
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        let settlement = x402_evm::facilitator::settle(self, payment).await?;
        Ok(settlement.for_version(payment.payload.version, crate::reason::V1_SPELLINGS))
    }

    /// Probes the chain: the RPC answers and the signers are funded.
    async fn status(&self, _network: &Network) -> Result<Option<SchemeStatus>, SchemeError> {
        self.core.status(self.policy.min_signer_balance).await
    }

    fn signers(&self, _network: &Network) -> Vec<String> {
        self.core.signer_names()
    }

    async fn reconcile(&self, _network: &Network) -> Result<x402_core::Reconciled, SchemeError> {
        self.core.reconcile().await
    }
}
