//! Every response the layer writes itself: 402s (v2 header, v1 body, HTML paywall), client and
//! facilitator errors, and the headers added to paid responses.

use axum::body::Body;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Response, StatusCode};
use serde::Serialize;
use x402_core::header::{self as codec, PAYMENT_REQUIRED, PAYMENT_RESPONSE, X_PAYMENT_RESPONSE};
use x402_core::wire::SettleResponse;
use x402_core::{Reason, X402Version};

use crate::offers::Offers;
use crate::paywall::{self, PaywallConfig};

/// The payment headers a browser client must be able to read.
const EXPOSED: &str = "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE";

/// Marks a response as not storable by any cache, and exposes the payment headers.
pub(crate) fn decorate(mut response: Response<Body>, paid: bool) -> Response<Body> {
    let no_store = paid || response.status() == StatusCode::PAYMENT_REQUIRED;
    let headers = response.headers_mut();
    headers.append(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED),
    );
    if no_store {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        headers.append(
            header::VARY,
            HeaderValue::from_static("PAYMENT-SIGNATURE, X-PAYMENT"),
        );
    }
    response
}

/// `body` as JSON with `status`, not yet decorated.
fn json_body(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    decorate(json_body(status, body), false)
}

/// `{"error": message}` with `status`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &serde_json::json!({ "error": message }))
}

/// Puts a settlement header on `response` (v2 `PAYMENT-RESPONSE`, v1 `X-PAYMENT-RESPONSE`).
pub(crate) fn with_settlement(
    response: &mut Response<Body>,
    version: X402Version,
    settlement: &SettleResponse,
) {
    let name = match version {
        X402Version::V1 => X_PAYMENT_RESPONSE,
        X402Version::V2 => PAYMENT_RESPONSE,
    };
    if let (Ok(name), Ok(Ok(value))) = (
        HeaderName::try_from(name),
        codec::encode(settlement).map(HeaderValue::try_from),
    ) {
        response.headers_mut().insert(name, value);
    }
}

/// The status of a paid request whose settlement is still pending after the one retry.
///
/// 504 Gateway Timeout: the seller is a gateway to the facilitator and through it to the chain,
/// and the chain did not decide the payment within the time the facilitator was given. The
/// others considered, and why not:
/// * 402 (with a fresh `PAYMENT-REQUIRED`) asks for a second payment while the first may still
///   land (threat model S82).
/// * 502 Bad Gateway is what the seller answers when the facilitator failed or answered
///   nonsense; a pending payment is a valid answer, and a client or an operator's dashboard
///   should tell the two apart by status alone.
/// * 503 with `Retry-After` promises that asking again later serves the request, and it will
///   not: the same payment is not granted twice, and a request without it is a new 402.
/// * 202 Accepted is a success, and the content is withheld.
pub(crate) const PENDING_STATUS: StatusCode = StatusCode::GATEWAY_TIMEOUT;

/// The answer to a paid request whose settlement is still pending: [`PENDING_STATUS`], the
/// pending settlement in the settlement header, and a JSON body naming its transaction. No
/// `PAYMENT-REQUIRED`, no offers: the buyer must not pay again before the transaction is decided.
pub(crate) fn settlement_pending(
    version: X402Version,
    settlement: &SettleResponse,
) -> Response<Body> {
    let transaction = Some(settlement.transaction.as_str()).filter(|t| !t.is_empty());
    let error = format!(
        "the payment was sent and is being settled: transaction {} on {}; the response is \
         withheld; do not pay again before the transaction is decided",
        transaction.unwrap_or("(not named by the facilitator)"),
        settlement.network,
    );
    let body = serde_json::json!({
        "error": error,
        "errorReason": Reason::SETTLEMENT_PENDING,
        "transaction": transaction,
        "network": settlement.network,
        "payer": settlement.payer,
    });
    let mut response = json_body(PENDING_STATUS, &body);
    with_settlement(&mut response, version, settlement);
    // Answers for one payment only, like a paid response: never stored by a cache.
    decorate(response, true)
}

