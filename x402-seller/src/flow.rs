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

use crate::config::{Charge, Route, SellerInner, SettleTiming};
use crate::offers::{self, OfferError, Offers};
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

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

fn refuse(offers: &Offers, html: bool, error: impl Into<String>) -> Response<Body> {
    payment_required(
        offers,
        Refusal {
            error: error.into(),
            ..Refusal::default()
        },
        html,
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
fn read_payment(
    headers: &HeaderMap,
    offers: &Offers,
    html: bool,
) -> Result<Option<Paid>, Box<Response<Body>>> {
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
            html,
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
        return Err(Box::new(refuse(
            offers,
            html,
            "No matching payment requirements",
        )));
    };
    Ok(Some(Paid {
        version,
        request: VerifyRequest::new(payload, requirements),
    }))
}

/// The key under which a payment is marked in flight: the scheme payload itself (canonical JSON).
fn in_flight_key(request: &VerifyRequest) -> String {
    let payload = request.payment_payload.payload();
    let canonical = serde_json::from_str::<serde_json::Value>(payload.get())
        .map(|v| v.to_string())
        .unwrap_or_else(|_| payload.get().to_owned());
    format!(
        "{}|{}|{canonical}",
        request.payment_requirements.scheme(),
        request.payment_requirements.network_text()
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
    let html = wants_html(&parts.headers);
    let offers = match offers::build(seller, route, &parts).await {
        Ok(o) => o,
        Err(e) => return Ok(offer_error(&e)),
    };
    let paid = match read_payment(&parts.headers, &offers, html) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(refuse(&offers, html, "Payment required")),
        Err(response) => return Ok(*response),
    };
    let Some(_in_flight) = InFlight::claim(&seller.in_flight, in_flight_key(&paid.request)) else {
        return Ok(refuse(
            &offers,
            html,
            "this payment is already being processed",
        ));
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
        let reason = verdict.invalid_reason.unwrap_or(Reason::INVALID_PAYLOAD);
        let status = (reason.as_str() == "permit2_allowance_required")
            .then_some(StatusCode::PRECONDITION_FAILED);
        let error = match &verdict.invalid_message {
            Some(m) => format!("{reason}: {m}"),
            None => reason.to_string(),
        };
        let refusal = Refusal {
            error,
            status,
            payer: verdict.payer,
            settlement: None,
        };
        return Ok(payment_required(&offers, refusal, html));
    }

    let request = Request::from_parts(parts, body);
    if route.settle == SettleTiming::BeforeHandler {
        let settlement = match settle(seller, &offers, html, &paid, &paid.request).await {
            Ok(s) => s,
            Err(response) => return Ok(*response),
        };
        let mut response = inner.oneshot(request).await?;
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
        return Ok(decorate(
            Response::from_parts(head, Body::from(bytes)),
            false,
        ));
    }
    let charge = head.extensions.remove::<Charge>();
    let settle_request = match charged(&paid.request, charge) {
        Ok(r) => r,
        Err(message) => {
            tracing::error!(%message, "not settled");
            return Ok(response::error(StatusCode::INTERNAL_SERVER_ERROR, &message));
        }
    };
    let settlement = match settle(seller, &offers, html, &paid, &settle_request).await {
        Ok(s) => s,
        Err(response) => return Ok(*response),
    };
    let mut response = Response::from_parts(head, Body::from(bytes));
    with_settlement(&mut response, paid.version, &settlement);
    Ok(decorate(response, true))
}

/// The settle request: for `upto`, the seller's requirements with the handler's actual charge.
fn charged(request: &VerifyRequest, charge: Option<Charge>) -> Result<VerifyRequest, String> {
    let (Some(Charge(actual)), PaymentRequirements::V2(max)) =
        (charge, &request.payment_requirements)
    else {
        return Ok(request.clone());
    };
    if max.scheme != "upto" {
        if actual != max.amount {
            tracing::warn!(scheme = %max.scheme, "a Charge applies to upto only; ignored");
        }
        return Ok(request.clone());
    }
    if actual > max.amount {
        return Err(format!(
            "the handler charged {actual}, more than the {} the buyer authorized; nothing was charged",
            max.amount
        ));
    }
    let mut requirements = max.clone();
    requirements.amount = actual;
    Ok(VerifyRequest::new(
        request.payment_payload.clone(),
        PaymentRequirements::V2(requirements),
    ))
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
    html: bool,
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
        let reason = settlement
            .error_reason
            .as_ref()
            .map_or_else(|| "settlement failed".to_owned(), ToString::to_string);
        let refusal = Refusal {
            error: format!("settlement failed: {reason}"),
            status: None,
            payer: settlement.payer.clone(),
            settlement: Some((paid.version, settlement)),
        };
        return Err(Box::new(payment_required(offers, refusal, html)));
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
