//! One paid request: on-protected-request hooks → offers → payment header → match → verify →
//! handler → settle ([`crate::settle`]).

use std::collections::HashSet;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use tower::{Service, ServiceExt as _};
use x402_core::header::{self as codec, MAX_REQUEST_HEADER_LEN, PAYMENT_SIGNATURE, X_PAYMENT};
use x402_core::json::JsonLimits;
use x402_core::wire::{PaymentPayload, PaymentRequirements, VerifyRequest};
use x402_core::{Reason, Rejection, X402Version};

use crate::body::BodyContext;
use crate::config::{Route, SellerInner, SettleTiming};
use crate::facilitators::{self, Source};
use crate::hook::{Access, HookFailed, Hooks, Operation, SellerCall};
use crate::offers::{self, OfferError, Offers};
use crate::overrides::{self, SETTLEMENT_OVERRIDES};
use crate::payment::{FreeAccess, VerifiedPayment};
use crate::response::{self, Refusal, decorate, payment_required, with_settlement};
use crate::settle::Settling;

/// A request's payment, accepted for processing.
pub(crate) struct Paid {
    pub(crate) version: X402Version,
    pub(crate) request: VerifyRequest,
    /// The facilitator whose kind was offered for it.
    pub(crate) source: Source,
}

/// Holds a payment's in-flight mark until dropped.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl<'a> InFlight<'a> {
    fn claim(set: &'a Mutex<HashSet<String>>, key: String) -> Option<Self> {
        let fresh = set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.clone());
        fresh.then_some(Self { set, key })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// Whether the request comes from a web browser, as the reference decides it
/// (`x402HTTPResourceServer.isWebBrowser`, TypeScript 2.27): its `Accept` contains `text/html`
/// **and** its `User-Agent` contains `Mozilla` (every mainstream browser sends both; an API
/// client asking for HTML does not get a page). Only an unpaid request is answered with the HTML
/// paywall: a refused payment is answered with the JSON document, as the reference does.
fn is_browser(headers: &HeaderMap) -> bool {
    let any = |name, needle: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains(needle))
    };
    any(axum::http::header::ACCEPT, "text/html") && any(axum::http::header::USER_AGENT, "Mozilla")
}

/// A 402 with the offers for a request that carried a payment (never HTML).
fn refuse(offers: &Offers, error: impl Into<String>) -> Response<Body> {
    payment_required(
        offers,
        Refusal {
            error: error.into(),
            ..Refusal::default()
        },
        None,
    )
}

