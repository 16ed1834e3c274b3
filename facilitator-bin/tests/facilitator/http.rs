//! The built `x402-facilitator` binary against anvil with real USDC: verify and settle over HTTP,
//! malformed bodies, metrics, SIGTERM during a settle, start-up failures, the example config.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use std::process::Command;

use crate::common::{config, get, oversized_status, post, run, start};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::wait;

const EXAMPLE: &str = include_str!("../../facilitator.example.toml");
const BASE_SEPOLIA_USDC: &str = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";

#[tokio::test]
async fn verify_settle_metrics_and_bad_bodies_over_http() {
    let h = ExactHarness::start().await;
    let (text, envs) = config(&h);
    let server = start(&text, &envs);
    let url = server.url.clone();
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;

    for method in [TransferMethod::Eip3009, TransferMethod::Permit2] {
        if method == TransferMethod::Permit2 {
            h.bed
                .approve_usdc(buyer.address(), x402_tests::evm::PERMIT2_ADDRESS, U256::MAX)
                .await;
        }
        let req = h.requirements("0.25", method).await;
        for request in [h.pay_v2(&buyer, &req).await, h.pay_v1(&buyer, &req).await] {
            if method == TransferMethod::Permit2
                && matches!(
                    request.payment_payload,
                    x402_core::wire::PaymentPayload::V1(_)
                )
            {
                continue; // Permit2 is a v2 method
            }
            let body = serde_json::to_vec(&request).unwrap();
            let (before_b, before_s) = (h.usdc(buyer.address()).await, h.usdc(seller).await);
            let (status, v) = post(&url, "/verify", body.clone()).await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["isValid"], true, "{v}");
            let (status, s) = post(&url, "/settle", body.clone()).await;
            assert_eq!(status, 200, "{s}");
            assert_eq!(s["success"], true, "{s}");
            assert_eq!(
                h.usdc(buyer.address()).await,
                before_b - U256::from(250_000)
            );
            assert_eq!(h.usdc(seller).await, before_s + U256::from(250_000));
            // A replay is a 200 refusal with the reason, payer and network filled.
            let (status, again) = post(&url, "/settle", body).await;
            assert_eq!(status, 200);
            assert_eq!(again["success"], false);
            assert_eq!(again["errorReason"], "duplicate_settlement", "{again}");
            assert!(
                again["payer"].is_string() && again["network"].is_string(),
                "{again}"
            );
        }
    }

    // Malformed bodies: 4xx with a message, and the process stays up.
    let valid = serde_json::to_vec(
        &h.pay_v2(
            &buyer,
            &h.requirements("0.01", TransferMethod::Eip3009).await,
        )
        .await,
    )
    .unwrap();
    let truncated = valid[..valid.len() / 2].to_vec();
    let wrong_types = String::from_utf8(valid.clone()).unwrap().replacen(
        "\"amount\":\"10000\"",
        "\"amount\":10000",
        1,
    );
    for (what, body, want) in [
        ("truncated", truncated, 400),
        ("wrong types", wrong_types.into_bytes(), 400),
        ("not json", b"hello".to_vec(), 400),
    ] {
        for route in ["/verify", "/settle"] {
            let (status, body) = post(&url, route, body.clone()).await;
            assert_eq!(status, want, "{what} {route}: {body}");
        }
    }
    // Ten megabytes: refused from the declared length, before the body is read.
    for route in ["/verify", "/settle"] {
        assert_eq!(
            oversized_status(&url, route, 10 * 1024 * 1024).await,
            413,
            "{route}"
        );
    }
    let (status, _) = get(&url, "/health").await;
    assert_eq!(status, 200);
    let (status, ready) = get(&url, "/ready").await;
    assert_eq!(status, 200, "{ready}");
    // Within the interval /ready answers the last report: no further chain probe (the probe
    // count is checked with the metrics below).
    for _ in 0..3 {
        let (status, again) = get(&url, "/ready").await;
        assert_eq!((status, &again), (200, &ready));
    }
    let (status, supported) = get(&url, "/supported").await;
    assert_eq!(status, 200);
    let supported: serde_json::Value = serde_json::from_str(&supported).unwrap();
    // exact v1 + v2 and upto v2, upto naming its settling facilitator.
    assert_eq!(
        supported["kinds"].as_array().unwrap().len(),
        3,
        "{supported}"
    );
    let upto_kind = supported["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scheme"] == "upto")
        .unwrap();
    assert_eq!(
        upto_kind["extra"]["facilitatorAddress"],
        h.bed.facilitator().address.to_checksum(None)
    );
    assert_eq!(
        supported["signers"]["eip155:*"][0],
        h.bed.facilitator().address.to_checksum(None)
    );

    // Made-up networks and schemes are answered, and counted under `other`: labels come from the
    // configuration only, so such strings cannot grow the metrics.
    let text = String::from_utf8(valid.clone()).unwrap();
    for n in 0..5 {
        for made_up in [
            text.replace("eip155:84532", &format!("eip155:42{n}")),
            text.replace("\"exact\"", &format!("\"made-up-{n}\"")),
        ] {
            let (status, v) = post(&url, "/verify", made_up.into_bytes()).await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["isValid"], false, "{v}");
        }
    }

    let (status, metrics) = get(&url, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        !metrics.contains("eip155:420") && !metrics.contains("made-up"),
        "{metrics}"
    );
    for needle in [
        r#"x402_requests_total{route="verify",scheme="other",network="other",outcome="invalid",reason="invalid_network"} 5"#,
        r#"x402_requests_total{route="verify",scheme="exact",network="eip155:84532",outcome="valid",reason=""}"#,
        r#"x402_requests_total{route="verify",scheme="exact",network="base-sepolia",outcome="valid",reason=""} 1"#,
        r#"x402_requests_total{route="settle",scheme="exact",network="eip155:84532",outcome="duplicate",reason="duplicate_settlement"} 2"#,
        r#"x402_requests_total{route="verify",scheme="",network="",outcome="bad_request",reason="invalid_payload"}"#,
        r#"x402_settlements_total{scheme="exact",network="eip155:84532",outcome="success"} 2"#,
        r#"x402_request_duration_seconds_bucket{route="settle",scheme="exact",network="eip155:84532",le="+Inf"}"#,
        r#"x402_request_duration_seconds_count{route="verify",scheme="exact",network="eip155:84532"}"#,
        r#"x402_rpc_up{network="eip155:84532"} 1"#,
        // One readiness probe per configured scheme (exact and upto) on the network, for four
        // calls of /ready.
        r#"x402_rpc_probe_duration_seconds_count{network="eip155:84532"} 2"#,
        "x402_signer_balance{network=\"eip155:84532\",address=",
        r#"x402_rpc_requests_total{network="eip155:84532",endpoint="0",method="eth_call",outcome="ok"}"#,
        r#"x402_rpc_requests_total{network="eip155:84532",endpoint="0",method="eth_sendRawTransaction",outcome="ok"}"#,
        // Settlements are confirmed from block-level reads (x402_evm::blocks), not receipt polls.
        r#"x402_rpc_duration_seconds_count{network="eip155:84532",method="eth_getBlockReceipts"}"#,
    ] {
        assert!(metrics.contains(needle), "missing {needle}\n{metrics}");
    }
}

