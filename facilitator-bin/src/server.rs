//! The facilitator's HTTP API: `POST /verify`, `POST /settle`, `GET /supported`, `GET /health`,
//! `GET /ready`, `GET /metrics`, and `GET /discovery/resources` when the bazaar is enabled
//! ([`crate::extensions`]).
//!
//! Status codes are decided here and only here: a payment problem is 200 with `isValid:false` /
//! `success:false` and its reason; a malformed body is 400 (413 when too large) with a message;
//! the facilitator failing is 500/504 without internals, 503 when the settlement store is
//! unavailable (nothing is settled without it). Client input never yields a 5xx. `/verify` and
//! `/settle` are behind the configured access control ([`crate::auth`]: 401, 403, 429).
//! The configured hooks ([`crate::hooks`]) run inside the dispatcher, after the access control
//! and the limits: a hook's abort is a 200 refusal with its reason, a failing hook a 500.
//!
//! The server bounds what clients can hold ([`accept`], `guard`): slow or idle connections are
//! closed after `[limits] header_read_timeout_ms`, connections beyond `max_connections` wait in
//! the listen backlog, a body not received within `body_read_timeout_ms` is answered 408, one
//! client's `/verify` and `/settle` requests beyond `per_client_concurrency` 429 with
//! `Retry-After`, and a settle beyond `max_settles_in_flight` 503 with `Retry-After` — before
//! anything is claimed or sent.
//!
//! A settle is never cancelled half-way: it runs in its own task, so a client that goes away, a
//! request deadline or a shutdown signal does not abandon a broadcast transaction. Shutdown stops
//! accepting connections and waits for in-flight requests.

pub mod accept;
mod guard;
mod ready;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use x402_core::json::JsonLimits;
use x402_core::wire::{SettleResponse, VerifyRequest, VerifyResponse};
use x402_core::{Facilitator, FacilitatorError, LocalFacilitator, Unread};

pub use self::accept::serve;
use self::guard::Guards;
use crate::auth::{Access, Route};
use crate::config::Limits;
use crate::metrics::Metrics;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The dispatcher.
    pub facilitator: Arc<LocalFacilitator>,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Request limits.
    pub limits: Limits,
    /// Who may call `/verify` and `/settle`.
    pub access: Access,
    /// The last readiness answer and when it was taken.
    ready: Arc<tokio::sync::Mutex<Option<(Instant, StatusCode, serde_json::Value)>>>,
    /// The per-client and settle limits.
    guards: Arc<Guards>,
}

/// The router over `state`.
pub fn router(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    Router::new()
        .route("/verify", post(verify))
        .route("/settle", post(settle))
        .route("/supported", get(supported))
        .route(
            "/discovery/resources",
            get(crate::extensions::discovery_resources),
        )
        .route("/health", get(health))
        .route("/ready", get(ready::ready))
        .route("/metrics", get(metrics))
        // Refuses a declared Content-Length over the limit before reading anything, and caps
        // bodies without one while they stream.
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit))
        .with_state(state)
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A 200 JSON response.
pub(crate) fn json_ok(body: &impl serde::Serialize) -> Response {
    json_response(StatusCode::OK, body)
}

/// An `{"error": message}` response.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response {
    error_body(status, message, None)
}

/// The settle answer, with the extensions' answers also in the `EXTENSION-RESPONSES` header.
fn settle_response(response: &SettleResponse) -> Response {
    let mut http = json_response(StatusCode::OK, response);
    if let Some(answers) = &response.extensions
        && let Ok(value) = x402_core::header::encode(answers)
        && let Ok(value) = axum::http::HeaderValue::from_str(&value)
    {
        http.headers_mut()
            .insert(x402_core::extension::EXTENSION_RESPONSES_HEADER, value);
    }
    http
}

fn error_body(status: StatusCode, message: &str, reason: Option<&str>) -> Response {
    let mut body = json!({ "error": message });
    if let Some(r) = reason {
        body["invalidReason"] = json!(r);
    }
    json_response(status, &body)
}

/// The label of anything this facilitator does not serve.
const OTHER: &str = "other";

/// Labels of a request for metrics: its scheme and network as the requirements write them when
/// this facilitator serves that pair, [`OTHER`] for both otherwise. Labels come only from the
/// configuration, so made-up scheme or network strings cannot grow the metrics without bound.
fn labels_of(facilitator: &LocalFacilitator, request: &VerifyRequest) -> (String, String) {
    let requirements = &request.payment_requirements;
    let (scheme, text) = (requirements.scheme(), requirements.network_text());
    let version = requirements.version();
    let served = x402_core::Network::from_wire(version, text).is_ok_and(|network| {
        facilitator.registry().entries().iter().any(|e| {
            e.version == version && e.scheme.scheme() == scheme && e.pattern.matches(&network)
        })
    });
    if served {
        (scheme.to_owned(), text.to_owned())
    } else {
        (OTHER.to_owned(), OTHER.to_owned())
    }
}

