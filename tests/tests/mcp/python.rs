//! Interop with the official x402 MCP implementation: `x402.mcp` of the official Python SDK
//! (PyPI `x402`, with the official MCP Python SDK, pinned in tests/interop/python/requirements.txt)
//! on anvil, both ways and over both transports:
//! * its client (`x402MCPSession`, `mcp_pay.py`) pays our paid MCP server: the example binary
//!   `paid-mcp-server` spawned by it over stdio, and our server over streamable HTTP, where a
//!   failing tool is not charged and a failed settlement reaches it in the result's `_meta`;
//! * our `PayingClient` pays a server built with its helpers (`create_payment_wrapper` on
//!   FastMCP, `mcp_server.py`) that settles through our facilitator, over stdio and streamable
//!   HTTP, and reads the failed settlement it reports;
//! * what must not happen: an unpaid call, a broken signature or an empty wallet from its client
//!   gets the transport's payment-required tool error, and nothing moves.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};
use x402_buyer::Policy;
use x402_mcp::{PayingClient, payment_required_of};
use x402_tests::e2e::{EXACT_UNITS, Shop, buyer_for, serve};
use x402_tests::evm::{USDC_NAME, USDC_VERSION};
use x402_tests::mcp::{JOKE, JokeTools, paid_tools, serve_http};
use x402_tests::python::PythonScript;

/// The private key of `signer` as `0x…` hex.
fn key_of(signer: &PrivateKeySigner) -> String {
    format!("0x{}", alloy::hex::encode(signer.to_bytes()))
}

/// The spend controls that let the Python client pay the bed's USDC (no default asset of it).
fn allowed(shop: &Shop) -> String {
    json!([{
        "network": shop.h.network.as_str(),
        "asset": shop.h.bed.usdc().to_checksum(None),
        "max_amount_per_payment": (10 * EXACT_UNITS).to_string(),
    }])
    .to_string()
}

/// Runs `mcp_pay.py` with `transport` and `steps` as `signer`; one JSON answer per step.
async fn python_pays(
    shop: &Shop,
    signer: &PrivateKeySigner,
    transport: &[&str],
    steps: Value,
    server_env: Option<Value>,
) -> Vec<Value> {
    let payer = [
        ("X402_INTEROP_KEY", key_of(signer)),
        ("X402_INTEROP_ALLOWED", allowed(shop)),
    ];
    run_mcp_pay(&payer, transport, steps, server_env).await
}

