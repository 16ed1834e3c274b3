//! stdio: our client pays the example server binary (`paid-mcp-server`) run as a child process.

use std::sync::Arc;

use alloy::primitives::U256;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use x402_buyer::Policy;
use x402_core::wire::PaymentRequired;
use x402_mcp::{PayingClient, payment_required_of};
use x402_tests::e2e::{EXACT_UNITS, Shop, buyer_for};
use x402_tests::mcp::JOKE;

#[tokio::test]
async fn our_client_pays_the_example_server_over_stdio() {
    let shop = Shop::start().await;
    let b = shop.h.bed.buyer(4).clone();
    let seller = shop.h.bed.seller().address;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_paid-mcp-server"));
    command
        .env("X402_FACILITATOR_URL", &shop.facilitator_url)
        .env("X402_NETWORK", shop.h.network.as_str())
        .env("X402_PAY_TO", seller.to_checksum(None))
        .env("X402_PRICE", "0.01")
        .env("X402_ASSET", shop.h.bed.usdc().to_checksum(None));
    let client =
        ().serve(TokioChildProcess::new(command).expect("spawn paid-mcp-server"))
            .await
            .expect("connect over stdio");
    let (before, seller_before) = (shop.usdc(b.address).await, shop.usdc(seller).await);

    let unpaid = client
        .call_tool(CallToolRequestParams::new("joke"))
        .await
        .unwrap();
    let Some(PaymentRequired::V2(required)) = payment_required_of(&unpaid) else {
        panic!("a payment request, got {unpaid:?}")
    };
    assert_eq!(
        required.accepts[0].amount.to_string(),
        EXACT_UNITS.to_string()
    );

    let buyer = Arc::new(buyer_for(&shop.h, &b.signer, Policy::default()));
    let paid = PayingClient::new(buyer)
        .call_tool(&client, CallToolRequestParams::new("joke"))
        .await
        .unwrap();
    assert_eq!(paid.result.content[0].as_text().unwrap().text, JOKE);
    assert!(paid.settlement().is_some_and(|s| s.success));
    let units = U256::from(EXACT_UNITS);
    assert_eq!(shop.usdc(b.address).await, before - units);
    assert_eq!(shop.usdc(seller).await, seller_before + units);
    client.cancel().await.unwrap();
}
