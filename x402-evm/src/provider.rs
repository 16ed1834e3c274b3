//! JSON-RPC providers over HTTP with a per-request timeout and ordered failover across several
//! RPC URLs.
//!
//! The transport is our own (not alloy's `Http` service, whose tracing span records the URL):
//! each request goes to the endpoint currently in use; on a transport failure (cannot connect,
//! timeout, HTTP error status without a JSON-RPC body, malformed answer) it is tried on the next
//! endpoint, in list order. A JSON-RPC error answer is an answer and is returned as is. After a
//! switch, the first endpoint is tried first again once [`PRIMARY_RETRY_AFTER`] has passed.
//!
//! alloy's `FallbackLayer` exists in 2.5 but sends reads to several endpoints in parallel (one
//! JSON-RPC error answer may win the race) and names no endpoint in its errors, hence this one.
//!
//! URLs may contain API tokens: they are never logged and never part of an error; endpoints are
//! named `#index` (0-based position in the configured list).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use alloy::network::Ethereum;
use alloy::providers::{DynProvider, Provider, RootProvider};
use alloy::rpc::client::RpcClient;
use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::http::reqwest::{self, Client, Url, header};
use alloy::transports::{TransportError, TransportErrorKind, TransportFut};
use tracing::{debug, warn};

use x402_core::transport::TransportFailure;

use crate::error::{ConnectError, transport_failure};

/// Poll interval for alloy's block and transaction watchers (suits local chains and 2 s L2s).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Default cap on establishing a TCP/TLS connection to one endpoint.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// After switching away from endpoint #0, how long until it is tried first again.
pub const PRIMARY_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How [`connect_with`] builds a provider.
#[derive(Debug, Clone)]
pub struct RpcOptions {
    /// Limit on one HTTP request to one endpoint (connect, send, read the whole answer).
    pub timeout: Duration,
    /// Limit on connecting to one endpoint (clamped to `timeout`).
    pub connect_timeout: Duration,
    /// Poll interval of the provider's watchers.
    pub poll_interval: Duration,
    /// The label metrics carry for this transport (the network), never a URL.
    pub label: String,
}

impl Default for RpcOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            label: String::new(),
        }
    }
}

/// Builds a provider over `urls` (tried in order on transport failures), each request limited
/// to `timeout` per endpoint.
pub fn connect<U: AsRef<str>>(urls: &[U], timeout: Duration) -> Result<DynProvider, ConnectError> {
    connect_with(
        urls,
        &RpcOptions {
            timeout,
            ..RpcOptions::default()
        },
    )
}

/// Builds a provider over `urls` with explicit [`RpcOptions`].
pub fn connect_with<U: AsRef<str>>(
    urls: &[U],
    options: &RpcOptions,
) -> Result<DynProvider, ConnectError> {
    let transport = FailoverTransport::new(urls, options)?;
    let is_local = transport.all_loopback();
    let client = RpcClient::new(transport, is_local).with_poll_interval(options.poll_interval);
    Ok(RootProvider::<Ethereum>::new(client).erased())
}

/// The HTTP transport with ordered failover behind [`connect`].
#[derive(Clone)]
pub struct FailoverTransport {
    inner: Arc<Shared>,
}

struct Shared {
    client: Client,
    urls: Vec<Url>,
    /// The endpoint requests go to first.
    active: AtomicUsize,
    /// When `active` last changed, in milliseconds since `epoch`.
    switched_at_ms: AtomicU64,
    epoch: Instant,
    label: String,
}

/// Receives one observation per RPC attempt: which transport (its label), which endpoint
/// (index), which method, how long, and whether it got an answer. Set once per process.
pub trait RpcObserver: Send + Sync {
    /// One attempt ended.
    fn observe(&self, label: &str, endpoint: usize, method: &str, elapsed: Duration, ok: bool);
}

static OBSERVER: std::sync::OnceLock<Arc<dyn RpcObserver>> = std::sync::OnceLock::new();

/// Installs the process's RPC observer (metrics); `false` when one was already installed.
pub fn set_observer(observer: Arc<dyn RpcObserver>) -> bool {
    OBSERVER.set(observer).is_ok()
}

