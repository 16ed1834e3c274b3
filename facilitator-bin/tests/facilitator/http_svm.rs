//! The built `x402-facilitator` binary against solana-test-validator: configured from a file (the
//! network named by the validator's genesis hash, the fee payer from `$VAR`), it advertises its
//! fee payer and verifies and settles an SPL payment over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{post, start};
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_core::wire::PaymentRequirements;
use x402_core::{Amount, Network, Price, PriceRequest};
use x402_core::{BuyerRole as _, SellerRole as _};
use x402_tests::solana::SvmTestBed;
use x402_tests::solana::exact::{request_v2, rpc};

#[tokio::test]
async fn svm_verify_and_settle_over_http() {
    let bed = SvmTestBed::shared().await;
    let fee_payer = Keypair::new();
    bed.airdrop(&fee_payer.pubkey(), 1_000_000_000).await;
    let seller = bed.new_token_holder(0, 0).await;
    let buyer = bed.new_token_holder(1_000_000_000, 1_000_000).await;
    let mint = bed.spl_token_mint();
    let genesis = bed.rpc().get_genesis_hash().await.unwrap().to_string();
    let network = Network::parse(&format!("solana:{}", &genesis[..32])).unwrap();
    let config = format!(
        r#"
listen = "127.0.0.1:0"
auth = "none"
[store]
url = "memory"
[networks."{network}"]
rpc_urls = ["$X402_TEST_SOL_RPC"]
signer_keys = ["$X402_TEST_SOL_FEE_PAYER"]
[networks."{network}".schemes.exact]
assets = ["{mint}"]
"#,
        mint = mint.address
    );
    let envs = vec![
        ("X402_TEST_SOL_RPC", bed.rpc_url().to_owned()),
        ("X402_TEST_SOL_FEE_PAYER", fee_payer.to_base58_string()),
    ];
    let server = start(&config, &envs);

    let (_, supported) = crate::common::get(&server.url, "/supported").await;
    assert!(
        !supported.contains(&fee_payer.to_base58_string()),
        "key leaked"
    );
    let supported: x402_core::wire::SupportedResponse = serde_json::from_str(&supported).unwrap();
    let kind = supported
        .kinds
        .into_iter()
        .find(|k| k.network == network.as_str())
        .unwrap();
    let extra = kind.extra.as_ref().unwrap().get().to_owned();
    assert!(extra.contains(&fee_payer.pubkey().to_string()), "{extra}");

    let requirements = scheme_exact_svm::Seller::new()
        .with_rpc(rpc(bed.rpc_url()))
        .requirements(&PriceRequest {
            network: network.clone(),
            price: Price::Atomic(Amount::from(2_500)),
            pay_to: seller.pubkey().to_string(),
            asset: Some(mint.address.to_string()),
            max_timeout_seconds: None,
            facilitator_kind: Some(kind),
        })
        .await
        .unwrap();
    let view = PaymentRequirements::V2(requirements.clone());
    let payload = scheme_exact_svm::Buyer::new(
        buyer.insecure_clone(),
        rpc(bed.rpc_url()),
        scheme_exact_svm::buyer::BuyerOptions::default(),
    )
    .sign(&view.view().unwrap())
    .await
    .unwrap();
    let body = serde_json::to_vec(&request_v2(&requirements, payload)).unwrap();

    let (status, v) = post(&server.url, "/verify", body.clone()).await;
    assert_eq!(
        (status, &v["isValid"]),
        (200, &serde_json::json!(true)),
        "{v}"
    );
    let paid_before = bed.token_balance(&seller.pubkey(), &mint.address).await;
    let (status, s) = post(&server.url, "/settle", body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(s["network"], network.as_str());
    assert_eq!(
        bed.token_balance(&seller.pubkey(), &mint.address).await,
        paid_before + 2_500
    );
    let (_, again) = post(&server.url, "/settle", body).await;
    assert_eq!(again["errorReason"], "duplicate_settlement", "{again}");
}
