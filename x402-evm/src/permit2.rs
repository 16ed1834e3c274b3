//! What every Permit2 payment shares, whichever x402 proxy spends it: its identity (one nonce
//! space per owner), the on-chain nonce check and the diagnosis of a failed simulation
//! (x402-spec §3.2 step 10, §3.3 step 11). Its time window is checked by
//! [`crate::window::check_time`], like EIP-3009's.

use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use x402_core::{Rejection, SchemeError};

use crate::abi::eip3009::IEip3009Token;
use crate::abi::permit2::{IExactPermit2Proxy, IPermit2Nonces};
use crate::addresses::PERMIT2;
use crate::chain;

pub use crate::payload::permit2_id;

/// Whether Permit2's unordered nonce `nonce` of `owner` is spent.
pub async fn nonce_used(
    provider: &DynProvider,
    from: Address,
    owner: Address,
    nonce: U256,
) -> Result<bool, SchemeError> {
    let word = nonce >> 8;
    let bit = U256::from(1) << (nonce & U256::from(0xff)).to::<usize>();
    let bitmap = chain::view(
        provider,
        from,
        PERMIT2,
        IPermit2Nonces::nonceBitmapCall {
            owner,
            wordPos: word,
        },
    )
    .await?
    .unwrap_or_default();
    Ok(bitmap & bit != U256::ZERO)
}

/// What a failed Permit2 simulation was about.
#[derive(Debug, Clone, Copy)]
pub struct Diagnosis {
    /// The proxy that would spend.
    pub proxy: Address,
    /// The token.
    pub token: Address,
    /// The owner.
    pub owner: Address,
    /// The amount the settlement moves.
    pub amount: U256,
    /// The Permit2 nonce.
    pub nonce: U256,
}

/// Finds out why a Permit2 simulation failed, first hit wins: proxy missing, nonce spent,
/// balance short, allowance to Permit2 short; otherwise a contract owner's signature check or a
/// plain simulation failure.
pub async fn diagnose(
    provider: &DynProvider,
    from: Address,
    d: Diagnosis,
) -> Result<Rejection, SchemeError> {
    let reject = |r| Ok(Rejection::new(r));
    // Both proxies answer PERMIT2() with the same selector.
    let proxy = chain::view(provider, from, d.proxy, IExactPermit2Proxy::PERMIT2Call {}).await?;
    if proxy != Some(PERMIT2) {
        return reject(crate::reason::PERMIT2_PROXY_NOT_DEPLOYED);
    }
    if nonce_used(provider, from, d.owner, d.nonce).await? {
        return reject(crate::reason::PERMIT2_INVALID_NONCE);
    }
    let balance = chain::view(
        provider,
        from,
        d.token,
        IEip3009Token::balanceOfCall { account: d.owner },
    )
    .await?;
    if balance.is_none_or(|b| b < d.amount) {
        return reject(crate::reason::PERMIT2_INSUFFICIENT_BALANCE);
    }
    let allowance = chain::view(
        provider,
        from,
        d.token,
        IEip3009Token::allowanceCall {
            owner: d.owner,
            spender: PERMIT2,
        },
    )
    .await?;
    if allowance.is_none_or(|a| a < d.amount) {
        return reject(crate::reason::PERMIT2_ALLOWANCE_REQUIRED);
    }
    if chain::code(provider, d.owner).await?.is_empty() {
        reject(crate::reason::PERMIT2_SIMULATION_FAILED)
    } else {
        // A contract owner whose EIP-1271 check failed inside Permit2.
        reject(crate::reason::INVALID_PERMIT2_SIGNATURE)
    }
}