impl fmt::Debug for FailoverTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailoverTransport")
            .field("endpoints", &self.inner.urls.len())
            .field("active", &self.inner.active.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FailoverTransport {
    /// Parses and checks `urls` and builds the HTTP client.
    pub fn new<U: AsRef<str>>(urls: &[U], options: &RpcOptions) -> Result<Self, ConnectError> {
        if urls.is_empty() {
            return Err(ConnectError::NoUrls);
        }
        let mut parsed = Vec::with_capacity(urls.len());
        for (index, raw) in urls.iter().enumerate() {
            let url = Url::parse(raw.as_ref().trim()).map_err(|e| ConnectError::InvalidUrl {
                index,
                reason: e.to_string(),
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConnectError::UnsupportedScheme { index });
            }
            parsed.push(url);
        }
        let client = Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout.min(options.timeout))
            // A redirect would send the request (and any token) somewhere unconfigured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConnectError::Client(transport_failure(&e).to_string()))?;
        Ok(Self {
            inner: Arc::new(Shared {
                client,
                urls: parsed,
                active: AtomicUsize::new(0),
                switched_at_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                label: options.label.clone(),
            }),
        })
    }

    /// How many endpoints the transport has.
    pub fn len(&self) -> usize {
        self.inner.urls.len()
    }

    /// Always `false` (a transport has at least one endpoint); for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.inner.urls.is_empty()
    }

    /// The index of the endpoint requests currently go to first.
    pub fn active(&self) -> usize {
        self.inner.active.load(Ordering::Relaxed)
    }

    fn all_loopback(&self) -> bool {
        self.inner.urls.iter().all(|url| {
            url.host_str().is_some_and(|host| {
                host == "localhost"
                    || host
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            })
        })
    }

    async fn request(self, request: RequestPacket) -> Result<ResponsePacket, TransportError> {
        let shared = &*self.inner;
        let body = serde_json::to_vec(&request).map_err(TransportError::ser_err)?;
        let count = shared.urls.len();
        let now_ms = elapsed_ms(shared.epoch);
        let mut first = shared.active.load(Ordering::Relaxed);
        if first != 0
            && now_ms.saturating_sub(shared.switched_at_ms.load(Ordering::Relaxed))
                >= PRIMARY_RETRY_AFTER.as_millis() as u64
        {
            first = 0;
        }
        let mut failures = Vec::new();
        let method = match &request {
            RequestPacket::Single(r) => r.method().to_owned(),
            RequestPacket::Batch(_) => "batch".to_owned(),
        };
        for step in 0..count {
            let index = (first + step) % count;
            let started = Instant::now();
            let result = attempt(&shared.client, &shared.urls[index], &body).await;
            if let Some(observer) = OBSERVER.get() {
                observer.observe(
                    &shared.label,
                    index,
                    &method,
                    started.elapsed(),
                    result.is_ok(),
                );
            }
            match result {
                Ok(response) => {
                    if index != shared.active.swap(index, Ordering::Relaxed) {
                        shared
                            .switched_at_ms
                            .store(elapsed_ms(shared.epoch), Ordering::Relaxed);
                        if failures.is_empty() {
                            debug!(endpoint = index, "RPC endpoint back in use");
                        } else {
                            warn!(endpoint = index, "switched RPC endpoint after failures");
                        }
                    }
                    return Ok(response);
                }
                Err(kind) => {
                    warn!(endpoint = index, error = %kind, "RPC endpoint failed");
                    failures.push((index, kind));
                }
            }
        }
        Err(TransportErrorKind::custom(RpcFailure { failures }))
    }
}

impl tower::Service<RequestPacket> for FailoverTransport {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        Box::pin(self.clone().request(request))
    }
}

fn elapsed_ms(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Sends one serialized request to one endpoint.
async fn attempt(client: &Client, url: &Url, body: &[u8]) -> Result<ResponsePacket, AttemptError> {
    let response = client
        .post(url.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| AttemptError::from_reqwest(&e))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| AttemptError::from_reqwest(&e))?;
    match serde_json::from_slice::<ResponsePacket>(&bytes) {
        // A JSON-RPC error is an answer even under an error status (some nodes send 4xx).
        Ok(packet) if status.is_success() || packet.is_error() => Ok(packet),
        Ok(_) | Err(_) if !status.is_success() => Err(AttemptError::Transport(
            TransportFailure::Status(status.as_u16()),
        )),
        Ok(_) | Err(_) => Err(AttemptError::Malformed),
    }
}

/// How one attempt on one endpoint failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptError {
    /// The request failed in transport, or the answer had an error status and no JSON-RPC body.
    Transport(TransportFailure),
    /// The answer is not a JSON-RPC response.
    Malformed,
}

impl AttemptError {
    fn from_reqwest(e: &reqwest::Error) -> Self {
        Self::Transport(transport_failure(e))
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport(failure) => failure.fmt(f),
            Self::Malformed => f.write_str("malformed JSON-RPC response"),
        }
    }
}

/// Every endpoint failed for one request; each failure is named by the endpoint's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcFailure {
    failures: Vec<(usize, AttemptError)>,
}

impl RpcFailure {
    /// The failures, as `(endpoint index, what happened)` in the order tried.
    pub fn failures(&self) -> &[(usize, AttemptError)] {
        &self.failures
    }

    /// Whether any endpoint may have received the request (anything but a refused connection).
    pub fn may_have_reached_node(&self) -> bool {
        self.failures
            .iter()
            .any(|(_, kind)| *kind != AttemptError::Transport(TransportFailure::Connect))
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
