//! What bounds the work clients can put on the server, besides access control: the body read
//! timeout, the per-client concurrency of `/verify` and `/settle`, and the bounded set of settles
//! in flight. Each refusal is answered here, before anything is claimed or sent, and counted in
//! `x402_limit_refusals_total{route,cause}`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest as _, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;
use crate::metrics::Metrics;

/// How long a refused client is asked to wait, in seconds.
const RETRY_AFTER_SECS: u32 = 1;

/// A client address as the per-client limit counts it: an IPv4 address, or the /64 prefix of an
/// IPv6 one (a single host is commonly handed a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey(IpAddr);

impl ClientKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(prefix.into()))
                }
            },
        }
    }
}

/// The server's shared limits and their state.
#[derive(Debug)]
pub(crate) struct Guards {
    body_timeout: Duration,
    per_client: usize,
    /// Requests in progress by client; an entry lives while its count is positive, so the map
    /// holds at most one entry per request in progress.
    clients: Mutex<HashMap<ClientKey, usize>>,
    max_settles: usize,
    settles: Arc<Semaphore>,
    connections: AtomicUsize,
    metrics: Arc<Metrics>,
}

/// A place among a client's requests in progress, given back on drop.
#[derive(Debug)]
pub(crate) struct ClientSlot {
    guards: Arc<Guards>,
    key: Option<ClientKey>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut clients = self.guards.lock_clients();
        if let Some(n) = clients.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                clients.remove(&key);
            }
        }
    }
}

/// A place among the settles in flight, held by the settle's task until it ends.
pub(crate) type SettleSlot = OwnedSemaphorePermit;