fn offer_error(e: &OfferError) -> Response<Body> {
    let status = match e {
        OfferError::Facilitator(_) | OfferError::NothingOffered => StatusCode::SERVICE_UNAVAILABLE,
        OfferError::Price(_) | OfferError::PayTo(_) => StatusCode::BAD_REQUEST,
        OfferError::Scheme(_) | OfferError::Extra(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status != StatusCode::BAD_REQUEST {
        tracing::error!(error = %e, "cannot build payment requirements");
    }
    response::error(status, &e.to_string())
}

/// Reads the payment header: `Ok(None)` when there is none, `Err` with the response to send
/// when it cannot be used.
fn read_payment(headers: &HeaderMap, offers: &Offers) -> Result<Option<Paid>, Box<Response<Body>>> {
    let (version, name, value) = if let Some(v) = headers.get(PAYMENT_SIGNATURE) {
        (X402Version::V2, PAYMENT_SIGNATURE, v)
    } else if let Some(v) = headers.get(X_PAYMENT) {
        (X402Version::V1, X_PAYMENT, v)
    } else {
        return Ok(None);
    };
    let offered = match version {
        X402Version::V1 => !offers.v1.is_empty(),
        X402Version::V2 => !offers.v2.is_empty(),
    };
    if !offered {
        return Err(Box::new(refuse(
            offers,
            format!("x402 v{version} payments ({name}) are not accepted for this resource"),
        )));
    }
    let bad = |m: String| {
        Box::new(response::error(
            StatusCode::BAD_REQUEST,
            &format!("{name}: {m}"),
        ))
    };
    let text = value
        .to_str()
        .map_err(|_| bad("the header is not visible ASCII".into()))?;
    let bytes = codec::decode_json(text, MAX_REQUEST_HEADER_LEN).map_err(|e| bad(e.to_string()))?;
    let limits = JsonLimits {
        max_bytes: MAX_REQUEST_HEADER_LEN,
        ..JsonLimits::DEFAULT
    };
    let payload = PaymentPayload::from_json(&bytes, limits).map_err(|e| bad(e.to_string()))?;
    if payload.version() != version {
        return Err(bad(format!(
            "carries an x402 v{} payment; this header is for v{version}",
            payload.version()
        )));
    }
    let payload = crate::extensions::vouch(payload, offers);
    // Matched against the requirements built for THIS request (its price, its payTo): a
    // payment signed for another request's requirements names none of them.
    let matched = match &payload {
        PaymentPayload::V2(p) => offers
            .match_v2(&p.accepted)
            .map(|(r, s)| (PaymentRequirements::V2(r.clone()), s.clone())),
        PaymentPayload::V1(p) => offers
            .match_v1(&p.scheme, &p.network)
            .map(|(r, s)| (PaymentRequirements::V1(r.clone()), s.clone())),
    };
    let Some((requirements, source)) = matched else {
        return Err(Box::new(refuse(offers, "No matching payment requirements")));
    };
    Ok(Some(Paid {
        version,
        request: VerifyRequest::new(payload, requirements),
        source,
    }))
}

/// The key under which a payment is marked in flight: the identity its facilitator settles it
/// under, as the scheme reads it, so two encodings of one authorization are one payment; the
/// scheme payload's canonical JSON when the scheme cannot read one.
pub(crate) fn in_flight_key(seller: &SellerInner, request: &VerifyRequest) -> String {
    let requirements = &request.payment_requirements;
    let payload = request.payment_payload.payload();
    let identity = requirements.view().ok().and_then(|view| {
        // The seller role prices every version; it is registered for one or both.
        let scheme = [view.version, X402Version::V2]
            .into_iter()
            .find_map(|v| seller.schemes.lookup(v, view.scheme, &view.network).ok())?;
        scheme.payment_id(&view, payload)
    });
    if let Some(id) = identity {
        return format!("id|{id}");
    }
    let canonical = serde_json::from_str::<serde_json::Value>(payload.get())
        .map(|v| v.to_string())
        .unwrap_or_else(|_| payload.get().to_owned());
    format!(
        "json|{}|{}|{canonical}",
        requirements.scheme(),
        requirements.network_text()
    )
}

/// The 500 of a hook that failed in a deciding step (its message is logged, not sent).
pub(crate) fn hook_failed(failed: &HookFailed) -> Response<Body> {
    tracing::error!(hook = %failed.hook, step = failed.step, message = %failed.message, "seller hook failed");
    response::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!(
            "the seller's hook {} failed in {}",
            failed.hook, failed.step
        ),
    )
}

/// The 402 of a payment a before hook aborted.
pub(crate) fn aborted(
    offers: &Offers,
    rejection: &Rejection,
    hook: &str,
    payer: Option<&str>,
) -> Response<Body> {
    tracing::info!(%hook, reason = %rejection.reason, message = ?rejection.message, ?payer, "payment refused by a seller hook");
    payment_required(
        offers,
        Refusal {
            error: rejection.reason.to_string(),
            status: None,
            payer: payer.map(str::to_owned),
        },
        None,
    )
}

/// Runs the whole flow for one request through the protected service `inner`.
pub(crate) async fn handle<S>(
    seller: &SellerInner,
    route: &Route,
    inner: S,
    request: Request<Body>,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    let hooks = Hooks(&seller.hooks);
    let (mut parts, body) = request.into_parts();
    let mut unpaid_error = "Payment required".to_owned();
    match hooks.access(&parts).await {
        Ok((Access::Continue, _)) => {}
        Ok((Access::Decline(message), hook)) => {
            tracing::debug!(%hook, %message, "a seller hook declined free access");
            unpaid_error = message;
        }
        Ok((Access::Grant, hook)) => {
            tracing::debug!(%hook, "free access granted by a seller hook");
            parts.extensions.insert(FreeAccess { hook });
            let mut response = inner.oneshot(Request::from_parts(parts, body)).await?;
            overrides::strip(response.headers_mut());
            // Granted to this requester only: never stored by a shared cache.
            return Ok(decorate(response, true));
        }
        Ok((Access::Refuse(message), hook)) => {
            tracing::info!(%hook, %message, "request refused by a seller hook");
            return Ok(response::forbidden(&message));
        }
        Err(failed) => return Ok(hook_failed(&failed)),
    }
    let offers = match offers::build(seller, route, &parts).await {
        Ok(o) => o,
        Err(e) => return Ok(offer_error(&e)),
    };
    let paid = match read_payment(&parts.headers, &offers) {
        Ok(Some(p)) => p,
        Ok(None) => {
            let unpaid = Refusal {
                error: unpaid_error.clone(),
                ..Refusal::default()
            };
            let browser = is_browser(&parts.headers);
            let default =
                payment_required(&offers, unpaid, browser.then_some(&seller.options.paywall));
            let Some(custom) = &route.unpaid_body else {
                return Ok(default);
            };
            let body = (custom.0)(&BodyContext {
                error: &unpaid_error,
                resource: &offers.resource,
                accepts: &offers.v2,
                settlement: None,
                browser,
            });
            return Ok(response::with_custom_body(default, body));
        }
        Err(response) => return Ok(*response),
    };
    let Some(_in_flight) = InFlight::claim(&seller.in_flight, in_flight_key(seller, &paid.request))
    else {
        return Ok(refuse(&offers, "this payment is already being processed"));
    };

    let (payer, facilitator) = match verify(seller, &hooks, &offers, &paid).await {
        Ok(v) => v,
        Err(response) => return Ok(*response),
    };
    let mut payment = VerifiedPayment {
        version: paid.version,
        payer,
        requirements: paid.request.payment_requirements.clone(),
        settlement: None,
    };
    let payer = payment.payer.clone();
    let settling = Settling {
        seller,
        hooks: &hooks,
        route,
        offers: &offers,
        paid: &paid,
        facilitator,
        payer: payer.as_deref(),
    };

    if route.settle == SettleTiming::BeforeHandler {
        let settlement = match settling.settle(&paid.request).await {
            Ok(s) => s,
            Err(response) => return Ok(*response),
        };
        payment.settlement = Some(settlement.clone());
        parts.extensions.insert(payment);
        let request = Request::from_parts(parts, body);
        let mut response = inner.oneshot(request).await?;
        if overrides::strip(response.headers_mut()).is_some() {
            tracing::warn!(
                "{SETTLEMENT_OVERRIDES} ignored: this route settles before its handler runs"
            );
        }
        with_settlement(&mut response, paid.version, &settlement);
        return Ok(decorate(response, true));
    }

    parts.extensions.insert(payment);
    let request = Request::from_parts(parts, body);
    let response = inner.oneshot(request).await?;
    let (mut head, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, seller.options.max_response_bytes).await else {
        tracing::error!("the protected handler's response could not be buffered; not settled");
        return Ok(response::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the response could not be prepared; nothing was charged",
        ));
    };
    if head.status.as_u16() >= 400 {
        // The handler failed: the buyer is not charged (threat model S63).
        overrides::strip(&mut head.headers);
        return Ok(decorate(
            Response::from_parts(head, Body::from(bytes)),
            false,
        ));
    }
    let settle_request = match overrides::take(&mut head) {
        Ok(asked) => overrides::resolve(seller, facilitator, &paid.request, asked).await,
        Err(message) => Err(message),
    };
    let settle_request = match settle_request {
        Ok(r) => r,
        Err(message) => {
            let message = format!("{message}; nothing was charged");
            tracing::error!(%message, "not settled");
            return Ok(response::error(StatusCode::INTERNAL_SERVER_ERROR, &message));
        }
    };
    let settlement = match settling.settle(&settle_request).await {
        Ok(s) => s,
        Err(response) => return Ok(*response),
    };
    let mut response = Response::from_parts(head, Body::from(bytes));
    with_settlement(&mut response, paid.version, &settlement);
    Ok(decorate(response, true))
}

