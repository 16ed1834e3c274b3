//! `[limits]`: request sizes, settle and shutdown bounds, and what bounds clients' hold on the
//! server (read timeouts, connections, per-client and settle concurrency).

use serde::Deserialize;
use x402_core::SettleTimeouts;

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The largest request body, in bytes.
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// How long a settle may take before it is answered, in milliseconds: a settle waits for its
    /// transaction until then and answers `settlement_pending` with it if the chain has not
    /// decided. The request deadline and the timeout a seller's client needs are derived from it
    /// ([`x402_core::timing`]).
    #[serde(default = "default_timeout")]
    pub settle_timeout_ms: u64,
    /// How long shutdown waits for in-flight requests, in milliseconds.
    #[serde(default = "default_grace")]
    pub shutdown_grace_ms: u64,
    /// `/ready` probes the chains at most once per this many milliseconds and answers the last
    /// report in between.
    #[serde(default = "default_ready_interval")]
    pub ready_interval_ms: u64,
    /// How long a client may take to send a request's headers, in milliseconds, counted from the
    /// connection's start (or, on a kept-alive connection, from the previous answer); then the
    /// connection is closed. Trickled headers (slowloris) and idle connections last no longer.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a `/verify` or `/settle` body once its headers are in,
    /// in milliseconds; then the answer is 408 and the connection is closed.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_ms: u64,
    /// Connections served at once; further ones wait in the listen backlog until one closes.
    /// Lowered at start-up, with a warning, to what the open-file limit leaves room for.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// `/verify` and `/settle` requests in progress at once from one client address (an IPv4
    /// address, an IPv6 /64); one more is answered 429 with `Retry-After`. Behind a reverse proxy
    /// every request comes from the proxy's address.
    #[serde(default = "default_per_client_concurrency")]
    pub per_client_concurrency: usize,
    /// Settles in progress at once, counting those waiting for their payer's turn or a signer and
    /// those still running after their request was answered; one more is answered 503 with
    /// `Retry-After` before anything is claimed or sent.
    #[serde(default = "default_max_settles_in_flight")]
    pub max_settles_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_body(),
            settle_timeout_ms: default_timeout(),
            shutdown_grace_ms: default_grace(),
            ready_interval_ms: default_ready_interval(),
            header_read_timeout_ms: default_header_read_timeout(),
            body_read_timeout_ms: default_body_read_timeout(),
            max_connections: default_max_connections(),
            per_client_concurrency: default_per_client_concurrency(),
            max_settles_in_flight: default_max_settles_in_flight(),
        }
    }
}

fn default_body() -> usize {
    64 * 1024
}
impl Limits {
    /// The settle bounds derived from `settle_timeout_ms`.
    pub fn timeouts(&self) -> SettleTimeouts {
        SettleTimeouts::new(std::time::Duration::from_millis(self.settle_timeout_ms))
    }
}

fn default_timeout() -> u64 {
    SettleTimeouts::DEFAULT_ANSWER_WITHIN_MS
}
fn default_grace() -> u64 {
    90_000
}
fn default_ready_interval() -> u64 {
    5_000
}
fn default_header_read_timeout() -> u64 {
    10_000
}
fn default_body_read_timeout() -> u64 {
    10_000
}
fn default_max_connections() -> usize {
    4096
}
fn default_per_client_concurrency() -> usize {
    256
}
fn default_max_settles_in_flight() -> usize {
    1024
}
