//! The facilitator's side of `erc20ApprovalGasSponsoring` (x402-spec §3.5, threat-model S42):
//! a Permit2 payer without an allowance to Permit2 sends its own signed
//! `approve(Permit2, amount)` transaction; the facilitator checks it strictly, funds the payer's
//! gas for it when the payer has none (operator's choice, bounded per payer and per day),
//! broadcasts it, waits for it, and only then settles the payment.
//!
//! - At verify (and again at settle, under the payer's turn) [`sponsored_approval`] checks the
//!   transaction offline (`check_erc20_approval`), then on the chain: the allowance is still
//!   short (otherwise the approval is not needed and is ignored: nothing is broadcast), its nonce
//!   is the payer's next (`pending`), its fee cap covers the current base fee, the gas funding
//!   it needs fits the budget; then [`simulate_bundle`] runs approval and settlement in one
//!   `eth_simulateV1` block.
//! - At settle, [`before_settle`] funds, broadcasts and waits for the approval, inside the
//!   payer's turn and before the settlement engine sends anything: two payments of one fresh
//!   wallet are serialized, and the second finds the allowance there and broadcasts nothing.
//! - Both or neither, from the buyer's side: the payment is charged only by the settlement, which
//!   is sent only after the approval succeeded; an approval that fails, reverts or is not mined in
//!   time fails the settle with nothing charged. An approval that landed before a settlement that
//!   then failed stays (an allowance to Permit2 moves nothing by itself) and a retry of the same
//!   payment settles without one.
//!
//! The sponsor is off unless configured ([`Erc20SponsorConfig`]); without it a payload carrying
//! the extension is checked and settled as if it had none.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use serde::Deserialize;
use x402_core::extension::{Extension, ExtensionConfig, ExtensionError};
use x402_core::registry::Shared;
use x402_core::{Network, PaymentContext, Rejection, SchemeError, Settlement};

use super::EvmFacilitatorCore;
use crate::abi::eip2612::IEip2612Token;
use crate::addresses::PERMIT2;
use crate::chain;
use crate::payload::Permit2Terms;
use crate::reason as r;
use crate::receipt::ReceiptOutcome;
use crate::settle::{NonceCheck, SettlePlan, failed};
use crate::signers::TxRequest;
use crate::sponsor::ERC20_APPROVAL_GAS_SPONSORING;
use crate::sponsor::erc20::{
    ApprovalCaps, Erc20Approval, IErc20Approve, check_erc20_approval, read_erc20_approval,
};

/// Seconds in a budget day (UTC days of the facilitator's clock).
const DAY: u64 = 86_400;

/// The operator's settings of `erc20ApprovalGasSponsoring` (facilitator-bin:
/// `[extensions.erc20ApprovalGasSponsoring]`, off unless `enabled = true`). Amounts in wei.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Erc20SponsorConfig {
    /// The largest gas limit a buyer's approval may carry.
    pub max_gas_limit: u64,
    /// The largest `maxFeePerGas` (legacy: gas price) a buyer's approval may carry, wei.
    pub max_fee_per_gas: u128,
    /// Whether the facilitator sends a payer short of ether what its approval may cost at most
    /// (gas limit × max fee, minus its balance). Off: such a payer is refused
    /// `erc20_approval_insufficient_eth_for_gas`.
    pub fund_gas: bool,
    /// The most wei funded to one payer per day.
    pub max_funding_per_payer: u128,
    /// The most wei funded to all payers together per day (per process).
    pub max_funding_per_day: u128,
    /// The most fundings per day (per process).
    pub max_fundings_per_day: u32,
}

impl Default for Erc20SponsorConfig {
    fn default() -> Self {
        Self {
            max_gas_limit: 100_000,
            max_fee_per_gas: 100_000_000_000,
            fund_gas: false,
            max_funding_per_payer: 1_000_000_000_000_000,
            max_funding_per_day: 100_000_000_000_000_000,
            max_fundings_per_day: 1_000,
        }
    }
}

