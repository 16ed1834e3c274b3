//! The facilitator core both EVM schemes share: the state one scheme holds on one network
//! ([`EvmFacilitatorCore`]), the verify answer and the settle prologue ([`verify`], [`settle`]:
//! one settle per payer at a time, a refused repeat answered with what was recorded, the plan
//! handed to [`Settler::settle`]), and the Permit2 check sequence ([`verify_permit2`]). A scheme
//! crate says only what differs, through [`EvmScheme`] and [`Permit2Scheme`].

mod permit2;

pub use permit2::{Permit2Scheme, Permit2View, permit2_authentic, verify_permit2};

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::DynProvider;
use async_trait::async_trait;
use serde_json::value::RawValue;
use x402_core::{
    Network, PaymentContext, PaymentId, Reason, Reconciled, Rejection, RequirementsView,
    SchemeConfig, SchemeError, SchemeStatus, Settlement, SettlementStore, SharedClock, UnixTime,
    Verdict,
};

use crate::chain::{self, CallResult, CodeCache};
use crate::options::NetworkOptions;
use crate::settle::{SettlePlan, Settler, failed, payer_key, recorded_rejection};
use crate::signers::SignerPool;

/// How many unresolved records one reconciliation pass judges at most.
const RECONCILE_BATCH: usize = 256;

/// What a scheme's check of one payment gives: the payload when it parses, and the plan when the
/// payment is valid.
pub type Checked<P> = (Option<P>, Result<SettlePlan, Rejection>);

/// Unwraps a `Result<_, Rejection>` inside a step returning
/// `Result<Result<T, Rejection>, SchemeError>`, or returns the rejection as the verdict.
#[macro_export]
macro_rules! reject_on_err {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(rejection) => return Ok(Err(rejection)),
        }
    };
}

/// Which request a check serves (`upto` checks the amount differently at each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `/verify`.
    Verify,
    /// `/settle`.
    Settle,
}

/// What every EVM scheme's facilitator holds on one network.
#[derive(Debug)]
pub struct EvmFacilitatorCore {
    /// The network.
    pub network: Network,
    /// Its chain id.
    pub chain_id: u64,
    /// The reads.
    pub provider: DynProvider,
    /// The network's shared signer pool.
    pub signers: SignerPool,
    /// The settlement engine.
    pub settler: Settler,
    clock: SharedClock,
    /// Assets seen with code (a call to an address without code "succeeds" and proves nothing).
    assets_with_code: CodeCache,
}

impl EvmFacilitatorCore {
    /// A core on `network` reading through `provider` and settling with `signers` into `store`
    /// (the network's one store: Permit2 nonces are shared by the schemes).
    pub fn new(
        network: Network,
        provider: DynProvider,
        signers: SignerPool,
        store: Arc<dyn SettlementStore>,
    ) -> Result<Self, SchemeError> {
        let chain_id =
            crate::parse::chain_id(&network).map_err(|e| SchemeError::Config(e.to_string()))?;
        if signers.addresses().is_empty() {
            return Err(SchemeError::Config(
                "at least one signer key is required".into(),
            ));
        }
        Ok(Self {
            settler: Settler::new(network.clone(), provider.clone(), signers.clone(), store),
            network,
            chain_id,
            provider,
            signers,
            clock: x402_core::system_clock(),
            assets_with_code: CodeCache::default(),
        })
    }

    /// Connects `options` for `config` and checks `contracts` exist (see
    /// [`NetworkOptions::connect`]); returns the core and the signer balance floor.
    pub async fn connect(
        options: &NetworkOptions,
        config: &SchemeConfig,
        contracts: &[(String, Address)],
    ) -> Result<(Self, Option<U256>), SchemeError> {
        let (provider, pool, min_signer_balance) = options.connect(config, contracts).await?;
        let mut core = Self::new(config.network.clone(), provider, pool, config.store.clone())?;
        core.set_payer_cooldown(options.failed_payer_cooldown());
        Ok((core, min_signer_balance))
    }

    /// Sets how long a payer whose settlement reverted is refused (zero: never; default
    /// [`x402_core::PayerCooldown::DEFAULT`]).
    pub fn set_payer_cooldown(&mut self, period: std::time::Duration) {
        self.settler.set_payer_cooldown(period);
    }

