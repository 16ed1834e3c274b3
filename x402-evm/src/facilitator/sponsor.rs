//! The facilitator's side of `eip2612GasSponsoring` (x402-spec §3.5): the buyer's permit checked
//! field by field, then against the token itself (its permit nonce, and a simulated `permit` call
//! that proves domain and signature), before a Permit2 payment settles through
//! `settleWithPermit`; and the facilitator extension that lists the key in
//! `/supported.extensions`.

use std::any::Any;
use std::sync::Arc;

use alloy::primitives::Address;
use alloy::sol_types::SolCall;
use x402_core::extension::{Extension, ExtensionConfig, ExtensionError};
use x402_core::{PaymentContext, Rejection, SchemeError};

use super::EvmFacilitatorCore;
use crate::abi::eip2612::IEip2612Token;
use crate::addresses::PERMIT2;
use crate::chain::{self, CallResult};
use crate::payload::Permit2Terms;
use crate::reject_on_err;
use crate::sponsor::{EIP2612_GAS_SPONSORING, Eip2612Permit, check_eip2612, read_eip2612};

/// The gas a `settleWithPermit` needs beyond the proxy's plain `settle` (the token's `permit`:
/// a signature recovery, a nonce and an allowance write).
pub const SETTLE_WITH_PERMIT_EXTRA_GAS: u64 = 100_000;

/// The buyer's EIP-2612 permit for the Permit2 payment `terms`, checked: `Ok(Ok(None))` when the
/// payment carries none, `Ok(Ok(Some(permit)))` when settle may send it through
/// `settleWithPermit`, the rejection otherwise. After the field checks
/// ([`check_eip2612`]) the token is asked, as `from`:
///
/// - its `nonces(owner)` must be the permit's nonce, and an `eth_call` of
///   `permit(owner, Permit2, amount, deadline, v, r, s)` must succeed: a permit signed on another
///   domain (a wrong `extra.name`/`version`, another token or chain) or by someone else reverts
///   there (`invalid_eip2612_extension_format`, with the token's refusal in the message);
/// - a permit whose nonce is already spent is accepted only while Permit2's allowance already
///   covers the amount (someone submitted the permit first; the proxy ignores a failing
///   `permit`, threat-model S41); otherwise it is refused the same way.
///
/// A token without `nonces` (no EIP-2612) is refused the same way too. Nothing is sent.
pub async fn sponsored_permit(
    core: &EvmFacilitatorCore,
    ctx: &PaymentContext<'_>,
    terms: &Permit2Terms,
    from: Address,
) -> Result<Result<Option<Eip2612Permit>, Rejection>, SchemeError> {
    let Some(permit) = reject_on_err!(read_eip2612(ctx.payload.extensions)) else {
        return Ok(Ok(None));
    };
    reject_on_err!(check_eip2612(
        &permit,
        terms.from,
        terms.token,
        terms.amount,
        core.now().0,
        core.expiry_buffer(),
    ));
    let refuse = |m: String| {
        Ok(Err(Rejection::with_message(
            crate::reason::INVALID_EIP2612_EXTENSION_FORMAT,
            m,
        )))
    };
    let provider = &core.provider;
    let nonces = IEip2612Token::noncesCall { owner: permit.from };
    let Some(current) = chain::view(provider, from, terms.token, nonces).await? else {
        return refuse(format!(
            "the token {} answers no EIP-2612 nonces(owner); nothing was sent",
            terms.token
        ));
    };
    if permit.nonce != current {
        let allowance = IEip2612Token::allowanceCall {
            owner: permit.from,
            spender: PERMIT2,
        };
        let allowance = chain::view(provider, from, terms.token, allowance).await?;
        if allowance.is_some_and(|a| a >= terms.amount) {
            return Ok(Ok(Some(permit)));
        }
        return refuse(format!(
            "the permit's nonce {} is not the owner's next permit nonce {current}; nothing was sent",
            permit.nonce
        ));
    }
    let call = IEip2612Token::permitCall {
        owner: permit.from,
        spender: PERMIT2,
        value: permit.amount,
        deadline: permit.deadline,
        v: permit.v,
        r: permit.r,
        s: permit.s,
    };
    match chain::call(provider, from, terms.token, call.abi_encode().into()).await? {
        CallResult::Ok(_) => Ok(Ok(Some(permit))),
        CallResult::Reverted => refuse(
            "the token refuses the permit (its EIP-712 domain — extra.name and extra.version — \
             or the signature does not match); nothing was sent"
                .into(),
        ),
    }
}

/// The facilitator extension `eip2612GasSponsoring`: listed in `/supported.extensions` so sellers
/// may declare it. The checks and the `settleWithPermit` settlement are the Permit2 sequence's
/// ([`sponsored_permit`]); this extension answers nothing in responses.
#[derive(Debug, Default)]
pub struct Eip2612GasSponsoring;

#[async_trait::async_trait]
impl Extension for Eip2612GasSponsoring {
    fn key(&self) -> &'static str {
        EIP2612_GAS_SPONSORING
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Builds [`Eip2612GasSponsoring`]; it has no options (a table may hold only `enabled`).
pub fn build_eip2612(config: &ExtensionConfig) -> Result<Arc<dyn Extension>, ExtensionError> {
    if let Some(o) = config.options.as_object()
        && let Some(k) = o.keys().next()
    {
        return Err(ExtensionError {
            key: EIP2612_GAS_SPONSORING.into(),
            message: format!("unknown option {k:?} (it takes none but `enabled`)"),
        });
    }
    Ok(Arc::new(Eip2612GasSponsoring))
}

#[cfg(feature = "gas-sponsoring")]
x402_core::register_extension!(EIP2612_GAS_SPONSORING, build_eip2612);
