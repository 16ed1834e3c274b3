//! `x402-demo`: the README's first command. Starts anvil (Circle's USDC, Permit2, the x402
//! proxies) and solana-test-validator (SPL Token and Token-2022 mints), starts the facilitator
//! binary on them with a generated config, pays one request on EVM over HTTP — requirements →
//! signed → verified → settled — and keeps everything running until Ctrl-C. No private key is
//! printed.

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)] // a demo prints

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use solana_sdk::signer::Signer as _;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::solana::SvmTestBed;

fn facilitator_binary() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("X402_FACILITATOR_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name("x402-facilitator")
}

async fn post(url: &str, body: &[u8]) -> serde_json::Value {
    let text = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("facilitator reachable")
        .text()
        .await
        .expect("body");
    serde_json::from_str(&text).expect("json")
}

#[tokio::main]
async fn main() {
    println!("==> anvil: Circle's FiatTokenV2_2 (USDC), Permit2, x402 proxies (chain 84532)");
    let h = ExactHarness::start().await;
    println!("    rpc {}   USDC {}", h.bed.endpoint(), h.bed.usdc());

    println!("==> solana-test-validator: SPL Token and Token-2022 mints");
    let svm = SvmTestBed::start().await;
    println!("    rpc {}", svm.rpc_url());
    for m in svm.mints() {
        println!("    mint {} (program {})", m.address, m.token_program);
    }

    println!("==> facilitator");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("facilitator.toml");
    let mut file = std::fs::File::create(&config).expect("config");
    write!(
        file,
        r#"listen = "127.0.0.1:0"
[log]
level = "warn"
[networks."eip155:84532"]
rpc_urls = ["$DEMO_EVM_RPC"]
signer_keys = ["$DEMO_EVM_KEY"]
[networks."eip155:84532".schemes.exact]
assets = ["{}"]
"#,
        h.bed.usdc()
    )
    .expect("write config");
    let key = format!("0x{}", hex::encode(h.bed.facilitator().signer.to_bytes()));
    let mut child = Command::new(facilitator_binary())
        .arg("--config")
        .arg(&config)
        .env("DEMO_EVM_RPC", h.bed.endpoint())
        .env("DEMO_EVM_KEY", key)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start x402-facilitator (build it: cargo build -p facilitator-bin)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("facilitator output");
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    println!("    {url}  (signer {})", h.bed.facilitator().address);

    println!("==> pay 0.25 USDC on eip155:84532 (EIP-3009, x402 v2)");
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;
    let requirements = h.requirements("0.25", TransferMethod::Eip3009).await;
    println!(
        "    402: pay {} units of {} to {}",
        requirements.amount, requirements.asset, requirements.pay_to
    );
    let request = h.pay_v2(&buyer, &requirements).await;
    println!("    signed by {}", buyer.address());
    let body = serde_json::to_vec(&request).expect("json");
    let verified = post(&format!("{url}/verify"), &body).await;
    println!("    verified: {verified}");
    let settled = post(&format!("{url}/settle"), &body).await;
    println!("    settled:  {settled}");
    println!(
        "    balances: buyer {} / seller {} USDC units",
        h.usdc(buyer.address()).await,
        h.usdc(seller).await
    );
    if settled["success"] != true {
        let _ = child.kill();
        eprintln!("demo payment failed");
        std::process::exit(1);
    }

    println!(
        "    Solana fee payers: {}",
        svm.fee_payers()
            .iter()
            .map(|k| k.pubkey().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("==> ready; Ctrl-C stops everything");
    if std::env::var_os("X402_DEMO_EXIT").is_none() {
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
