//! Errors of the provider, the signer pool and the broadcast path, and the one place that turns an
//! RPC error into text safe to log or return.
//!
//! No message built here contains an RPC URL (it may carry an API token), a private key or a
//! signed transaction: endpoints are named by their index in the configured list, transport
//! errors are described by kind, and any `scheme://…` that still slips into a foreign error's
//! text is replaced by `<url>`.

use alloy::primitives::{Address, TxHash};
use alloy::transports::http::reqwest;
use alloy::transports::{RpcError, TransportErrorKind};

use x402_core::transport::TransportFailure;

use crate::provider::RpcFailure;

/// How many characters of a node's error message are kept.
const MAX_MESSAGE_CHARS: usize = 200;

/// Why [`crate::provider::connect`] could not build a provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL list is empty.
    #[error("no RPC URL configured")]
    NoUrls,
    /// URL number `index` (0-based) does not parse; the URL itself is not repeated.
    #[error("RPC URL #{index} is not a valid URL ({reason})")]
    InvalidUrl {
        /// Its position in the list.
        index: usize,
        /// The parser's complaint (never contains the URL text).
        reason: String,
    },
    /// URL number `index` is not `http` or `https`.
    #[error("RPC URL #{index} must use http or https")]
    UnsupportedScheme {
        /// Its position in the list.
        index: usize,
    },
    /// URL number `index` serves another chain than the configured one.
    #[error("RPC URL #{index} serves chain id {served}, not {expected}")]
    WrongChain {
        /// Its position in the list.
        index: usize,
        /// The chain id it reported.
        served: u64,
        /// The chain id expected.
        expected: u64,
    },
    /// The HTTP client could not be built (TLS back end).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Why a [`crate::signers::SignerPool`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// No signer was given.
    #[error("the signer pool needs at least one signer")]
    NoSigners,
    /// The same key was given twice.
    #[error("signer {0} is listed twice")]
    DuplicateSigner(Address),
    /// Reading the chain id or a starting nonce failed.
    #[error("RPC error while starting the signer pool: {0}")]
    Rpc(String),
}

/// Why [`crate::signers::SignerPool::send`] did not return a broadcast transaction.
///
/// Every variant except [`SendError::Ambiguous`] means *nothing was broadcast* and no nonce was
/// consumed: the caller may report a definitive (or retryable) failure. `Ambiguous` means the
/// signed transaction may have reached a node: the caller must report it as pending with its
/// hash and must not build a different transaction for the same payment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// `from` names an address that is not in the pool.
    #[error("signer {0} is not in the pool")]
    UnknownSigner(Address),
    /// The request's gas limit is above [`crate::signers::TxConfig::gas_limit_cap`].
    #[error("gas limit {gas_limit} is above the cap of {cap}")]
    GasLimitAboveCap {
        /// The requested gas limit.
        gas_limit: u64,
        /// The configured cap.
        cap: u64,
    },
    /// The network's current fee (base fee or gas price) is above the configured cap.
    #[error("gas price too high: the network needs {required} wei per gas, the cap is {cap}")]
    FeeAboveCap {
        /// The base fee (EIP-1559) or gas price (legacy) the network asks for now.
        required: u128,
        /// The configured `max_fee_per_gas_cap`.
        cap: u128,
    },
    /// Signing failed (no transaction exists).
    #[error("signing failed for {from}: {reason}")]
    Signing {
        /// The signer.
        from: Address,
        /// What the signer reported.
        reason: String,
    },
    /// The node refused the transaction because the signer cannot pay for its gas.
    #[error("signer {from} has insufficient funds for gas: {message}")]
    InsufficientFunds {
        /// The signer.
        from: Address,
        /// The node's message (truncated).
        message: String,
    },
    /// The node refused the transaction (intrinsic gas, fee below the node's minimum, …).
    #[error("the node rejected the transaction from {from}: {message}")]
    Rejected {
        /// The signer.
        from: Address,
        /// The node's message (truncated).
        message: String,
    },
    /// The node kept reporting a nonce conflict after one resync and retry.
    #[error("nonce conflict for {from} persisted after a resync: {message}")]
    NonceConflict {
        /// The signer.
        from: Address,
        /// The node's last message (truncated).
        message: String,
    },
    /// The RPC could not be reached (or failed) before anything was broadcast.
    #[error("RPC unavailable before broadcast: {0}")]
    Unavailable(String),
    /// The write-ahead record of the signed transaction failed or was refused: nothing was
    /// broadcast.
    #[error("not sent: {0}")]
    NotRecorded(String),
    /// Another facilitator process holds the lease of this signer key: nothing was broadcast.
    #[error("signer {0} is leased by another facilitator process")]
    SignerLeased(Address),
    /// The signed transaction may have reached a node but no answer came back: its nonce is
    /// treated as used and the hash (computed locally) is the one to report and reconcile.
    #[error("broadcast outcome unknown for transaction {hash} from {from} (nonce {nonce})")]
    Ambiguous {
        /// The transaction hash, computed from the signed bytes.
        hash: TxHash,
        /// The signer.
        from: Address,
        /// Its nonce.
        nonce: u64,
    },
}

