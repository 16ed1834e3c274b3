//! The Permit2 check sequence `exact` and `upto` share (x402-spec §3.2, §3.3); a scheme says
//! its proxy, reasons, witness, amount rule and proxy call through [`Permit2Scheme`].

use alloy::primitives::{Address, B256, Bytes, U256};
use x402_core::{Network, PaymentContext, Reason, Rejection, SchemeError, UnixTime};

use super::{EvmScheme, Phase};
use crate::payload::Permit2Terms;
use crate::permit2::{Diagnosis, diagnose};
use crate::reject_on_err;
use crate::settle::SettlePlan;
use crate::sponsor::Eip2612Permit;

/// A Permit2 payment as the shared check sequence reads it.
#[derive(Debug, Clone, Copy)]
pub struct Permit2View<'a> {
    /// The witness-independent fields.
    pub terms: Permit2Terms,
    /// The owner's signature.
    pub signature: &'a Bytes,
    /// The witnessed recipient.
    pub to: Address,
    /// The witnessed start of validity.
    pub valid_after: U256,
}

impl Permit2View<'_> {
    /// The settlement of `value` to the witnessed recipient by calling `proxy` with `data`,
    /// a revert answered with `reverted`: any signer sends it, and the response reports no
    /// amount (a scheme sets either otherwise).
    pub fn plan(
        &self,
        network: &Network,
        proxy: Address,
        data: Bytes,
        gas_limit: u64,
        value: U256,
        reverted: Reason,
    ) -> SettlePlan {
        let t = &self.terms;
        SettlePlan {
            to: proxy,
            data,
            gas_limit,
            from: None,
            id: crate::permit2::permit2_id(network, t.from, t.nonce),
            expires: UnixTime(u64::try_from(t.deadline).unwrap_or(u64::MAX)),
            payer: t.from,
            transfer: crate::settle::Transfer {
                token: t.token,
                from: t.from,
                to: self.to,
                value,
            },
            nonce_check: crate::settle::NonceCheck::Permit2 {
                owner: t.from,
                nonce: t.nonce,
            },
            report_amount: None,
            reverted,
        }
    }
}

/// What a Permit2 scheme says to the shared check sequence ([`verify_permit2`]).
pub trait Permit2Scheme: EvmScheme {
    /// The scheme's Permit2 payment.
    type Permit: Sync;

    /// The scheme name both the payload and the requirements must carry.
    const SCHEME: &'static str;
    /// The proxy that must be the spender.
    const PROXY: Address;
    /// The reason for a scheme mismatch.
    const SCHEME_MISMATCH: Reason;
    /// The reason for a network mismatch.
    const NETWORK_MISMATCH: Reason;

    /// The tokens the policy accepts (`None`: any with code).
    fn assets(&self) -> Option<&[Address]>;

    /// The fields the shared sequence checks.
    fn view(p: &Self::Permit) -> Permit2View<'_>;

    /// The scheme's own witness checks, after the recipient's (default: none).
    fn check_witness(&self, _p: &Self::Permit) -> Result<(), Rejection> {
        Ok(())
    }

    /// The amount at stake, given what the requirements ask, or the rejection.
    fn amount(p: &Self::Permit, required: U256, phase: Phase) -> Result<U256, Rejection>;

    /// The EIP-712 digest the owner signed.
    fn digest(p: &Self::Permit, chain_id: u64) -> B256;

    /// The settlement of `amount` of `p`, sending `signature` (the payload's, normalized when
    /// the owner signed with ECDSA): the proxy's `settle`, or its `settleWithPermit` with the
    /// buyer's checked EIP-2612 `permit` (`eip2612GasSponsoring`, gas limit raised by
    /// [`super::SETTLE_WITH_PERMIT_EXTRA_GAS`]).
    fn plan(
        &self,
        p: &Self::Permit,
        amount: U256,
        signature: &Bytes,
        permit: Option<&Eip2612Permit>,
    ) -> SettlePlan;

    /// The account the simulation is sent from.
    fn simulate_from(&self, p: &Self::Permit) -> Address;

    /// Whether a settlement of `amount` sends nothing, so is not simulated (default: never).
    fn sends_nothing(_amount: U256) -> bool {
        false
    }
}

/// Whether `p` is signed by its owner (see [`EvmScheme::authentic`]): the digest's ECDSA signer,
/// or the owner contract's EIP-1271 answer.
pub async fn permit2_authentic<S: Permit2Scheme>(
    scheme: &S,
    p: &S::Permit,
) -> Result<bool, SchemeError> {
    let core = scheme.core();
    let v = S::view(p);
    let digest = S::digest(p, core.chain_id);
    let signature = crate::signature::normalize_ecdsa(v.signature)
        .filter(|n| crate::signature::recover(&digest, n) == Some(v.terms.from))
        .unwrap_or_else(|| v.signature.clone());
    core.permit2_signature_passes(&digest, &signature, v.terms.from)
        .await
}

