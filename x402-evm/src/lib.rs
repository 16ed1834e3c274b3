//! Shared EVM plumbing for the x402 EVM schemes (`scheme-exact-evm`, `scheme-upto-evm`): one
//! implementation of the facilitator core and its settle prologue, the Permit2 wire payload and
//! check sequence, the ABI and EIP-712 types, canonical addresses, the default asset table,
//! signature routing, providers, the signer pool with its nonce manager, bounded receipt
//! waits, and the gas-sponsoring extension `eip2612GasSponsoring` ([`sponsor`]: the seller's
//! declaration, the buyer's permit; its facilitator checks in `facilitator`).
//!
//! Without the `facilitator` feature only what sellers and buyers need is compiled (ABI and
//! EIP-712 types, addresses, the asset table, strict parsing, the Permit2 wire payload, the
//! gas-sponsoring declaration and permit signing): no provider, signer pool, nonce manager or
//! settlement engine.

pub mod abi;
pub mod addresses;
pub mod assets;
#[cfg(feature = "facilitator")]
pub mod blocks;
#[cfg(feature = "facilitator")]
pub mod chain;
#[cfg(feature = "facilitator")]
pub mod code;
pub mod eip712;
#[cfg(feature = "facilitator")]
pub mod error;
#[cfg(feature = "facilitator")]
pub mod facilitator;
#[cfg(feature = "facilitator")]
pub mod options;
pub mod parse;
pub mod payload;
#[cfg(feature = "facilitator")]
pub mod permit2;
#[cfg(feature = "facilitator")]
pub mod provider;
pub mod reason;
#[cfg(feature = "facilitator")]
pub mod receipt;
#[cfg(feature = "facilitator")]
pub mod settle;
#[cfg(feature = "facilitator")]
pub mod shared;
pub mod signature;
#[cfg(feature = "facilitator")]
pub mod signers;
pub mod sponsor;
#[cfg(feature = "facilitator")]
pub mod startup;
#[cfg(feature = "facilitator")]
pub mod watch;
#[cfg(feature = "facilitator")]
pub mod window;

pub use alloy;