#[tokio::test]
async fn sigterm_during_a_settle_answers_it_before_exiting() {
    let h = ExactHarness::start().await;
    let (text, envs) = config(&h);
    let mut server = start(&text, &envs);
    let buyer = h.bed.buyer(1).signer.clone();
    let req = h.requirements("0.01", TransferMethod::Eip3009).await;
    let body = serde_json::to_vec(&h.pay_v2(&buyer, &req).await).unwrap();
    // Hold the settle in its receipt wait: no mining until after the signal.
    let provider = h.bed.provider();
    let _: serde_json::Value = provider
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .unwrap();
    let url = server.url.clone();
    let settle = tokio::spawn(async move { post(&url, "/settle", body).await });
    // Wait until the transaction is in the pool, then signal.
    let signer = h.bed.facilitator().address;
    wait::until(
        "the settle's transaction reaches the pool",
        wait::HANG_GUARD,
        || async {
            let pending = provider
                .get_transaction_count(signer)
                .pending()
                .await
                .unwrap();
            let latest = provider.get_transaction_count(signer).await.unwrap();
            pending > latest
        },
    )
    .await;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The server has acted on the signal once it refuses new connections (graceful shutdown
    // drops the listener); the settle in flight must keep it running.
    let addr = server.url.trim_start_matches("http://").to_owned();
    wait::until(
        "the server stops accepting connections",
        wait::HANG_GUARD,
        || async { tokio::net::TcpStream::connect(&addr).await.is_err() },
    )
    .await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a settle in flight"
    );
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let (status, s) = settle.await.unwrap();
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["success"], true, "{s}");
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        drop(server);
        status
    })
    .await
    .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn startup_failures_name_their_cause() {
    let h = ExactHarness::start().await;
    let (good, envs) = config(&h);
    let no_code: Address = "0x00000000000000000000000000000000000000aa"
        .parse()
        .unwrap();
    let cases = [
        (
            good.replace("receipt_timeout_ms", "reciept_timeout_ms"),
            "reciept_timeout_ms",
        ),
        (
            good.replace("$X402_TEST_KEY", "$X402_UNSET_KEY"),
            "$X402_UNSET_KEY is not set",
        ),
        // The asset allow-list is required ("any" must be written down).
        (
            good.replacen(&format!("assets = [\"{}\"]\n", h.bed.usdc()), "", 1),
            "missing field `assets`",
        ),
        (
            good.replace("eip155:84532", "eip155:8453"),
            "serves chain id 84532, not 8453",
        ),
        (
            good.replace(&h.bed.usdc().to_string(), &no_code.to_string()),
            "has no contract at",
        ),
        (
            good.replace(
                "[networks.\"eip155:84532\".schemes.exact]",
                "[networks.\"eip155:84532\".schemes.bogus]",
            ),
            "no scheme \"bogus\" on \"eip155\" is in this build",
        ),
    ];
    for (text, needle) in cases {
        let (ok, _, stderr) = run(&text, &envs, &["--check-config"]);
        assert!(!ok, "{needle}: started anyway");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr:?}");
        // Secrets never appear in the message.
        assert!(!stderr.contains(&envs[1].1[2..]), "key leaked: {stderr}");
    }
}

