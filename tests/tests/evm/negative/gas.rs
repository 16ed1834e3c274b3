//! Simulation matches execution: a payer whose ERC-1271 check depends on the gas left passes a
//! plain `eth_call` (block gas limit) yet fails inside the settle transaction's gas limit. The
//! facilitator simulates with the transaction's own gas limit and fee fields, so the payment is
//! refused before anything is sent, instead of reverting on chain at our cost.

use std::sync::Arc;

use alloy::primitives::Bytes;
use alloy::providers::Provider as _;
use x402_tests::evm::exact::ExactHarness;

use super::{Ctx, Kind};

/// Runtime code of a wallet answering every call with the ERC-1271 magic value when more than a
/// million gas is left, and with `0xffffffff` otherwise:
/// `GAS PUSH3 1e6 LT PUSH1 valid JUMPI` (invalid) `PUSH4 ffffffff` … `RETURN`,
/// `valid: JUMPDEST PUSH4 1626ba7e` … `RETURN` (the word shifted left 224 bits, 32 bytes
/// returned from memory 0).
const GAS_DEPENDENT_WALLET: &str = concat!(
    "5a620f4240106019",
    "57",
    "63ffffffff60e01b60005260206000f3",
    "5b631626ba7e60e01b60005260206000f3",
);

#[tokio::test]
async fn a_wallet_valid_only_with_a_large_gas_allowance_is_refused_before_sending() {
    let h = Arc::new(ExactHarness::start().await);
    let (wallet, owner) = h.funded_wallet().await;
    let code: Bytes = alloy::hex::decode(GAS_DEPENDENT_WALLET).unwrap().into();
    let _: serde_json::Value = h
        .bed
        .provider()
        .raw_request("anvil_setCode".into(), (wallet, code))
        .await
        .unwrap();
    let mut ctx = Ctx::for_key(h.clone(), Kind::Eip3009, owner).await;
    ctx.payer = wallet;
    let request = ctx.signed(&ctx.message());
    let before = h.snapshot(&[wallet]).await;
    let v = h.verify_json(&request).await;
    assert!(!v.is_valid, "verify: {v:?}");
    let s = h.settle_json(&request).await;
    assert!(!s.success, "settle: {s:?}");
    assert_eq!(s.error_reason, v.invalid_reason, "{s:?} / {v:?}");
    h.assert_untouched(&before, "gas-dependent wallet").await;
}