/// A connection counted as open until dropped.
#[derive(Debug)]
pub(crate) struct OpenConnection(Arc<Guards>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The answer to a request refused by a limit.
pub(crate) type Refused = Box<Response>;

/// A refusal: `status`, `{"error": message}`, and `Retry-After` for 429 and 503.
fn refusal(status: StatusCode, message: &str) -> Refused {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        // The rest of the body may still be on its way: the connection cannot be reused.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Box::new(response)
}

impl Guards {
    /// The guards of `limits`, counting refusals in `metrics`.
    pub(crate) fn new(limits: &Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            body_timeout: Duration::from_millis(limits.body_read_timeout_ms),
            per_client: limits.per_client_concurrency,
            clients: Mutex::default(),
            max_settles: limits.max_settles_in_flight,
            settles: Arc::new(Semaphore::new(limits.max_settles_in_flight)),
            connections: AtomicUsize::new(0),
            metrics,
        }
    }

    fn lock_clients(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, usize>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refused(&self, route: &'static str, cause: &'static str) {
        self.metrics.inc(
            "x402_limit_refusals_total",
            vec![("route", route.into()), ("cause", cause.into())],
        );
    }

    /// Counts a connection as open until the value returned is dropped.
    pub(crate) fn open_connection(self: &Arc<Self>) -> OpenConnection {
        self.connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(Arc::clone(self))
    }

    /// Sets the gauges of what is in progress now: `x402_settles_in_flight` and
    /// `x402_http_connections`.
    pub(crate) fn report(&self) {
        let settles = self.max_settles - self.settles.available_permits();
        let connections = self.connections.load(Ordering::Relaxed);
        self.metrics
            .set("x402_settles_in_flight", Vec::new(), settles as f64);
        self.metrics
            .set("x402_http_connections", Vec::new(), connections as f64);
    }

    /// A place for one more request of the client that sent `parts`, or its 429. A request whose
    /// peer is unknown (a router served without the server's accept loop) is not counted.
    pub(crate) fn client_slot(
        self: &Arc<Self>,
        route: &'static str,
        parts: &Parts,
    ) -> Result<ClientSlot, Refused> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(ClientSlot {
                guards: Arc::clone(self),
                key: None,
            });
        };
        let key = ClientKey::of(peer.ip());
        {
            let mut clients = self.lock_clients();
            let n = clients.entry(key).or_default();
            if *n >= self.per_client {
                drop(clients);
                self.refused(route, "client_concurrency");
                tracing::info!(route, "client over per_client_concurrency");
                return Err(refusal(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "this client has {} requests in progress (per_client_concurrency); retry later",
                        self.per_client
                    ),
                ));
            }
            *n += 1;
        }
        Ok(ClientSlot {
            guards: Arc::clone(self),
            key: Some(key),
        })
    }

    /// A place among the settles in flight, or the 503 answered at once when they are all taken.
    pub(crate) fn settle_slot(&self) -> Result<SettleSlot, Refused> {
        match Arc::clone(&self.settles).try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => {
                self.refused("settle", "settles_in_flight");
                tracing::warn!(
                    max_settles_in_flight = self.max_settles,
                    "settle refused: too many settles in flight"
                );
                Err(refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the facilitator has too many settles in progress; nothing was settled, retry later",
                ))
            }
        }
    }

    /// The whole body of a request, read within the body read timeout: 408 (and the connection
    /// closed) past it, 413 over the size limit, 400 when the client broke off.
    pub(crate) async fn read_body(
        &self,
        route: &'static str,
        parts: Parts,
        body: Body,
    ) -> Result<Bytes, Refused> {
        let request = Request::from_parts(parts, body);
        match tokio::time::timeout(self.body_timeout, Bytes::from_request(request, &())).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(rejection)) => Err(Box::new(rejection.into_response())),
            Err(_) => {
                self.refused(route, "body_timeout");
                Err(refusal(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive within body_read_timeout_ms",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_counted_by_ipv4_address_and_ipv6_prefix() {
        let key = |s: &str| ClientKey::of(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")));
        assert_eq!(key("2001:db8::1"), key("2001:db8::ffff:1"));
        assert_eq!(key("2001:db8:0:0:1:2:3:4"), key("2001:db8::"));
        assert_ne!(key("2001:db8:0:1::1"), key("2001:db8::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }

    fn parts_from(peer: &str) -> Parts {
        let mut request = Request::new(Body::empty());
        let peer: SocketAddr = peer.parse().unwrap_or_else(|e| panic!("{peer}: {e}"));
        request.extensions_mut().insert(ConnectInfo(peer));
        request.into_parts().0
    }

    #[test]
    fn a_client_over_its_concurrency_is_refused_until_a_request_ends() {
        let limits = Limits {
            per_client_concurrency: 2,
            ..Limits::default()
        };
        let guards = Arc::new(Guards::new(&limits, Arc::default()));
        let (a, b) = (parts_from("192.0.2.1:1000"), parts_from("192.0.2.2:1000"));
        let first = guards.client_slot("verify", &a).ok();
        let second = guards.client_slot("settle", &a).ok();
        assert!(first.is_some() && second.is_some());
        let refused = guards.client_slot("verify", &a).err();
        let refused = refused.unwrap_or_else(|| panic!("a third request is refused"));
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        // Another client is not affected.
        assert!(guards.client_slot("verify", &b).is_ok());
        drop(first);
        assert!(guards.client_slot("verify", &a).is_ok());
        drop(second);
        assert!(
            guards.lock_clients().is_empty(),
            "no entry outlives its requests"
        );
        // Without a known peer, nothing is counted.
        let anonymous = Request::new(Body::empty()).into_parts().0;
        let slots: Vec<_> = (0..5)
            .map(|_| guards.client_slot("verify", &anonymous).is_ok())
            .collect();
        assert!(slots.iter().all(|ok| *ok));
    }

    #[test]
    fn settles_beyond_the_bound_are_503_until_one_ends() {
        let limits = Limits {
            max_settles_in_flight: 1,
            ..Limits::default()
        };
        let metrics = Arc::new(Metrics::default());
        let guards = Arc::new(Guards::new(&limits, metrics.clone()));
        let held = guards.settle_slot().ok();
        assert!(held.is_some());
        let refused = guards.settle_slot().err();
        let refused = refused.unwrap_or_else(|| panic!("a second settle is refused"));
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        guards.report();
        let text = metrics.render();
        assert!(text.contains("x402_settles_in_flight 1"), "{text}");
        assert!(
            text.contains(
                r#"x402_limit_refusals_total{route="settle",cause="settles_in_flight"} 1"#
            ),
            "{text}"
        );
        drop(held);
        guards.report();
        assert!(metrics.render().contains("x402_settles_in_flight 0"));
        assert!(guards.settle_slot().is_ok());
    }
}