#[tokio::test]
async fn the_example_config_passes_check_config() {
    let h = ExactHarness::start().await;
    // The example names Base Sepolia's real USDC; give that address the bed's USDC code.
    let provider = h.bed.provider();
    let code = provider.get_code_at(h.bed.usdc()).await.unwrap();
    let _: serde_json::Value = provider
        .raw_request("anvil_setCode".into(), (BASE_SEPOLIA_USDC, code))
        .await
        .unwrap();
    let key = format!(
        "0x{}",
        alloy::hex::encode(h.bed.facilitator().signer.to_bytes())
    );
    let envs = vec![
        ("BASE_SEPOLIA_RPC_URL", h.bed.endpoint().to_owned()),
        ("BASE_SEPOLIA_SIGNER_KEY", key.clone()),
        (
            "SHOP1_FACILITATOR_KEY",
            "example-facilitator-key-0123456789abcdef".to_owned(),
        ),
    ];
    let (ok, stdout, stderr) = run(EXAMPLE, &envs, &["--check-config"]);
    assert!(ok, "{stderr}");
    let signer = h.bed.facilitator().address.to_checksum(None);
    assert!(
        stdout.contains("exact") && stdout.contains("eip155:84532"),
        "{stdout}"
    );
    assert!(stdout.contains(&signer), "{stdout}");
    assert!(!stdout.contains(&key[2..]) && !stderr.contains(&key[2..]));
    assert!(
        !stdout.contains("example-facilitator-key") && !stderr.contains("example-facilitator-key")
    );
    assert!(
        !stdout.contains(h.bed.endpoint()),
        "RPC URL printed: {stdout}"
    );
    // The same plan as one JSON object.
    let (ok, stdout, stderr) = run(EXAMPLE, &envs, &["--check-config", "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let plan = v["plan"].as_array().unwrap();
    assert!(
        plan.iter().any(|l| l["scheme"] == "exact"
            && l["network"] == "eip155:84532"
            && l["signers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == &signer)),
        "{stdout}"
    );
    assert!(v["listen"].is_string(), "{stdout}");
    assert!(!stdout.contains(&key[2..]) && !stdout.contains(h.bed.endpoint()));
}

#[tokio::test]
async fn upto_settles_the_charge_over_http() {
    use std::sync::Arc;
    use x402_core::{BuyerRole as _, SellerRole as _};
    let h = ExactHarness::start().await;
    let (text, envs) = config(&h);
    let server = start(&text, &envs);
    let (_, supported) = get(&server.url, "/supported").await;
    let supported: x402_core::wire::SupportedResponse = serde_json::from_str(&supported).unwrap();
    let kind = supported
        .kinds
        .into_iter()
        .find(|k| k.scheme == "upto")
        .unwrap();
    let mut assets = x402_evm::assets::AssetTable::empty();
    assets.insert(
        h.network.clone(),
        x402_tests::evm::exact::usdc_info(h.bed.usdc(), TransferMethod::Permit2),
    );
    let max = scheme_upto_evm::Seller::new(assets)
        .requirements(&x402_core::PriceRequest {
            network: h.network.clone(),
            price: x402_core::Price::Decimal("1.00".into()),
            pay_to: h.bed.seller().address.to_checksum(None),
            asset: None,
            max_timeout_seconds: Some(120),
            facilitator_kind: Some(kind),
        })
        .await
        .unwrap();
    let buyer = h.bed.buyer(2).signer.clone();
    h.bed
        .approve_usdc(buyer.address(), x402_tests::evm::PERMIT2_ADDRESS, U256::MAX)
        .await;
    let view = x402_core::wire::PaymentRequirements::V2(max.clone());
    let payload = scheme_upto_evm::Buyer::new(Arc::new(buyer.clone()))
        .sign(&view.view().unwrap())
        .await
        .unwrap();
    let auth = x402_tests::evm::exact::request_v2(&max, payload);
    let (status, v) = post(&server.url, "/verify", serde_json::to_vec(&auth).unwrap()).await;
    assert_eq!(
        (status, &v["isValid"]),
        (200, &serde_json::json!(true)),
        "{v}"
    );
    let charged = scheme_upto_evm::charge(&max, x402_core::Amount::from(370_000)).unwrap();
    let settle = x402_core::wire::VerifyRequest::new(
        auth.payment_payload.clone(),
        x402_core::wire::PaymentRequirements::V2(charged),
    );
    let before = h.usdc(h.bed.seller().address).await;
    let (status, s) = post(&server.url, "/settle", serde_json::to_vec(&settle).unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(s["success"], true, "{s}");
    assert_eq!(s["amount"], "370000", "{s}");
    assert_eq!(
        h.usdc(h.bed.seller().address).await,
        before + U256::from(370_000)
    );
}
