//! Solana JSON-RPC with fallback: a list of endpoints tried in order. A call moves on to the next
//! endpoint only when the current one could not answer (connection, timeout, HTTP error, garbled
//! or "node unhealthy" response); a JSON-RPC error the node did answer is the answer.
//!
//! Once [`crate::check_genesis`] has pinned the chain, an endpoint that failed to answer is
//! trusted again only after its genesis hash is read anew and matches: a node that comes back
//! may be another cluster (a DNS change, a provider's misrouted pool), and its "account not
//! found" would be taken for an answer about ours.
//!
//! Several calls can go out as one JSON-RPC batch ([`Rpc::batch`]): one HTTP round trip. An
//! endpoint that does not take batches is asked in single requests for [`BATCH_RECHECK`], then
//! tried with batches again.
//!
//! URLs often carry API keys, so nothing here prints one: errors are described without them.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;
use solana_commitment_config::CommitmentConfig;
use solana_rpc_client::nonblocking::rpc_client::RpcClient;
use solana_rpc_client_api::client_error::{Error as ClientError, ErrorKind};
use solana_rpc_client_api::custom_error::NodeUnhealthyErrorData;
use solana_rpc_client_api::request::{RpcError, RpcResponseErrorData};
use x402_core::SchemeError;

/// JSON-RPC error code of a node that is behind.
pub(crate) const NODE_UNHEALTHY: i64 = -32005;

/// How long an endpoint found not to answer JSON-RPC batches is asked in single requests before
/// batches are tried on it again.
pub const BATCH_RECHECK: Duration = Duration::from_secs(600);

/// A list of RPC endpoints at commitment `confirmed`, tried in order.
pub struct Rpc {
    clients: Vec<RpcClient>,
    /// The genesis-hash prefix every endpoint must serve (the CAIP-2 reference), once pinned.
    genesis: OnceLock<String>,
    /// Per endpoint: its genesis hash must be read again before it is used.
    suspect: Vec<AtomicBool>,
    /// The endpoints' URLs, for batches (never printed).
    urls: Vec<String>,
    /// The HTTP client batches go through (same timeout as the RPC clients).
    http: reqwest::Client,
    /// Per endpoint: until when (milliseconds since `epoch`) it is asked in single requests.
    no_batches_until_ms: Vec<AtomicU64>,
    epoch: Instant,
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
            urls: urls.to_vec(),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| SchemeError::Config(format!("RPC HTTP client: {e}")))?,
            no_batches_until_ms: urls.iter().map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether endpoint `i` is sent batches now (not found refusing one in the last
    /// [`BATCH_RECHECK`]).
    pub(crate) fn batches(&self, i: usize) -> bool {
        self.no_batches_until_ms
            .get(i)
            .is_some_and(|until| self.now_ms() >= until.load(Ordering::Relaxed))
    }

    /// Records that endpoint `i` did not answer a batch: single requests for [`BATCH_RECHECK`].
    pub(crate) fn no_batches(&self, i: usize) {
        let Some(until) = self.no_batches_until_ms.get(i) else {
            return;
        };
        let now = self.now_ms();
        let next = now.saturating_add(BATCH_RECHECK.as_millis() as u64);
        if until.swap(next, Ordering::Relaxed) <= now {
            tracing::warn!(
                endpoint = i,
                "RPC endpoint does not answer JSON-RPC batches; asking it in single requests"
            );
        }
    }

    /// Sends `calls` (method, params) to endpoint `i` as one JSON-RPC batch (one HTTP request)
    /// and sorts the answers back into the order asked. Errors are classified as the RPC
    /// client classifies them for single calls, so [`unreachable`] reads them the same way.
    pub(crate) async fn batch(&self, i: usize, calls: &[(&str, serde_json::Value)]) -> Batch {
        let Some(url) = self.urls.get(i) else {
            return Batch::Unreachable(no_answer(None));
        };
        let items: Vec<_> = calls
            .iter()
            .enumerate()
            .map(|(id, (method, params))| {
                serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
            })
            .collect();
        let Ok(body) = serde_json::to_vec(&items) else {
            return Batch::Single;
        };
        let response = match self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Batch::Unreachable(e.into()),
        };
        let status = response.status();
        // A rate limit is left to the single requests, which back off as `Retry-After` says.
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Batch::Single;
        }
        // Gateways that refuse batches answer 4xx; a 5xx is an endpoint that could not answer.
        if status.is_client_error() {
            return Batch::Refused;
        }
        if let Err(e) = response.error_for_status_ref() {
            return Batch::Unreachable(e.into());
        }
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Batch::Unreachable(e.into()),
        };
        // Anything but an array with one answer per call, by id, is an endpoint that does not
        // take batches (some answer a single JSON-RPC error object).
        let Ok(answers) = serde_json::from_slice::<Vec<BatchAnswer>>(&bytes) else {
            return Batch::Refused;
        };
        let mut sorted: Vec<Option<Result<Box<RawValue>, ClientError>>> =
            calls.iter().map(|_| None).collect();
        for answer in answers {
            let Some(slot) = answer.id.and_then(|id| sorted.get_mut(id)) else {
                return Batch::Refused;
            };
            *slot = Some(match (answer.error, answer.result) {
                (Some(error), _) => Err(rpc_error(error)),
                (None, Some(result)) => Ok(result),
                (None, None) => Err(ErrorKind::RpcError(RpcError::ParseError(
                    "a JSON-RPC answer with neither result nor error".into(),
                ))
                .into()),
            });
        }
        match sorted.into_iter().collect::<Option<Vec<_>>>() {
            Some(answers) => Batch::Answered(answers),
            None => Batch::Refused,
        }
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

/// What one batch to one endpoint gave.
#[derive(Debug)]
pub(crate) enum Batch {
    /// One answer per call, in the order asked: its `result` (raw JSON), or the node's
    /// JSON-RPC error as the RPC client reports it.
    Answered(Vec<Result<Box<RawValue>, ClientError>>),
    /// The endpoint could not answer (connection, timeout, 5xx): ask the next one.
    Unreachable(ClientError),
    /// The endpoint does not take batches (a 4xx, or an answer that is not one per call).
    Refused,
    /// Ask in single requests this time (a rate limit, which they back off from).
    Single,
}

/// One answer of a batch.
#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    id: Option<usize>,
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

/// A JSON-RPC error object.
#[derive(Deserialize)]
struct ErrorObject {
    code: i64,
    message: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// A JSON-RPC error as the RPC client's HTTP sender reports it for a single call (the data of
/// a node-unhealthy error kept, any other left out).
fn rpc_error(e: ErrorObject) -> ClientError {
    let data = match (e.code, e.data) {
        (NODE_UNHEALTHY, Some(data)) => serde_json::from_value::<NodeUnhealthyErrorData>(data)
            .map(|d| RpcResponseErrorData::NodeUnhealthy {
                num_slots_behind: d.num_slots_behind,
            })
            .unwrap_or(RpcResponseErrorData::Empty),
        _ => RpcResponseErrorData::Empty,
    };
    ErrorKind::RpcError(RpcError::RpcResponseError {
        code: e.code,
        message: e.message,
        data,
    })
    .into()
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