/// The reason label: a code some crate of this build defines, [`OTHER`] otherwise.
fn reason_label(reason: Option<&x402_core::Reason>) -> String {
    match reason {
        None => String::new(),
        Some(r) if r.is_known() => r.to_string(),
        Some(_) => OTHER.to_owned(),
    }
}

/// Why a body was not dispatched.
enum NotDispatched {
    /// A well-formed request answered without a scheme (unsupported version): a 200 refusal.
    Answer(x402_core::Rejection),
    /// A malformed body: the 400 response.
    Bad(Box<Response>),
}

impl AppState {
    /// The state of a server of `facilitator` under `limits`.
    pub fn new(facilitator: LocalFacilitator, metrics: Arc<Metrics>, limits: Limits) -> Self {
        Self {
            facilitator: Arc::new(facilitator),
            guards: Arc::new(Guards::new(&limits, metrics.clone())),
            metrics,
            limits,
            access: Access::open(),
            ready: Arc::default(),
        }
    }

    /// Puts `/verify` and `/settle` behind `access` ([`AppState::new`] leaves them open: the
    /// binary always sets the access its configuration describes).
    pub fn with_access(mut self, access: Access) -> Self {
        self.access = access.with_metrics(self.metrics.clone());
        self
    }

    fn record(
        &self,
        route: &'static str,
        scheme: &str,
        network: &str,
        outcome: &str,
        reason: Option<&x402_core::Reason>,
        started: Instant,
    ) {
        self.metrics.inc(
            "x402_requests_total",
            vec![
                ("route", route.into()),
                ("scheme", scheme.into()),
                ("network", network.into()),
                ("outcome", outcome.into()),
                ("reason", reason_label(reason)),
            ],
        );
        self.metrics.observe(
            "x402_request_duration_seconds",
            vec![
                ("route", route.into()),
                ("scheme", scheme.into()),
                ("network", network.into()),
            ],
            started.elapsed(),
        );
    }

    /// Reads a verify/settle body; a malformed one is recorded and answered (400) here, an
    /// unsupported version is recorded and handed back as a refusal for the route's response.
    fn read_request(
        &self,
        route: &'static str,
        body: &[u8],
        started: Instant,
    ) -> Result<Box<VerifyRequest>, NotDispatched> {
        let json = JsonLimits {
            max_bytes: self.limits.max_body_bytes,
            ..JsonLimits::DEFAULT
        };
        match LocalFacilitator::read_request(body, json) {
            Ok(r) => Ok(Box::new(r)),
            Err(Unread::Refused(r)) => {
                self.record(route, "", "", "refused", Some(&r.reason), started);
                Err(NotDispatched::Answer(r))
            }
            Err(Unread::Malformed(e)) => {
                self.record(route, "", "", "bad_request", Some(&e.reason()), started);
                Err(NotDispatched::Bad(Box::new(error_body(
                    StatusCode::BAD_REQUEST,
                    &e.to_string(),
                    Some(e.reason().as_str()),
                ))))
            }
        }
    }

    fn deadline(&self) -> std::time::Duration {
        // A last resort: the scheme answers (pending at worst) a margin before this.
        self.limits.timeouts().request_deadline()
    }
}

fn internal(route: &str, e: &FacilitatorError) -> Response {
    tracing::error!(route, error = %e, "facilitator failure");
    if let FacilitatorError::Scheme(x402_core::SchemeError::Store(_)) = e {
        // Fails closed: nothing is broadcast without a durable claim.
        return error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            "the settlement store is unavailable; nothing was settled, retry later",
            None,
        );
    }
    error_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal facilitator error",
        None,
    )
}

