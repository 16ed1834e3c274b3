//! Interop with the official Python x402 MCP implementation on Solana (solana-test-validator,
//! `x402.mcp` with the SDK's `exact` SVM mechanism, PyPI `x402[svm]`): its client pays the
//! example binary over stdio in SPL Token, and our client pays a server built with its helpers
//! over streamable HTTP in Token-2022, both through our facilitator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use scheme_exact_svm::BuyerOptions;
use serde_json::{Value, json};
use solana_commitment_config::CommitmentConfig;
use solana_pubkey::Pubkey;
use solana_signer::Signer as _;
use x402_buyer::{Buyer, KnownAsset, Policy};
use x402_core::wire::PaymentRequired;
use x402_core::{BuyerRole as _, Registry};
use x402_mcp::{PayingClient, payment_required_of};
use x402_tests::e2e::serve_facilitator;
use x402_tests::python::PythonScript;
use x402_tests::solana::TestMint;
use x402_tests::solana::exact::{SvmHarness, rpc};

use crate::python::run_mcp_pay;

/// The price of the paid tools here: `0.01` of a 6-decimal mint.
const UNITS: u64 = 10_000;

/// The (buyer, seller) balances of `mint`.
async fn balances(h: &SvmHarness, mint: &TestMint) -> (u64, u64) {
    (
        h.bed.token_balance(&h.buyer.pubkey(), &mint.address).await,
        h.bed.token_balance(&h.seller.pubkey(), &mint.address).await,
    )
}