impl SendError {
    /// The hash of a transaction that may have been broadcast (only for
    /// [`SendError::Ambiguous`]); `None` means nothing was broadcast.
    pub fn maybe_broadcast(&self) -> Option<TxHash> {
        match self {
            Self::Ambiguous { hash, .. } => Some(*hash),
            _ => None,
        }
    }

    /// Whether the same request may succeed later without any change (RPC or funding trouble,
    /// fee spikes, nonce races); `false` for requests that are wrong in themselves and for
    /// [`SendError::Ambiguous`], which must be reconciled, not retried.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::FeeAboveCap { .. }
                | Self::InsufficientFunds { .. }
                | Self::NonceConflict { .. }
                | Self::Unavailable(_)
        )
    }
}

/// Describes an RPC error without URLs, response bodies or request payloads.
pub fn describe_rpc_error(error: &RpcError<TransportErrorKind>) -> String {
    let text = match error {
        RpcError::ErrorResp(payload) => {
            format!(
                "JSON-RPC error {}: {}",
                payload.code,
                truncate(&payload.message)
            )
        }
        RpcError::NullResp => "the node returned null".to_owned(),
        RpcError::UnsupportedFeature(feature) => format!("unsupported feature: {feature}"),
        RpcError::LocalUsageError(e) => format!("local error: {e}"),
        RpcError::SerError(e) => format!("cannot serialize the request: {e}"),
        RpcError::DeserError { err, .. } => format!("malformed response: {err}"),
        RpcError::Transport(kind) => describe_transport(kind),
    };
    scrub_urls(&text)
}

/// Whether a failed request may have reached a node (so any effect it has may have happened).
///
/// Only failures to connect at all, and failures to serialize the request, are known not to
/// have delivered anything; everything else (timeouts, dropped connections, HTTP errors from a
/// proxy, malformed answers) may have.
pub fn may_have_reached_node(error: &RpcError<TransportErrorKind>) -> bool {
    match error {
        RpcError::SerError(_) | RpcError::LocalUsageError(_) => false,
        RpcError::Transport(TransportErrorKind::Custom(inner)) => {
            if let Some(failure) = inner.downcast_ref::<RpcFailure>() {
                failure.may_have_reached_node()
            } else if let Some(e) = inner.downcast_ref::<reqwest::Error>() {
                !transport_failure(e).undelivered()
            } else {
                true
            }
        }
        _ => true,
    }
}

fn describe_transport(kind: &TransportErrorKind) -> String {
    match kind {
        TransportErrorKind::Custom(inner) => {
            if let Some(failure) = inner.downcast_ref::<RpcFailure>() {
                failure.to_string()
            } else if let Some(e) = inner.downcast_ref::<reqwest::Error>() {
                transport_failure(e).to_string()
            } else {
                format!("transport error: {inner}")
            }
        }
        TransportErrorKind::HttpError(http) => format!("HTTP status {}", http.status),
        TransportErrorKind::HttpErrorWithRetryAfter { error, retry_after } => {
            format!("HTTP status {} (retry after {retry_after:?})", error.status)
        }
        other => format!("transport error: {other}"),
    }
}

/// A reqwest error by kind; its `Display` would include the URL.
pub(crate) fn transport_failure(e: &reqwest::Error) -> TransportFailure {
    x402_core::reqwest_failure!(&e)
}

/// Keeps the first [`MAX_MESSAGE_CHARS`] characters of a node's message.
pub(crate) fn truncate(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = chars.by_ref().take(MAX_MESSAGE_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Replaces every `scheme://…` token (up to whitespace, a quote or a closing bracket) by
/// `<url>`.
pub(crate) fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        // The scheme: the alphanumeric run (plus `+-.`) right before `://`.
        let head = &rest[..pos];
        let scheme_start = head
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(pos, |(i, _)| i);
        out.push_str(&rest[..scheme_start]);
        out.push_str("<url>");
        let tail = &rest[pos + 3..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ']' | '>' | ','))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_urls_from_text() {
        let text = "error sending request for url (https://rpc.example/v2/SECRET?k=1): refused";
        let scrubbed = scrub_urls(text);
        assert_eq!(scrubbed, "error sending request for url (<url>): refused");
        assert_eq!(scrub_urls("no url here"), "no url here");
        assert_eq!(scrub_urls("a http://x b ws://y"), "a <url> b <url>");
    }

    #[test]
    fn truncates_long_messages() {
        let long = "x".repeat(500);
        assert_eq!(truncate(&long).chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(truncate("short"), "short");
    }
}