impl Erc20SponsorConfig {
    /// Reads the options table (`enabled` already removed); unknown keys are errors.
    pub fn from_options(options: &serde_json::Value) -> Result<Self, String> {
        let options = match options {
            serde_json::Value::Null => serde_json::json!({}),
            other => other.clone(),
        };
        serde_json::from_value(options).map_err(|e| e.to_string())
    }

    /// The caps the offline check applies.
    pub fn caps(&self) -> ApprovalCaps {
        ApprovalCaps {
            max_gas_limit: self.max_gas_limit,
            max_fee_per_gas: self.max_fee_per_gas,
        }
    }
}

/// What one day's funding used so far.
#[derive(Debug, Default)]
struct Budget {
    day: u64,
    total: U256,
    count: u32,
    per_payer: HashMap<Address, U256>,
}

/// Counters since the sponsor started (also logged per approval).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erc20SponsorStats {
    /// Approvals broadcast and mined successfully.
    pub approvals: u64,
    /// Approvals broadcast that failed (refused by the node, reverted, or not mined in time).
    pub approvals_failed: u64,
    /// Gas fundings sent.
    pub fundings: u64,
    /// Wei sent as gas funding.
    pub funded_wei: u128,
    /// What the mined approvals cost their sender (gas used × effective price), wei.
    pub approval_cost_wei: u128,
}

/// The sponsor of one network, shared by its `exact` and `upto` facilitators.
#[derive(Debug)]
pub struct Erc20Sponsor {
    config: Erc20SponsorConfig,
    budget: Mutex<Budget>,
    approvals: AtomicU64,
    approvals_failed: AtomicU64,
    fundings: AtomicU64,
    funded_wei: Mutex<u128>,
    approval_cost_wei: Mutex<u128>,
}

