//! `x402-demo`: the README's first command. Starts anvil (Circle's USDC, Permit2, the x402
//! proxies) and solana-test-validator (SPL Token and Token-2022 mints), starts the facilitator
//! binary on them with a generated config and a demo seller in front of it, lets the `x402` CLI
//! pay one request on each chain (402 → signed → verified → settled → 200), and keeps everything
//! running until Ctrl-C. No private key is printed. The facilitator serves /verify and /settle
//! only to holders of an API key: the demo generates one for its seller, scoped to the seller's
//! wallets (`[[auth.keys]]`), and the seller sends it as `Authorization: Bearer`.
//!
//! Environment: `X402_DEMO_EXIT=1` exits after the payments; `X402_DEMO_CHAINS` names the chains
//! to pay on (`evm`, `solana` or `evm,solana`, the default).
//!
//! The facilitator's settle bound, the seller's facilitator-client timeout and its pause before
//! retrying a pending settle come from one [`SettleTimeouts`] value, so the seller always hears
//! the facilitator's answer. A payment whose
//! settlement is still pending when the facilitator answers is reported with its transaction, and
//! the demo follows the transaction on the chain to its final outcome.

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)] // a demo prints

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use solana_commitment_config::CommitmentConfig;
use solana_sdk::signer::Signer as _;
use x402_core::SellerRole as _;
use x402_core::SettleTimeouts;
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

/// The `x402` CLI's exit status for a payment sent whose settlement is still pending.
const EXIT_PENDING: i32 = 3;

/// Which chains the demo pays on.
struct Chains {
    evm: bool,
    solana: bool,
}

impl Chains {
    fn from_env() -> Self {
        let Ok(list) = std::env::var("X402_DEMO_CHAINS") else {
            return Self {
                evm: true,
                solana: true,
            };
        };
        let mut chains = Self {
            evm: false,
            solana: false,
        };
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "evm" => chains.evm = true,
                "solana" => chains.solana = true,
                other => {
                    eprintln!("X402_DEMO_CHAINS: unknown chain {other:?} (expected evm, solana)");
                    std::process::exit(2);
                }
            }
        }
        if !chains.evm && !chains.solana {
            eprintln!("X402_DEMO_CHAINS names no chain");
            std::process::exit(2);
        }
        chains
    }
}

/// What one run of `x402 pay --json` reported.
struct CliPayment {
    /// The process exit status (0 paid, 3 pending, other: failed).
    code: Option<i32>,
    /// How long the CLI took (402, signing, verify, settle, response).
    took: Duration,
    /// Its JSON report, when it printed one.
    report: Option<serde_json::Value>,
}

impl CliPayment {
    fn paid(&self) -> bool {
        self.code == Some(0)
    }

    fn pending(&self) -> bool {
        self.code == Some(EXIT_PENDING)
    }

    /// The settlement transaction, when the report names one.
    fn transaction(&self) -> Option<String> {
        self.report
            .as_ref()?
            .pointer("/settlement/transaction")?
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    }

    fn summary(&self) -> String {
        let Some(r) = &self.report else {
            return format!("the CLI exited with {:?} and no report", self.code);
        };
        let status = r.get("status").map(ToString::to_string).unwrap_or_default();
        let settlement = r.get("settlement").filter(|s| !s.is_null());
        let reason = settlement
            .and_then(|s| s.get("errorReason"))
            .and_then(serde_json::Value::as_str);
        let body = r.get("body").and_then(serde_json::Value::as_str);
        let mut text = format!("HTTP {status} after {:.1} s", self.took.as_secs_f64());
        if let Some(tx) = self.transaction() {
            text.push_str(&format!(", transaction {tx}"));
        }
        if let Some(reason) = reason {
            text.push_str(&format!(", {reason}"));
        }
        if let Some(body) = body.filter(|b| !b.is_empty() && b.len() < 200) {
            text.push_str(&format!(": {body}"));
        }
        text
    }
}

/// Runs `x402 pay --json` with `args` and extra `env`.
fn pay_with_cli(args: &[&str], env: &[(&str, String)]) -> CliPayment {
    let started = std::time::Instant::now();
    let output = Command::new(sibling("x402"))
        .arg("pay")
        .arg("--json")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stderr(Stdio::inherit())
        .output()
        .expect("run the x402 CLI (build it: cargo build -p x402-buyer --features cli)");
    CliPayment {
        code: output.status.code(),
        took: started.elapsed(),
        report: serde_json::from_slice(&output.stdout).ok(),
    }
}

/// A binary built next to this one (`x402-facilitator`, `x402`).
fn sibling(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.with_file_name(name)
}

