//! JSON-RPC providers over HTTP with a per-request timeout and ordered failover across several
//! RPC URLs.
//!
//! The transport is our own (not alloy's `Http` service, whose tracing span records the URL):
//! each request goes to the endpoint currently in use; on a transport failure (cannot connect,
//! timeout, HTTP error status without a JSON-RPC body, malformed answer) it is tried on the next
//! endpoint, in list order. After a switch, the first endpoint is tried first again once
//! [`RpcOptions::primary_retry_after`] has passed.
//!
//! - **Rate limits.** An HTTP 429 (with or without a body) or a JSON-RPC rate-limit error
//!   (-32005 and the like) is not an answer: the endpoint is asked again after its `Retry-After`
//!   (or a short back-off), at most [`RATE_LIMIT_RETRIES`] times and never past the request's
//!   deadline ([`within`]), then the next endpoint is tried.
//! - **Error answers.** Any other JSON-RPC error answer is the node's answer and is returned as
//!   is — except for a transaction send after an earlier endpoint may have received the same
//!   bytes: then the error says nothing about the transaction, and the request fails with an
//!   [`RpcFailure`] that [`RpcFailure::may_have_reached_node`] (the send is ambiguous).
//! - **Chain id.** Every endpoint's `eth_chainId` is checked before it is used, whenever requests
//!   switch to it, and after it failed in transport; one serving another chain is taken out of
//!   rotation (see [`endpoint`]). [`check_endpoints`] checks them all at start-up.
//! - **Freshness.** An endpoint behind the newest block seen on the network is skipped for the
//!   reads that decide payments, and those reads are made at a block by number (see [`fresh`]);
//!   the head check and the read go out as one JSON-RPC batch (one HTTP round trip). Inside
//!   [`coalescing`], concurrent reads that need the head check share one; inside [`batching`],
//!   state reads beyond a few in flight share HTTP round trips (see [`coalesce`]).
//! - **Batches.** A JSON-RPC batch is one request here: failed over, retried and checked for
//!   freshness whole (item by item); any item refused for a rate limit makes it a refusal.
//!
//! alloy's `FallbackLayer` exists in 2.5 but sends reads to several endpoints in parallel (one
//! JSON-RPC error answer may win the race) and names no endpoint in its errors, hence this one.
//!
//! URLs may contain API tokens: they are never logged and never part of an error; endpoints are
//! named `#index` (0-based position in the configured list).

mod attempt;
pub mod coalesce;
pub mod endpoint;
pub mod fresh;

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use alloy::network::Ethereum;
use alloy::providers::{DynProvider, Provider, RootProvider};
use alloy::rpc::client::RpcClient;
use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::http::reqwest::{self, Client, Url};
use alloy::transports::{TransportError, TransportErrorKind, TransportFut};
use tracing::{debug, warn};

pub use self::attempt::{AttemptError, RpcFailure};
use self::coalesce::{Coalescer, Policy, Reply};
pub use self::coalesce::{batching, coalescing};
use self::endpoint::Endpoint;
pub use self::fresh::ChainHead;
use self::fresh::Need;
use crate::error::{ConnectError, transport_failure};

/// Poll interval for alloy's block and transaction watchers (suits local chains and 2 s L2s).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Default cap on establishing a TCP/TLS connection to one endpoint.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// After switching away from endpoint #0, how long until it is tried first again (default).
pub const PRIMARY_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How many times one endpoint is asked again after a rate-limit refusal, per request.
pub const RATE_LIMIT_RETRIES: u32 = 2;
/// The back-off after a rate-limit refusal without `Retry-After` (doubled on each retry).
pub const RATE_LIMIT_BACKOFF: Duration = Duration::from_millis(250);
/// The longest rate-limit wait honoured; a longer `Retry-After` fails over at once.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(5);

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `fut` with `deadline` as the deadline of every RPC request it makes: rate-limit back-offs
/// never wait past it.
pub async fn within<F: Future>(deadline: Option<Instant>, fut: F) -> F::Output {
    match deadline {
        Some(deadline) => DEADLINE.scope(deadline, fut).await,
        None => fut.await,
    }
}

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
    /// The chain every endpoint must serve; `None`: the first endpoint checked decides.
    pub chain_id: Option<u64>,
    /// After switching away from endpoint #0, how long until it is tried first again.
    pub primary_retry_after: Duration,
    /// The newest block seen on the network, shared by its providers; `None`: this provider's
    /// own.
    pub head: Option<ChainHead>,
}

impl Default for RpcOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            poll_interval: DEFAULT_POLL_INTERVAL,
            label: String::new(),
            chain_id: None,
            primary_retry_after: PRIMARY_RETRY_AFTER,
            head: None,
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
    Ok(FailoverTransport::new(urls, options)?.into_provider(options))
}

