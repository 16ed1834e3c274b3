//! Shared EVM plumbing for the x402 EVM schemes (`scheme-exact-evm`, `scheme-upto-evm`): one
//! implementation of the facilitator core and its settle prologue, the Permit2 wire payload and
//! check sequence, the ABI and EIP-712 types, canonical addresses, the default asset table,
//! signature routing, providers, the signer pool with its nonce manager, and bounded receipt
//! waits.

pub mod abi;
pub mod addresses;
pub mod assets;
pub mod chain;
pub mod eip712;
pub mod error;
pub mod facilitator;
pub mod options;
pub mod parse;
pub mod payload;
pub mod permit2;
pub mod provider;
pub mod receipt;
pub mod settle;
pub mod shared;
pub mod signature;
pub mod signers;
pub mod startup;

pub use alloy;
