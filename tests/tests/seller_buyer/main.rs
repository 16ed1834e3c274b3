//! Our buyer pays our axum seller through our facilitator (served over HTTP by the facilitator
//! binary's router) on anvil with Circle's USDC: exact EIP-3009 (v1 and v2), exact Permit2, upto
//! (the actual amount), dynamic prices, settle-before-handler; and everything that must NOT
//! happen: no settle when the handler fails, no body when settlement fails, no second grant for a
//! replayed payment, no payment the policy forbids, no trust in the buyer's `accepted`, no second
//! payment when the settlement is pending (against a stand-in facilitator, no chain), no second
//! handler run for another encoding of a payment in flight. The seller's hooks (a denied payer,
//! a recovery, free access and 403), the payment in the handler, a dead first facilitator, payTo
//! per request and a custom 402 body; the buyer's governance (rolling budgets across restarts,
//! recipient lists, selectors, hooks, `x402 history`). Sign-in-with-x: a buyer who paid once
//! signs in instead of paying again (EOA and smart wallets), refused proofs get a 402.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod approval;
mod bazaar;
mod cli;
mod failures;
mod governance;
mod middleware;
mod paying;
mod payment_id;
mod pending;
mod policy;
mod seller_hooks;
mod siwx;
mod sponsored;
mod svm;
mod twice;

use x402_core::wire::SettleResponse;

pub(crate) fn settled(payment: &Option<x402_buyer::Payment>) -> SettleResponse {
    let s = payment
        .as_ref()
        .and_then(|p| p.settlement.clone())
        .expect("a settlement");
    assert!(s.success, "{s:?}");
    assert!(s.transaction.starts_with("0x"), "{s:?}");
    s
}