/// Runs `mcp_pay.py` with `transport` and `steps`, the payer (and what it may pay) in
/// `payer_env`, the stdio server's environment `server_env`; one JSON answer per step.
pub(crate) async fn run_mcp_pay(
    payer_env: &[(&str, String)],
    transport: &[&str],
    steps: Value,
    server_env: Option<Value>,
) -> Vec<Value> {
    let steps = steps.to_string();
    let mut args: Vec<&str> = transport.to_vec();
    args.push(&steps);
    let mut env = payer_env.to_vec();
    if let Some(server_env) = server_env {
        env.push(("MCP_SERVER_ENV", server_env.to_string()));
    }
    let lines = PythonScript::new("mcp_pay.py").run(&args, &env).await;
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Asserts that `answer` (one step of `mcp_pay.py`) is a paid success whose settlement, as the
/// Python client read it from the result's `_meta`, is a successful one on the bed by `payer`.
fn assert_settled(answer: &Value, payer: Address, network: &str) {
    assert_eq!(answer["is_error"], false, "{answer}");
    assert_eq!(answer["payment_made"], true, "{answer}");
    let settlement = &answer["payment_response"];
    assert_eq!(settlement["success"], true, "{answer}");
    assert_eq!(settlement["network"], network, "{answer}");
    assert_eq!(
        settlement["payer"],
        payer.to_checksum(None).as_str(),
        "{answer}"
    );
    let tx = settlement["transaction"].as_str().expect("a transaction");
    assert!(tx.starts_with("0x") && tx.len() == 66, "{answer}");
    // The same settlement, as sent, in the raw result's _meta.
    assert_eq!(
        answer["meta"]["x402/payment-response"]["transaction"], tx,
        "{answer}"
    );
}

/// Asserts that `answer` is the transport's payment-required tool error for `tool` at
/// [`EXACT_UNITS`], as the Python client parsed it (`payment_required`) and as sent
/// (`structured_content`), and that nothing was settled.
fn assert_payment_required(answer: &Value, tool: &str) {
    assert_eq!(answer["is_error"], true, "{answer}");
    assert!(answer["payment_response"].is_null(), "{answer}");
    let structured = &answer["structured_content"];
    assert_eq!(structured["x402Version"], 2, "{answer}");
    assert_eq!(
        structured["resource"]["url"],
        format!("mcp://tool/{tool}"),
        "{answer}"
    );
    // content[0].text is the same document.
    let text: Value = serde_json::from_str(answer["texts"][0].as_str().unwrap()).unwrap();
    assert_eq!(&text, structured, "{answer}");
    let parsed = &answer["payment_required"];
    assert_eq!(parsed["x402Version"], 2, "{answer}");
    assert_eq!(
        parsed["accepts"][0]["amount"],
        EXACT_UNITS.to_string(),
        "{answer}"
    );
    assert_eq!(parsed["accepts"][0]["scheme"], "exact", "{answer}");
}

/// The environment of the example binary `paid-mcp-server` on the shop's bed.
fn example_server_env(shop: &Shop) -> Value {
    json!({
        "X402_FACILITATOR_URL": shop.facilitator_url,
        "X402_NETWORK": shop.h.network.as_str(),
        "X402_PAY_TO": shop.h.bed.seller().address.to_checksum(None),
        "X402_PRICE": "0.01",
        "X402_ASSET": shop.h.bed.usdc().to_checksum(None),
    })
}

#[tokio::test]
async fn the_official_python_client_pays_the_example_server_over_stdio() {
    let shop = Shop::start().await;
    let b = shop.h.bed.buyer(0).clone();
    let seller = shop.h.bed.seller().address;
    let (before, seller_before) = (shop.usdc(b.address).await, shop.usdc(seller).await);
    let steps = json!([
        {"tool": "joke", "mode": "probe"},
        {"tool": "joke", "mode": "pay"},
        {"tool": "free", "mode": "pay"},
        {"tool": "priced", "arguments": {"units": 1234}, "mode": "pay"},
    ]);
    let answers = python_pays(
        &shop,
        &b.signer,
        &["stdio", env!("CARGO_BIN_EXE_paid-mcp-server")],
        steps,
        Some(example_server_env(&shop)),
    )
    .await;
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_payment_required(&answers[0], "joke");
    assert_settled(&answers[1], b.address, shop.h.network.as_str());
    assert_eq!(answers[1]["texts"][0], JOKE, "{}", answers[1]);
    // A free tool: no payment asked, none made.
    assert_eq!(answers[2]["is_error"], false, "{}", answers[2]);
    assert_eq!(answers[2]["payment_made"], false, "{}", answers[2]);
    assert_eq!(answers[2]["texts"][0], "free for all");
    // Priced by its argument: the arguments reach the price, and the payment is for it.
    assert_settled(&answers[3], b.address, shop.h.network.as_str());
    let units = U256::from(EXACT_UNITS + 1234);
    assert_eq!(shop.usdc(b.address).await, before - units);
    assert_eq!(shop.usdc(seller).await, seller_before + units);
}

#[tokio::test]
async fn the_official_python_client_pays_our_server_over_streamable_http() {
    let shop = Shop::start().await;
    let b = shop.h.bed.buyer(0).clone();
    // `drain` empties the payer's wallet while it runs: its settlement fails after a valid verify.
    let drain: x402_tests::mcp::Drain = {
        let h = shop.h.clone();
        let who = b.address;
        Arc::new(move || {
            let h = h.clone();
            Box::pin(async move {
                let all = h.usdc(who).await;
                h.bed
                    .transfer_usdc(who, h.bed.deployer().address, all)
                    .await;
            })
        })
    };
    let tools = Arc::new(JokeTools {
        drain: Some(drain),
        ..JokeTools::default()
    });
    let url = serve_http(tools.clone(), paid_tools(&shop)).await;
    let seller = shop.h.bed.seller().address;
    let (before, seller_before) = (shop.usdc(b.address).await, shop.usdc(seller).await);
    let steps = json!([
        {"tool": "joke", "mode": "probe"},
        {"tool": "joke", "mode": "pay"},
        {"tool": "fail", "mode": "pay"},
        {"tool": "drain", "mode": "pay"},
    ]);
    let answers = python_pays(&shop, &b.signer, &["http", &url], steps, None).await;
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_payment_required(&answers[0], "joke");
    assert_settled(&answers[1], b.address, shop.h.network.as_str());
    assert_eq!(answers[1]["texts"][0], JOKE, "{}", answers[1]);
    // A tool that fails after a valid payment: its error, and no charge.
    let failed = &answers[2];
    assert_eq!(failed["is_error"], true, "{failed}");
    assert_eq!(failed["payment_made"], true, "{failed}");
    assert!(failed["payment_response"].is_null(), "{failed}");
    assert!(failed["payment_required"].is_null(), "{failed}");
    assert_eq!(failed["texts"][0], "the tool broke", "{failed}");
    assert_eq!(
        shop.usdc(b.address).await,
        U256::ZERO,
        "drained by the tool"
    );
    // A settlement that fails after the tool ran: the payment request, the failed settlement
    // read by their client from the result's _meta, the tool's content withheld.
    let unsettled = &answers[3];
    assert_eq!(unsettled["is_error"], true, "{unsettled}");
    assert_eq!(unsettled["payment_made"], true, "{unsettled}");
    assert_eq!(
        unsettled["payment_required"]["x402Version"], 2,
        "{unsettled}"
    );
    let settlement = &unsettled["payment_response"];
    assert_eq!(settlement["success"], false, "{unsettled}");
    assert!(settlement["errorReason"].is_string(), "{unsettled}");
    assert!(
        !unsettled
            .to_string()
            .contains(x402_tests::mcp::DRAIN_SECRET),
        "{unsettled}"
    );

    assert_eq!(tools.jokes.load(Ordering::SeqCst), 1);
    assert_eq!(tools.failures.load(Ordering::SeqCst), 1);
    assert_eq!(tools.drains.load(Ordering::SeqCst), 1);
    // Verified three times (joke, fail, drain), settled twice (joke, drain: failed).
    assert_eq!(shop.counting.calls(), (3, 2));
    let units = U256::from(EXACT_UNITS);
    assert!(before > units);
    assert_eq!(shop.usdc(seller).await, seller_before + units, "paid once");
}

#[tokio::test]
async fn bad_payments_from_the_official_python_client_are_refused_and_nothing_moves() {
    let shop = Shop::start().await;
    let tools = Arc::new(JokeTools::default());
    let url = serve_http(tools.clone(), paid_tools(&shop)).await;
    let b = shop.h.bed.buyer(1).clone();
    let seller = shop.h.bed.seller().address;
    let (before, seller_before) = (shop.usdc(b.address).await, shop.usdc(seller).await);

    // Unpaid, then a payment whose signature is broken: both the payment-required tool error.
    let steps = json!([
        {"tool": "joke", "mode": "probe"},
        {"tool": "joke", "mode": "tamper"},
    ]);
    let answers = python_pays(&shop, &b.signer, &["http", &url], steps, None).await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_payment_required(&answers[0], "joke");
    let tampered = &answers[1];
    assert_payment_required(tampered, "joke");
    let reason = tampered["structured_content"]["error"].as_str().unwrap();
    assert!(!reason.is_empty(), "{tampered}");
    assert_eq!(
        shop.counting.calls(),
        (1, 0),
        "verified once, never settled"
    );

    // A wallet without USDC pays through the session's own flow: refused at verify.
    let poor = PrivateKeySigner::random();
    let steps = json!([{"tool": "joke", "mode": "pay"}]);
    let answers = python_pays(&shop, &poor, &["http", &url], steps, None).await;
    let refused = &answers[0];
    assert_eq!(refused["payment_made"], true, "{refused}");
    assert_payment_required(refused, "joke");
    let reason = refused["structured_content"]["error"].as_str().unwrap();
    assert!(reason.contains("insufficient"), "{refused}");

    assert_eq!(tools.jokes.load(Ordering::SeqCst), 0, "the tool never ran");
    assert_eq!(shop.counting.calls(), (2, 0), "never settled");
    assert_eq!(shop.usdc(b.address).await, before, "nothing moved");
    assert_eq!(shop.usdc(seller).await, seller_before, "nothing moved");
}

/// The environment of `mcp_server.py` on the shop's bed, through our facilitator.
fn python_server_env(shop: &Shop, drain_url: Option<String>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("FACILITATOR_URL", shop.facilitator_url.clone()),
        ("NETWORK", shop.h.network.to_string()),
        ("ASSET", shop.h.bed.usdc().to_checksum(None)),
        ("PAY_TO", shop.h.bed.seller().address.to_checksum(None)),
        ("AMOUNT", EXACT_UNITS.to_string()),
        ("TOKEN_NAME", USDC_NAME.to_owned()),
        ("TOKEN_VERSION", USDC_VERSION.to_owned()),
    ];
    if let Some(url) = drain_url {
        env.push(("DRAIN_URL", url));
    }
    env
}