/// Waits until the account `mint` is finalized. The official Python SVM client reads the mint
/// (its decimals and token program) at solana-py's default commitment, `finalized`, which a mint
/// the bed has just made reaches only some 32 slots later.
async fn finalized(h: &SvmHarness, mint: &Pubkey) {
    let rpc = h.bed.rpc();
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        let found = rpc
            .get_account_with_commitment(mint, CommitmentConfig::finalized())
            .await
            .is_ok_and(|r| r.value.is_some());
        if found {
            return;
        }
        assert!(Instant::now() < give_up, "mint {mint} never finalized");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn the_official_python_client_pays_the_example_server_on_solana() {
    let h = SvmHarness::start().await;
    let spl = h.bed.spl_token_mint();
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let server_env = json!({
        "X402_FACILITATOR_URL": facilitator_url,
        "X402_NETWORK": h.network.as_str(),
        "X402_PAY_TO": h.seller.pubkey().to_string(),
        "X402_PRICE": "0.01",
        "X402_ASSET": spl.address.to_string(),
        "X402_ASSET_DECIMALS": "6",
    });
    let payer = [
        (
            "X402_INTEROP_SOLANA_KEY",
            format!("{:?}", h.buyer.to_bytes().to_vec()),
        ),
        ("SOLANA_RPC_URL", h.bed.rpc_url().to_owned()),
        (
            "X402_INTEROP_ALLOWED",
            json!([{
                "network": h.network.as_str(),
                "asset": spl.address.to_string(),
                "max_amount_per_payment": UNITS.to_string(),
            }])
            .to_string(),
        ),
    ];
    finalized(&h, &spl.address).await;
    let before = balances(&h, &spl).await;
    let steps = json!([
        {"tool": "joke", "mode": "probe"},
        {"tool": "joke", "mode": "pay"},
        {"tool": "joke", "mode": "tamper"},
    ]);
    let answers = run_mcp_pay(
        &payer,
        &["stdio", env!("CARGO_BIN_EXE_paid-mcp-server")],
        steps,
        Some(server_env),
    )
    .await;
    assert_eq!(answers.len(), 3, "{answers:?}");

    // The payment request, as their client reads it: the mint, the fee payer our facilitator
    // names.
    let required = &answers[0]["payment_required"];
    assert_eq!(answers[0]["is_error"], true, "{}", answers[0]);
    let offer = &required["accepts"][0];
    assert_eq!(offer["network"], h.network.as_str(), "{required}");
    assert_eq!(offer["asset"], spl.address.to_string(), "{required}");
    assert_eq!(offer["amount"], UNITS.to_string(), "{required}");
    assert!(offer["extra"]["feePayer"].is_string(), "{required}");

    // Paid: the joke, and the settlement in _meta as their client reads it.
    let paid = &answers[1];
    assert_eq!(paid["is_error"], false, "{paid}");
    assert_eq!(paid["payment_made"], true, "{paid}");
    assert_eq!(paid["texts"][0], x402_tests::mcp::JOKE, "{paid}");
    let settlement = &paid["payment_response"];
    assert_eq!(settlement["success"], true, "{paid}");
    assert_eq!(settlement["network"], h.network.as_str(), "{paid}");
    assert_eq!(settlement["payer"], h.buyer.pubkey().to_string(), "{paid}");
    // A base58 ed25519 signature.
    let signature = settlement["transaction"].as_str().unwrap();
    assert!((80..=90).contains(&signature.len()), "{paid}");

    // A transaction whose signature is broken: the payment request again, nothing moved.
    let tampered = &answers[2];
    assert_eq!(tampered["is_error"], true, "{tampered}");
    assert!(tampered["payment_response"].is_null(), "{tampered}");
    assert_eq!(tampered["payment_required"]["x402Version"], 2, "{tampered}");
    assert!(
        !tampered["structured_content"]["error"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        balances(&h, &spl).await,
        (before.0 - UNITS, before.1 + UNITS),
        "paid once"
    );
}

#[tokio::test]
async fn our_client_pays_a_python_mcp_server_on_solana() {
    let h = SvmHarness::start().await;
    let t22 = h.bed.token_2022_mint();
    let facilitator_url = serve_facilitator(h.facilitator.clone()).await;
    let env = [
        ("FACILITATOR_URL", facilitator_url),
        ("NETWORK", h.network.to_string()),
        ("ASSET", t22.address.to_string()),
        ("PAY_TO", h.seller.pubkey().to_string()),
        ("AMOUNT", UNITS.to_string()),
    ];
    let (_server, url) = PythonScript::new("mcp_server.py")
        .serve_with(&["http"], &env)
        .await;
    let client =
        ().serve(StreamableHttpClientTransport::from_uri(url))
            .await
            .expect("connect over streamable HTTP");

    let unpaid = client
        .call_tool(CallToolRequestParams::new("get_weather"))
        .await
        .unwrap();
    let Some(PaymentRequired::V2(required)) = payment_required_of(&unpaid) else {
        panic!("a payment request, got {unpaid:?}")
    };
    assert_eq!(required.accepts[0].asset, t22.address.to_string());
    assert_eq!(required.accepts[0].network, h.network.as_str());

    let mut policy = Policy::default();
    policy.assets.push(KnownAsset {
        network: h.network.clone(),
        address: t22.address.to_string(),
        decimals: 6,
        symbol: "T22".into(),
    });
    let mut schemes = Registry::new();
    schemes
        .register(
            scheme_exact_svm::ANY_NETWORK,
            scheme_exact_svm::VERSIONS,
            scheme_exact_svm::Buyer::new(
                h.buyer.insecure_clone(),
                rpc(h.bed.rpc_url()),
                BuyerOptions::default(),
            )
            .into_scheme(),
        )
        .unwrap();
    let buyer = Arc::new(Buyer::new(reqwest::Client::new(), schemes, policy));
    let before = balances(&h, &t22).await;
    let paid = PayingClient::new(buyer)
        .call_tool(&client, CallToolRequestParams::new("get_weather"))
        .await
        .unwrap();
    assert_eq!(paid.result.is_error, Some(false), "{:?}", paid.result);
    let weather: Value =
        serde_json::from_str(&paid.result.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(weather["from"], "python", "{weather}");
    let settlement = paid.settlement().expect("a settlement");
    assert!(settlement.success, "{settlement:?}");
    assert_eq!(settlement.network, h.network.as_str());
    assert_eq!(settlement.payer, Some(h.buyer.pubkey().to_string()));
    assert!(
        (80..=90).contains(&settlement.transaction.len()),
        "{settlement:?}"
    );
    assert_eq!(
        balances(&h, &t22).await,
        (before.0 - UNITS, before.1 + UNITS),
        "paid once"
    );
    client.cancel().await.unwrap();
}
