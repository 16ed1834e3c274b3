//! Both sides in one process, over an in-memory pipe, paid in the template scheme's toy ledger
//! (no chain): the payment request, a paid call settled once, refusals that move nothing.

#![cfg(all(feature = "server", feature = "client"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, RequestMetaObject,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{RequestContext, RoleClient, RoleServer, RunningService};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt as _};
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::wire::PaymentRequired;
use x402_core::{
    Amount, BuyerRole as _, FacilitatorRole as _, LocalFacilitator, MemoryStore, Network, Price,
    Registry, SellerRole as _, X402Version,
};
use x402_mcp::{PAYMENT_META_KEY, PaidService, PaidTools, PayingClient, payment_required_of};
use x402_seller::{Accept, Route, Seller, SettleTiming};

/// The payer's key on the toy ledger.
const SECRET: [u8; 32] = [7; 32];

#[derive(Debug, Default)]
struct Tools {
    runs: AtomicUsize,
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        match request.name.as_ref() {
            "broken" | "broken-settled-first" => {
                Err(McpError::internal_error("the tool crashed", None))
            }
            _ => Ok(CallToolResult::success(vec![ContentBlock::text("paid content")]).into()),
        }
    }
}

struct Bed {
    network: Network,
    ledger: Arc<scheme_template::Ledger>,
    payer: scheme_template::Account,
    pay_to: scheme_template::Account,
    tools: Arc<Tools>,
    client: RunningService<RoleClient, ()>,
}

async fn start() -> Bed {
    let network = Network::parse("toy:mcp").unwrap();
    let payer = scheme_template::Buyer::from_secret(SECRET).account();
    let pay_to = scheme_template::Buyer::random().account();
    let ledger = Arc::new(scheme_template::Ledger::new([(payer, Amount::from(1000))]));
    let facilitator = scheme_template::Facilitator::new(
        network.clone(),
        ledger.clone(),
        Arc::new(MemoryStore::new()),
    )
    .unwrap();
    let mut registry = Registry::new();
    registry
        .register(
            network.as_str(),
            &[X402Version::V2],
            facilitator.into_scheme(),
        )
        .unwrap();
    let mut schemes = Registry::new();
    schemes
        .register(
            "toy:*",
            &[X402Version::V2],
            scheme_template::Seller.into_scheme(),
        )
        .unwrap();
    let seller = Seller::new(Arc::new(LocalFacilitator::new(registry)), schemes);
    let accept = || {
        Accept::new(
            "exact",
            network.clone(),
            pay_to.to_string(),
            Price::Atomic(Amount::from(25)),
        )
    };
    let paid = PaidTools::new()
        .tool("paid", &seller, Route::new().accept(accept()))
        .unwrap()
        .tool("broken", &seller, Route::new().accept(accept()))
        .unwrap()
        .tool(
            "broken-settled-first",
            &seller,
            Route::new()
                .accept(accept())
                .settle(SettleTiming::BeforeHandler),
        )
        .unwrap();
    let tools = Arc::new(Tools::default());
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let service = PaidService::shared(tools.clone(), Arc::new(paid));
    tokio::spawn(async move {
        let running = service.serve(tokio::io::split(server_io)).await.unwrap();
        let _ = running.waiting().await;
    });
    let client = ().serve(tokio::io::split(client_io)).await.unwrap();
    Bed {
        network,
        ledger,
        payer,
        pay_to,
        tools,
        client,
    }
}

fn buyer(bed: &Bed) -> Arc<Buyer> {
    let mut schemes = Registry::new();
    let payer = scheme_template::Buyer::from_secret(SECRET);
    schemes
        .register("toy:*", &[X402Version::V2], payer.into_scheme())
        .unwrap();
    let mut policy = Policy::default();
    policy.assets.push(KnownAsset {
        network: bed.network.clone(),
        address: scheme_template::ASSET.to_owned(),
        decimals: scheme_template::DECIMALS,
        symbol: "TOY".into(),
    });
    Arc::new(Buyer::new(reqwest::Client::new(), schemes, policy))
}

fn call(name: &str) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned())
}

#[tokio::test]
async fn a_paid_call_settles_once_and_refusals_move_nothing() {
    let bed = start().await;
    let balance = |who| bed.ledger.balance(&who);
    let unpaid = bed.client.call_tool(call("paid")).await.unwrap();
    let Some(PaymentRequired::V2(required)) = payment_required_of(&unpaid) else {
        panic!("a payment request, got {unpaid:?}")
    };
    assert_eq!(required.resource.url, "mcp://tool/paid");
    assert_eq!(required.accepts[0].amount, Amount::from(25));
    assert_eq!(bed.tools.runs.load(Ordering::SeqCst), 0);

    // Garbage in `_meta`: a payment request with a reason, never a protocol error.
    let mut garbage = call("paid");
    garbage
        .meta
        .get_or_insert_with(RequestMetaObject::new)
        .insert(PAYMENT_META_KEY.into(), serde_json::json!([1, 2, 3]));
    let refused = bed.client.call_tool(garbage).await.unwrap();
    let Some(PaymentRequired::V2(doc)) = payment_required_of(&refused) else {
        panic!("a payment request, got {refused:?}")
    };
    assert!(doc.error.is_some_and(|e| e.contains(PAYMENT_META_KEY)));

    // A tool that fails with a protocol error: a tool error, nothing settled.
    let paying = PayingClient::new(buyer(&bed));
    let broken = paying.call_tool(&bed.client, call("broken")).await.unwrap();
    assert_eq!(broken.result.is_error, Some(true));
    assert!(broken.settlement().is_none());
    assert_eq!(balance(bed.pay_to), Amount::ZERO);

    let paid = paying.call_tool(&bed.client, call("paid")).await.unwrap();
    assert_eq!(paid.result.is_error, Some(false));
    assert!(paid.settlement().is_some_and(|s| s.success));
    assert_eq!(balance(bed.pay_to), Amount::from(25));
    assert_eq!(balance(bed.payer), Amount::from(1000 - 25));
    assert_eq!(bed.tools.runs.load(Ordering::SeqCst), 2);

    // A route that settles before its tool runs: the tool's failure carries the settlement.
    let settled_first = paying
        .call_tool(&bed.client, call("broken-settled-first"))
        .await
        .unwrap();
    assert_eq!(settled_first.result.is_error, Some(true));
    assert!(settled_first.settlement().is_some_and(|s| s.success));
    assert_eq!(balance(bed.pay_to), Amount::from(50));
    assert_eq!(bed.tools.runs.load(Ordering::SeqCst), 3);
}