/// Verifies a Permit2 payment in the reference's order (x402-spec §3.2, §3.3): scheme, network,
/// spender, recipient, the scheme's witness, time window, amount, token, signature, the buyer's
/// EIP-2612 permit when it sent one ([`super::sponsored_permit`]) or else its signed approval
/// ([`super::sponsored_approval`], simulated with the settlement in one block), then a
/// simulation of the proxy call settle will send (against a token that exists), diagnosed when
/// it reverts.
/// `Ok(Ok(plan))` when valid.
pub async fn verify_permit2<S: Permit2Scheme>(
    scheme: &S,
    ctx: &PaymentContext<'_>,
    p: &S::Permit,
    phase: Phase,
) -> Result<Result<SettlePlan, Rejection>, SchemeError> {
    let core = scheme.core();
    let v = S::view(p);
    let req = &ctx.requirements;
    if ctx.payload.scheme != S::SCHEME || req.scheme != S::SCHEME {
        return Ok(Err(Rejection::new(S::SCHEME_MISMATCH)));
    }
    if !ctx.network_matches() {
        return Ok(Err(Rejection::new(S::NETWORK_MISMATCH)));
    }
    let (asset, pay_to) = reject_on_err!(core.requirement_addresses(req, scheme.assets()));
    if v.terms.spender != S::PROXY {
        return Ok(Err(Rejection::new(crate::reason::INVALID_PERMIT2_SPENDER)));
    }
    if v.to != pay_to {
        return Ok(Err(Rejection::new(
            crate::reason::INVALID_PERMIT2_RECIPIENT_MISMATCH,
        )));
    }
    reject_on_err!(scheme.check_witness(p));
    reject_on_err!(core.check_window(
        v.valid_after,
        v.terms.deadline,
        crate::reason::PERMIT2_NOT_YET_VALID,
        crate::reason::PERMIT2_DEADLINE_EXPIRED,
    ));
    let amount = reject_on_err!(S::amount(p, req.amount.get(), phase));
    if v.terms.token != asset {
        return Ok(Err(Rejection::new(crate::reason::PERMIT2_TOKEN_MISMATCH)));
    }
    let digest = S::digest(p, core.chain_id);
    // An owner's ECDSA signature in any form it may come in (v 0/1, EIP-2098 compact) is sent in
    // the form Permit2's own check reads; anything else goes to the owner's EIP-1271 check as is.
    let signature = crate::signature::normalize_ecdsa(v.signature)
        .filter(|n| crate::signature::recover(&digest, n) == Some(v.terms.from))
        .unwrap_or_else(|| v.signature.clone());
    if !core
        .permit2_signature_passes(&digest, &signature, v.terms.from)
        .await?
    {
        return Ok(Err(Rejection::new(
            crate::reason::INVALID_PERMIT2_SIGNATURE,
        )));
    }
    reject_on_err!(core.require_asset_code(asset).await?);
    let from = scheme.simulate_from(p);
    // The buyer's EIP-2612 permit (eip2612GasSponsoring), checked against the token before
    // the settlement that carries it is simulated (x402-spec §3.5).
    let permit = reject_on_err!(super::sponsored_permit(core, ctx, &v.terms, from).await?);
    // Or the buyer's signed approval (erc20ApprovalGasSponsoring), when this facilitator serves
    // it and the allowance is short: checked here, broadcast at settle before the settlement.
    let approval = match permit {
        Some(_) => None,
        None => reject_on_err!(super::sponsored_approval(core, ctx, &v.terms, amount).await?),
    };
    let plan = scheme.plan(p, amount, &signature, permit.as_ref());
    if S::sends_nothing(amount) {
        return Ok(Ok(plan));
    }
    if let Some(approval) = approval {
        // Before the approval is broadcast: the bundle must pass (under the claim, after the
        // approval landed, the settlement alone is simulated as any other).
        reject_on_err!(super::approval::simulate_bundle(core, &approval, from, &plan).await?);
        return Ok(Ok(plan));
    }
    if !phase.simulates() {
        return Ok(Ok(plan));
    }
    let no_code = crate::reason::PERMIT2_PROXY_NOT_DEPLOYED;
    if reject_on_err!(core.simulate(from, &plan, no_code).await?) {
        return Ok(Ok(plan));
    }
    Ok(Err(diagnose(
        &core.provider,
        from,
        Diagnosis {
            proxy: S::PROXY,
            token: v.terms.token,
            owner: v.terms.from,
            amount,
            nonce: v.terms.nonce,
        },
    )
    .await?))
}