/// Like [`connect_with`], and checks every endpoint's chain id first (see [`check_endpoints`]).
pub async fn connect_checked<U: AsRef<str>>(
    urls: &[U],
    options: &RpcOptions,
) -> Result<DynProvider, ConnectError> {
    let transport = FailoverTransport::new(urls, options)?;
    check_endpoints(&transport).await?;
    Ok(transport.into_provider(options))
}

/// Checks each endpoint's chain id: one serving another chain refuses the start-up
/// ([`ConnectError::WrongChain`], naming it by index); one not answering is only logged (it is
/// checked again before its first use).
pub async fn check_endpoints(transport: &FailoverTransport) -> Result<(), ConnectError> {
    let shared = &*transport.inner;
    for (index, endpoint) in shared.endpoints.iter().enumerate() {
        let now_ms = elapsed_ms(shared.epoch);
        match endpoint
            .usable(index, &shared.client, &shared.chain_id, now_ms, true)
            .await
        {
            Ok(()) => {}
            Err(AttemptError::WrongChain { served }) => {
                return Err(ConnectError::WrongChain {
                    index,
                    served,
                    expected: shared.chain_id.load(Ordering::SeqCst),
                });
            }
            Err(e) => warn!(endpoint = index, error = %e, "RPC endpoint not checked at start-up"),
        }
    }
    Ok(())
}

/// The HTTP transport with ordered failover behind [`connect`].
#[derive(Clone)]
pub struct FailoverTransport {
    inner: Arc<Shared>,
}

