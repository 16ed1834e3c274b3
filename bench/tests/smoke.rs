//! Keeps the benchmark from rotting: a tiny corpus on anvil, our facilitator's router served
//! in-process behind the counting proxy, and the `x402-bench drive` binary against it. Asserts
//! only that the report is well formed and consistent — never a timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use alloy::primitives::U256;
use facilitator_bin::config::Config;
use facilitator_bin::metrics::Metrics;
use facilitator_bin::server::{self, AppState};
use serde_json::Value;
use x402_bench::chain::Chain;
use x402_bench::corpus;
use x402_bench::proxy::RpcProxy;
use x402_bench::targets::{self, EvmSetup};
use x402_evm::assets::TransferMethod;

async fn drive(args: &[&str]) -> Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_x402-bench"))
        .arg("drive")
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "x402-bench drive failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn check_step(step: &Value, what: &str) {
    let s = &step["summary"];
    let (sent, ok) = (s["sent"].as_u64().unwrap(), s["ok"].as_u64().unwrap());
    assert!(sent > 0, "{what}: nothing sent: {step}");
    assert_eq!(ok, sent, "{what}: every corpus payment is valid: {step}");
    assert_eq!(s["failed"], 0, "{what}: {step}");
    let l = &s["latency_ms"];
    let (p50, p99, max) = (
        l["p50"].as_f64().unwrap(),
        l["p99"].as_f64().unwrap(),
        l["max"].as_f64().unwrap(),
    );
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= max,
        "{what}: percentiles out of order: {l}"
    );
    assert!(
        step["rpc_per_op"]["total"].as_f64().unwrap() > 0.0,
        "{what}: no RPC counted: {step}"
    );
    assert!(
        step["cost"]["facilitator_cpu_s_per_1k"].is_number(),
        "{what}: no CPU: {step}"
    );
    assert!(
        step["cost"]["facilitator_peak_rss_mib"].as_f64().unwrap() > 0.0,
        "{what}: {step}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drive_produces_a_well_formed_report() {
    let chain = Chain::start(31337).await;
    let keys = corpus::payers(3);
    let addresses: Vec<_> = keys.iter().map(|k| k.address()).collect();
    chain
        .fund(&addresses, U256::from(1_000_000u64), true)
        .await
        .unwrap();
    let eip3009 = corpus::requirements(&chain, TransferMethod::Eip3009)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (verify, settle) = (
        dir.path().join("verify.jsonl"),
        dir.path().join("settle.jsonl"),
    );
    corpus::write_jsonl(&verify, &corpus::sign(&keys, &eip3009, 1).await.unwrap()).unwrap();
    corpus::write_jsonl(&settle, &corpus::sign(&keys, &eip3009, 1).await.unwrap()).unwrap();

    // Our facilitator's own start-up path (config → build → serve), RPC through the proxy.
    let proxy = RpcProxy::start(chain.bed.endpoint()).await.unwrap();
    let setup = EvmSetup {
        chain_id: chain.bed.chain_id(),
        rpc_url: proxy.url().to_owned(),
        usdc: chain.bed.usdc(),
        signers: chain.new_signers(1).await.unwrap(),
        store_url: "memory".into(),
    };
    let (toml, env) = targets::rust_config(&setup);
    let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let config = Config::parse(&toml, &lookup).unwrap();
    let (facilitator, _) = facilitator_bin::build(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(
        facilitator,
        Arc::new(Metrics::default()),
        config.limits.clone(),
    );
    tokio::spawn(server::serve(listener, state, std::future::pending()));

    let me = std::process::id().to_string();
    let anvil = chain.anvil_pid().expect("anvil pid").to_string();
    let common = [
        "--url",
        &url,
        "--pid",
        &me,
        "--chain-pid",
        &anvil,
        "--rpc-counts",
        proxy.url(),
    ];
    let verify_path = verify.to_string_lossy();
    let mut args = common.to_vec();
    args.extend([
        "--corpus",
        &verify_path,
        "--concurrency",
        "1,2",
        "--rate",
        "20",
        "--secs",
        "1",
        "--ops",
        "10",
    ]);
    let report = drive(&args).await;
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{report}");
    assert_eq!(
        steps[0]["load"],
        serde_json::json!({"mode": "closed", "concurrency": 1})
    );
    assert_eq!(steps[2]["load"]["mode"], "open");
    for step in steps {
        check_step(step, "verify");
    }

    let settle_path = settle.to_string_lossy();
    let mut args = common.to_vec();
    args.extend([
        "--route",
        "settle",
        "--corpus",
        &settle_path,
        "--concurrency",
        "3",
    ]);
    let report = drive(&args).await;
    let step = &report["steps"][0];
    check_step(step, "settle");
    assert_eq!(
        step["summary"]["sent"], 3,
        "each settle body is used once: {step}"
    );
    assert_eq!(step["stopped_by"], "corpus", "{step}");
    assert!(
        step["rpc_per_op"]["by_method"]["eth_sendRawTransaction"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    for a in &addresses {
        assert_eq!(
            chain.bed.usdc_balance(*a).await,
            U256::from(1_000_000u64 - 10_000)
        );
    }
}

/// The configuration the store comparison starts our facilitator with is accepted for every
/// store kind (the store itself is opened only at start-up, not here).
#[test]
fn the_generated_config_is_accepted_with_every_store() {
    for store_url in [
        "memory",
        "sqlite:/tmp/x402-bench/settlements.sqlite3",
        "postgres://postgres@127.0.0.1:5432/x402",
    ] {
        let setup = EvmSetup {
            chain_id: 31337,
            rpc_url: "http://127.0.0.1:8545".into(),
            usdc: alloy::primitives::Address::repeat_byte(0x11),
            signers: vec![alloy::signers::local::PrivateKeySigner::random()],
            store_url: store_url.into(),
        };
        let (toml, env) = targets::rust_config(&setup);
        let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let config = Config::parse(&toml, &lookup).unwrap();
        assert_eq!(config.store.url, store_url);
    }
}

/// The invalid flood on a small count (the benchmark sends 10,000): every kind of invalid
/// request, valid payments beside them, and the run's own checks (each valid payment settled
/// once, no 5xx, no invalid request accepted, `/metrics` without the made-up labels). Figures
/// are printed, never asserted.
#[tokio::test(flavor = "multi_thread")]
async fn invalid_flood_checks_hold_on_a_small_count() {
    let chain = Chain::start(31337).await;
    let keys = corpus::payers(4);
    let addresses: Vec<_> = keys.iter().map(|k| k.address()).collect();
    chain
        .fund(&addresses, U256::from(1_000_000u64), false)
        .await
        .unwrap();
    let eip3009 = corpus::requirements(&chain, TransferMethod::Eip3009)
        .await
        .unwrap();
    let signers = chain.new_signers(1).await.unwrap();
    let setup = EvmSetup {
        chain_id: chain.bed.chain_id(),
        rpc_url: chain.bed.endpoint().to_owned(),
        usdc: chain.bed.usdc(),
        signers: signers.clone(),
        store_url: "memory".into(),
    };
    let (toml, env) = targets::rust_config(&setup);
    let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let config = Config::parse(&toml, &lookup).unwrap();
    let (facilitator, _) = facilitator_bin::build(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(
        facilitator,
        Arc::new(Metrics::default()),
        config.limits.clone(),
    );
    tokio::spawn(server::serve(listener, state, std::future::pending()));

    let options = x402_bench::flood::FloodOptions {
        invalid: 400,
        rate_per_s: 0.0,
        concurrency: 16,
        valid_workers: 2,
        baseline_payments: 4,
        max_payments_under_load: 40,
        payers: 4,
    };
    let subject = x402_bench::flood::Subject {
        url: &url,
        pid: None,
        proxy: None,
    };
    let signer_addresses: Vec<_> = signers.iter().map(|k| k.address()).collect();
    let bed = x402_bench::flood::Bed {
        chain: &chain,
        payers: &keys,
        requirements: &eip3009,
        signers: &signer_addresses,
    };
    let report = x402_bench::flood::run(subject, bed, &options)
        .await
        .unwrap();
    println!("{}", x402_bench::flood::markdown(&report));
    assert_eq!(report.failed(), Vec::<String>::new());
    assert_eq!(report.invalid.sent, 400);
    assert_eq!(report.invalid.kinds.len(), 8, "every kind sent");
    assert!(report.under_load.sent > 0, "payments ran beside the flood");
}
