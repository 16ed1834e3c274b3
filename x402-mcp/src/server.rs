//! The server side: [`PaidService`] wraps any rmcp server and makes some of its tools paid.
//!
//! Each paid tool is an x402-seller [`Route`] protected by the seller's own [`Paywall`], so an
//! MCP tool is paid exactly as an HTTP resource is: the same offers, facilitator client, schemes,
//! hooks, in-flight guard (a payment is never processed twice at once) and settlement checks.
//! A `tools/call` of a paid tool becomes one request through that paywall: the
//! `_meta["x402/payment"]` object is its `PAYMENT-SIGNATURE`, the tool is the protected handler
//! (it runs only after a valid verify; a tool error is "the handler failed", and nothing is
//! settled), and the paywall's answer is turned back into a tool result
//! (the table in `server/answer.rs`).

mod answer;
mod delegate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode};
use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{CallToolRequestParams, CallToolResponse, JsonObject};
use rmcp::service::{RequestContext, RoleServer};
use tower::ServiceExt as _;
use x402_core::X402Version;
use x402_core::header::{self as codec, PAYMENT_SIGNATURE};
use x402_seller::{ConfigError, Paywall, Route, Seller};

use crate::meta::PAYMENT_META_KEY;

/// The tool call being priced, as a request extension of the request the seller sees: a dynamic
/// price ([`x402_seller::Accept::dynamic`]) or recipient reads the call's arguments from it with
/// [`ToolCall::of`].
#[derive(Debug, Clone)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// The call's arguments (empty when the call had none).
    pub arguments: JsonObject,
}

impl ToolCall {
    /// The tool call of the request `parts` (`None` outside a paid MCP tool call).
    pub fn of(parts: &axum::http::request::Parts) -> Option<&ToolCall> {
        parts.extensions.get::<ToolCall>()
    }
}

/// The paid tools of a server: each tool's name and the paywall that prices it.
#[derive(Debug, Clone, Default)]
pub struct PaidTools {
    tools: HashMap<String, Paywall>,
}

impl PaidTools {
    /// No paid tool yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes tool `name` paid as `route` says, through `seller` (its facilitator, schemes and
    /// hooks). The route is served as x402 v2 only (the MCP transport is v2), and its resource
    /// URL is `mcp://tool/<name>`, as the transport's examples name a tool. A route the seller
    /// cannot serve is refused here, as [`Seller::paywall`] refuses it.
    pub fn tool(
        mut self,
        name: impl Into<String>,
        seller: &Seller,
        route: Route,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        let route = route
            .versions(&[X402Version::V2])
            .resource_url(format!("mcp://tool/{name}"));
        let paywall = seller.paywall(route)?;
        self.tools.insert(name, paywall);
        Ok(self)
    }

    /// Whether tool `name` is paid.
    pub fn is_paid(&self, name: &str) -> bool {
        self.tools.contains_key(name)
    }
}

/// An rmcp server whose [`PaidTools`] ask for an x402 payment; every other request (and every
/// other tool) goes to the wrapped server untouched.
///
/// Serve it as any rmcp service: `PaidService::new(server, tools).serve(stdio())`, or in a
/// `StreamableHttpService` factory.
#[derive(Debug, Clone)]
pub struct PaidService<S> {
    inner: Arc<S>,
    tools: Arc<PaidTools>,
}

impl<S> PaidService<S> {
    /// `inner` with `tools` paid.
    pub fn new(inner: S, tools: PaidTools) -> Self {
        Self::shared(Arc::new(inner), Arc::new(tools))
    }

    /// [`PaidService::new`] sharing the server and the tools (one service per session of a
    /// streamable HTTP server).
    pub fn shared(inner: Arc<S>, tools: Arc<PaidTools>) -> Self {
        Self { inner, tools }
    }
}

/// What the tool answered, kept for the caller of the paywall.
type Outcome = Arc<Mutex<Option<Result<CallToolResponse, McpError>>>>;

/// The call to run, taken by the protected handler when (and if) the paywall runs it.
type Pending = Arc<Mutex<Option<(CallToolRequestParams, RequestContext<RoleServer>)>>>;

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Whether a tool's answer is a success (anything else is not settled).
fn succeeded(outcome: &Result<CallToolResponse, McpError>) -> bool {
    match outcome {
        Ok(CallToolResponse::Complete(r)) => r.is_error != Some(true),
        _ => false,
    }
}

/// The request the paywall sees for a call: no body, the payment (if any) as its
/// `PAYMENT-SIGNATURE`, the call as a [`ToolCall`] extension. `Err` is the reason the payment
/// cannot be carried (answered as a refused payment).
fn seller_request(
    call: &ToolCall,
    payment: Option<&serde_json::Value>,
) -> Result<Request<Body>, String> {
    let mut request = Request::new(Body::empty());
    *request.method_mut() = axum::http::Method::POST;
    request.extensions_mut().insert(call.clone());
    if let Some(payment) = payment {
        let value = codec::encode(payment).map_err(|e| format!("{PAYMENT_META_KEY}: {e}"))?;
        let value = HeaderValue::try_from(value)
            .map_err(|_| format!("{PAYMENT_META_KEY} cannot be carried"))?;
        request.headers_mut().insert(PAYMENT_SIGNATURE, value);
    }
    Ok(request)
}

impl<S: ServerHandler> PaidService<S> {
    /// A `tools/call`: through the tool's paywall when it is paid, else to the wrapped server.
    async fn call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        match self.tools.tools.get(request.name.as_ref()) {
            Some(paywall) => self.paid_call(paywall, request, context).await,
            None => self.inner.call_tool(request, context).await,
        }
    }

    /// One call of a paid tool through its paywall.
    async fn paid_call(
        &self,
        paywall: &Paywall,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let CallToolRequestParams {
            name, arguments, ..
        } = &request;
        let call = ToolCall {
            name: name.to_string(),
            arguments: arguments.clone().unwrap_or_default(),
        };
        let payment = context.meta.get(PAYMENT_META_KEY).cloned();
        let unpaid = || answer::offers(paywall, &call);
        let http = match seller_request(&call, payment.as_ref()) {
            Ok(r) => r,
            Err(message) => return Ok(answer::refused(unpaid().await, &message).into()),
        };
        let pending: Pending = Arc::new(Mutex::new(Some((request, context))));
        let outcome: Outcome = Arc::new(Mutex::new(None));
        let handler = {
            let (inner, pending, outcome) = (self.inner.clone(), pending.clone(), outcome.clone());
            tower::service_fn(move |_: Request<Body>| {
                let (inner, pending, outcome) = (inner.clone(), pending.clone(), outcome.clone());
                async move {
                    let status = match take(&pending) {
                        Some((request, context)) => {
                            let result = inner.call_tool(request, context).await;
                            let ok = succeeded(&result);
                            *outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                            if ok {
                                StatusCode::OK
                            } else {
                                StatusCode::INTERNAL_SERVER_ERROR
                            }
                        }
                        // Never twice: the paywall runs its handler at most once per request.
                        None => StatusCode::INTERNAL_SERVER_ERROR,
                    };
                    let mut response = Response::new(Body::empty());
                    *response.status_mut() = status;
                    Ok::<_, std::convert::Infallible>(response)
                }
            })
        };
        let response = match tower::Layer::layer(paywall, handler).oneshot(http).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let ran = take(&outcome);
        Ok(answer::of_paywall(response, ran, unpaid).await)
    }
}
