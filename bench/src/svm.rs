//! The Solana scenarios: solana-test-validator with an SPL Token mint, funded payers, and each
//! facilitator in turn — ours, x402-rs's (`bench/peer-x402rs`) and the TypeScript reference's
//! `@x402/svm` — serving the validator's own CAIP-2 network (`solana:` + the first 32 characters
//! of its genesis hash) with its own fee payer, its RPC through its own counting proxy.
//!
//! A Solana payment names a recent blockhash and expires with it (about 150 slots, a minute on
//! the test validator), so "long validity" is impossible: each step's corpus is signed by the
//! scheme's own buyer client just before the step, and the steps stay well inside a minute.

use std::time::Duration;

use axum::body::Bytes;
use scheme_exact_svm::buyer::BuyerOptions;
use scheme_exact_svm::rpc::Rpc;
use solana_keypair::Keypair;
use solana_signer::Signer;
use x402_core::wire::{PaymentRequirements, PaymentRequirementsV2, SupportedResponse};
use x402_core::{Amount, BuyerRole as _, Network, Price, PriceRequest, X402Version};
use x402_tests::solana::SvmTestBed;

use crate::corpus::request_v2;
use crate::driver::{Feed, Limits, Route, Target};
use crate::measure::{self, Load, Probe, RpcSource};
use crate::proxy::RpcProxy;
use crate::report::{NotRun, Scenario, Who};
use crate::targets::{self, Facilitator};

/// The two scenario names.
const VERIFY: &str = "verify SVM (SPL Token)";
const SETTLE: &str = "settle SVM (SPL Token)";

/// Atomic units of the mint each payer holds.
const PAYER_TOKENS: u64 = 1_000_000;
/// The price of every payment, in atomic units.
const PRICE_UNITS: u64 = 1_000;
/// Fee-payer SOL (lamports).
const FEE_PAYER_LAMPORTS: u64 = 100_000_000_000;

/// What the Solana scenarios do.
#[derive(Debug, Clone)]
pub struct SvmOptions {
    /// Distinct funded payers (one payment each per step).
    pub payers: usize,
    /// The verify concurrency sweep.
    pub concurrency: Vec<usize>,
    /// Time bound of each step (keep the sweep inside a blockhash's life).
    pub step_time: Duration,
    /// Concurrency of the settle step.
    pub settle_concurrency: usize,
}

/// The facilitators to run.
#[derive(Debug, Clone, Copy)]
pub struct Facilitators<'a> {
    /// Our `x402-facilitator` binary.
    pub ours: &'a std::path::Path,
    /// x402-rs's facilitator binary, if it runs.
    pub peer: Option<&'a std::path::Path>,
    /// Whether the TypeScript reference runs.
    pub typescript: bool,
}

/// What the Solana scenarios measured, and what they could not.
#[derive(Debug, Default)]
pub struct SvmRun {
    /// Verify and settle, per facilitator.
    pub scenarios: Vec<Scenario>,
    /// Plain-words remarks.
    pub notes: Vec<String>,
    /// Peers that could not be measured, and why.
    pub not_run: Vec<NotRun>,
}

/// Whether solana-test-validator is installed (the scenarios are skipped, with a note, if not).
pub fn validator_installed() -> bool {
    std::panic::catch_unwind(x402_tests::tools::solana_test_validator).is_ok()
}

fn rpc(url: &str) -> Result<Rpc, String> {
    Rpc::new(&[url.to_owned()], Duration::from_secs(10)).map_err(|e| format!("rpc: {e}"))
}

fn progress(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "[x402-bench] {line}");
}

/// Signs one payment from each payer for `requirements`, on a fresh blockhash.
async fn sign(
    rpc_url: &str,
    payers: &[Keypair],
    requirements: &PaymentRequirementsV2,
) -> Result<Vec<Bytes>, String> {
    let reqs = PaymentRequirements::V2(requirements.clone());
    let view = reqs.view().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for payer in payers {
        let buyer = scheme_exact_svm::Buyer::new(
            payer.insecure_clone(),
            rpc(rpc_url)?,
            BuyerOptions::default(),
        );
        let payload = buyer
            .sign(&view)
            .await
            .map_err(|e| format!("signing: {e}"))?;
        let body =
            serde_json::to_vec(&request_v2(requirements, payload)).map_err(|e| e.to_string())?;
        out.push(Bytes::from(body));
    }
    Ok(out)
}

/// The validator and what every facilitator's payments need.
struct Bed {
    bed: SvmTestBed,
    network: String,
    mint: String,
    payers: Vec<Keypair>,
    seller: String,
}

