//! The EVM area in one test binary (one link), each test on an anvil of its own:
//!
//! * `testbed` — the bed itself: USDC, Permit2, EIP-712 domains, funded buyers, anvil's lifetime;
//! * `contracts` — our Permit2 proxies and the smart wallet with its factory;
//! * `signers` — the signer pool, receipt waits and the failover provider;
//! * `exact`, `upto` — the schemes end to end;
//! * `negative_eip3009`, `negative_permit2` — the negative suites of `exact`.

mod contracts;
mod exact;
mod negative_eip3009;
mod negative_permit2;
mod signers;
mod testbed;
mod upto;
