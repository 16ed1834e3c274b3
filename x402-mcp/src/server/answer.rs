//! Turning the paywall's HTTP answer back into a tool result.
//!
//! | paywall answer | tool result |
//! |---|---|
//! | 2xx (the tool succeeded, the payment settled) | the tool's result, the settlement in `_meta["x402/payment-response"]` |
//! | 402 with `PAYMENT-REQUIRED` (no payment, refused payment) | the payment request as a structured tool error |
//! | 402 without it (the settlement failed) | the payment request, its `error` the settlement's reason, the failed settlement in `_meta`; the tool's content withheld |
//! | 400 (a payment that cannot be read) | the payment request, its `error` the reason |
//! | the tool's own failure (nothing settled, unless the route settles before its handler) | the tool's result (with that settlement in `_meta`) |
//! | 504 (settlement pending) | a tool error naming the transaction, the pending settlement in `_meta`, no offers (do not pay again) |
//! | any other (facilitator or hook failure) | a tool error with the seller's message |

use std::future::Future;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock, MetaObject};
use tower::ServiceExt as _;
use x402_core::header::{
    self as codec, MAX_RESPONSE_HEADER_LEN, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE,
};
use x402_core::wire::SettleResponse;
use x402_seller::Paywall;

use super::{ToolCall, seller_request, succeeded};
use crate::meta::{PAYMENT_META_KEY, PAYMENT_RESPONSE_META_KEY, payment_required_result};

/// The payment request document of a 402's `PAYMENT-REQUIRED`, as JSON.
fn document_of(response: &Response<Body>) -> Option<serde_json::Value> {
    let text = response.headers().get(PAYMENT_REQUIRED)?.to_str().ok()?;
    codec::decode(text, MAX_RESPONSE_HEADER_LEN).ok()
}

fn settlement_header(response: &Response<Body>) -> Option<SettleResponse> {
    let text = response.headers().get(PAYMENT_RESPONSE)?.to_str().ok()?;
    codec::decode(text, MAX_RESPONSE_HEADER_LEN).ok()
}

/// The `error` message of the seller's JSON error body.
async fn message_of(response: Response<Body>) -> String {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_RESPONSE_HEADER_LEN)
        .await
        .unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("the payment could not be processed (HTTP {status})"))
}

/// The tool's offers: the paywall's 402 to the call without a payment (nothing runs, nothing is
/// verified or settled). `None` when the seller cannot build them.
pub(super) async fn offers(paywall: &Paywall, call: &ToolCall) -> Option<serde_json::Value> {
    let request = seller_request(call, None).ok()?;
    let stub = tower::service_fn(|_: Request<Body>| async {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        Ok::<_, std::convert::Infallible>(response)
    });
    let response = tower::Layer::layer(paywall, stub)
        .oneshot(request)
        .await
        .ok()?;
    document_of(&response)
}

/// A refused payment: the payment request with `error` set to `message`, or a plain tool error
/// naming it when no payment request can be built.
pub(super) fn refused(document: Option<serde_json::Value>, message: &str) -> CallToolResult {
    match document {
        Some(mut document) => {
            if let Some(object) = document.as_object_mut() {
                object.insert("error".into(), message.into());
            }
            payment_required_result(document)
        }
        None => failed(message),
    }
}

fn failed(message: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn with_settlement(
    mut result: CallToolResult,
    settlement: Option<&SettleResponse>,
) -> CallToolResult {
    let Some(value) = settlement.and_then(|s| serde_json::to_value(s).ok()) else {
        return result;
    };
    result
        .meta
        .get_or_insert_with(MetaObject::new)
        .insert(PAYMENT_RESPONSE_META_KEY.to_owned(), value);
    result
}

/// The tool result for the paywall's `response`; `ran` is what the tool answered, if it ran;
/// `unpaid` builds the tool's offers when a refusal needs them.
pub(super) async fn of_paywall<F, Fut>(
    response: Response<Body>,
    ran: Option<Result<CallToolResponse, McpError>>,
    unpaid: F,
) -> CallToolResponse
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Option<serde_json::Value>>,
{
    let status = response.status();
    let settlement = settlement_header(&response);
    if status.is_success() {
        return match ran {
            Some(Ok(CallToolResponse::Complete(result))) => {
                with_settlement(result, settlement.as_ref()).into()
            }
            Some(Ok(other)) => other,
            Some(Err(e)) => failed(&e.message).into(),
            // A seller hook granted free access (the tool ran) cannot end here without `ran`.
            None => failed("the tool did not run").into(),
        };
    }
    if status == StatusCode::PAYMENT_REQUIRED {
        if let Some(document) = document_of(&response) {
            return payment_required_result(document).into();
        }
        // The settlement failed after the tool ran: its content is withheld.
        let reason = settlement
            .as_ref()
            .and_then(|s| s.error_reason.as_ref())
            .map_or("Settlement failed", |r| r.as_str())
            .to_owned();
        return with_settlement(refused(unpaid().await, &reason), settlement.as_ref()).into();
    }
    // The tool's own failure: its answer is returned as it is. Nothing was settled, unless the
    // route settles before its handler (`SettleTiming::BeforeHandler`): that settlement is
    // reported with the failure.
    if let Some(result) = ran.filter(|r| !succeeded(r)) {
        return match result {
            Ok(CallToolResponse::Complete(result)) => {
                with_settlement(result, settlement.as_ref()).into()
            }
            Ok(other) => other,
            Err(e) => with_settlement(failed(&e.message), settlement.as_ref()).into(),
        };
    }
    let message = message_of(response).await;
    if status == StatusCode::GATEWAY_TIMEOUT {
        return with_settlement(failed(&message), settlement.as_ref()).into();
    }
    if status == StatusCode::BAD_REQUEST {
        // The seller names the HTTP header the payment came in; here it came in `_meta`.
        let message = match message.strip_prefix(PAYMENT_SIGNATURE) {
            Some(rest) => format!("{PAYMENT_META_KEY}{rest}"),
            None => message,
        };
        return refused(unpaid().await, &message).into();
    }
    failed(&message).into()
}
