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
    svm_over_http(None).await;
}

/// `[hooks.deny_list]` on Solana: the buyer's key listed refuses it (`payer_denied`), the
/// seller's refuses every payment to it (`recipient_denied`), with nothing sent; keys match
/// exactly, so the buyer's key in another case does not match and the payment goes through.
#[tokio::test]
async fn svm_deny_list_over_http() {
    let dir = tempfile::tempdir().unwrap();
    svm_over_http(Some(dir.path().join("deny.txt"))).await;
}

async fn svm_over_http(deny_list: Option<std::path::PathBuf>) {
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
    let mut config = config;
    if let Some(path) = &deny_list {
        std::fs::write(path, format!("{}\n", buyer.pubkey())).unwrap();
        config.push_str(&format!(
            "[hooks.deny_list]\npath = {:?}\nreload_interval_ms = 50\n",
            path.display().to_string()
        ));
    }
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

    if let Some(path) = &deny_list {
        let write = |text: String| {
            let next = path.with_extension("next");
            std::fs::write(&next, text).unwrap();
            std::fs::rename(&next, path).unwrap();
        };
        let lamports = bed.rpc().get_balance(&fee_payer.pubkey()).await.unwrap();
        let tokens = bed.token_balance(&seller.pubkey(), &mint.address).await;
        for (listed, reason) in [
            (buyer.pubkey().to_string(), "payer_denied"),
            (seller.pubkey().to_string(), "recipient_denied"),
        ] {
            write(format!("{listed}\n"));
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let (_, v) = post(&server.url, "/verify", body.clone()).await;
            assert_eq!(v["isValid"], false, "{v}");
            assert_eq!(v["invalidReason"], reason, "{v}");
            assert_eq!(v["payer"], buyer.pubkey().to_string(), "{v}");
            let (_, s) = post(&server.url, "/settle", body.clone()).await;
            assert_eq!(s["success"], false, "{s}");
            assert_eq!(s["errorReason"], reason, "{s}");
            assert_eq!(s["transaction"], "", "{s}");
        }
        assert_eq!(
            bed.rpc().get_balance(&fee_payer.pubkey()).await.unwrap(),
            lamports,
            "the fee payer paid for nothing"
        );
        assert_eq!(
            bed.token_balance(&seller.pubkey(), &mint.address).await,
            tokens
        );
        // Base58 is case-sensitive: the buyer's key with its letters' case swapped (where the
        // result stays base58) is another key, or no key at all; either way not the buyer.
        const B58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let swapped: String = buyer
            .pubkey()
            .to_string()
            .chars()
            .map(|c| {
                let s = if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                };
                if B58.contains(s) { s } else { c }
            })
            .collect();
        assert_ne!(swapped, buyer.pubkey().to_string());
        let other_case = if facilitator_bin::hooks::Entries::parse(&swapped).is_ok() {
            swapped
        } else {
            "# the swapped key is no 32-byte key".to_owned()
        };
        write(format!("{other_case}\n"));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

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