/// Runs SVM verify (a concurrency sweep) and settle (one step) against each facilitator.
pub async fn run(o: &SvmOptions, f: Facilitators<'_>) -> Result<SvmRun, String> {
    progress("starting solana-test-validator");
    let bed = SvmTestBed::start().await;
    let genesis = bed
        .rpc()
        .get_genesis_hash()
        .await
        .map_err(|e| format!("getGenesisHash: {e}"))?;
    let network = format!(
        "solana:{}",
        genesis.to_string().get(..32).unwrap_or_default()
    );
    let mint = bed.spl_token_mint().address.to_string();
    progress(&format!("funding {} Solana payers", o.payers));
    let mut payers = Vec::new();
    for _ in 0..o.payers {
        payers.push(bed.new_token_holder(0, PAYER_TOKENS).await);
    }
    let seller = bed.new_token_holder(0, 0).await.pubkey().to_string();
    let bed = Bed {
        bed,
        network,
        mint,
        payers,
        seller,
    };
    let mut out = SvmRun::default();
    for who in [Who::Ours, Who::X402Rs, Who::TypeScript] {
        if (who == Who::X402Rs && f.peer.is_none()) || (who == Who::TypeScript && !f.typescript) {
            continue;
        }
        match measure(&bed, o, f, who).await {
            Ok(scenarios) => out.scenarios.extend(scenarios),
            Err(e) if who != Who::Ours => {
                let reason = e.lines().next().unwrap_or_default().to_owned();
                out.notes
                    .push(format!("SVM, {}: not measured: {e}", who.label()));
                for scenario in [VERIFY, SETTLE] {
                    out.not_run.push(NotRun {
                        who,
                        scenario: Some(scenario.into()),
                        reason: reason.clone(),
                    });
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Starts `who` with a fresh fee payer behind a fresh proxy and measures it.
async fn measure(
    b: &Bed,
    o: &SvmOptions,
    f: Facilitators<'_>,
    who: Who,
) -> Result<Vec<Scenario>, String> {
    let fee_payer = Keypair::new();
    b.bed.airdrop(&fee_payer.pubkey(), FEE_PAYER_LAMPORTS).await;
    let key = fee_payer.to_base58_string();
    let proxy = RpcProxy::start(b.bed.rpc_url()).await?;
    let network = &b.network;
    let facilitator = match who {
        Who::X402Rs => {
            let bin = f.peer.ok_or("no peer binary")?;
            targets::start_peer_svm(bin, proxy.url(), network, &key)
        }
        Who::TypeScript => targets::start_ts_svm(proxy.url(), network, &key)
            .map_err(|e| format!("failed to start: {e}")),
        _ => {
            let text = format!(
                "listen = \"127.0.0.1:0\"\nauth = \"none\"\n[log]\nlevel = \"warn\"\n[store]\nurl = \"memory\"\n[limits]\nsettle_timeout_ms = 120000\nshutdown_grace_ms = 130000\nper_client_concurrency = 4096\n\
                 [networks.\"{network}\"]\nrpc_urls = [\"$X402_BENCH_RPC\"]\nsigner_keys = [\"$X402_BENCH_KEY_0\"]\n\
                 [networks.\"{network}\".schemes.exact]\nassets = [\"{}\"]\n",
                b.mint
            );
            let env = vec![
                ("X402_BENCH_RPC".to_owned(), proxy.url().to_owned()),
                ("X402_BENCH_KEY_0".to_owned(), key.clone()),
            ];
            targets::start_rust_with(f.ours, "ours (1 fee payer)".into(), &text, &env)
        }
    }?;
    let requirements = requirements(b, &facilitator).await?;
    let probe = Probe {
        facilitator_pid: Some(facilitator.pid),
        chain_pid: b.bed.validator().validator_pid(),
        store_pid: None,
        rpc: RpcSource::Local(&proxy),
    };
    let limits = Limits {
        max_ops: 200_000,
        max_time: o.step_time,
    };
    let rpc_url = b.bed.rpc_url();
    let verify = Target::new(&facilitator.url, Route::Verify, Duration::from_secs(30))?;
    let mut verify_steps = Vec::new();
    for &c in &o.concurrency {
        progress(&format!("{VERIFY} — {}: c={c}", facilitator.name));
        let feed = Feed::cycling(sign(rpc_url, &b.payers, &requirements).await?);
        verify_steps.push(
            measure::step(
                &verify,
                &feed,
                Load::Closed { concurrency: c },
                limits,
                probe,
            )
            .await,
        );
    }
    progress(&format!("{SETTLE} — {}", facilitator.name));
    let settle = Target::new(&facilitator.url, Route::Settle, Duration::from_secs(90))?;
    let feed = Feed::once(sign(rpc_url, &b.payers, &requirements).await?);
    let load = Load::Closed {
        concurrency: o.settle_concurrency.min(b.payers.len()).max(1),
    };
    let settle_step = measure::step(&settle, &feed, load, limits, probe).await;
    Ok(vec![
        Scenario {
            name: VERIFY.into(),
            target: facilitator.name.clone(),
            who,
            steps: verify_steps,
        },
        Scenario {
            name: SETTLE.into(),
            target: facilitator.name.clone(),
            who,
            steps: vec![settle_step],
        },
    ])
}

/// The requirements of a payment to the seller, for the kind `facilitator` lists for the
/// validator's network (its fee payer in `extra`), built by our seller role.
async fn requirements(b: &Bed, facilitator: &Facilitator) -> Result<PaymentRequirementsV2, String> {
    let supported: SupportedResponse = reqwest::get(format!("{}/supported", facilitator.url))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| format!("/supported: {e}"))?;
    let kind = supported
        .kinds
        .into_iter()
        .find(|k| k.x402_version == X402Version::V2 && k.network == b.network)
        .ok_or("/supported lists no v2 kind for the validator's network")?;
    scheme_exact_svm::Seller::new()
        .with_rpc(rpc(b.bed.rpc_url())?)
        .requirements_with_memo(
            &PriceRequest {
                network: Network::parse(&b.network).map_err(|e| e.to_string())?,
                price: Price::Atomic(Amount::from(PRICE_UNITS)),
                pay_to: b.seller.clone(),
                asset: Some(b.mint.clone()),
                max_timeout_seconds: None,
                facilitator_kind: Some(kind),
            },
            None,
        )
        .await
        .map_err(|e| format!("requirements: {e}"))
}
