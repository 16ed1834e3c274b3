//! The `payment-identifier` extension on the seller: a route declares it with
//! [`Route::extension`]`(`[`PaymentIdentifier::optional`]`())` (or `required()`), and payments
//! carrying an id become idempotent.
//!
//! For a v2 payment (`PAYMENT-SIGNATURE`) on such a route, before anything is verified:
//!
//! - an id that breaks the rules (16 to 128 characters of `A-Z a-z 0-9 _ -`) is a **400**; a
//!   missing id is a **400** when the route requires one, and an ordinary payment otherwise;
//! - the id is bound to the request — the cache key is the id with the method, the `Host` and the
//!   path and query — and to the payment: its fingerprint is the payment's settlement identity
//!   (as the scheme reads it; the canonical scheme payload otherwise);
//! - the key is **claimed** in the seller's [`IdempotencyStore`]. Free: the request goes through
//!   the paywall, and a **settled success** (status below 400, a successful `PAYMENT-RESPONSE`)
//!   is stored with its status, headers and body; anything else (a refused payment, a failed or
//!   pending settlement, a handler error) releases the claim so the buyer can retry. Held by the
//!   same payment and completed: the stored response is **replayed** (the handler does not run,
//!   nothing is verified or settled again), with `x402-idempotent-replay: true`. Held by another
//!   payment: **409**. Held by the same payment still being processed (a concurrent retry):
//!   **409** with `Retry-After: 1` — the buyer retries once the first request has finished.
//!
//! A claimed payment is processed on its own task: a client that disconnects midway does not
//! cancel its settle nor the storing of its response, so its retry finds the response.
//!
//! Responses larger than [`PaymentIdOptions::max_cached_body`] (or streamed without a known
//! length) are served but not kept: a replay of their id is a 409 saying so. The in-memory store
//! is per process; [`Seller::with_payment_id_store`] shares one across replicas. A v1 payment
//! (`X-PAYMENT`) has no extensions and is processed as usual.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, HttpBody as _};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use sha2::{Digest as _, Sha256};
use tower::Service;
use x402_core::extension::idempotency::{CachedResponse, Claim, IdempotencyStore};
use x402_core::extension::payment_id::{self, PAYMENT_IDENTIFIER, PaymentId};
use x402_core::header::{
    self as codec, MAX_REQUEST_HEADER_LEN, MAX_RESPONSE_HEADER_LEN, PAYMENT_RESPONSE,
    PAYMENT_SIGNATURE,
};
use x402_core::json::JsonLimits;
use x402_core::wire::{PaymentPayload, PaymentRequirements, Raw, SettleResponse, VerifyRequest};

use crate::config::{Route, Seller, SellerInner};
use crate::extensions::{RequestInfo, RouteExtension};
use crate::response;

/// The header a replayed response carries.
pub const REPLAY_HEADER: &str = "x402-idempotent-replay";

/// The `payment-identifier` declaration of a route (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentIdentifier {
    required: bool,
}

impl PaymentIdentifier {
    /// Payments may carry an id; those that do are idempotent.
    pub fn optional() -> Self {
        Self { required: false }
    }

    /// Every v2 payment must carry an id (a payment without one is answered 400).
    pub fn required() -> Self {
        Self { required: true }
    }
}

impl RouteExtension for PaymentIdentifier {
    fn key(&self) -> &str {
        PAYMENT_IDENTIFIER
    }

    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    fn declare(&self, _: &RequestInfo<'_>) -> Option<Raw> {
        Some(payment_id::declaration(self.required).to_raw())
    }
}

/// How long payment-id entries are held, and how large a stored response may be.
#[derive(Debug, Clone, Copy)]
pub struct PaymentIdOptions {
    /// How long a settled response is replayed for its id. Default 24 hours.
    pub keep: Duration,
    /// How long one request may hold an id while it is processed before the claim lapses (a
    /// crashed replica does not hold an id forever). Default 10 minutes.
    pub hold: Duration,
    /// The largest response (headers and body) stored for replay. Default 1 MiB.
    pub max_cached_body: usize,
}

impl Default for PaymentIdOptions {
    fn default() -> Self {
        Self {
            keep: Duration::from_secs(24 * 3600),
            hold: Duration::from_secs(600),
            max_cached_body: 1024 * 1024,
        }
    }
}

impl Seller {
    /// Keeps payment-id entries in `store` instead of this process's memory (a store shared by
    /// every replica makes retries idempotent across them).
    pub fn with_payment_id_store(self, store: Arc<dyn IdempotencyStore>) -> Self {
        self.edited(|inner| inner.payment_ids = store)
    }

    /// Sets the payment-id options.
    pub fn with_payment_id_options(self, options: PaymentIdOptions) -> Self {
        self.edited(|inner| inner.payment_id_options = options)
    }
}

