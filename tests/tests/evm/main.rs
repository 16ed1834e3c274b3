//! The EVM area in one test binary (one link), each test on an anvil of its own:
//!
//! * `testbed` — the bed itself: USDC, Permit2, EIP-712 domains, funded buyers, anvil's lifetime;
//! * `contracts` — our Permit2 proxies and the smart wallet with its factory;
//! * `signers` — the signer pool, receipt waits and the failover provider;
//! * `exact`, `upto` — the schemes end to end;
//! * `hooks` — the facilitator's lifecycle hooks: order, abort, recovery, failure;
//! * `durable` — the write-ahead and reconciliation of the settlement engine;
//! * `cooldown` — the payer cool-down after a settlement that reverted at our gas;
//! * `negative` — the negative suites of `exact`, tables shared by EIP-3009 and Permit2;
//! * `rpc_calls` — the RPC round trips of one verify, and EIP-7702 delegated payers;
//! * `rpc_faults` — RPC faults (errors, rate limits, lost sends, wrong chains, lag, stuck
//!   transactions) through a proxy.

mod contracts;
mod cooldown;
mod durable;
mod exact;
mod hooks;
mod negative;
mod rpc_calls;
mod rpc_faults;
mod signers;
mod testbed;
mod upto;
