//! The settlement stores in one test binary (one link):
//!
//! * `postgres` — the PostgreSQL store on a throw-away server ([`x402_tests::postgres::PgServer`]):
//!   the conformance suite through `x402_store::open`, two stores on one database acting as one,
//!   a stopped database failing every call in bounded time and recovering, no secret in any
//!   error or `Debug` output;
//! * `throttle` — payer cool-downs shared by replicas, kept across a database restart, and the
//!   schema upgrade that adds them to a database an older build created;
//! * `harness` — the server guard itself.
//!
//! The memory and SQLite stores are tested in x402-store itself (`cargo test -p x402-store`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod postgres;
mod throttle;
