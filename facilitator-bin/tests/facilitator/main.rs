//! The facilitator binary against real chains, in one test binary (one link). Each module is
//! built with the features it needs:
//!
//! * `http` — the built binary over HTTP against anvil (`evm`);
//! * `auth` — API keys, scopes and limits on /verify and /settle (`evm`);
//! * `hooks` — the deny-list hook (`[hooks.deny_list]`) (`evm`);
//! * `durable` — settlement state across a killed and restarted binary (`evm`);
//! * `replicas` — several binaries sharing one PostgreSQL store (`evm`);
//! * `slow` — slowloris headers and bodies, the connection limit (`evm`);
//! * `limits` — the settle bound (503) and the per-client concurrency (429) (`evm`);
//! * `http_svm` — the built binary over HTTP against solana-test-validator (`svm`);
//! * `otel` — spans exported over OTLP/HTTP (`otel` with `evm`).
//!
//! Two binaries stay apart because of what they link: `composition` (the catalogue must hold
//! exactly the enabled schemes; the test harness used here links every scheme crate) and
//! `duplicate` (it links a clashing scheme registration).

#[cfg(feature = "evm")]
mod auth;
#[cfg(any(feature = "evm", feature = "svm"))]
mod common;
#[cfg(feature = "evm")]
mod durable;
#[cfg(feature = "evm")]
mod hooks;
#[cfg(feature = "evm")]
mod http;
#[cfg(feature = "svm")]
mod http_svm;
#[cfg(feature = "evm")]
mod limits;
#[cfg(all(feature = "otel", feature = "evm"))]
mod otel;
#[cfg(feature = "evm")]
mod replicas;
#[cfg(feature = "evm")]
mod slow;
