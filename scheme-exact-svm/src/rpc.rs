//! Solana JSON-RPC with fallback: a list of endpoints tried in order. A call moves on to the next
//! endpoint only when the current one could not answer (connection, timeout, HTTP error, garbled
//! or "node unhealthy" response); a JSON-RPC error the node did answer is the answer.
//!
//! URLs often carry API keys, so nothing here prints one: errors are described without them.

use std::fmt;
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
        })
    }

    /// The endpoints, in order.
    pub fn clients(&self) -> &[RpcClient] {
        &self.clients
    }
}

/// Runs `$body` (an RPC future using the client `$c`) on each endpoint of `$rpc` in turn until
/// one answers (see the module documentation); evaluates to the `Result` of the last call.
macro_rules! rpc_call {
    ($rpc:expr, |$c:ident| $body:expr) => {{
        let mut last = None;
        let mut answer = None;
        for $c in $rpc.clients() {
            match $body.await {
                Err(e) if $crate::rpc::unreachable(&e) => last = Some(e),
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
