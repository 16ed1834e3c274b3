//! One paid request: offers → payment header → match → verify → handler → settle.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use tower::{Service, ServiceExt as _};
use x402_core::header::{self as codec, MAX_REQUEST_HEADER_LEN, PAYMENT_SIGNATURE, X_PAYMENT};
use x402_core::json::JsonLimits;
use x402_core::wire::{PaymentPayload, PaymentRequirements, SettleResponse, VerifyRequest};
use x402_core::{Reason, X402Version};

use crate::config::{Route, SellerInner, SettleTiming};
use crate::offers::{self, OfferError, Offers};
use crate::overrides::{self, SETTLEMENT_OVERRIDES};
use crate::response::{self, Refusal, decorate, payment_required, with_settlement};

/// A request's payment, accepted for processing.
struct Paid {
    version: X402Version,
    request: VerifyRequest,
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
        false,
    )
}

fn offer_error(e: &OfferError) -> Response<Body> {
    let status = match e {
        OfferError::Facilitator(_) | OfferError::NothingOffered => StatusCode::SERVICE_UNAVAILABLE,
        OfferError::Price(_) => StatusCode::BAD_REQUEST,
        OfferError::Scheme(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
    let requirements = match &payload {
        PaymentPayload::V2(p) => offers
            .match_v2(&p.accepted)
            .cloned()
            .map(PaymentRequirements::V2),
        PaymentPayload::V1(p) => offers
            .match_v1(&p.scheme, &p.network)
            .cloned()
            .map(PaymentRequirements::V1),
    };
    let Some(requirements) = requirements else {
        return Err(Box::new(refuse(offers, "No matching payment requirements")));
    };
    Ok(Some(Paid {
        version,
        request: VerifyRequest::new(payload, requirements),
    }))
}

/// The key under which a payment is marked in flight: the identity its facilitator settles it
/// under, as the scheme reads it, so two encodings of one authorization are one payment; the
/// scheme payload's canonical JSON when the scheme cannot read one.
fn in_flight_key(seller: &SellerInner, request: &VerifyRequest) -> String {
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
    let (parts, body) = request.into_parts();
    let offers = match offers::build(seller, route, &parts).await {
        Ok(o) => o,
        Err(e) => return Ok(offer_error(&e)),
    };
    let paid = match read_payment(&parts.headers, &offers) {
        Ok(Some(p)) => p,
        Ok(None) => {
            let unpaid = Refusal {
                error: "Payment required".to_owned(),
                ..Refusal::default()
            };
            return Ok(payment_required(
                &offers,
                unpaid,
                is_browser(&parts.headers),
            ));
        }
        Err(response) => return Ok(*response),
    };
    let Some(_in_flight) = InFlight::claim(&seller.in_flight, in_flight_key(seller, &paid.request))
    else {
        return Ok(refuse(&offers, "this payment is already being processed"));
    };

    let verdict = match seller.facilitator.verify(&paid.request).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "facilitator verify failed");
            return Ok(response::error(
                StatusCode::BAD_GATEWAY,
                &format!("the payment facilitator failed to verify the payment: {e}"),
            ));
        }
    };
    if !verdict.is_valid {
        // `error` is the bare reason code, as the reference writes it; the facilitator's message
        // is logged, not sent.
        let reason = verdict.invalid_reason.unwrap_or(Reason::INVALID_PAYLOAD);
        tracing::info!(%reason, message = ?verdict.invalid_message, payer = ?verdict.payer, "payment refused by the facilitator");
        let status = (reason.as_str() == "permit2_allowance_required")
            .then_some(StatusCode::PRECONDITION_FAILED);
        let refusal = Refusal {
            error: reason.to_string(),
            status,
            payer: verdict.payer,
        };
        return Ok(payment_required(&offers, refusal, false));
    }

    let request = Request::from_parts(parts, body);
    if route.settle == SettleTiming::BeforeHandler {
        let settlement = match settle(seller, &offers, &paid, &paid.request).await {
            Ok(s) => s,
            Err(response) => return Ok(*response),
        };
        let mut response = inner.oneshot(request).await?;
        if overrides::strip(response.headers_mut()).is_some() {
            tracing::warn!(
                "{SETTLEMENT_OVERRIDES} ignored: this route settles before its handler runs"
            );
        }
        with_settlement(&mut response, paid.version, &settlement);
        return Ok(decorate(response, true));
    }

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
        Ok(asked) => overrides::resolve(seller, &paid.request, asked).await,
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
    let settlement = match settle(seller, &offers, &paid, &settle_request).await {
        Ok(s) => s,
        Err(response) => return Ok(*response),
    };
    let mut response = Response::from_parts(head, Body::from(bytes));
    with_settlement(&mut response, paid.version, &settlement);
    Ok(decorate(response, true))
}