/// A seller with one paid route per chain, verifying and settling through the facilitator at
/// `facilitator` with a client timeout (and a pending-settle retry pause) derived from
/// `timeouts`.
async fn start_seller(
    evm: Option<&ExactHarness>,
    svm: Option<&SolanaRoute>,
    facilitator: &str,
    api_key: &str,
    timeouts: SettleTimeouts,
) -> String {
    use std::sync::Arc;
    use x402_core::client::{BearerToken, FacilitatorClient};
    use x402_core::{Amount, Price, Registry};
    use x402_seller::{Accept, Route, Seller, SellerOptions};
    let mut schemes = Registry::new();
    let mut app = axum::Router::new();
    let client = FacilitatorClient::new(facilitator)
        .with_settle_timeouts(timeouts)
        .with_auth(BearerToken::new(api_key).expect("a generated key is a valid token"));
    if let Some(h) = evm {
        let mut assets = x402_evm::assets::AssetTable::empty();
        assets.insert(
            h.network.clone(),
            x402_tests::evm::exact::usdc_info(h.bed.usdc(), TransferMethod::Eip3009),
        );
        schemes
            .register(
                scheme_exact_evm::ANY_NETWORK,
                scheme_exact_evm::VERSIONS,
                scheme_exact_evm::Seller::new(assets).into_scheme(),
            )
            .expect("register exact");
    }
    if let Some(svm) = svm {
        schemes
            .register(
                scheme_exact_svm::ANY_NETWORK,
                scheme_exact_svm::VERSIONS,
                scheme_exact_svm::Seller::new()
                    .with_mint_decimals(svm.mint.address, MINT_DECIMALS)
                    .into_scheme(),
            )
            .expect("register exact on Solana");
    }
    let options = SellerOptions {
        settle_timeouts: timeouts,
        ..SellerOptions::default()
    };
    let seller = Seller::with_options(Arc::new(client), schemes, options);
    if let Some(h) = evm {
        let route = Route::new().description("premium data").accept(
            Accept::new(
                "exact",
                h.network.clone(),
                h.bed.seller().address.to_checksum(None),
                Price::Atomic(Amount::from(PRICE_UNITS)),
            )
            .max_timeout_seconds(120),
        );
        app = app.route(
            "/premium",
            axum::routing::get(|| async { "the premium data you paid for" })
                .layer(seller.paywall(route).expect("paywall")),
        );
    }
    if let Some(svm) = svm {
        // feePayer is filled in from the facilitator's /supported.
        let route = Route::new().description("premium data, on Solana").accept(
            Accept::new(
                "exact",
                svm.network.clone(),
                svm.pay_to.clone(),
                Price::Atomic(Amount::from(PRICE_UNITS)),
            )
            .asset(svm.mint.address.to_string())
            .max_timeout_seconds(120),
        );
        app = app.route(
            "/premium-solana",
            axum::routing::get(|| async { "the premium data you paid for on Solana" })
                .layer(seller.paywall(route).expect("paywall")),
        );
    }
    x402_tests::e2e::serve(app).await
}