struct Shared {
    client: Client,
    endpoints: Vec<Endpoint>,
    /// The chain id every endpoint must serve (0 until known).
    chain_id: AtomicU64,
    primary_retry_after: Duration,
    /// The endpoint requests go to first.
    active: AtomicUsize,
    /// When `active` last changed, in milliseconds since `epoch`.
    switched_at_ms: AtomicU64,
    epoch: Instant,
    label: String,
    head: ChainHead,
    /// The reads gathering for one batch (see [`coalesce`]).
    coalescer: Coalescer,
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
            .field("endpoints", &self.inner.endpoints.len())
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
            parsed.push(Endpoint::new(url));
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
                endpoints: parsed,
                chain_id: AtomicU64::new(options.chain_id.unwrap_or(0)),
                primary_retry_after: options.primary_retry_after,
                active: AtomicUsize::new(0),
                switched_at_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                label: options.label.clone(),
                head: options.head.clone().unwrap_or_default(),
                coalescer: Coalescer::default(),
            }),
        })
    }

    /// How many endpoints the transport has.
    pub fn len(&self) -> usize {
        self.inner.endpoints.len()
    }

    /// Always `false` (a transport has at least one endpoint); for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.inner.endpoints.is_empty()
    }

    /// The newest block seen through this transport (shared as configured).
    pub fn head(&self) -> &ChainHead {
        &self.inner.head
    }

    /// The index of the endpoint requests currently go to first.
    pub fn active(&self) -> usize {
        self.inner.active.load(Ordering::Relaxed)
    }

    fn into_provider(self, options: &RpcOptions) -> DynProvider {
        let is_local = self.all_loopback();
        let client = RpcClient::new(self, is_local).with_poll_interval(options.poll_interval);
        RootProvider::<Ethereum>::new(client).erased()
    }

    fn all_loopback(&self) -> bool {
        self.inner.endpoints.iter().all(|endpoint| {
            endpoint.url.host_str().is_some_and(|host| {
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
        let need = Need::of(&request);
        let RequestPacket::Single(single) = &request else {
            return self.send(request, need).await;
        };
        let batches = || self.inner.endpoints[self.active()].batches(elapsed_ms(self.inner.epoch));
        match coalesce::policy_now() {
            Some(Policy::Window)
                if need.has_current() && self.inner.head.seen() > 0 && batches() =>
            {
                let (_flight, waiting) =
                    self.inner
                        .coalescer
                        .join(&self, single, DEADLINE.try_with(|d| *d).ok());
                if let Some(waiting) = waiting
                    && let Ok(Reply::Answer(answer)) = waiting.await
                {
                    return Ok(ResponsePacket::Single(answer));
                }
                // Alone, or the batch failed: this read goes out alone, as outside the scope.
                self.send(request, need).await
            }
            Some(Policy::UnderLoad) if coalesce::shareable(single.method()) && batches() => {
                let deadline = DEADLINE.try_with(|d| *d).ok();
                let slot = match self
                    .inner
                    .coalescer
                    .join_under_load(&self, single, deadline)
                {
                    Ok(slot) => Some(slot),
                    Err(waiting) => match waiting.await {
                        Ok(Reply::Answer(answer)) => return Ok(ResponsePacket::Single(answer)),
                        Ok(Reply::Alone(slot)) => slot,
                        Err(_) => None,
                    },
                };
                // Alone (in a slot), or the batch failed: as outside the scope.
                let answer = self.send(request, need).await;
                drop(slot);
                answer
            }
            _ => self.send(request, need).await,
        }
    }

    /// Sends `request` (needing `need`) with failover, rate-limit back-off and freshness.
    async fn send(
        self,
        request: RequestPacket,
        need: Need,
    ) -> Result<ResponsePacket, TransportError> {
        let shared = &*self.inner;
        let body = serde_json::to_vec(&request).map_err(TransportError::ser_err)?;
        let count = shared.endpoints.len();
        let now_ms = elapsed_ms(shared.epoch);
        let active = shared.active.load(Ordering::Relaxed);
        let mut first = active;
        if first != 0
            && now_ms.saturating_sub(shared.switched_at_ms.load(Ordering::Relaxed))
                >= shared.primary_retry_after.as_millis() as u64
        {
            first = 0;
        }
        let mut failures: Vec<(usize, AttemptError)> = Vec::new();
        let method = match &request {
            RequestPacket::Single(r) => r.method().to_owned(),
            RequestPacket::Batch(_) => "batch".to_owned(),
        };
        let is_send = method.starts_with("eth_send");
        let deadline = DEADLINE.try_with(|d| *d).ok();
        for step in 0..count {
            let index = (first + step) % count;
            let mut retries = 0;
            let result = loop {
                let started = Instant::now();
                let result = self
                    .try_endpoint(index, index != active, &body, &need)
                    .await;
                if let Some(observer) = OBSERVER.get() {
                    observer.observe(
                        &shared.label,
                        index,
                        &method,
                        started.elapsed(),
                        result.is_ok(),
                    );
                }
                if let Err(AttemptError::RateLimited { retry_after }) = result
                    && retries < RATE_LIMIT_RETRIES
                    && let Some(wait) = backoff(retry_after, retries, deadline)
                {
                    debug!(
                        endpoint = index,
                        ?wait,
                        "RPC endpoint rate-limited; backing off"
                    );
                    tokio::time::sleep(wait).await;
                    retries += 1;
                    continue;
                }
                break result;
            };
            match result {
                Ok(response) => {
                    if is_send
                        && let Some(code) = response.first_error_code()
                        && failures.iter().any(|(_, k)| k.may_have_reached_node())
                    {
                        // The bytes may be in a node's pool already: this error (a nonce that is
                        // now used, a duplicate, a node's own trouble) does not refuse them.
                        warn!(
                            endpoint = index,
                            code,
                            "send answered with an error after an earlier endpoint may have received it"
                        );
                        failures.push((index, AttemptError::ErrorAfterDelivery { code }));
                        break;
                    }
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
                    if kind.breaks_endpoint() {
                        shared.endpoints[index].uncheck();
                    }
                    failures.push((index, kind));
                }
            }
        }
        Err(TransportErrorKind::custom(RpcFailure { failures }))
    }

    /// One attempt on endpoint `index`, after its chain id check when it is due (`switching`:
    /// requests were going elsewhere).
    async fn try_endpoint(
        &self,
        index: usize,
        switching: bool,
        body: &[u8],
        need: &Need,
    ) -> Result<ResponsePacket, AttemptError> {
        let shared = &*self.inner;
        let endpoint = &shared.endpoints[index];
        endpoint
            .usable(
                index,
                &shared.client,
                &shared.chain_id,
                elapsed_ms(shared.epoch),
                switching,
            )
            .await?;
        fresh::exchange(
            need,
            &shared.head,
            &shared.client,
            (index, endpoint, elapsed_ms(shared.epoch)),
            body,
        )
        .await
    }
}

/// How long to wait before asking a rate-limited endpoint again (`retries` done so far), or
/// `None` to fail over at once: the endpoint asked for more than [`MAX_RATE_LIMIT_WAIT`], or the
/// wait would end past the request's deadline.
fn backoff(
    retry_after: Option<Duration>,
    retries: u32,
    deadline: Option<Instant>,
) -> Option<Duration> {
    let wait = retry_after.unwrap_or(RATE_LIMIT_BACKOFF.saturating_mul(1 << retries.min(8)));
    if wait > MAX_RATE_LIMIT_WAIT {
        return None;
    }
    match deadline {
        Some(deadline) if Instant::now() + wait >= deadline => None,
        _ => Some(wait),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_honours_retry_after_within_the_caps() {
        let later = Some(Instant::now() + Duration::from_secs(60));
        let second = Duration::from_secs(1);
        assert_eq!(backoff(Some(second), 0, later), Some(second));
        assert_eq!(backoff(None, 0, None), Some(RATE_LIMIT_BACKOFF));
        assert_eq!(backoff(None, 2, None), Some(RATE_LIMIT_BACKOFF * 4));
        assert_eq!(backoff(Some(Duration::from_secs(3600)), 0, None), None);
        let soon = Some(Instant::now() + Duration::from_millis(500));
        assert_eq!(backoff(Some(second), 0, soon), None, "past the deadline");
    }
}
