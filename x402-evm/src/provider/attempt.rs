//! One HTTP request to one endpoint, how it failed, and what every endpoint's failures of one
//! request say together ([`RpcFailure`]).

use std::fmt;
use std::time::Duration;

use alloy::rpc::json_rpc::ResponsePacket;
use alloy::transports::http::reqwest::{self, Client, StatusCode, Url, header};

use x402_core::transport::TransportFailure;

use crate::error::transport_failure;

/// JSON-RPC error codes that mean "too many requests": EIP-1474's "limit exceeded" (-32005,
/// Infura, Nethermind), 429 (Alchemy), QuickNode's -32007 and -32029 (several gateways).
const RATE_LIMIT_CODES: &[i64] = &[-32005, -32007, -32029, 429];

/// Words in a JSON-RPC error message that mean "too many requests" whatever the code.
const RATE_LIMIT_WORDS: &[&str] = &["rate limit", "too many requests", "request limit"];

/// Sends one serialized request to one endpoint.
pub(super) async fn attempt(
    client: &Client,
    url: &Url,
    body: &[u8],
) -> Result<ResponsePacket, AttemptError> {
    let response = client
        .post(url.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| AttemptError::from_reqwest(&e))?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    if status == StatusCode::TOO_MANY_REQUESTS {
        // Refused before any processing, whatever the body says.
        return Err(AttemptError::RateLimited { retry_after });
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| AttemptError::from_reqwest(&e))?;
    match serde_json::from_slice::<ResponsePacket>(&bytes) {
        Ok(packet) if is_rate_limit(&packet) => Err(AttemptError::RateLimited { retry_after }),
        // A JSON-RPC error is an answer even under an error status (some nodes send 4xx).
        Ok(packet) if status.is_success() || packet.is_error() => Ok(packet),
        Ok(_) | Err(_) if !status.is_success() => Err(AttemptError::Transport(
            TransportFailure::Status(status.as_u16()),
        )),
        Ok(_) | Err(_) => Err(AttemptError::Malformed),
    }
}

/// Whether an answer is a rate-limit refusal rather than the node's answer: a batch is when any
/// of its items is (the batch is asked again whole; its reads are idempotent).
fn is_rate_limit(packet: &ResponsePacket) -> bool {
    packet.iter_errors().any(|error| {
        let message = error.message.to_ascii_lowercase();
        RATE_LIMIT_CODES.contains(&error.code)
            || RATE_LIMIT_WORDS.iter().any(|w| message.contains(w))
    })
}

/// A `Retry-After` header in seconds (the HTTP-date form is not used by RPC gateways and is
/// ignored).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// How one attempt on one endpoint failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptError {
    /// The request failed in transport, or the answer had an error status and no JSON-RPC body.
    Transport(TransportFailure),
    /// The answer is not a JSON-RPC response.
    Malformed,
    /// The endpoint refused the request for its rate limit (HTTP 429, or a JSON-RPC error such
    /// as -32005): not processed.
    RateLimited {
        /// How long the endpoint asked to wait (`Retry-After`), when it said.
        retry_after: Option<Duration>,
    },
    /// The endpoint serves another chain: it is out of rotation and the request was not sent.
    WrongChain {
        /// The chain id it reported.
        served: u64,
    },
    /// The endpoint's chain id could not be read (a transport failure, when there was one, or
    /// an error answer): the request was not sent.
    ChainUnchecked(Option<TransportFailure>),
    /// A send answered with a JSON-RPC error after an earlier endpoint may have received the same
    /// request: the error does not say the transaction was refused everywhere.
    ErrorAfterDelivery {
        /// The JSON-RPC error code of the answer.
        code: i64,
    },
    /// The endpoint is behind the newest block seen on the network (see [`super::fresh`]): its
    /// answer could come from an older state, so it was not taken.
    Lagging {
        /// The endpoint's head (0: unknown — it had no block for a read pinned to its head).
        head: u64,
        /// The newest block seen.
        seen: u64,
    },
}

impl AttemptError {
    fn from_reqwest(e: &reqwest::Error) -> Self {
        Self::Transport(transport_failure(e))
    }