/// Whether the route declares `payment-identifier` for this request, and whether it requires it.
fn declared(route: &Route, parts: &Parts) -> Option<bool> {
    // Only this extension is asked (others, such as sign-in-with-x's fresh challenge, are
    // declared by the 402 itself).
    let extension = route
        .extensions
        .iter()
        .find(|e| e.key() == PAYMENT_IDENTIFIER)?;
    let request = crate::extensions::RequestInfo {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        route_template: None,
        accepts: &[],
    };
    let declaration = extension.declare(&request)?;
    Some(payment_id::is_required(&declaration))
}

/// The v2 payment the request carries, when it is readable (anything else is the flow's to
/// answer).
fn payload_of(parts: &Parts) -> Option<x402_core::wire::PaymentPayloadV2> {
    let text = parts.headers.get(PAYMENT_SIGNATURE)?.to_str().ok()?;
    let bytes = codec::decode_json(text, MAX_REQUEST_HEADER_LEN).ok()?;
    let limits = JsonLimits {
        max_bytes: MAX_REQUEST_HEADER_LEN,
        ..JsonLimits::DEFAULT
    };
    match PaymentPayload::from_json(&bytes, limits).ok()? {
        PaymentPayload::V2(p) => Some(p),
        PaymentPayload::V1(_) => None,
    }
}

fn hex_digest(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for p in parts {
        hash.update((p.len() as u64).to_be_bytes());
        hash.update(p);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache key: the id bound to the method, the host and the path and query.
fn cache_key(id: &str, parts: &Parts) -> String {
    let host = parts
        .headers
        .get(header::HOST)
        .map(HeaderValue::as_bytes)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().as_bytes()))
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    hex_digest(&[
        b"x402-payment-id-v1",
        id.as_bytes(),
        parts.method.as_str().as_bytes(),
        host,
        path.as_bytes(),
    ])
}

/// Releases a pending claim when dropped unfinished (a failure, a panic, a cancelled request).
struct Pending {
    store: Arc<dyn IdempotencyStore>,
    key: String,
    fingerprint: String,
    armed: bool,
}

impl Pending {
    async fn release(mut self) {
        self.armed = false;
        if let Err(e) = self.store.release(&self.key, &self.fingerprint).await {
            tracing::warn!(error = %e, "a payment-id claim could not be released; it lapses on its own");
        }
    }

    async fn complete(mut self, response: Option<CachedResponse>, keep: Duration) {
        self.armed = false;
        if let Err(e) = self
            .store
            .complete(&self.key, &self.fingerprint, response, keep)
            .await
        {
            tracing::warn!(error = %e, "a settled response could not be stored for its payment id");
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (store, key, fingerprint) = (
            self.store.clone(),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.fingerprint),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store.release(&key, &fingerprint).await;
            });
        }
    }
}

/// Whether the paywall's response is a settled success (the only kind stored).
fn settled_success(response: &Response<Body>) -> bool {
    if response.status().as_u16() >= 400 {
        return false;
    }
    response
        .headers()
        .get(PAYMENT_RESPONSE)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| codec::decode::<SettleResponse>(t, MAX_RESPONSE_HEADER_LEN).ok())
        .is_some_and(|s| s.success)
}

fn replay(cached: CachedResponse) -> Response<Body> {
    let mut response = Response::new(Body::from(cached.body));
    *response.status_mut() = StatusCode::from_u16(cached.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    for (name, value) in cached.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(name),
            HeaderValue::from_bytes(&value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(REPLAY_HEADER, HeaderValue::from_static("true"));
    response
}

fn conflict(message: &str) -> Response<Body> {
    response::error(StatusCode::CONFLICT, message)
}

/// Runs a request through the paywall ([`crate::flow::handle`]), idempotently when it carries
/// a payment id on a route declaring `payment-identifier`.
pub(crate) async fn handle<S>(
    seller: Arc<SellerInner>,
    route: Arc<Route>,
    inner: S,
    request: Request<Body>,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    let (parts, body) = request.into_parts();
    let Some(required) = declared(&route, &parts) else {
        return crate::flow::handle(&seller, &route, inner, Request::from_parts(parts, body)).await;
    };
    let Some(payload) = payload_of(&parts) else {
        return crate::flow::handle(&seller, &route, inner, Request::from_parts(parts, body)).await;
    };
    let id = match payment_id::read_id(payload.extensions.as_deref()) {
        PaymentId::Id(id) => id,
        PaymentId::Absent if !required => {
            return crate::flow::handle(&seller, &route, inner, Request::from_parts(parts, body))
                .await;
        }
        PaymentId::Absent => {
            return Ok(response::error(
                StatusCode::BAD_REQUEST,
                "this resource requires a payment id (extensions.payment-identifier.info.id)",
            ));
        }
        PaymentId::Invalid(why) => {
            return Ok(response::error(StatusCode::BAD_REQUEST, &why));
        }
    };
    let request = VerifyRequest::new(
        PaymentPayload::V2(payload.clone()),
        PaymentRequirements::V2(payload.accepted.clone()),
    );
    let fingerprint = hex_digest(&[crate::flow::in_flight_key(&seller, &request).as_bytes()]);
    let key = cache_key(&id, &parts);
    let options = seller.payment_id_options;
    let store = seller.payment_ids.clone();
    match store.claim(&key, &fingerprint, options.hold).await {
        Ok(Claim::Claimed) => {}
        Ok(Claim::Replay(Some(cached))) => {
            tracing::info!(payment_id = %id, "replaying the stored response of a payment id");
            return Ok(replay(cached));
        }
        Ok(Claim::Replay(None)) => {
            return Ok(conflict(
                "this payment id was already served; its response was too large to keep",
            ));
        }
        Ok(Claim::Conflict) => {
            tracing::info!(payment_id = %id, "a payment id reused with another payment");
            return Ok(conflict(
                "this payment id was already used with a different payment",
            ));
        }
        Ok(Claim::Busy) => {
            let mut busy = conflict("a payment with this id is being processed; retry later");
            busy.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(busy);
        }
        Err(e) => {
            tracing::error!(error = %e, "the payment-id store failed; nothing was charged");
            return Ok(response::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the payment-id store is unavailable; nothing was charged",
            ));
        }
    }
    let pending = Pending {
        store,
        key,
        fingerprint,
        armed: true,
    };
    // The claimed payment is processed on its own task: a client that goes away (the very
    // outcome a retry with the same id is for) does not cancel the settle or the storing of its
    // response, so the retry finds the stored response.
    let task = tokio::spawn(async move {
        let request = Request::from_parts(parts, body);
        let response = crate::flow::handle(&seller, &route, inner, request).await?;
        Ok(store_response(pending, response, options).await)
    });
    match task.await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "the paid request's task failed");
            Ok(response::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the paid request failed; retry it with the same payment id",
            ))
        }
    }
}