    /// Replaces the clock (tests pin time to a vector's window).
    pub fn set_clock(&mut self, clock: SharedClock) {
        self.clock = clock;
    }

    /// The time now, by the clock.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The signer addresses.
    pub fn signer_addresses(&self) -> Vec<Address> {
        self.signers.addresses()
    }

    /// The signer addresses, checksummed.
    pub fn signer_names(&self) -> Vec<String> {
        self.signer_addresses()
            .iter()
            .map(|a| a.to_checksum(None))
            .collect()
    }

    /// The address simulations are sent from (unless the plan names its sender): the first
    /// signer.
    pub fn simulate_from(&self) -> Address {
        self.signers
            .addresses()
            .first()
            .copied()
            .unwrap_or_default()
    }

    /// The requirements' asset (if `assets` accepts it) and recipient.
    pub fn requirement_addresses(
        &self,
        req: &RequirementsView<'_>,
        assets: Option<&[Address]>,
    ) -> Result<(Address, Address), Rejection> {
        crate::parse::requirement_addresses(req, assets)
    }

    /// Whether the token has code (cached; see [`CodeCache`]).
    pub async fn asset_has_code(&self, asset: Address) -> Result<bool, SchemeError> {
        self.assets_with_code.has_code(&self.provider, asset).await
    }

    /// `asset_not_deployed_contract` when no contract is at the asset.
    pub async fn require_asset_code(
        &self,
        asset: Address,
    ) -> Result<Result<(), Rejection>, SchemeError> {
        Ok(if self.asset_has_code(asset).await? {
            Ok(())
        } else {
            Err(Rejection::with_message(
                crate::reason::ASSET_NOT_DEPLOYED_CONTRACT,
                format!("no contract at asset {asset}"),
            ))
        })
    }

    /// Whether `eth_call` of the plan's call, sent as `from`, succeeds.
    pub async fn simulates(&self, from: Address, plan: &SettlePlan) -> Result<bool, SchemeError> {
        Ok(matches!(
            chain::call(&self.provider, from, plan.to, plan.data.clone()).await?,
            CallResult::Ok(_)
        ))
    }

    /// Whether a Permit2 signature is acceptable before simulation: ECDSA by `owner`, or any
    /// signature of an owner with code (Permit2 itself asks the contract, EIP-1271).
    pub async fn permit2_signature_passes(
        &self,
        digest: &B256,
        signature: &Bytes,
        owner: Address,
    ) -> Result<bool, SchemeError> {
        if crate::signature::recover(digest, signature) == Some(owner) {
            return Ok(true);
        }
        if chain::code(&self.provider, owner).await?.is_empty() {
            return Ok(false);
        }
        // A contract owner: Permit2 asks it (EIP-1271, the same digest) inside the transfer. It
        // is asked here too, so a settlement that sends nothing (a zero `upto` charge) is
        // authenticated like one that is simulated.
        let call = crate::abi::wallet::IERC1271::isValidSignatureCall {
            hash: *digest,
            signature: signature.clone(),
        };
        let magic = chain::view(&self.provider, self.simulate_from(), owner, call).await?;
        Ok(magic == Some(crate::addresses::ERC1271_MAGIC))
    }

    /// Judges this network's unresolved settlement records from the chain (see
    /// [`Settler::reconcile`]).
    pub async fn reconcile(&self) -> Result<Reconciled, SchemeError> {
        self.settler.reconcile(RECONCILE_BATCH).await
    }

    /// Probes the chain: the RPC answers and the signers are funded (against `floor`).
    pub async fn status(&self, floor: Option<U256>) -> Result<Option<SchemeStatus>, SchemeError> {
        crate::startup::status(&self.provider, &self.signers, floor)
            .await
            .map(Some)
    }
}

/// What an EVM scheme says to the shared verify answer and settle prologue.
#[async_trait]
pub trait EvmScheme: Send + Sync {
    /// The scheme's parsed payload.
    type Payload: Send + Sync;

    /// The reason a settle refuses with when the check has neither payload nor rejection.
    const UNPARSED: Reason;

    /// The shared core.
    fn core(&self) -> &EvmFacilitatorCore;

    /// Parses a payload strictly.
    fn parse(raw: &RawValue) -> Result<Self::Payload, Rejection>;