    /// Whether the endpoint may have received and processed the request.
    pub fn may_have_reached_node(self) -> bool {
        match self {
            Self::Transport(failure) => !failure.undelivered(),
            Self::Malformed | Self::ErrorAfterDelivery { .. } => true,
            Self::RateLimited { .. }
            | Self::WrongChain { .. }
            | Self::ChainUnchecked(_)
            | Self::Lagging { .. } => false,
        }
    }

    /// Whether the endpoint failed in a way that calls for a new chain id check before its next
    /// use (a reconnect).
    pub(super) fn breaks_endpoint(self) -> bool {
        matches!(self, Self::Transport(_) | Self::Malformed)
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(failure) => failure.fmt(f),
            Self::Malformed => f.write_str("malformed JSON-RPC response"),
            Self::RateLimited {
                retry_after: Some(wait),
            } => write!(f, "rate limited (retry after {} s)", wait.as_secs()),
            Self::RateLimited { retry_after: None } => f.write_str("rate limited"),
            Self::WrongChain { served } => {
                write!(f, "serves chain id {served}, not the configured chain")
            }
            Self::ChainUnchecked(Some(failure)) => write!(f, "chain id check failed: {failure}"),
            Self::ChainUnchecked(None) => f.write_str("chain id check failed"),
            Self::Lagging { head: 0, seen } => {
                write!(f, "lagging: no state at its head, block {seen} was seen")
            }
            Self::Lagging { head, seen } => {
                write!(
                    f,
                    "lagging: its head is block {head}, block {seen} was seen"
                )
            }
            Self::ErrorAfterDelivery { code } => write!(
                f,
                "JSON-RPC error {code} after an earlier endpoint may have received the request"
            ),
        }
    }
}

/// Every endpoint failed for one request; each failure is named by the endpoint's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcFailure {
    pub(super) failures: Vec<(usize, AttemptError)>,
}

impl RpcFailure {
    /// The failures, as `(endpoint index, what happened)` in the order tried.
    pub fn failures(&self) -> &[(usize, AttemptError)] {
        &self.failures
    }

    /// Whether any endpoint may have received the request (anything but a refused connection,
    /// a rate-limit refusal or an endpoint skipped for its chain id).
    pub fn may_have_reached_node(&self) -> bool {
        self.failures
            .iter()
            .any(|(_, kind)| kind.may_have_reached_node())
    }

    /// Whether every endpoint refused the request for its rate limit.
    pub fn rate_limited(&self) -> bool {
        !self.failures.is_empty()
            && self
                .failures
                .iter()
                .all(|(_, kind)| matches!(kind, AttemptError::RateLimited { .. }))
    }
}

impl fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "all {} RPC endpoint(s) failed:", self.failures.len())?;
        for (i, (index, kind)) in self.failures.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}#{index} {kind}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcFailure {}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(json: &str) -> ResponsePacket {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rate_limit_answers_are_told_from_node_errors() {
        for limited in [
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"limit exceeded"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":429,"message":"slow down"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"Too Many Requests"}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":-32005,"message":"limit exceeded"}}]"#,
        ] {
            assert!(is_rate_limit(&packet(limited)), "{limited}");
        }
        for answer in [
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"internal error"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"exceeds block gas limit"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":3,"message":"execution reverted"}}]"#,
        ] {
            assert!(!is_rate_limit(&packet(answer)), "{answer}");
        }
    }

    #[test]
    fn only_deliverable_failures_count_as_reaching_a_node() {
        let failure = |kinds: Vec<AttemptError>| RpcFailure {
            failures: kinds.into_iter().enumerate().collect(),
        };
        let limited = AttemptError::RateLimited { retry_after: None };
        let refused = AttemptError::Transport(TransportFailure::Connect);
        let timeout = AttemptError::Transport(TransportFailure::Timeout);
        assert!(
            !failure(vec![limited, refused, AttemptError::ChainUnchecked(None)])
                .may_have_reached_node()
        );
        assert!(failure(vec![limited, timeout]).may_have_reached_node());
        assert!(failure(vec![limited, limited]).rate_limited());
        assert!(!failure(vec![limited, refused]).rate_limited());
        let text = failure(vec![AttemptError::WrongChain { served: 1 }, limited]).to_string();
        assert_eq!(
            text,
            "all 2 RPC endpoint(s) failed: #0 serves chain id 1, not the configured chain; #1 rate limited"
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