/// The answer to a paid request whose settlement failed (not pending: see
/// [`settlement_pending`]), in the reference's shape: 402, the failed settlement in the settlement
/// header, no fresh `PAYMENT-REQUIRED`, never HTML.
///
/// * v2 (`x402HTTPResourceServer.buildSettlementFailureResponse`, TypeScript 2.27): body `{}`
///   (`application/json`) and `PAYMENT-RESPONSE` carrying the facilitator's failed settle
///   response.
/// * v1 (the legacy Express middleware): the v1 document, its `error` the bare reason code, as
///   the body; `X-PAYMENT-RESPONSE` is added (the legacy middleware sent none) so that a v1 buyer
///   also learns the reason and the payer.
///
/// A settlement without a reason is reported as `Settlement failed`, the reference's default.
pub(crate) fn settlement_failed(
    offers: &Offers,
    version: X402Version,
    settlement: &SettleResponse,
) -> Response<Body> {
    let reason = settlement
        .error_reason
        .as_ref()
        .map_or("Settlement failed", Reason::as_str);
    let v1 = match version {
        X402Version::V1 => offers.required_v1(reason, None),
        X402Version::V2 => None,
    };
    let mut response = match &v1 {
        Some(doc) => json_body(StatusCode::PAYMENT_REQUIRED, doc),
        None => json_body(StatusCode::PAYMENT_REQUIRED, &serde_json::json!({})),
    };
    with_settlement(&mut response, version, settlement);
    decorate(response, false)
}

/// What a 402 says besides the offers.
#[derive(Debug, Default)]
pub(crate) struct Refusal {
    /// Why (`Payment required`, a bare verify reason, …).
    pub(crate) error: String,
    /// 402, or 412 for `permit2_allowance_required`.
    pub(crate) status: Option<StatusCode>,
    /// The payer, when a verification named one (v1 body).
    pub(crate) payer: Option<String>,
}

/// A 402 with the offers: `PAYMENT-REQUIRED` when v2 is offered; the body is the HTML paywall
/// configured by `html` (a browser's unpaid request, see `flow::is_browser`), else the v1
/// document when v1 is offered, else `{}`.
pub(crate) fn payment_required(
    offers: &Offers,
    refusal: Refusal,
    html: Option<&PaywallConfig>,
) -> Response<Body> {
    let status = refusal.status.unwrap_or(StatusCode::PAYMENT_REQUIRED);
    let v1 = offers.required_v1(&refusal.error, refusal.payer.clone());
    let mut response = if let Some(config) = html {
        let mut r = Response::new(Body::from(paywall::page(config, offers, &refusal.error)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        // the policy is made of checked origins; were it ever unrepresentable, nothing may run
        let csp = HeaderValue::try_from(paywall::content_security_policy(config, offers))
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
        r
    } else {
        match &v1 {
            Some(doc) => json_response(status, doc),
            None => json_response(status, &serde_json::json!({})),
        }
    };
    *response.status_mut() = status;
    if let Some(doc) = offers.required_v2(&refusal.error)
        && let (Ok(name), Ok(Ok(value))) = (
            HeaderName::try_from(PAYMENT_REQUIRED),
            codec::encode(&doc).map(HeaderValue::try_from),
        )
    {
        response.headers_mut().insert(name, value);
    }
    decorate(response, false)
}

/// `response` with its body replaced by a seller's custom body (status and headers kept). A
/// content type that is not a header value keeps the default body.
pub(crate) fn with_custom_body(
    mut response: Response<Body>,
    custom: crate::body::CustomBody,
) -> Response<Body> {
    let Ok(content_type) = HeaderValue::from_str(&custom.content_type) else {
        tracing::error!(content_type = ?custom.content_type, "a custom body's content type is not a header value; the default body is sent");
        return response;
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response.headers_mut().remove(header::CONTENT_LENGTH);
    // the paywall's policy allows only the paywall's own script and style
    response
        .headers_mut()
        .remove(header::CONTENT_SECURITY_POLICY);
    *response.body_mut() = Body::from(custom.body);
    response
}

/// The 403 of a request a seller hook refused.
pub(crate) fn forbidden(message: &str) -> Response<Body> {
    error(StatusCode::FORBIDDEN, message)
}
