//! The official MCP TypeScript SDK's client with the official x402 client (`mcp-pay.mjs`) pays a
//! tool of our paid MCP server over streamable HTTP.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy::primitives::U256;
use x402_tests::e2e::{EXACT_UNITS, NodeScript, Shop};
use x402_tests::mcp::{JOKE, JokeTools, paid_tools, serve_http};

#[tokio::test]
async fn the_official_mcp_and_x402_clients_pay_our_server() {
    let shop = Shop::start().await;
    let tools = Arc::new(JokeTools::default());
    let url = serve_http(tools.clone(), paid_tools(&shop)).await;
    let b = shop.h.bed.buyer(0).clone();
    let seller = shop.h.bed.seller().address;
    let (before, seller_before) = (shop.usdc(b.address).await, shop.usdc(seller).await);
    let key = format!("0x{}", alloy::hex::encode(b.signer.to_bytes()));
    let lines = NodeScript::new("mcp-pay.mjs")
        .run(&[&url, "joke"], &[("X402_INTEROP_KEY", key)])
        .await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let answer: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let unpaid = &answer["unpaid"];
    assert_eq!(unpaid["isError"], true, "{answer}");
    assert_eq!(unpaid["structuredContent"]["x402Version"], 2, "{answer}");
    let paid = &answer["paid"];
    assert_ne!(paid["isError"], true, "{answer}");
    assert_eq!(paid["content"][0]["text"], JOKE, "{answer}");
    let settlement = &paid["_meta"]["x402/payment-response"];
    assert_eq!(settlement["success"], true, "{answer}");
    assert!(
        settlement["transaction"]
            .as_str()
            .unwrap()
            .starts_with("0x")
    );
    assert_eq!(tools.jokes.load(Ordering::SeqCst), 1);
    let units = U256::from(EXACT_UNITS);
    assert_eq!(shop.usdc(b.address).await, before - units);
    assert_eq!(shop.usdc(seller).await, seller_before + units);
    assert_eq!(shop.counting.calls(), (1, 1));
}

/// Our client pays the `weather` tool of `mcp-server.mjs` (the official MCP and x402 SDKs) through
/// our facilitator.
#[tokio::test]
async fn our_client_pays_a_server_built_with_the_official_sdks() {
    use rmcp::ServiceExt as _;
    use rmcp::model::CallToolRequestParams;
    use rmcp::transport::StreamableHttpClientTransport;
    use x402_buyer::Policy;
    use x402_mcp::{PayingClient, payment_required_of};
    use x402_tests::e2e::buyer_for;
    use x402_tests::evm::{USDC_NAME, USDC_VERSION};

    let shop = Shop::start().await;
    let b = shop.h.bed.buyer(1).clone();
    let seller = shop.h.bed.seller().address;
    let env = [
        ("FACILITATOR_URL", shop.facilitator_url.clone()),
        ("NETWORK", shop.h.network.to_string()),
        ("ASSET", shop.h.bed.usdc().to_checksum(None)),
        ("PAY_TO", seller.to_checksum(None)),
        ("AMOUNT", EXACT_UNITS.to_string()),
        ("TOKEN_NAME", USDC_NAME.to_owned()),
        ("TOKEN_VERSION", USDC_VERSION.to_owned()),
    ];
    let (_server, url) = NodeScript::new("mcp-server.mjs").serve(&env).await;
    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{url}/mcp"
        )))
        .await
        .expect("connect");
    let (before, seller_before) = (shop.usdc(b.address).await, shop.usdc(seller).await);
    let unpaid = client
        .call_tool(CallToolRequestParams::new("weather"))
        .await
        .unwrap();
    assert!(payment_required_of(&unpaid).is_some(), "{unpaid:?}");

    let buyer = Arc::new(buyer_for(&shop.h, &b.signer, Policy::default()));
    let paid = PayingClient::new(buyer)
        .call_tool(&client, CallToolRequestParams::new("weather"))
        .await
        .unwrap();
    assert_eq!(
        paid.result.content[0].as_text().unwrap().text,
        "sunny, from node"
    );
    let settlement = paid.settlement().expect("a settlement");
    assert!(settlement.success, "{settlement:?}");
    assert!(settlement.transaction.starts_with("0x"));
    let units = U256::from(EXACT_UNITS);
    assert_eq!(shop.usdc(b.address).await, before - units);
    assert_eq!(shop.usdc(seller).await, seller_before + units);
    client.cancel().await.unwrap();
}
