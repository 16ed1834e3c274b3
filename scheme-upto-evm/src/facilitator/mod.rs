//! Facilitator side of `upto` on EVM: verify the authorization for its maximum; settle the
//! actual amount from the witness facilitator, at most once. The state, the verify answer, the
//! settle prologue and the Permit2 check sequence are [`x402_evm::facilitator`]'s; this module
//! and [`verify`] say what `upto` adds (the amount-up-to rules, the witness facilitator, the
//! zero-charge consume).

mod verify;

use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use async_trait::async_trait;
use serde_json::value::RawValue;
use x402_core::wire::Raw;
use x402_core::{
    FacilitatorRole, Network, PaymentContext, PaymentId, Reason, Rejection, SchemeError,
    SchemeStatus, Settlement, Verdict,
};
use x402_evm::facilitator::{EvmFacilitatorCore, EvmScheme, Phase};
use x402_evm::permit2::permit2_id;
use x402_evm::settle::{SettlePlan, settled};
use x402_evm::signers::SignerPool;

use crate::payload::{self, UptoPayload};

/// Operator policy for one network.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The tokens payments may be made in; `None` accepts any token with code.
    pub assets: Option<Vec<Address>>,
    /// Gas limit of an upto proxy settle.
    pub gas_limit: u64,
    /// Signers below this native balance (wei) are reported unfunded.
    pub min_signer_balance: Option<U256>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            assets: None,
            gas_limit: 300_000,
            min_signer_balance: None,
        }
    }
}

/// The facilitator role of `upto` on one EVM network.
#[derive(Debug)]
pub struct Facilitator {
    pub(crate) core: EvmFacilitatorCore,
    pub(crate) policy: Policy,
}

impl Facilitator {
    /// A facilitator on `network` reading through `provider` and settling with `signers`; the
    /// store must be the one `exact` uses on this network (Permit2 nonces are shared).
    pub fn new(
        network: Network,
        provider: DynProvider,
        signers: SignerPool,
        store: std::sync::Arc<dyn x402_core::SettlementStore>,
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

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: x402_core::SharedClock) -> Self {
        self.core.set_clock(clock);
        self
    }

    /// The signer addresses (each may be named as `facilitatorAddress`).
    pub fn signer_addresses(&self) -> Vec<Address> {
        self.core.signer_addresses()
    }

    /// One of the signers, for `/supported` (`extra.facilitatorAddress`).
    pub fn facilitator_address(&self) -> Option<Address> {
        self.core.signer_addresses().first().copied()
    }
}

/// What `upto` says to the shared verify answer and settle prologue.
#[async_trait]
impl EvmScheme for Facilitator {
    type Payload = UptoPayload;

    const UNPARSED: Reason = Reason::UNSUPPORTED_PAYLOAD_TYPE;

    fn core(&self) -> &EvmFacilitatorCore {
        &self.core
    }

    fn parse(raw: &RawValue) -> Result<UptoPayload, Rejection> {
        payload::parse(raw)
    }

    fn payer(payload: &UptoPayload) -> Address {
        payload.from
    }

    async fn authentic(
        &self,
        _ctx: &PaymentContext<'_>,
        p: &UptoPayload,
    ) -> Result<bool, SchemeError> {
        x402_evm::facilitator::permit2_authentic(self, p).await
    }

    /// Parses and verifies; the plan settles `requirements.amount` (the maximum at verify, the
    /// charge at settle).
    async fn check_parsed(
        &self,
        ctx: &PaymentContext<'_>,
        p: &UptoPayload,
        phase: Phase,
    ) -> Result<Result<SettlePlan, Rejection>, SchemeError> {
        x402_evm::facilitator::verify_permit2(self, ctx, p, phase).await
    }

    /// The Permit2 identity, unless the charge exceeds the authorization (never a repeat).
    fn replay_identity(
        &self,
        _ctx: &PaymentContext<'_>,
        p: &UptoPayload,
        rejection: &Rejection,
    ) -> Option<PaymentId> {
        (rejection.reason != crate::reason::INVALID_UPTO_EVM_PAYLOAD_SETTLEMENT_EXCEEDS_AMOUNT)
            .then(|| permit2_id(&self.core.network, p.from, p.nonce))
    }

    /// A zero charge sends no transaction but records the authorization as consumed, so no
    /// later settle of it can succeed; any other charge goes to the shared engine.
    async fn settle_plan(
        &self,
        ctx: &PaymentContext<'_>,
        plan: SettlePlan,
    ) -> Result<Settlement, SchemeError> {
        let settler = &self.core.settler;
        if !plan.transfer.value.is_zero() {
            let last_check = self.last_check(ctx, &plan);
            return settler.settle(&plan, ctx.deadline, last_check).await;
        }
        Ok(
            match settler
                .consume_without_transfer(&plan.id, plan.expires, plan.payer)
                .await?
            {
                Ok(()) => settled(plan.payer, String::new(), Some(plan.transfer.value)),
                Err(answer) => answer,
            },
        )
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
        x402_evm::facilitator::verify(self, payment).await
    }

    async fn settle(&self, payment: &PaymentContext<'_>) -> Result<Settlement, SchemeError> {
        x402_evm::facilitator::settle(self, payment).await
    }

    /// `{"facilitatorAddress": ..}`: the signer a buyer's witness must name.
    fn supported_extra(&self, _network: &Network) -> Option<Raw> {
        let address = self.facilitator_address()?;
        x402_core::wire::to_raw(&serde_json::json!({
            "facilitatorAddress": address.to_checksum(None),
        }))
        .ok()
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