/// Stores `response` for the claim when it is a settled success, releases the claim otherwise;
/// the response to send.
async fn store_response(
    pending: Pending,
    response: Response<Body>,
    options: PaymentIdOptions,
) -> Response<Body> {
    if !settled_success(&response) {
        pending.release().await;
        return response;
    }
    let (head, body) = response.into_parts();
    let kept = body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= options.max_cached_body as u64);
    if !kept {
        pending.complete(None, options.keep).await;
        return Response::from_parts(head, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, options.max_cached_body).await else {
        // The paid response could not be read; the payment is settled, so the id is done.
        pending.complete(None, options.keep).await;
        return response::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the paid response could not be read",
        );
    };
    let cached = CachedResponse {
        status: head.status.as_u16(),
        headers: head
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect(),
        body: bytes.to_vec(),
    };
    let too_large = cached.size() > options.max_cached_body;
    pending
        .complete((!too_large).then_some(cached), options.keep)
        .await;
    Response::from_parts(head, Body::from(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, host: &str) -> Parts {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn the_key_binds_the_id_to_the_request() {
        let id = "pay_0123456789abcdef";
        let a = cache_key(id, &parts("GET", "/a?x=1", "shop.example"));
        assert_eq!(a, cache_key(id, &parts("GET", "/a?x=1", "shop.example")));
        for other in [
            cache_key(
                "pay_0123456789abcdeF",
                &parts("GET", "/a?x=1", "shop.example"),
            ),
            cache_key(id, &parts("POST", "/a?x=1", "shop.example")),
            cache_key(id, &parts("GET", "/b?x=1", "shop.example")),
            cache_key(id, &parts("GET", "/a?x=2", "shop.example")),
            cache_key(id, &parts("GET", "/a?x=1", "other.example")),
        ] {
            assert_ne!(a, other);
        }
        // Length-prefixed parts: moving a boundary changes the key.
        assert_ne!(hex_digest(&[b"ab", b"c"]), hex_digest(&[b"a", b"bc"]));
    }

    #[test]
    fn the_declaration_follows_the_builder() {
        let route = Route::new().extension(PaymentIdentifier::required());
        assert_eq!(declared(&route, &parts("GET", "/", "h")), Some(true));
        let route = Route::new().extension(PaymentIdentifier::optional());
        assert_eq!(declared(&route, &parts("GET", "/", "h")), Some(false));
        assert_eq!(declared(&Route::new(), &parts("GET", "/", "h")), None);
    }

    #[test]
    fn only_settled_successes_are_kept() {
        let settled = |success: bool, status: u16| {
            let s = SettleResponse {
                success,
                ..serde_json::from_value(serde_json::json!({"success": success, "transaction": "0x1", "network": "eip155:1"})).unwrap()
            };
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            r.headers_mut().insert(
                PAYMENT_RESPONSE,
                HeaderValue::try_from(codec::encode(&s).unwrap()).unwrap(),
            );
            settled_success(&r)
        };
        assert!(settled(true, 200));
        assert!(!settled(false, 402));
        assert!(!settled(true, 500));
        assert!(!settled_success(&Response::new(Body::empty())));
    }
}