async fn verify(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let _client = match state.guards.client_slot("verify", &parts) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let admitted = match state.access.admit(Route::Verify, &parts.headers) {
        Ok(a) => a,
        Err(refusal) => return refusal.response(),
    };
    let body = match state.guards.read_body("verify", parts, body).await {
        Ok(b) => b,
        Err(refused) => return *refused,
    };
    let request = match state.read_request("verify", &body, started) {
        Ok(r) => r,
        Err(NotDispatched::Bad(response)) => return *response,
        Err(NotDispatched::Answer(r)) => {
            return json_response(
                StatusCode::OK,
                &VerifyResponse::invalid(r.reason, r.message, None),
            );
        }
    };
    if let Err(refusal) = admitted.check_scope(Route::Verify, &request) {
        return refusal.response();
    }
    let (scheme, network) = labels_of(&state.facilitator, &request);
    let facilitator = Arc::clone(&state.facilitator);
    let span = tracing::info_span!("x402.verify", scheme = %scheme, network = %network, key = admitted.key_id().unwrap_or_default());
    let call =
        tracing::Instrument::instrument(async move { facilitator.verify(&request).await }, span);
    match tokio::time::timeout(state.deadline(), call).await {
        Ok(Ok(response)) => {
            let outcome = if response.is_valid {
                "valid"
            } else {
                "invalid"
            };
            state.record(
                "verify",
                &scheme,
                &network,
                outcome,
                response.invalid_reason.as_ref(),
                started,
            );
            json_response(StatusCode::OK, &response)
        }
        Ok(Err(e)) => {
            state.record("verify", &scheme, &network, "error", None, started);
            internal("verify", &e)
        }
        Err(_) => {
            state.record("verify", &scheme, &network, "timeout", None, started);
            error_body(
                StatusCode::GATEWAY_TIMEOUT,
                "verification deadline exceeded",
                None,
            )
        }
    }
}

async fn settle(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let _client = match state.guards.client_slot("settle", &parts) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let admitted = match state.access.admit(Route::Settle, &parts.headers) {
        Ok(a) => a,
        Err(refusal) => return refusal.response(),
    };
    let body = match state.guards.read_body("settle", parts, body).await {
        Ok(b) => b,
        Err(refused) => return *refused,
    };
    let request = match state.read_request("settle", &body, started) {
        Ok(r) => r,
        Err(NotDispatched::Bad(response)) => return *response,
        Err(NotDispatched::Answer(r)) => {
            return json_response(
                StatusCode::OK,
                &SettleResponse::failed(r.reason, r.message, "", None),
            );
        }
    };
    let permit = match admitted
        .check_scope(Route::Settle, &request)
        .and_then(|()| admitted.settle_permit())
    {
        Ok(permit) => permit,
        Err(refusal) => return refusal.response(),
    };
    // Nothing is claimed or sent before this: a full set of settles in flight refuses here.
    let slot = match state.guards.settle_slot() {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let (scheme, network) = labels_of(&state.facilitator, &request);
    // The settle runs to completion in its own task whatever happens to this request, holding
    // its place among the key's concurrent settles and among all settles in flight until then.
    let facilitator = Arc::clone(&state.facilitator);
    let span = tracing::info_span!("x402.settle", scheme = %scheme, network = %network, key = admitted.key_id().unwrap_or_default());
    let task = tokio::spawn(tracing::Instrument::instrument(
        async move {
            let _places = (permit, slot);
            facilitator.settle(&request).await
        },
        span,
    ));
    match tokio::time::timeout(state.deadline(), task).await {
        Ok(Ok(Ok(response))) => {
            let outcome = settle_outcome(&response);
            state.metrics.inc(
                "x402_settlements_total",
                vec![
                    ("scheme", scheme.clone()),
                    ("network", network.clone()),
                    ("outcome", outcome.into()),
                ],
            );
            state.record(
                "settle",
                &scheme,
                &network,
                outcome,
                response.error_reason.as_ref(),
                started,
            );
            settle_response(&response)
        }
        Ok(Ok(Err(e))) => {
            state.record("settle", &scheme, &network, "error", None, started);
            internal("settle", &e)
        }
        Ok(Err(join)) => {
            state.record("settle", &scheme, &network, "error", None, started);
            tracing::error!(error = %join, "settle task failed");
            error_body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal facilitator error",
                None,
            )
        }
        Err(_) => {
            state.record("settle", &scheme, &network, "timeout", None, started);
            error_body(
                StatusCode::GATEWAY_TIMEOUT,
                "settlement deadline exceeded; the settlement continues and its outcome is recorded",
                None,
            )
        }
    }
}

fn settle_outcome(r: &SettleResponse) -> &'static str {
    use x402_core::Reason;
    match &r.error_reason {
        _ if r.success => "success",
        Some(reason) if *reason == Reason::SETTLEMENT_PENDING => "pending",
        Some(reason) if *reason == Reason::DUPLICATE_SETTLEMENT => "duplicate",
        _ => "failed",
    }
}

async fn supported(State(state): State<AppState>) -> Response {
    match state.facilitator.supported().await {
        Ok(s) => json_response(StatusCode::OK, &s),
        Err(e) => internal("supported", &e),
    }
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.guards.report();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
