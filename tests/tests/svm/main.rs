//! The Solana area in one test binary (one link):
//!
//! * `exact` — the `exact` scheme on the shared validator, each test with a harness (fee payers,
//!   seller, buyer, RPC proxy) of its own;
//! * `testbed` — the bed itself, inspected on a validator of its own (the `exact` tests mint and
//!   pay on the shared one), and the validators' lifetime.

mod exact;
mod testbed;