    /// The payer the payload names.
    fn payer(payload: &Self::Payload) -> Address;

    /// The payer of a payload that does not parse, when it can be read (default: none).
    fn payer_hint(_raw: &RawValue) -> Option<String> {
        None
    }

    /// Whether the payload is signed by the payer it names: ECDSA recovery where the signature
    /// is one, the payer's own check (EIP-1271, ERC-6492) otherwise. A settle takes the payer's
    /// turn only for an authentic payload, so garbage naming a victim cannot hold the victim's
    /// turn (threat-model S76); the full check still runs after the turn.
    async fn authentic(
        &self,
        ctx: &PaymentContext<'_>,
        payload: &Self::Payload,
    ) -> Result<bool, SchemeError>;

    /// Parses and verifies; the payload (when it parses) and `Ok(plan)` when valid.
    async fn check(
        &self,
        ctx: &PaymentContext<'_>,
        phase: Phase,
    ) -> Result<Checked<Self::Payload>, SchemeError>;

    /// The identity under which a payment refused by `rejection` may have been settled before
    /// (its recorded outcome is then the answer); `None` answers with the rejection.
    fn replay_identity(
        &self,
        ctx: &PaymentContext<'_>,
        payload: &Self::Payload,
        rejection: &Rejection,
    ) -> Option<PaymentId>;

    /// Settles a verified plan (default: the shared engine).
    async fn settle_plan(
        &self,
        ctx: &PaymentContext<'_>,
        plan: SettlePlan,
    ) -> Result<Settlement, SchemeError> {
        self.core().settler.settle(&plan, ctx.deadline).await
    }
}

/// The verify answer: the check's verdict, naming the payer when it can.
pub async fn verify<S: EvmScheme>(
    scheme: &S,
    ctx: &PaymentContext<'_>,
) -> Result<Verdict, SchemeError> {
    if let Ok(p) = S::parse(ctx.payload.payload)
        && let Some(rejection) = throttled(scheme, ctx, &p).await?
    {
        return Ok(Verdict::invalid(
            Some(S::payer(&p).to_checksum(None)),
            rejection,
        ));
    }
    let (payload, checked) = scheme.check(ctx, Phase::Verify).await?;
    // A payment the store has any record of (in flight, pending, settled, failed, consumed)
    // does not verify: one header must not buy handler runs forever (threat-model S78).
    let id = identity(scheme, ctx, payload.as_ref(), &checked);
    let mut verdict = checked.map(|_| ());
    if let Some(id) = id
        && let Some(record) = scheme.core().settler.store().record(&id).await?
    {
        // The one exception: a payment whose transaction landed after its settle answered
        // pending verifies again until its success is delivered (once), so the buyer's retry
        // of the same payment gets what it paid for.
        verdict = match scheme.core().settler.current(&id, record).await? {
            Some(r) if matches!(r.outcome, Some(x402_core::Outcome::Landed { .. })) => Ok(()),
            Some(r) => Err(recorded_rejection(&r)),
            None => verdict,
        };
    }
    let payer = payload
        .map(|p| S::payer(&p).to_checksum(None))
        .or_else(|| S::payer_hint(ctx.payload.payload));
    Ok(Verdict::from_check(payer, verdict))
}