/// Stops the facilitator and exits with a failure.
fn fail(child: &mut Child, message: &str) -> ! {
    let _ = child.kill();
    eprintln!("{message}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    let chains = Chains::from_env();
    // The one setting every settle bound derives from: the facilitator answers within it, its
    // server's deadline and the seller's client timeout are derived margins above it.
    let timeouts = SettleTimeouts::default();

    let evm = if chains.evm {
        println!("==> anvil: Circle's FiatTokenV2_2 (USDC), Permit2, x402 proxies (chain 84532)");
        let h = ExactHarness::start().await;
        println!("    rpc {}   USDC {}", h.bed.endpoint(), h.bed.usdc());
        Some(h)
    } else {
        None
    };

    let svm = if chains.solana {
        println!("==> solana-test-validator: SPL Token and Token-2022 mints");
        let svm = SvmTestBed::start().await;
        println!("    rpc {}", svm.rpc_url());
        for m in svm.mints() {
            println!("    mint {} (program {})", m.address, m.token_program);
        }
        // The CAIP-2 reference is the first 32 characters of the base58 genesis hash.
        let genesis = svm.rpc().get_genesis_hash().await.expect("genesis hash");
        let route = SolanaRoute {
            network: x402_core::Network::parse(&format!("solana:{}", &genesis.to_string()[..32]))
                .expect("network"),
            mint: svm.spl_token_mint(),
            pay_to: svm.seller().pubkey().to_string(),
        };
        println!("    network {}", route.network);
        Some((svm, route))
    } else {
        None
    };

    println!("==> facilitator");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("facilitator.toml");
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\n[log]\nlevel = \"warn\"\n[store]\nurl = \"sqlite:{}\"\n[limits]\nsettle_timeout_ms = {}\n",
        dir.path().join("settlements.sqlite3").display(),
        timeouts.answer_within().as_millis()
    );
    let mut command = Command::new(sibling("x402-facilitator"));
    // The demo seller's API key: random, in the facilitator's environment and the seller's
    // client only, allowed to settle to the seller's wallets only.
    let api_key = hex::encode(alloy::signers::local::PrivateKeySigner::random().to_bytes());
    let mut wallets = Vec::new();
    if let Some(h) = &evm {
        wallets.push(format!("\"{}\"", h.bed.seller().address.to_checksum(None)));
    }
    if let Some((_, route)) = &svm {
        wallets.push(format!("\"{}\"", route.pay_to));
    }
    text.push_str(&format!(
        "[[auth.keys]]\nid = \"demo-seller\"\nkey = \"$DEMO_FACILITATOR_KEY\"\npay_to = [{}]\n",
        wallets.join(", ")
    ));
    command.env("DEMO_FACILITATOR_KEY", &api_key);
    if let Some(h) = &evm {
        text.push_str(&format!(
            "[networks.\"eip155:84532\"]\nrpc_urls = [\"$DEMO_EVM_RPC\"]\n\
             signer_keys = [\"$DEMO_EVM_KEY\"]\n\
             [networks.\"eip155:84532\".schemes.exact]\nassets = [\"{}\"]\n",
            h.bed.usdc()
        ));
        let key = format!("0x{}", hex::encode(h.bed.facilitator().signer.to_bytes()));
        command
            .env("DEMO_EVM_RPC", h.bed.endpoint())
            .env("DEMO_EVM_KEY", key);
    }
    if let Some((svm, route)) = &svm {
        text.push_str(&format!(
            "[networks.\"{network}\"]\nrpc_urls = [\"$DEMO_SVM_RPC\"]\n\
             signer_keys = [\"$DEMO_SVM_FEE_PAYER_1\", \"$DEMO_SVM_FEE_PAYER_2\"]\n\
             [networks.\"{network}\".schemes.exact]\nassets = [\"{mint}\"]\n",
            network = route.network,
            mint = route.mint.address,
        ));
        command
            .env("DEMO_SVM_RPC", svm.rpc_url())
            .env(
                "DEMO_SVM_FEE_PAYER_1",
                svm.fee_payers()[0].to_base58_string(),
            )
            .env(
                "DEMO_SVM_FEE_PAYER_2",
                svm.fee_payers()[1].to_base58_string(),
            );
    }
    std::fs::File::create(&config)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write config");
    let mut child = command
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start x402-facilitator (build it: cargo build -p facilitator-bin)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("facilitator output");
    let url = line.trim().trim_start_matches("listening on ").to_owned();
    if !url.starts_with("http://") {
        fail(
            &mut child,
            "the facilitator did not start (see its messages above)",
        );
    }
    println!(
        "    {url}  (a settle answers within {} s; the seller waits {} s)",
        timeouts.answer_within().as_secs(),
        timeouts.client_timeout().as_secs()
    );
    if let Some(h) = &evm {
        println!("    EVM signer {}", h.bed.facilitator().address);
    }
    if let Some((svm, _)) = &svm {
        println!(
            "    Solana fee payers: {}",
            svm.fee_payers()
                .iter()
                .map(|k| k.pubkey().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    println!(
        "==> demo seller: GET /premium costs 0.25 USDC (exact, EIP-3009), GET /premium-solana \
         costs 0.25 of the SPL Token mint (exact on Solana); settled by the facilitator"
    );
    println!(
        "    /verify and /settle need an API key: the seller's (id demo-seller) settles to its own wallets only"
    );
    let seller_url = start_seller(
        evm.as_ref(),
        svm.as_ref().map(|(_, r)| r),
        &url,
        &api_key,
        timeouts,
    )
    .await;
    if evm.is_some() {
        println!("    {seller_url}/premium");
    }
    if svm.is_some() {
        println!("    {seller_url}/premium-solana");
    }

    if let Some(h) = &evm {
        pay_on_evm(h, &seller_url, &mut child).await;
    }
    if let Some((svm, route)) = &svm {
        pay_on_solana(svm, route, &seller_url, &mut child).await;
    }
    println!("==> ready; Ctrl-C stops everything");
    if std::env::var_os("X402_DEMO_EXIT").is_none() {
        let _ = tokio::signal::ctrl_c().await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

async fn pay_on_evm(h: &ExactHarness, seller_url: &str, child: &mut Child) {
    println!("==> the x402 CLI pays /premium on EVM");
    let buyer = h.bed.buyer(0).signer.clone();
    let seller = h.bed.seller().address;
    let before = (h.usdc(buyer.address()).await, h.usdc(seller).await);
    let payment = pay_with_cli(
        &[
            &format!("{seller_url}/premium"),
            "--max",
            "1",
            "--asset",
            &format!("{}:{}:6:USDC", h.network, h.bed.usdc()),
            "--evm-rpc",
            h.bed.anvil().endpoint(),
        ],
        &[(
            "X402_PRIVATE_KEY",
            format!("0x{}", hex::encode(buyer.to_bytes())),
        )],
    );
    println!("    {}", payment.summary());
    let after = (h.usdc(buyer.address()).await, h.usdc(seller).await);
    println!(
        "    balances: buyer {} -> {} / seller {} -> {} USDC units",
        before.0, after.0, before.1, after.1
    );
    if !payment.paid() || after.1 <= before.1 {
        fail(child, "demo payment on EVM failed");
    }
}

async fn pay_on_solana(svm: &SvmTestBed, route: &SolanaRoute, seller_url: &str, child: &mut Child) {
    println!("==> the x402 CLI pays /premium-solana on Solana");
    let buyer = &svm.buyers()[0];
    let seller = svm.seller().pubkey();
    let mint = route.mint.address;
    let balances = || async {
        (
            svm.token_balance(&buyer.pubkey(), &mint).await,
            svm.token_balance(&seller, &mint).await,
        )
    };
    let before = balances().await;
    let payment = pay_with_cli(
        &[
            &format!("{seller_url}/premium-solana"),
            "--max",
            "1",
            "--network",
            "solana:*",
            "--asset",
            &format!("{}:{mint}:{MINT_DECIMALS}:TOKEN", route.network),
            "--solana-rpc",
            svm.rpc_url(),
        ],
        &[("X402_SOLANA_KEY", buyer.to_base58_string())],
    );
    println!("    {}", payment.summary());
    let moved =
        |after: (u64, u64)| after.1 == before.1 + PRICE_UNITS && after.0 + PRICE_UNITS == before.0;
    if payment.pending() {
        let Some(tx) = payment.transaction() else {
            fail(
                child,
                "the settlement is pending but no transaction was reported",
            );
        };
        println!(
            "    the settlement is pending: the facilitator answered before the chain confirmed \
             {tx}; following it on the chain"
        );
        let outcome = follow(svm, &tx).await;
        let after = balances().await;
        println!("    final outcome: {outcome}");
        println!(
            "    balances: buyer {} -> {} / seller {} -> {} token units",
            before.0, after.0, before.1, after.1
        );
        fail(
            child,
            if moved(after) {
                "demo payment on Solana: paid on chain, but the seller answered before it was \
                 confirmed and withheld the response"
            } else {
                "demo payment on Solana did not land"
            },
        );
    }
    let after = balances().await;
    println!(
        "    balances: buyer {} -> {} / seller {} -> {} token units",
        before.0, after.0, before.1, after.1
    );
    if !payment.paid() || !moved(after) {
        fail(child, "demo payment on Solana failed");
    }
}

/// Follows a sent transaction until the chain decides it: confirmed, failed, or expired (its
/// blockhash can no longer land it — the validator's own answer, however slow its slots are).
async fn follow(svm: &SvmTestBed, tx: &str) -> String {
    let Ok(signature) = tx.parse::<solana_sdk::signature::Signature>() else {
        return format!("{tx:?} is not a Solana signature");
    };
    let rpc = svm.rpc();
    // The transaction's blockhash was fetched before now, so it expires no later than one
    // fetched now: past this block height it can no longer land.
    let (_, last_valid) = rpc
        .get_latest_blockhash_with_commitment(CommitmentConfig::confirmed())
        .await
        .expect("getLatestBlockhash");
    loop {
        // Read the height first: a status read after the expiry height is final.
        let expired = rpc
            .get_block_height()
            .await
            .is_ok_and(|height| height > last_valid);
        let status = rpc
            .get_signature_statuses_with_history(std::slice::from_ref(&signature))
            .await
            .ok()
            .and_then(|s| s.value.into_iter().next().flatten())
            .filter(|s| s.satisfies_commitment(CommitmentConfig::confirmed()));
        match status.map(|s| s.err) {
            Some(None) => return "landed: the payment is settled".to_owned(),
            Some(Some(e)) => return format!("landed with an error, nothing moved: {e}"),
            None if expired => {
                return "expired: the transaction never landed; nothing moved".to_owned();
            }
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
