//! Our x402 contracts on a real anvil: the Permit2 proxies at their canonical addresses (exact and
//! upto, with and without an EIP-2612 permit), their ABI against x402-spec.md §4, the §6.2
//! EIP-712 vectors B, C and D, and the ERC-1271 wallet with its CREATE2 (ERC-6492) factory.
//!
//! Every negative case also checks that no funds moved.
//!
//! * `abi` — selectors, type hashes and the §6.2 vectors (no chain);
//! * `proxies` — the exact and upto proxies: placement, settles, refusals;
//! * `permit` — `settleWithPermit`: the EIP-2612 allowance in the same transaction;
//! * `wallets` — the smart wallet and its factory, and a wallet paying through Permit2.

#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside `#[test]` fns fail the test too

mod abi;
mod permit;
mod proxies;
mod wallets;

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::{SolEvent, SolInterface};
use x402_tests::evm::x402::{
    IPermit2Errors, exact, exact_payment, place_x402_proxies, upto, upto_payment,
};
use x402_tests::evm::{EvmTestBed, PERMIT2_ADDRESS};

alloy::sol! {
    /// ERC-20 `Transfer`, to find the token movement in a receipt.
    event Transfer(address indexed from, address indexed to, uint256 value);
}

/// Permit2 errors as they bubble up through the proxies.
type P2 = IPermit2Errors::IPermit2ErrorsErrors;

/// Decodes the revert of `result` as the custom error interface `E`.
fn revert<E: SolInterface, T>(result: Result<T, alloy::contract::Error>, what: &str) -> E {
    match result {
        Ok(_) => panic!("{what}: expected a revert, the call succeeded"),
        Err(e) => e
            .as_decoded_interface_error::<E>()
            .unwrap_or_else(|| panic!("{what}: revert not decodable as the expected errors: {e}")),
    }
}

/// USDC balances of `accounts`.
async fn balances(bed: &EvmTestBed, accounts: &[Address]) -> Vec<U256> {
    let mut out = Vec::with_capacity(accounts.len());
    for a in accounts {
        out.push(bed.usdc_balance(*a).await);
    }
    out
}

/// Whether bit `nonce` of `owner`'s Permit2 unordered-nonce bitmap is set.
async fn nonce_used(bed: &EvmTestBed, owner: Address, nonce: U256) -> bool {
    let word = bed
        .permit2_contract()
        .nonceBitmap(owner, nonce >> 8)
        .call()
        .await
        .unwrap();
    let bit = nonce.byte(0);
    word.bit(usize::from(bit))
}

/// Asserts `receipt` holds exactly one USDC `Transfer(from → to, value)` and the proxy event
/// `event_sig` from `proxy`, and used less gas than the reference's bundled-settle limit.
fn assert_paid(
    bed: &EvmTestBed,
    receipt: &TransactionReceipt,
    (from, to, value): (Address, Address, U256),
    proxy: Address,
    event_sig: B256,
) {
    // The reference sends bundled settles with a fixed 300,000 gas limit (x402-spec.md §3.2).
    assert!(
        receipt.gas_used < 300_000,
        "settle used {} gas",
        receipt.gas_used
    );
    let transfers: Vec<_> = receipt
        .logs()
        .iter()
        .filter(|l| l.address() == bed.usdc() && l.topic0() == Some(&Transfer::SIGNATURE_HASH))
        .map(|l| l.log_decode::<Transfer>().unwrap().inner.data)
        .collect();
    assert_eq!(transfers.len(), 1, "USDC transfers in {receipt:?}");
    assert_eq!(
        (transfers[0].from, transfers[0].to, transfers[0].value),
        (from, to, value)
    );
    assert_eq!(
        receipt
            .logs()
            .iter()
            .filter(|l| l.address() == proxy && l.topic0() == Some(&event_sig))
            .count(),
        1,
        "proxy event {event_sig} in {receipt:?}"
    );
}

/// A bed with the proxies placed and buyer #0 letting Permit2 move all its USDC.
async fn bed_with_approving_buyer() -> EvmTestBed {
    let bed = EvmTestBed::start().await;
    place_x402_proxies(&bed).await;
    bed.approve_usdc(bed.buyer(0).address, PERMIT2_ADDRESS, U256::MAX)
        .await;
    bed
}

/// An exact payment of `amount` of the bed's USDC to `to` under `nonce`, valid from ten minutes
/// before `now` until five minutes after.
fn exact_paying(
    bed: &EvmTestBed,
    amount: U256,
    to: Address,
    nonce: U256,
    now: u64,
) -> exact::PermitWitnessTransferFrom {
    exact_payment(bed.usdc(), amount, to, nonce, now + 300, now - 600)
}

/// An upto payment of at most `max` of the bed's USDC to `to`, settled by `facilitator`, under
/// `nonce`, valid from ten minutes before `now` until five minutes after.
fn upto_paying(
    bed: &EvmTestBed,
    max: U256,
    to: Address,
    facilitator: Address,
    nonce: U256,
    now: u64,
) -> upto::PermitWitnessTransferFrom {
    upto_payment(
        bed.usdc(),
        max,
        to,
        facilitator,
        nonce,
        now + 300,
        now - 600,
    )
}

/// Asserts `result` reverted with the custom error `expected` (a selector), decoded as one of the
/// errors `E`.
fn assert_reverts_with<E: SolInterface, T>(
    result: Result<T, alloy::contract::Error>,
    expected: [u8; 4],
    what: &str,
) {
    let err: E = revert(result, what);
    assert_eq!(err.selector(), expected, "{what}: another error");
}