fn call(name: &str) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned())
}

fn city(name: &str, city: &str) -> CallToolRequestParams {
    let mut arguments = JsonObject::new();
    arguments.insert("city".into(), city.into());
    let mut params = call(name);
    params.arguments = Some(arguments);
    params
}

/// Our client pays `get_weather` of the Python server behind `client` once and checks the
/// weather, the settlement and the balances; the free `ping` costs nothing.
async fn our_client_pays(shop: &Shop, client: &RunningService<RoleClient, ()>, buyer: usize) {
    let b = shop.h.bed.buyer(buyer).clone();
    let seller = shop.h.bed.seller().address;
    let (before, seller_before) = (shop.usdc(b.address).await, shop.usdc(seller).await);

    let unpaid = client
        .call_tool(city("get_weather", "Porto"))
        .await
        .unwrap();
    let Some(x402_core::wire::PaymentRequired::V2(required)) = payment_required_of(&unpaid) else {
        panic!("a payment request, got {unpaid:?}")
    };
    assert_eq!(
        required.accepts[0].amount.to_string(),
        EXACT_UNITS.to_string()
    );
    assert_eq!(required.resource.url, "mcp://tool/get_weather");

    let buyer = Arc::new(buyer_for(&shop.h, &b.signer, Policy::default()));
    let paying = PayingClient::new(buyer.clone());
    let paid = paying
        .call_tool(client, city("get_weather", "Porto"))
        .await
        .unwrap();
    assert_eq!(paid.result.is_error, Some(false), "{:?}", paid.result);
    let text = &paid.result.content[0].as_text().expect("text").text;
    let weather: Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        weather,
        json!({"city": "Porto", "weather": "sunny", "from": "python"})
    );
    let settlement = paid.settlement().expect("a settlement");
    assert!(settlement.success, "{settlement:?}");
    assert!(settlement.transaction.starts_with("0x"));
    assert_eq!(settlement.network, shop.h.network.as_str());
    let units = U256::from(EXACT_UNITS);
    assert_eq!(shop.usdc(b.address).await, before - units);
    assert_eq!(shop.usdc(seller).await, seller_before + units);
    assert_eq!(
        buyer.spent(&shop.h.network, &shop.h.bed.usdc().to_checksum(None)),
        x402_core::Amount::from(EXACT_UNITS)
    );

    // A free tool of theirs: no payment.
    let free = paying.call_tool(client, call("ping")).await.unwrap();
    assert!(free.payment.is_none());
    assert_eq!(free.result.content[0].as_text().unwrap().text, "pong");
    assert_eq!(shop.usdc(b.address).await, before - units);
}

