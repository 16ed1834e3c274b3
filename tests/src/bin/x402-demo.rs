//! `x402-demo`: the README's first command. Starts anvil (Circle's USDC, Permit2, the x402
//! proxies) and solana-test-validator (SPL Token and Token-2022 mints), starts the facilitator
//! binary on them with a generated config and a demo seller in front of it, lets the `x402` CLI
//! pay one request on each chain (402 → signed → verified → settled → 200), and keeps everything
//! running until Ctrl-C. No private key is printed.

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)] // a demo prints

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use solana_sdk::signer::Signer as _;
use x402_evm::assets::TransferMethod;
use x402_tests::evm::exact::ExactHarness;
use x402_tests::solana::{MINT_DECIMALS, SvmTestBed, TestMint};

/// What the Solana route sells: the network, its mint and the `payTo` wallet.
struct SolanaRoute {
    network: x402_core::Network,
    mint: TestMint,
    pay_to: String,
}

/// The route price, in atomic units (0.25 of a 6-decimal token).
const PRICE_UNITS: u64 = 250_000;

/// Runs the `x402` CLI with `args` and extra `env`; true when it succeeded.
fn run_cli(args: &[&str], env: &[(&str, String)]) -> bool {
    Command::new(sibling("x402"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .expect("run the x402 CLI (build it: cargo build -p x402-buyer --features cli)")
        .success()
}

/// A binary built next to this one (`x402-facilitator`, `x402`).
fn sibling(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name(name)
}

/// A seller with one paid route, verifying and settling through the facilitator at `facilitator`.
async fn start_seller(h: &ExactHarness, svm: &SolanaRoute, facilitator: &str) -> String {
    use std::sync::Arc;
    use x402_core::client::FacilitatorClient;
    use x402_core::{Amount, Price, Registry, X402Version};
    use x402_seller::{Accept, Route, Seller};
    let mut assets = x402_evm::assets::AssetTable::empty();
    assets.insert(
        h.network.clone(),
        x402_tests::evm::exact::usdc_info(h.bed.usdc(), TransferMethod::Eip3009),
    );
    let mut schemes = Registry::new();
    schemes
        .register(
            "eip155:*",
            &[X402Version::V1, X402Version::V2],
            Arc::new(scheme_exact_evm::ExactEvm::seller(assets)),
        )
        .expect("register exact");
    schemes
        .register(
            "solana:*",
            &[X402Version::V1, X402Version::V2],
            Arc::new(
                scheme_exact_svm::ExactSvm::seller()
                    .with_mint_decimals(svm.mint.address, MINT_DECIMALS),
            ),
        )
        .expect("register exact on Solana");
    let seller = Seller::new(Arc::new(FacilitatorClient::new(facilitator)), schemes);
    let route = Route::new().description("premium data").accept(
        Accept::new(
            "exact",
            h.network.clone(),
            h.bed.seller().address.to_checksum(None),
            Price::Atomic(Amount::from(PRICE_UNITS)),
        )
        .max_timeout_seconds(120),
    );
    // feePayer is filled in from the facilitator's /supported.
    let solana_route = Route::new().description("premium data, on Solana").accept(
        Accept::new(
            "exact",
            svm.network.clone(),
            svm.pay_to.clone(),
            Price::Atomic(Amount::from(PRICE_UNITS)),
        )
        .asset(svm.mint.address.to_string())
        .max_timeout_seconds(120),
    );
    let app = axum::Router::new()
        .route(
            "/premium",
            axum::routing::get(|| async { "the premium data you paid for" })
                .layer(seller.paywall(route).expect("paywall")),
        )
        .route(
            "/premium-solana",
            axum::routing::get(|| async { "the premium data you paid for on Solana" })
                .layer(seller.paywall(solana_route).expect("paywall")),
        );
    x402_tests::e2e::serve(app).await
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
    // The CAIP-2 reference is the first 32 characters of the base58 genesis hash.
    let genesis = svm.rpc().get_genesis_hash().await.expect("genesis hash");
    let solana = SolanaRoute {
        network: x402_core::Network::parse(&format!("solana:{}", &genesis.to_string()[..32]))
            .expect("network"),
        mint: svm.spl_token_mint(),
        pay_to: svm.seller().pubkey().to_string(),
    };
    println!("    network {}", solana.network);

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
assets = ["{usdc}"]
[networks."{svm_network}"]
rpc_urls = ["$DEMO_SVM_RPC"]
signer_keys = ["$DEMO_SVM_FEE_PAYER_1", "$DEMO_SVM_FEE_PAYER_2"]
receipt_timeout_ms = 30000
[networks."{svm_network}".schemes.exact]
assets = ["{mint}"]
"#,
        usdc = h.bed.usdc(),
        svm_network = solana.network,
        mint = solana.mint.address,
    )
    .expect("write config");
    let key = format!("0x{}", hex::encode(h.bed.facilitator().signer.to_bytes()));
    let mut child = Command::new(sibling("x402-facilitator"))
        .arg("--config")
        .arg(&config)
        .env("DEMO_EVM_RPC", h.bed.endpoint())
        .env("DEMO_EVM_KEY", key)
        .env("DEMO_SVM_RPC", svm.rpc_url())
        .env(
            "DEMO_SVM_FEE_PAYER_1",
            svm.fee_payers()[0].to_base58_string(),
        )
        .env(
            "DEMO_SVM_FEE_PAYER_2",
            svm.fee_payers()[1].to_base58_string(),
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("start x402-facilitator (build it: cargo build -p facilitator-bin)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("facilitator output");
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    println!("    {url}  (EVM signer {})", h.bed.facilitator().address);
    println!(
        "    Solana fee payers: {}",
        svm.fee_payers()
            .iter()
            .map(|k| k.pubkey().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    println!(
        "==> demo seller: GET /premium costs 0.25 USDC (exact, EIP-3009), GET /premium-solana \
         costs 0.25 of the SPL Token mint (exact on Solana); settled by the facilitator"
    );
    let seller_url = start_seller(&h, &solana, &url).await;
    println!("    {seller_url}/premium");
    println!("    {seller_url}/premium-solana");

    println!("==> the x402 CLI pays /premium on EVM");
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;
    let before = (h.usdc(buyer.address()).await, h.usdc(seller).await);
    let paid = run_cli(
        &[
            "pay",
            &format!("{seller_url}/premium"),
            "--max",
            "1",
            "--asset",
            &format!("{}:{}:6:USDC", h.network, h.bed.usdc()),
        ],
        &[(
            "X402_PRIVATE_KEY",
            format!("0x{}", hex::encode(buyer.to_bytes())),
        )],
    );
    let after = (h.usdc(buyer.address()).await, h.usdc(seller).await);
    println!(
        "    balances: buyer {} -> {} / seller {} -> {} USDC units",
        before.0, after.0, before.1, after.1
    );
    if !paid || after.1 <= before.1 {
        let _ = child.kill();
        eprintln!("demo payment on EVM failed");
        std::process::exit(1);
    }

    println!("==> the x402 CLI pays /premium-solana on Solana");
    let buyer = &svm.buyers()[0];
    let seller = svm.seller().pubkey();
    let mint = solana.mint.address;
    let balances = || async {
        (
            svm.token_balance(&buyer.pubkey(), &mint).await,
            svm.token_balance(&seller, &mint).await,
        )
    };
    let before = balances().await;
    let paid = run_cli(
        &[
            "pay",
            &format!("{seller_url}/premium-solana"),
            "--max",
            "1",
            "--network",
            "solana:*",
            "--asset",
            &format!("{}:{mint}:{MINT_DECIMALS}:TOKEN", solana.network),
            "--solana-rpc",
            svm.rpc_url(),
        ],
        &[("X402_SOLANA_KEY", buyer.to_base58_string())],
    );
    let after = balances().await;
    println!(
        "    balances: buyer {} -> {} / seller {} -> {} token units",
        before.0, after.0, before.1, after.1
    );
    if !paid || after.1 != before.1 + PRICE_UNITS || after.0 + PRICE_UNITS != before.0 {
        let _ = child.kill();
        eprintln!("demo payment on Solana failed");
        std::process::exit(1);
    }
    println!("==> ready; Ctrl-C stops everything");
    if std::env::var_os("X402_DEMO_EXIT").is_none() {
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
