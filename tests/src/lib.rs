//! The chain test bed: guards that start anvil and solana-test-validator on free ports and kill
//! them on drop, plus the deployments every integration test builds on (Circle's FiatTokenV2_2 as
//! USDC and Permit2 at its canonical address on anvil; SPL Token and Token-2022 mints on the
//! validator), and a throw-away PostgreSQL server for the settlement-store tests.
//!
//! A missing tool is an install bug, never a skip: every guard fails loudly and names
//! `scripts/install-tools.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a harness whose set-up fails must fail the test

pub mod anvil;
pub mod cases;
pub mod chromium;
pub mod e2e;
pub mod evm;
#[cfg(test)]
mod golden;
pub mod http1;
pub mod mcp;
pub mod postgres;
pub mod process;
pub mod python;
pub mod solana;
pub mod tools;
pub mod vocabulary;
pub mod wait;
pub mod wire;
