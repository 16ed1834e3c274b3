//! The facilitator core both EVM schemes share: the state one scheme holds on one network
//! ([`EvmFacilitatorCore`]), the verify answer and the settle prologue ([`verify`], [`settle`]:
//! one settle per payer at a time, a refused repeat answered with what was recorded, the plan
//! handed to [`Settler::settle`]), and the Permit2 check sequence ([`verify_permit2`]). A scheme
//! crate says only what differs, through [`EvmScheme`] and [`Permit2Scheme`].

pub mod approval;
mod permit2;
mod sponsor;

pub use approval::{
    Erc20ApprovalGasSponsoring, Erc20Sponsor, Erc20SponsorConfig, sponsored_approval,
};
pub use permit2::{Permit2Scheme, Permit2View, permit2_authentic, verify_permit2};
pub use sponsor::{
    Eip2612GasSponsoring, SETTLE_WITH_PERMIT_EXTRA_GAS, build_eip2612, sponsored_permit,
};

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

use crate::chain::{self, CallResult};
use crate::code::{Code, CodeCache};
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

/// Which request a check serves (`upto` checks the amount differently at verify and settle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `/verify`: every check, the simulation last.
    Verify,
    /// `/settle`, before the payment's claim: every check but the simulation (nothing read
    /// here can change before the last check).
    Settle,
    /// `/settle`, the last check under the payment's claim ([`EvmScheme::last_check`]): every
    /// check again with the settle's one simulation, at `pending`, right before signing.
    Claimed,
}

impl Phase {
    /// Whether the check ends with the simulation of what settle sends.
    pub fn simulates(self) -> bool {
        !matches!(self, Self::Settle)
    }

