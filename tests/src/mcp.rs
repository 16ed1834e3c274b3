//! x402 over MCP on the EVM bed: a small rmcp tool server (paid, failing, free and
//! argument-priced tools) made paid with `x402-mcp`, served over streamable HTTP, and our paying
//! client connected to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::ErrorData as McpError;
use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use x402_core::{Amount, Price};
use x402_evm::assets::TransferMethod;
use x402_mcp::{PaidService, PaidTools, ToolCall};
use x402_seller::{Accept, Route};

use crate::e2e::{EXACT_UNITS, Shop, evm_seller};

/// What the paid `joke` tool answers.
pub const JOKE: &str = "why did the agent pay? the tool was exact";

/// What the `drain` tool does before answering (a test empties the payer's wallet in it, so
/// that a payment verified before the tool ran fails to settle after it).
pub type Drain =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// What the `drain` tool answers: it must never reach a payer whose settlement failed.
pub const DRAIN_SECRET: &str = "a secret that must not leak";

/// The tool server: counts how often each tool ran.
#[derive(Default)]
pub struct JokeTools {
    /// Runs of `joke`.
    pub jokes: AtomicUsize,
    /// Runs of `fail`.
    pub failures: AtomicUsize,
    /// Runs of `drain`.
    pub drains: AtomicUsize,
    /// The `drain` tool's action (no `drain` tool without it).
    pub drain: Option<Drain>,
}

impl std::fmt::Debug for JokeTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JokeTools")
            .field("jokes", &self.jokes)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

fn schema() -> Arc<JsonObject> {
    let value = serde_json::json!({"type": "object", "properties": {"units": {"type": "integer"}}});
    match value {
        serde_json::Value::Object(o) => Arc::new(o),
        _ => unreachable!("an object"),
    }
}

impl ServerHandler for JokeTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("joke", "a paid joke", schema()),
            Tool::new("fail", "a paid tool that always fails", schema()),
            Tool::new("free", "a free tool", schema()),
            Tool::new("priced", "priced by its `units` argument", schema()),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let result = match request.name.as_ref() {
            "joke" => {
                self.jokes.fetch_add(1, Ordering::SeqCst);
                CallToolResult::success(vec![ContentBlock::text(JOKE)])
            }
            "fail" => {
                self.failures.fetch_add(1, Ordering::SeqCst);
                CallToolResult::error(vec![ContentBlock::text("the tool broke")])
            }
            "free" => CallToolResult::success(vec![ContentBlock::text("free for all")]),
            "drain" if self.drain.is_some() => {
                self.drains.fetch_add(1, Ordering::SeqCst);
                if let Some(drain) = &self.drain {
                    drain().await;
                }
                CallToolResult::success(vec![ContentBlock::text(DRAIN_SECRET)])
            }
            "priced" => CallToolResult::success(vec![ContentBlock::text("priced per call")]),
            other => {
                return Err(McpError::invalid_params(format!("no tool {other}"), None));
            }
        };
        Ok(result.into())
    }
}

/// `exact` (EIP-3009) in the bed's USDC to the bed's seller at `units`.
fn exact(shop: &Shop, units: u64) -> Accept {
    Accept::new(
        "exact",
        shop.h.network.clone(),
        shop.h.bed.seller().address.to_checksum(None),
        Price::Atomic(Amount::from(units)),
    )
    .max_timeout_seconds(120)
}

/// `joke`, `fail` and `drain` at [`EXACT_UNITS`], `priced` at its `units` argument; `free` is
/// free.
pub fn paid_tools(shop: &Shop) -> PaidTools {
    let seller = evm_seller(&shop.h, shop.counting.clone(), TransferMethod::Eip3009);
    let priced = Accept::dynamic(
        "exact",
        shop.h.network.clone(),
        shop.h.bed.seller().address.to_checksum(None),
        |parts| {
            let call = ToolCall::of(parts).ok_or("not a tool call")?;
            let units = call
                .arguments
                .get("units")
                .and_then(serde_json::Value::as_u64)
                .ok_or("the argument units must be a whole number")?;
            Ok(Price::Atomic(Amount::from(units)))
        },
    )
    .max_timeout_seconds(120);
    PaidTools::new()
        .tool(
            "joke",
            &seller,
            Route::new()
                .description("a paid joke")
                .accept(exact(shop, EXACT_UNITS)),
        )
        .expect("joke")
        .tool(
            "fail",
            &seller,
            Route::new()
                .description("always fails")
                .accept(exact(shop, EXACT_UNITS)),
        )
        .expect("fail")
        .tool("priced", &seller, Route::new().accept(priced))
        .expect("priced")
        .tool(
            "drain",
            &seller,
            Route::new()
                .description("drains")
                .accept(exact(shop, EXACT_UNITS)),
        )
        .expect("drain")
}

/// Serves `tools` (paid as `paid`) over streamable HTTP at `/mcp` on a free port; returns the
/// endpoint's URL.
pub async fn serve_http(tools: Arc<JokeTools>, paid: PaidTools) -> String {
    let paid = Arc::new(paid);
    let service = StreamableHttpService::new(
        move || Ok(PaidService::shared(tools.clone(), paid.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let url = crate::e2e::serve(axum::Router::new().nest_service("/mcp", service)).await;
    format!("{url}/mcp")
}