/// Verifies through the hooks and the facilitators; `Ok` is the payer the verify named and the
/// facilitator that verified (the one to settle with); `Err` the response to send.
async fn verify(
    seller: &SellerInner,
    hooks: &Hooks<'_>,
    offers: &Offers,
    paid: &Paid,
) -> Result<(Option<String>, usize), Box<Response<Body>>> {
    let call = SellerCall {
        operation: Operation::Verify,
        request: &paid.request,
        version: paid.version,
        payer: None,
    };
    match hooks.before(&call).await {
        Ok(None) => {}
        Ok(Some((rejection, hook))) => {
            return Err(Box::new(aborted(offers, &rejection, &hook, None)));
        }
        Err(failed) => return Err(Box::new(hook_failed(&failed))),
    }
    let (result, facilitator) =
        facilitators::verify(seller, &paid.source, paid.version, &paid.request).await;
    let answer = match hooks.verified(&call, result).await {
        Ok(a) => a,
        Err(failed) => return Err(Box::new(hook_failed(&failed))),
    };
    let verdict = match answer.result {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "facilitator verify failed");
            return Err(Box::new(response::error(
                StatusCode::BAD_GATEWAY,
                &format!("the payment facilitator failed to verify the payment: {e}"),
            )));
        }
    };
    if !verdict.is_valid {
        // `error` is the bare reason code, as the reference writes it; the facilitator's message
        // is logged, not sent.
        let reason = verdict.invalid_reason.unwrap_or(Reason::INVALID_PAYLOAD);
        tracing::info!(%reason, message = ?verdict.invalid_message, payer = ?verdict.payer, recovered = answer.recovered, "payment refused");
        let status = (reason.as_str() == "permit2_allowance_required")
            .then_some(StatusCode::PRECONDITION_FAILED);
        let refusal = Refusal {
            error: reason.to_string(),
            status,
            payer: verdict.payer,
        };
        return Err(Box::new(payment_required(offers, refusal, None)));
    }
    if answer.recovered {
        tracing::info!(payer = ?verdict.payer, "a seller hook recovered the verify");
    }
    let verified = SellerCall {
        payer: verdict.payer.as_deref(),
        ..call
    };
    match hooks.admit(&verified, &verdict).await {
        Ok(None) => {}
        Ok(Some((rejection, hook))) => {
            return Err(Box::new(aborted(
                offers,
                &rejection,
                &hook,
                verdict.payer.as_deref(),
            )));
        }
        Err(failed) => return Err(Box::new(hook_failed(&failed))),
    }
    Ok((verdict.payer, facilitator))
}