    /// Whether the check serves a settle (the charge, not the maximum, is the amount).
    pub fn settles(self) -> bool {
        !matches!(self, Self::Verify)
    }
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
    /// Contracts seen with code: assets, transaction targets, contract payers (a call to an
    /// address without code "succeeds" and proves nothing; a payer's code routes its signature).
    /// Bounded; delegations and empty code are never kept (see [`crate::code`]).
    with_code: CodeCache,
    /// Seconds an authorization must still run when verified (see [`crate::window`]).
    expiry_buffer: u64,
    /// The network's `erc20ApprovalGasSponsoring` sponsor, when the operator enabled it.
    erc20_sponsor: Option<Arc<approval::Erc20Sponsor>>,
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
            with_code: CodeCache::default(),
            expiry_buffer: crate::window::default_expiry_buffer(chain_id),
            erc20_sponsor: None,
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
        if let Some(buffer) = options.expiry_buffer_seconds {
            core.set_expiry_buffer(buffer);
        }
        core.set_payer_cooldown(options.failed_payer_cooldown());
        core.erc20_sponsor = approval::from_shared(&config.shared, &config.network);
        Ok((core, min_signer_balance))
    }

    /// Sets how long a payer whose settlement reverted is refused (zero: never; default
    /// [`x402_core::PayerCooldown::DEFAULT`]).
    pub fn set_payer_cooldown(&mut self, period: std::time::Duration) {
        self.settler.set_payer_cooldown(period);
    }

    /// Serves `erc20ApprovalGasSponsoring` with `sponsor` (shared by the network's schemes).
    pub fn set_erc20_sponsor(&mut self, sponsor: Arc<approval::Erc20Sponsor>) {
        self.erc20_sponsor = Some(sponsor);
    }

    /// The network's `erc20ApprovalGasSponsoring` sponsor, if served.
    pub fn erc20_sponsor(&self) -> Option<&approval::Erc20Sponsor> {
        self.erc20_sponsor.as_deref()
    }

    /// Replaces the expiry buffer (default: from the chain's block time, see [`crate::window`]).
    pub fn set_expiry_buffer(&mut self, seconds: u64) {
        self.expiry_buffer = seconds;
    }

    /// Seconds an authorization must still run when verified or settled on this network.
    pub fn expiry_buffer(&self) -> u64 {
        self.expiry_buffer
    }

    /// Checks an authorization's window against the clock and this network's expiry buffer:
    /// `deadline` at least [`Self::expiry_buffer`] seconds away (else `expired`), `valid_after`
    /// passed (else `too_early`).
    pub fn check_window(
        &self,
        valid_after: U256,
        deadline: U256,
        too_early: Reason,
        expired: Reason,
    ) -> Result<(), Rejection> {
        crate::window::check_time(
            self.now(),
            self.expiry_buffer,
            valid_after,
            deadline,
            too_early,
            expired,
        )
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
        self.with_code.has_code(&self.provider, asset).await
    }

    /// What is at `address` (contract code cached; see [`CodeCache`]).
    pub async fn code_at(&self, address: Address) -> Result<Code, SchemeError> {
        self.with_code.code(&self.provider, address).await
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

    /// Whether `eth_call` of the plan's call, sent as `from`, succeeds — after refusing a plan
    /// whose target has no code: a call to such an address "succeeds", and sending it would
    /// burn gas for nothing (threat-model S32). The refusal names the target: the token
    /// (`asset_not_deployed_contract`), a Permit2 proxy (`permit2_proxy_not_deployed`), or
    /// anything else (`no_code`, the scheme's reason, Multicall3 for a counterfactual wallet).
    /// The call runs as the transaction will execute: with its gas limit (a wallet may behave
    /// otherwise when `gasleft()` is large, as it is in a plain eth_call) and its fee fields.
    pub async fn simulate(
        &self,
        from: Address,
        plan: &SettlePlan,
        no_code: Reason,
    ) -> Result<Result<bool, Rejection>, SchemeError> {
        if !self.with_code.has_code(&self.provider, plan.to).await? {
            return Ok(Err(no_code_at(plan, no_code)));
        }
        // The same request as `call_request` of a `TransactionRequest` with these fields and
        // these fees, written without building one (see `chain::simulate_call`).
        let call = chain::SimulatedCall {
            from,
            to: plan.to,
            input: &plan.data,
            gas: plan.gas_limit,
            fees: self.signers.current_fees().await,
        };
        Ok(Ok(matches!(
            chain::simulate_call(&self.provider, &call).await?,
            CallResult::Ok(_)
        )))
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
        if self.code_at(owner).await? == Code::None {
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

/// The refusal of a plan whose target has no code, naming what the target is.
fn no_code_at(plan: &SettlePlan, other: Reason) -> Rejection {
    use crate::addresses::{EXACT_PERMIT2_PROXY, MULTICALL3, UPTO_PERMIT2_PROXY};
    let (reason, what) = match plan.to {
        to if to == plan.transfer.token => (crate::reason::ASSET_NOT_DEPLOYED_CONTRACT, "asset"),
        EXACT_PERMIT2_PROXY => (
            crate::reason::PERMIT2_PROXY_NOT_DEPLOYED,
            "x402ExactPermit2Proxy",
        ),
        UPTO_PERMIT2_PROXY => (
            crate::reason::PERMIT2_PROXY_NOT_DEPLOYED,
            "x402UptoPermit2Proxy",
        ),
        MULTICALL3 => (other, "Multicall3"),
        _ => (other, "the transaction's target"),
    };
    Rejection::with_message(
        reason,
        format!("no contract at {what} {}; nothing was sent", plan.to),
    )
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

    /// Verifies a parsed payload; `Ok(plan)` when valid.
    async fn check_parsed(
        &self,
        ctx: &PaymentContext<'_>,
        payload: &Self::Payload,
        phase: Phase,
    ) -> Result<Result<SettlePlan, Rejection>, SchemeError>;

    /// Parses and verifies; the payload (when it parses) and `Ok(plan)` when valid.
    async fn check(
        &self,
        ctx: &PaymentContext<'_>,
        phase: Phase,
    ) -> Result<Checked<Self::Payload>, SchemeError> {
        self.check_from(ctx, Self::parse(ctx.payload.payload), phase)
            .await
    }

    /// [`EvmScheme::check`] of a payload parsed already (once per request: the cool-down
    /// lookup before the check needs the payer).
    async fn check_from(
        &self,
        ctx: &PaymentContext<'_>,
        parsed: Result<Self::Payload, Rejection>,
        phase: Phase,
    ) -> Result<Checked<Self::Payload>, SchemeError> {
        match parsed {
            Ok(payload) => {
                let verdict = self.check_parsed(ctx, &payload, phase).await?;
                Ok((Some(payload), verdict))
            }
            Err(rejection) => Ok((None, Err(rejection))),
        }
    }

    /// The identity under which a payment refused by `rejection` may have been settled before
    /// (its recorded outcome is then the answer); `None` answers with the rejection.
    fn replay_identity(
        &self,
        ctx: &PaymentContext<'_>,
        payload: &Self::Payload,
        rejection: &Rejection,
    ) -> Option<PaymentId>;

    /// The last check of a settle, run under the payment's claim right before anything is
    /// signed: the whole check again at [`Phase::Claimed`], so the settle's one simulation (at
    /// `pending`) sees the chain as it is once no concurrent settle of the payment can run, and a
    /// refusal has the reason a verify would give. The plan checked must be the one claimed.
    async fn last_check(
        &self,
        ctx: &PaymentContext<'_>,
        plan: &SettlePlan,
    ) -> Result<Result<(), Rejection>, SchemeError> {
        let (_, checked) = self.check(ctx, Phase::Claimed).await?;
        Ok(match checked {
            Ok(again) if same_transaction(&again, plan) => Ok(()),
            Ok(_) => Err(Rejection::with_message(
                Reason::UNEXPECTED_SETTLE_ERROR,
                "the payment's check gave another transaction under its claim; nothing was sent",
            )),
            Err(rejection) => Err(rejection),
        })
    }

    /// Settles a verified plan (default: the shared engine, with [`EvmScheme::last_check`]).
    async fn settle_plan(
        &self,
        ctx: &PaymentContext<'_>,
        plan: SettlePlan,
    ) -> Result<Settlement, SchemeError> {
        let last_check = self.last_check(ctx, &plan);
        self.core()
            .settler
            .settle(&plan, ctx.deadline, last_check)
            .await
    }
}

/// Whether two plans send the same transaction for the same payment.
fn same_transaction(a: &SettlePlan, b: &SettlePlan) -> bool {
    a.id == b.id
        && a.to == b.to
        && a.data == b.data
        && a.gas_limit == b.gas_limit
        && a.from == b.from
}

/// The payer a payment names, read without verifying it (checksummed): what
/// [`x402_core::FacilitatorRole::payer`] answers for an EVM scheme.
pub fn payer_of<S: EvmScheme>(ctx: &PaymentContext<'_>) -> Option<String> {
    match S::parse(ctx.payload.payload) {
        Ok(p) => Some(crate::parse::checksummed(&S::payer(&p))),
        Err(_) => S::payer_hint(ctx.payload.payload),
    }
}

/// The verify answer: the check's verdict, naming the payer when it can.
pub async fn verify<S: EvmScheme>(
    scheme: &S,
    ctx: &PaymentContext<'_>,
) -> Result<Verdict, SchemeError> {
    // Under load, the verifies' chain reads share HTTP round trips (one batch for many).
    crate::provider::batching(verify_now(scheme, ctx)).await
}

async fn verify_now<S: EvmScheme>(
    scheme: &S,
    ctx: &PaymentContext<'_>,
) -> Result<Verdict, SchemeError> {
    let parsed = S::parse(ctx.payload.payload);
    if let Ok(p) = &parsed
        && let Some(rejection) = throttled(scheme, ctx, p).await?
    {
        return Ok(Verdict::invalid(
            Some(crate::parse::checksummed(&S::payer(p))),
            rejection,
        ));
    }
    let (payload, checked) = scheme.check_from(ctx, parsed, Phase::Verify).await?;
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
        .map(|p| crate::parse::checksummed(&S::payer(&p)))
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
    // RPC back-offs (rate limits) never wait past the settle's answer deadline; the settle's
    // `pending` reads share their head check with concurrent settles' (one batch).
    let settle = crate::provider::coalescing(settle_in_time(scheme, ctx));
    crate::provider::within(ctx.deadline, settle).await
}

async fn settle_in_time<S: EvmScheme>(
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
    let parsed = S::parse(ctx.payload.payload);
    // A payer in a cool-down (a settlement of theirs reverted at our gas) sends nothing.
    if let Ok(p) = &parsed
        && let Some(rejection) = throttled(scheme, ctx, p).await?
    {
        return Ok(failed(S::payer(p), None, rejection));
    }
    let authentic = match &parsed {
        Ok(p) => scheme.authentic(ctx, p).await?,
        Err(_) => false,
    };
    let payer_turn = match &parsed {
        Ok(p) if authentic => {
            let payer = S::payer(p);
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
    let (payload, verdict) = scheme.check_from(ctx, parsed, Phase::Settle).await?;
    let Some(payload) = payload else {
        let hint = S::payer_hint(ctx.payload.payload);
        let r = verdict.err().unwrap_or_else(|| Rejection::new(S::UNPARSED));
        return Ok(Settlement::refused(hint, r));
    };
    let payer = S::payer(&payload);
    match verdict {
        Ok(plan) if payer_turn.is_some() => {
            // erc20ApprovalGasSponsoring: the buyer's approval is funded, broadcast and mined
            // first, inside the payer's turn (nothing is charged when it fails).
            if let Some(answer) = approval::before_settle(core, ctx, &plan).await? {
                return Ok(answer);
            }
            scheme.settle_plan(ctx, plan).await
        }
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
