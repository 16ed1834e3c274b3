//! Solana JSON-RPC with fallback: a list of endpoints tried in order. A call moves on to the next
//! endpoint only when the current one could not answer (connection, timeout, HTTP error, garbled
//! or "node unhealthy" response); a JSON-RPC error the node did answer is the answer.
//!
//! Once [`crate::check_genesis`] has pinned the chain, an endpoint that failed to answer is
//! trusted again only after its genesis hash is read anew and matches: a node that comes back
//! may be another cluster (a DNS change, a provider's misrouted pool), and its "account not
//! found" would be taken for an answer about ours.
//!
//! URLs often carry API keys, so nothing here prints one: errors are described without them.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::client_error::{Error as ClientError, ErrorKind};
use solana_rpc_client_api::request::RpcError;
use x402_core::SchemeError;

/// JSON-RPC error code of a node that is behind.
pub(crate) const NODE_UNHEALTHY: i64 = -32005;

/// A list of RPC endpoints at commitment `confirmed`, tried in order.
pub struct Rpc {
    clients: Vec<RpcClient>,
    /// The genesis-hash prefix every endpoint must serve (the CAIP-2 reference), once pinned.
    genesis: OnceLock<String>,
    /// Per endpoint: its genesis hash must be read again before it is used.
    suspect: Vec<AtomicBool>,
}

impl fmt::Debug for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rpc")
            .field("endpoints", &self.clients.len())
            .finish()
    }
}

impl Rpc {
    /// Endpoints at `urls` (at least one), each request bounded by `timeout`.
    pub fn new(urls: &[String], timeout: Duration) -> Result<Self, SchemeError> {
        if urls.is_empty() {
            return Err(SchemeError::Config(
                "at least one RPC URL is required".into(),
            ));
        }
        for (i, url) in urls.iter().enumerate() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SchemeError::Config(format!(
                    "rpc_urls[{i}] is not an http(s) URL"
                )));
            }
        }
        Ok(Self {
            clients: urls
                .iter()
                .map(|u| {
                    RpcClient::new_with_timeout_and_commitment(
                        u.clone(),
                        timeout,
                        CommitmentConfig::confirmed(),
                    )
                })
                .collect(),
            genesis: OnceLock::new(),
            suspect: urls.iter().map(|_| AtomicBool::new(false)).collect(),
        })
    }

    /// The endpoints, in order.
    pub fn clients(&self) -> &[RpcClient] {
        &self.clients
    }

    /// Pins the chain: from now on an endpoint that failed is used again only once it serves a
    /// genesis hash starting with `reference` (see the module documentation).
    #[cfg(feature = "facilitator")]
    pub(crate) fn pin_genesis(&self, reference: &str) {
        let _ = self.genesis.set(reference.to_owned());
    }

    /// Marks endpoint `i` as one whose chain must be checked again before its next use.
    pub(crate) fn suspect(&self, i: usize) {
        if let Some(flag) = self.suspect.get(i) {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Whether endpoint `i` may be asked: always before the chain is pinned; after, unless it
    /// failed since its genesis hash was last read, in which case it is read again now. An
    /// endpoint on another chain stays suspect (and is skipped) until it serves ours again.
    pub(crate) async fn usable(&self, i: usize) -> bool {
        let (Some(reference), Some(flag)) = (self.genesis.get(), self.suspect.get(i)) else {
            return true;
        };
        if !flag.load(Ordering::SeqCst) {
            return true;
        }
        match self.clients[i].get_genesis_hash().await {
            Ok(hash) if hash.to_string().get(..32) == Some(reference.as_str()) => {
                flag.store(false, Ordering::SeqCst);
                true
            }
            Ok(_) => {
                tracing::error!(
                    endpoint = i,
                    "RPC endpoint now serves another chain (genesis hash changed); skipped"
                );
                false
            }
            Err(e) => {
                tracing::warn!(endpoint = i, error = %describe(&e), "RPC endpoint still unreachable");
                false
            }
        }
    }
}

/// The error standing for an endpoint skipped because its chain could not be confirmed: an
/// endpoint that could not answer ([`unreachable`]), never an answer.
pub(crate) fn skipped() -> ClientError {
    ErrorKind::Io(std::io::Error::other(
        "RPC endpoint skipped: its genesis hash is not confirmed",
    ))
    .into()
}

/// Runs `$body` (an RPC future using the client `$c`) on each endpoint of `$rpc` in turn until
/// one answers (see the module documentation); evaluates to the `Result` of the last call.
macro_rules! rpc_call {
    ($rpc:expr, |$c:ident| $body:expr) => {{
        let mut last = None;
        let mut answer = None;
        for (i, $c) in $rpc.clients().iter().enumerate() {
            if !$rpc.usable(i).await {
                last = Some($crate::rpc::skipped());
                continue;
            }
            match $body.await {
                Err(e) if $crate::rpc::unreachable(&e) => {
                    $rpc.suspect(i);
                    last = Some(e)
                }
                other => {
                    answer = Some(other);
                    break;
                }
            }
        }
        match answer {
            Some(a) => a,
            None => Err($crate::rpc::no_answer(last)),
        }
    }};
}

/// [`rpc_call!`] with a failure mapped to [`SchemeError::Rpc`] naming `$what`.
macro_rules! rpc_get {
    ($rpc:expr, $what:expr, |$c:ident| $body:expr) => {
        $crate::rpc::rpc_call!($rpc, |$c| $body).map_err(|e| {
            x402_core::SchemeError::Rpc(format!("{}: {}", $what, $crate::rpc::describe(&e)))
        })
    };
}

pub(crate) use {rpc_call, rpc_get};

/// The error of a call no endpoint answered.
pub(crate) fn no_answer(last: Option<ClientError>) -> ClientError {
    last.unwrap_or_else(|| ErrorKind::Custom("no RPC endpoint".into()).into())
}

/// Whether the endpoint could not answer, so the next one should be asked.
pub fn unreachable(e: &ClientError) -> bool {
    match e.kind() {
        ErrorKind::Io(_) | ErrorKind::Reqwest(_) | ErrorKind::Middleware(_) => true,
        ErrorKind::SerdeJson(_) => true,
        ErrorKind::RpcError(RpcError::RpcResponseError { code, .. }) => *code == NODE_UNHEALTHY,
        ErrorKind::RpcError(RpcError::RpcRequestError(_) | RpcError::ParseError(_)) => true,
        _ => false,
    }
}

/// An RPC error as text that names no URL.
pub fn describe(e: &ClientError) -> String {
    match e.kind() {
        ErrorKind::Reqwest(r) => {
            let failure = x402_core::reqwest_failure!(&r);
            format!("RPC {failure}")
        }
        ErrorKind::Middleware(_) => "RPC middleware failed".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_endpoint_is_no_answer() {
        assert!(unreachable(&skipped()));
    }
}
