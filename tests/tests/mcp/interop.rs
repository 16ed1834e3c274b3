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