/// Whether the facilitator answered that the payment was sent but not yet decided.
fn is_pending(settlement: &SettleResponse) -> bool {
    !settlement.success && settlement.error_reason == Some(Reason::SETTLEMENT_PENDING)
}

/// Settles; `Err` is the response to send instead of the handler's (402, 502, or 504 while the
/// settlement is pending).
async fn settle(
    seller: &SellerInner,
    offers: &Offers,
    paid: &Paid,
    request: &VerifyRequest,
) -> Result<SettleResponse, Box<Response<Body>>> {
    let settlement = match seller.facilitator.settle(request).await {
        Ok(s) if is_pending(&s) => settle_pending(seller, paid, request, s).await?,
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "facilitator settle failed");
            return Err(Box::new(response::error(
                StatusCode::BAD_GATEWAY,
                &format!("the payment facilitator failed to settle: {e}; the response is withheld"),
            )));
        }
    };
    if !settlement.success {
        tracing::warn!(
            reason = ?settlement.error_reason,
            message = ?settlement.error_message,
            payer = ?settlement.payer,
            "settlement failed; the response is withheld"
        );
        return Err(Box::new(response::settlement_failed(
            offers,
            paid.version,
            &settlement,
        )));
    }
    // Never grant on an answer that does not describe this payment (threat model S67).
    let requirements = &request.payment_requirements;
    let amount_zero = requirements
        .view()
        .map(|v| v.amount.is_zero())
        .unwrap_or(false);
    if settlement.network != requirements.network_text()
        || (settlement.transaction.is_empty() && !amount_zero)
    {
        tracing::error!(?settlement, "inconsistent settlement answer");
        return Err(Box::new(response::error(
            StatusCode::BAD_GATEWAY,
            "the payment facilitator's settlement answer does not match the payment; the response is withheld",
        )));
    }
    tracing::info!(
        transaction = %settlement.transaction,
        network = %settlement.network,
        payer = ?settlement.payer,
        "payment settled"
    );
    Ok(settlement)
}

/// Retries, once and after [`crate::SellerOptions::pending_retry_pause`], a settle the
/// facilitator answered `settlement_pending`, with the identical payment and requirements.
///
/// `Ok` is the retry's success (checked by the caller like any other). Anything else is answered
/// as pending ([`response::settlement_pending`]), never with a 402: the transaction was sent and
/// may still land, and a refusal of the retry does not say it will not — a facilitator that
/// records outcomes answers a second settle of a pending payment `duplicate_settlement`, and one
/// that re-verifies may find the authorization already used by the pending transaction itself.
/// The settlement header carries the latest pending answer.
async fn settle_pending(
    seller: &SellerInner,
    paid: &Paid,
    request: &VerifyRequest,
    pending: SettleResponse,
) -> Result<SettleResponse, Box<Response<Body>>> {
    let pause = seller.options.pending_retry_pause();
    tracing::warn!(
        transaction = %pending.transaction,
        network = %pending.network,
        ?pause,
        "settlement pending; retrying the settle once"
    );
    tokio::time::sleep(pause).await;
    let latest = match seller.facilitator.settle(request).await {
        Ok(s) if s.success => {
            if s.transaction != pending.transaction {
                tracing::info!(
                    pending = %pending.transaction,
                    settled = %s.transaction,
                    "the retried settle names another transaction"
                );
            }
            return Ok(s);
        }
        Ok(s) if is_pending(&s) => s,
        Ok(s) => {
            tracing::warn!(
                reason = ?s.error_reason,
                message = ?s.error_message,
                "the retried settle was refused after a pending answer; still reported as pending"
            );
            pending
        }
        Err(e) => {
            tracing::warn!(error = %e, "the retried settle failed; still reported as pending");
            pending
        }
    };
    tracing::error!(
        transaction = %latest.transaction,
        network = %latest.network,
        payer = ?latest.payer,
        "settlement still pending; the response is withheld"
    );
    Err(Box::new(response::settlement_pending(
        paid.version,
        &latest,
    )))
}