impl Erc20Sponsor {
    /// A sponsor with `config` and an empty budget.
    pub fn new(config: Erc20SponsorConfig) -> Self {
        Self {
            config,
            budget: Mutex::default(),
            approvals: AtomicU64::new(0),
            approvals_failed: AtomicU64::new(0),
            fundings: AtomicU64::new(0),
            funded_wei: Mutex::new(0),
            approval_cost_wei: Mutex::new(0),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Erc20SponsorConfig {
        &self.config
    }

    /// Counters since start.
    pub fn stats(&self) -> Erc20SponsorStats {
        Erc20SponsorStats {
            approvals: self.approvals.load(Ordering::Relaxed),
            approvals_failed: self.approvals_failed.load(Ordering::Relaxed),
            fundings: self.fundings.load(Ordering::Relaxed),
            funded_wei: *lock(&self.funded_wei),
            approval_cost_wei: *lock(&self.approval_cost_wei),
        }
    }

    /// Whether funding `payer` with `wei` at `now` fits the budget (`Err` says which bound).
    fn allows(&self, payer: Address, wei: U256, now: u64) -> Result<(), String> {
        let mut budget = lock(&self.budget);
        Self::fits(&self.config, &mut budget, payer, wei, now)
    }

    /// Takes `wei` for `payer` from today's budget, or says which bound it would break.
    fn reserve(&self, payer: Address, wei: U256, now: u64) -> Result<(), String> {
        let mut budget = lock(&self.budget);
        Self::fits(&self.config, &mut budget, payer, wei, now)?;
        budget.total += wei;
        budget.count += 1;
        *budget.per_payer.entry(payer).or_default() += wei;
        Ok(())
    }

    /// Gives back a reservation whose funding was never sent.
    fn release(&self, payer: Address, wei: U256, now: u64) {
        let mut budget = lock(&self.budget);
        if budget.day != now / DAY {
            return;
        }
        budget.total = budget.total.saturating_sub(wei);
        budget.count = budget.count.saturating_sub(1);
        if let Some(used) = budget.per_payer.get_mut(&payer) {
            *used = used.saturating_sub(wei);
        }
    }

    fn fits(
        config: &Erc20SponsorConfig,
        budget: &mut Budget,
        payer: Address,
        wei: U256,
        now: u64,
    ) -> Result<(), String> {
        if !config.fund_gas {
            return Err("this facilitator does not fund gas for approvals".into());
        }
        let day = now / DAY;
        if budget.day != day {
            *budget = Budget {
                day,
                ..Budget::default()
            };
        }
        let payer_used = budget.per_payer.get(&payer).copied().unwrap_or_default();
        if payer_used.saturating_add(wei) > U256::from(config.max_funding_per_payer) {
            return Err(format!(
                "funding {wei} wei would exceed the per-payer daily cap ({} wei, {payer_used} used)",
                config.max_funding_per_payer
            ));
        }
        if budget.total.saturating_add(wei) > U256::from(config.max_funding_per_day)
            || budget.count >= config.max_fundings_per_day
        {
            return Err("the facilitator's daily gas-funding budget is spent".into());
        }
        Ok(())
    }

    fn add(&self, counter: &Mutex<u128>, wei: U256) {
        let mut c = lock(counter);
        *c = c.saturating_add(u128::try_from(wei).unwrap_or(u128::MAX));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The key under which the operator's [`Erc20SponsorConfig`] is put in the facilitator's
/// [`Shared`] resources (facilitator-bin does it before building schemes).
pub const SHARED_CONFIG_KEY: &str = "erc20ApprovalGasSponsoring";

/// The network's sponsor when [`SHARED_CONFIG_KEY`] holds a configuration: one per network,
/// shared by `exact` and `upto` (one budget).
pub fn from_shared(shared: &Shared, network: &Network) -> Option<Arc<Erc20Sponsor>> {
    let config = shared
        .get_or_try_init::<Erc20SponsorConfig, ()>(SHARED_CONFIG_KEY, || Err(()))
        .ok()?;
    shared
        .get_or_try_init::<Erc20Sponsor, ()>(&format!("{SHARED_CONFIG_KEY}:{network}"), || {
            Ok(Erc20Sponsor::new((*config).clone()))
        })
        .ok()
}

/// The buyer's approval for the Permit2 payment `terms` settling `amount`, checked:
/// `Ok(Ok(None))` when there is none to broadcast (no sponsor here, no approval in the payment,
/// or the allowance already covers `amount`), `Ok(Ok(Some(approval)))` when settle must
/// broadcast it first, the rejection otherwise. Nothing is sent. After the offline checks
/// (`check_erc20_approval`, with the operator's caps), on the chain:
///
/// | check | reason |
/// |---|---|
/// | its nonce is the payer's next (`eth_getTransactionCount(payer, "pending")`) | `erc20_approval_tx_failed` |
/// | its fee cap covers the latest block's base fee | `erc20_approval_tx_failed` |
/// | the payer's ether covers gas limit × max fee, or the shortfall fits the funding budget | `erc20_approval_insufficient_eth_for_gas` |
pub async fn sponsored_approval(
    core: &EvmFacilitatorCore,
    ctx: &PaymentContext<'_>,
    terms: &Permit2Terms,
    amount: U256,
) -> Result<Result<Option<Erc20Approval>, Rejection>, SchemeError> {
    let Some(sponsor) = core.erc20_sponsor() else {
        return Ok(Ok(None));
    };
    let Some(info) = crate::reject_on_err!(read_erc20_approval(ctx.payload.extensions)) else {
        return Ok(Ok(None));
    };
    let approval = crate::reject_on_err!(check_erc20_approval(
        &info,
        terms.from,
        terms.token,
        terms.amount,
        core.chain_id,
        sponsor.config().caps(),
    ));
    if allowance(core, terms.from, terms.token).await? >= amount {
        return Ok(Ok(None));
    }
    let provider = &core.provider;
    let next = provider
        .get_transaction_count(terms.from)
        .pending()
        .await
        .map_err(chain::rpc_error)?;
    let refuse = |reason, m: String| Ok(Err(Rejection::with_message(reason, m)));
    if approval.nonce != next {
        return refuse(
            r::ERC20_APPROVAL_TX_FAILED,
            format!(
                "the approval's nonce {} is not the payer's next nonce {next}; nothing was sent",
                approval.nonce
            ),
        );
    }
    let block = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(chain::rpc_error)?;
    if let Some(base) = block.and_then(|b| b.header.base_fee_per_gas)
        && approval.max_fee_per_gas < u128::from(base)
    {
        return refuse(
            r::ERC20_APPROVAL_TX_FAILED,
            format!(
                "the approval's max fee {} wei is below the base fee {base} wei (it would not be \
                 mined); nothing was sent",
                approval.max_fee_per_gas
            ),
        );
    }
    let balance = provider
        .get_balance(terms.from)
        .await
        .map_err(chain::rpc_error)?;
    let shortfall = approval.max_cost.saturating_sub(balance);
    if !shortfall.is_zero()
        && let Err(m) = sponsor.allows(terms.from, shortfall, core.now().0)
    {
        return refuse(
            r::ERC20_APPROVAL_INSUFFICIENT_ETH_FOR_GAS,
            format!(
                "the payer holds {balance} wei, its approval may cost {} wei: {m}; nothing was sent",
                approval.max_cost
            ),
        );
    }
    Ok(Ok(Some(approval)))
}

/// `allowance(owner, Permit2)` of `token` (zero when the token does not answer).
async fn allowance(
    core: &EvmFacilitatorCore,
    owner: Address,
    token: Address,
) -> Result<U256, SchemeError> {
    let call = IEip2612Token::allowanceCall {
        owner,
        spender: PERMIT2,
    };
    Ok(
        chain::view(&core.provider, core.simulate_from(), token, call)
            .await?
            .unwrap_or_default(),
    )
}

/// Simulates the approval and then `plan` (sent by `from`) in one block (`eth_simulateV1`, no
/// fee or balance validation): `Ok(Ok(()))` when both succeed. A token refusing the approval is
/// `erc20_approval_tx_failed`; a settlement failing after it is `permit2_insufficient_balance`
/// when the payer's tokens are short, `permit2_simulation_failed` otherwise. A node without
/// `eth_simulateV1` gets the approval alone simulated (`eth_call` from the payer) and the
/// balance checked, as the reference does when it cannot simulate the bundle.
pub async fn simulate_bundle(
    core: &EvmFacilitatorCore,
    approval: &Erc20Approval,
    from: Address,
    plan: &SettlePlan,
) -> Result<Result<(), Rejection>, SchemeError> {
    let approve = Bytes::from(
        IErc20Approve::approveCall {
            spender: PERMIT2,
            amount: approval.amount,
        }
        .abi_encode(),
    );
    let hex = |b: &Bytes| alloy::primitives::hex::encode_prefixed(b);
    let request = serde_json::json!([{
        "blockStateCalls": [{
            "calls": [
                {"from": approval.from, "to": approval.token, "data": hex(&approve),
                 "gas": format!("{:#x}", approval.gas_limit)},
                {"from": from, "to": plan.to, "data": hex(&plan.data),
                 "gas": format!("{:#x}", plan.gas_limit)},
            ],
        }],
        "validation": false,
    }, "latest"]);
    let refused = |m: &str| {
        Ok(Err(Rejection::with_message(
            r::ERC20_APPROVAL_TX_FAILED,
            format!("the token refuses the approval ({m}); nothing was sent"),
        )))
    };
    let answer: Result<serde_json::Value, _> = core
        .provider
        .raw_request("eth_simulateV1".into(), request)
        .await;
    let statuses = answer.ok().and_then(|v| {
        let calls = v.get(0)?.get("calls")?.as_array()?.clone();
        let status = |i: usize| -> Option<(bool, String)> {
            let c = calls.get(i)?;
            Some((
                c.get("status")?.as_str()? == "0x1",
                c.get("returnData")
                    .and_then(|d| d.as_str())
                    .unwrap_or("0x")
                    .to_owned(),
            ))
        };
        Some((status(0)?, status(1)?))
    });
    let Some(((approved, returned), (settled, _))) = statuses else {
        // No eth_simulateV1: the approval alone, then the payer's balance.
        let tx = alloy::rpc::types::TransactionRequest::default()
            .from(approval.from)
            .to(approval.token)
            .input(approve.into())
            .gas_limit(approval.gas_limit);
        return match chain::call_request(&core.provider, tx).await? {
            chain::CallResult::Ok(out) if approve_returned_true(&out) => {
                balance_covers(core, plan).await
            }
            _ => refused("eth_call of approve failed"),
        };
    };
    let returned = alloy::primitives::hex::decode(&returned).unwrap_or_default();
    if !approved || !approve_returned_true(&returned) {
        return refused("simulated approve failed or returned false");
    }
    if settled {
        return Ok(Ok(()));
    }
    match balance_covers(core, plan).await? {
        Ok(()) => Ok(Err(Rejection::with_message(
            r::PERMIT2_SIMULATION_FAILED,
            "the settlement fails after the approval in the simulation; nothing was sent",
        ))),
        Err(rejection) => Ok(Err(rejection)),
    }
}

/// An `approve` answer: `true`, or nothing (tokens that return no value).
fn approve_returned_true(out: &[u8]) -> bool {
    out.is_empty() || IErc20Approve::approveCall::abi_decode_returns(out).unwrap_or(false)
}

async fn balance_covers(
    core: &EvmFacilitatorCore,
    plan: &SettlePlan,
) -> Result<Result<(), Rejection>, SchemeError> {
    let call = crate::abi::eip3009::IEip3009Token::balanceOfCall {
        account: plan.transfer.from,
    };
    let balance = chain::view(
        &core.provider,
        core.simulate_from(),
        plan.transfer.token,
        call,
    )
    .await?
    .unwrap_or_default();
    Ok(if balance >= plan.transfer.value {
        Ok(())
    } else {
        Err(Rejection::new(r::PERMIT2_INSUFFICIENT_BALANCE))
    })
}

/// Right before the settlement engine sends `plan`, inside the payer's turn: when the payment
/// carries an approval that is still needed, fund the payer's gas if it is short (within the
/// budget), broadcast the approval and wait for it. `Ok(None)`: go on and settle. `Ok(Some(s))`:
/// the answer, a failure with nothing charged (the payment's authorization is untouched).
pub async fn before_settle(
    core: &EvmFacilitatorCore,
    ctx: &PaymentContext<'_>,
    plan: &SettlePlan,
) -> Result<Option<Settlement>, SchemeError> {
    let Some(sponsor) = core.erc20_sponsor() else {
        return Ok(None);
    };
    // A zero `upto` charge sends nothing: no approval is needed.
    if plan.transfer.value.is_zero() || !matches!(plan.nonce_check, NonceCheck::Permit2 { .. }) {
        return Ok(None);
    }
    let payer = plan.payer;
    // A payment with an EIP-2612 permit settles through `settleWithPermit`: its approval, if it
    // carries one too, was not checked and is never broadcast.
    if matches!(
        crate::sponsor::read_eip2612(ctx.payload.extensions),
        Ok(Some(_))
    ) {
        return Ok(None);
    }
    let Ok(Some(info)) = read_erc20_approval(ctx.payload.extensions) else {
        return Ok(None);
    };
    let caps = sponsor.config().caps();
    let token = plan.transfer.token;
    let approval = match check_erc20_approval(
        &info,
        payer,
        token,
        plan.transfer.value,
        core.chain_id,
        caps,
    ) {
        Ok(a) => a,
        Err(rejection) => return Ok(Some(failed(payer, None, rejection))),
    };
    if allowance(core, payer, token).await? >= plan.transfer.value {
        return Ok(None);
    }
    let fail = |reason, m: String| {
        Ok(Some(failed(
            payer,
            None,
            Rejection::with_message(reason, m),
        )))
    };
    let now = core.now().0;
    let balance = core
        .provider
        .get_balance(payer)
        .await
        .map_err(chain::rpc_error)?;
    let shortfall = approval.max_cost.saturating_sub(balance);
    if !shortfall.is_zero() {
        if let Err(m) = sponsor.reserve(payer, shortfall, now) {
            return fail(
                r::ERC20_APPROVAL_INSUFFICIENT_ETH_FOR_GAS,
                format!("{m}; nothing was sent"),
            );
        }
        let request = TxRequest {
            to: payer,
            data: Bytes::new(),
            gas_limit: 21_000,
            from: None,
            value: shortfall,
        };
        let sent = match core.signers.send(request).await {
            Ok(sent) => sent,
            Err(e) => {
                sponsor.release(payer, shortfall, now);
                return fail(
                    r::ERC20_APPROVAL_BROADCAST_FAILED,
                    format!("funding the payer's gas failed ({e}); the payment was not settled"),
                );
            }
        };
        sponsor.fundings.fetch_add(1, Ordering::Relaxed);
        sponsor.add(&sponsor.funded_wei, shortfall);
        tracing::info!(
            network = %core.network, %payer, wei = %shortfall, tx = %sent.hash,
            "erc20ApprovalGasSponsoring: funding the payer's approval gas"
        );
        if !core
            .signers
            .wait_until(sent.hash, ctx.deadline)
            .await
            .is_success()
        {
            return fail(
                r::ERC20_APPROVAL_BROADCAST_FAILED,
                format!(
                    "the gas funding {} was not mined in time; the payment was not settled, \
                     nothing was charged",
                    sent.hash
                ),
            );
        }
    }
    let hash = alloy::primitives::keccak256(&approval.raw);
    match core.provider.send_raw_transaction(&approval.raw).await {
        Ok(_) => {}
        // The buyer (or an earlier attempt) sent it already: wait for it like ours.
        Err(e) if already_known(&e) => {}
        Err(e) => {
            sponsor.approvals_failed.fetch_add(1, Ordering::Relaxed);
            return fail(
                r::ERC20_APPROVAL_BROADCAST_FAILED,
                format!(
                    "the node refused the approval ({}); the payment was not settled, nothing was \
                     charged",
                    crate::error::describe_rpc_error(&e)
                ),
            );
        }
    }
    match core.signers.wait_until(hash, ctx.deadline).await {
        ReceiptOutcome::Success(receipt) => {
            let cost = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
            sponsor.approvals.fetch_add(1, Ordering::Relaxed);
            sponsor.add(&sponsor.approval_cost_wei, cost);
            tracing::info!(
                network = %core.network, %payer, tx = %hash, cost_wei = %cost,
                funded_wei = %shortfall,
                "erc20ApprovalGasSponsoring: approval mined; settling"
            );
            Ok(None)
        }
        ReceiptOutcome::Reverted(_) => {
            sponsor.approvals_failed.fetch_add(1, Ordering::Relaxed);
            fail(
                r::ERC20_APPROVAL_TX_FAILED,
                format!(
                    "the approval {hash} reverted; the payment was not settled, nothing was \
                     charged"
                ),
            )
        }
        ReceiptOutcome::Pending => {
            sponsor.approvals_failed.fetch_add(1, Ordering::Relaxed);
            fail(
                r::ERC20_APPROVAL_TX_FAILED,
                format!(
                    "the approval {hash} was not mined in time; the payment was not settled, \
                     nothing was charged (a retry settles once it is mined)"
                ),
            )
        }
    }
}

/// Whether a node refused a raw transaction because it already has it (geth: `already known`,
/// others: `known transaction`).
fn already_known(e: &alloy::transports::RpcError<alloy::transports::TransportErrorKind>) -> bool {
    let m = crate::error::describe_rpc_error(e).to_ascii_lowercase();
    m.contains("already known") || m.contains("known transaction")
}

/// The facilitator extension `erc20ApprovalGasSponsoring`: listed in `/supported.extensions` so
/// sellers may declare it. The work is the Permit2 sequence's ([`sponsored_approval`],
/// [`before_settle`]); this extension answers nothing in responses.
#[derive(Debug, Default)]
pub struct Erc20ApprovalGasSponsoring;

#[async_trait::async_trait]
impl Extension for Erc20ApprovalGasSponsoring {
    fn key(&self) -> &'static str {
        ERC20_APPROVAL_GAS_SPONSORING
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Checks the options ([`Erc20SponsorConfig`]) and builds [`Erc20ApprovalGasSponsoring`] with
/// the configuration the schemes must be given (see [`SHARED_CONFIG_KEY`]).
pub fn build_erc20(
    config: &ExtensionConfig,
) -> Result<(Arc<dyn Extension>, Erc20SponsorConfig), ExtensionError> {
    let settings =
        Erc20SponsorConfig::from_options(&config.options).map_err(|message| ExtensionError {
            key: ERC20_APPROVAL_GAS_SPONSORING.into(),
            message,
        })?;
    Ok((Arc::new(Erc20ApprovalGasSponsoring), settings))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn funding() -> Erc20SponsorConfig {
        Erc20SponsorConfig {
            fund_gas: true,
            max_funding_per_payer: 100,
            max_funding_per_day: 250,
            max_fundings_per_day: 10,
            ..Erc20SponsorConfig::default()
        }
    }

    #[test]
    fn the_budget_caps_each_payer_and_the_day() {
        let s = Erc20Sponsor::new(funding());
        let (a, b, c) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        let day = 10 * DAY;
        s.reserve(a, U256::from(60u64), day).unwrap();
        assert!(s.reserve(a, U256::from(41u64), day).is_err(), "per payer");
        s.reserve(a, U256::from(40u64), day).unwrap();
        s.reserve(b, U256::from(100u64), day).unwrap();
        assert!(s.allows(c, U256::from(51u64), day).is_err(), "per day");
        s.reserve(c, U256::from(50u64), day).unwrap();
        // Released reservations come back; the next day starts afresh.
        s.release(c, U256::from(50u64), day);
        s.allows(c, U256::from(50u64), day).unwrap();
        s.reserve(a, U256::from(100u64), day + DAY).unwrap();
    }

    #[test]
    fn no_funding_unless_configured_and_options_are_strict() {
        let s = Erc20Sponsor::new(Erc20SponsorConfig::default());
        assert!(s.allows(Address::ZERO, U256::from(1u64), 0).is_err());
        let c = Erc20SponsorConfig::from_options(&serde_json::json!({
            "fund_gas": true, "max_funding_per_payer": 16, "max_gas_limit": 80000
        }))
        .unwrap();
        assert!(c.fund_gas);
        assert_eq!(c.max_funding_per_payer, 16);
        assert_eq!(c.max_gas_limit, 80_000);
        assert!(Erc20SponsorConfig::from_options(&serde_json::json!({"fund": true})).is_err());
        let counts = Erc20SponsorConfig {
            max_fundings_per_day: 1,
            ..funding()
        };
        let s = Erc20Sponsor::new(counts);
        s.reserve(Address::ZERO, U256::from(1u64), 0).unwrap();
        assert!(
            s.allows(Address::repeat_byte(9), U256::from(1u64), 0)
                .is_err()
        );
    }
}