#[tokio::test]
async fn our_client_pays_a_python_mcp_server_over_stdio() {
    let shop = Shop::start().await;
    let command =
        PythonScript::new("mcp_server.py").command(&["stdio"], &python_server_env(&shop, None));
    let client =
        ().serve(TokioChildProcess::new(command).expect("spawn mcp_server.py"))
            .await
            .expect("connect over stdio");
    our_client_pays(&shop, &client, 0).await;
    client.cancel().await.unwrap();
}

/// A hook that empties `who`'s USDC when called (`GET /`), so a payment verified before it fails
/// to settle after it.
async fn drain_hook(shop: &Shop, who: Address) -> String {
    let h = shop.h.clone();
    let drain = move || {
        let h = h.clone();
        async move {
            let all = h.usdc(who).await;
            h.bed
                .transfer_usdc(who, h.bed.deployer().address, all)
                .await;
            "drained"
        }
    };
    serve(axum::Router::new().route("/", axum::routing::get(drain))).await
}

#[tokio::test]
async fn our_client_pays_a_python_mcp_server_over_streamable_http() {
    let shop = Shop::start().await;
    let poor = shop.h.bed.buyer(1).clone();
    let drain = drain_hook(&shop, poor.address).await;
    let (_server, url) = PythonScript::new("mcp_server.py")
        .serve_with(&["http"], &python_server_env(&shop, Some(drain)))
        .await;
    let client =
        ().serve(StreamableHttpClientTransport::from_uri(url))
            .await
            .expect("connect over streamable HTTP");
    our_client_pays(&shop, &client, 0).await;

    // The payer's wallet is emptied while the tool runs: their server withholds the weather and
    // reports the failed settlement; our client refuses it as such, and nothing was received.
    let seller = shop.h.bed.seller().address;
    let seller_before = shop.usdc(seller).await;
    let buyer = Arc::new(buyer_for(&shop.h, &poor.signer, Policy::default()));
    let err = PayingClient::new(buyer)
        .call_tool(&client, call("get_weather_drain"))
        .await
        .unwrap_err();
    let x402_mcp::Error::Refused { error, settlement } = &err else {
        panic!("refused, got {err}")
    };
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("settlement failed")),
        "{err}"
    );
    assert!(settlement.as_ref().is_some_and(|s| !s.success), "{err}");
    assert!(!format!("{err:?}").contains("a secret that must not leak"));
    assert_eq!(
        shop.usdc(poor.address).await,
        U256::ZERO,
        "drained by the hook"
    );
    assert_eq!(
        shop.usdc(seller).await,
        seller_before,
        "nothing was received"
    );
    client.cancel().await.unwrap();
}