/// Settles a payment: verify again (with simulation) right before anything is sent, one settle
/// per payer at a time, then [`EvmScheme::settle_plan`]; a refused payment this facilitator
/// settled before is answered with what was recorded.
pub async fn settle<S: EvmScheme>(
    scheme: &S,
    ctx: &PaymentContext<'_>,
) -> Result<Settlement, SchemeError> {
    let core = scheme.core();
    // One settle per payer at a time, receipt included: a second payment from the same payer
    // is simulated only after the first has landed, so "N payments, balance for one" cannot
    // broadcast N transactions (threat-model S27).
    // The turn is the store's, keyed by network and payer: `exact` and `upto` on one network,
    // and every process sharing the store, take turns (threat-model S83).
    // The turn is taken only for a payload its payer signed (threat-model S76).
    let parsed = S::parse(ctx.payload.payload).ok();
    // A payer in a cool-down (a settlement of theirs reverted at our gas) sends nothing.
    if let Some(p) = &parsed
        && let Some(rejection) = throttled(scheme, ctx, p).await?
    {
        return Ok(failed(S::payer(p), None, rejection));
    }
    let authentic = match &parsed {
        Some(p) => scheme.authentic(ctx, p).await?,
        None => false,
    };
    let payer_turn = match parsed {
        Some(p) if authentic => {
            let payer = S::payer(&p);
            let key = payer_key(&core.network, payer);
            let wait =
                x402_core::timing::capped(core.signers.config().receipt_timeout, ctx.deadline);
            match core.settler.store().payer_turn(&key, wait).await? {
                Some(turn) => Some(turn),
                None => return busy(scheme, ctx, payer).await,
            }
        }
        _ => None,
    };
    let (payload, verdict) = scheme.check(ctx, Phase::Settle).await?;
    let Some(payload) = payload else {
        let hint = S::payer_hint(ctx.payload.payload);
        let r = verdict.err().unwrap_or_else(|| Rejection::new(S::UNPARSED));
        return Ok(Settlement::refused(hint, r));
    };
    let payer = S::payer(&payload);
    match verdict {
        Ok(plan) if payer_turn.is_some() => scheme.settle_plan(ctx, plan).await,
        // The check passed where the authentication did not (a wallet's EIP-1271 answer
        // changed in between): nothing is sent without the payer's turn; a retry may be served.
        Ok(_) => Ok(failed(
            payer,
            None,
            Rejection::with_message(
                Reason::PAYER_BUSY,
                "the payment's signature was not confirmed before its turn; nothing was sent",
            ),
        )),
        Err(rejection) => {
            // A payment this facilitator settled before fails verification (its nonce is
            // spent): answer with what was recorded, not a fresh failure.
            if let Some(id) = scheme.replay_identity(ctx, &payload, &rejection)
                && let Some(answer) = core.settler.recorded(&id, payer).await?
            {
                return Ok(answer);
            }
            Ok(failed(payer, None, rejection))
        }
    }
}

/// The answer when the payer's turn did not come: a payment the store has a record of is
/// answered from it (a repeat needs no turn: nothing is sent); any other is `payer_busy`.
async fn busy<S: EvmScheme>(
    scheme: &S,
    ctx: &PaymentContext<'_>,
    payer: Address,
) -> Result<Settlement, SchemeError> {
    let settler = &scheme.core().settler;
    let (payload, checked) = scheme.check(ctx, Phase::Settle).await?;
    let id = identity(scheme, ctx, payload.as_ref(), &checked);
    if let Some(id) = id
        && let Some(record) = settler.store().record(&id).await?
    {
        return settler.answer_existing(&id, payer, record).await;
    }
    Ok(Settlement::refused(
        Some(payer.to_checksum(None)),
        Rejection::with_message(
            Reason::PAYER_BUSY,
            "another settlement of this payer is still running; nothing was sent",
        ),
    ))
}

/// The refusal of a payment whose payer is in a cool-down — unless the store has a record of the
/// payment: a repeat is answered from its record, as any other.
async fn throttled<S: EvmScheme>(
    scheme: &S,
    ctx: &PaymentContext<'_>,
    payload: &S::Payload,
) -> Result<Option<Rejection>, SchemeError> {
    let settler = &scheme.core().settler;
    let Some(until) = settler.throttled(S::payer(payload)).await? else {
        return Ok(None);
    };
    let rejection = x402_core::PayerCooldown::rejection(until);
    if let Some(id) = scheme.replay_identity(ctx, payload, &rejection)
        && let Some(record) = settler.store().record(&id).await?
        && settler.current(&id, record).await?.is_some()
    {
        return Ok(None);
    }
    Ok(Some(rejection))
}

/// The identity a checked payment may have a settlement record under: its plan's when valid,
/// else the scheme's replay identity for the refusal.
fn identity<S: EvmScheme>(
    scheme: &S,
    ctx: &PaymentContext<'_>,
    payload: Option<&S::Payload>,
    checked: &Result<SettlePlan, Rejection>,
) -> Option<PaymentId> {
    match (payload, checked) {
        (_, Ok(plan)) => Some(plan.id.clone()),
        (Some(p), Err(rejection)) => scheme.replay_identity(ctx, p, rejection),
        (None, Err(_)) => None,
    }
}
