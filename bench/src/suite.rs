//! The full run: one anvil, one corpus, our facilitator and the TypeScript reference driven in
//! turn through their own counting RPC proxies, every scenario of issue 8 that this machine can
//! run, our facilitator's settlement stores compared (issue 11, [`crate::stores`]), and one
//! report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use x402_evm::assets::TransferMethod;

use crate::chain::Chain;
use crate::corpus;
use crate::driver::Feed;
use crate::procstat::Machine;
use crate::proxy::RpcProxy;
use crate::report::{Report, Scenario};
use crate::scenarios::{Under, progress, settle_step, verify_sweep};
use crate::stores::StoreKind;
use crate::targets::{self, EvmSetup};

/// What a full run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `x402-facilitator` binary.
    pub facilitator_bin: PathBuf,
    /// The chain id anvil runs under.
    pub chain_id: u64,
    /// Distinct funded payers.
    pub payers: usize,
    /// Distinct verify bodies (cycled), at most `payers`.
    pub verify_bodies: usize,
    /// Settle payments per payer (each body is settled at most once).
    pub settle_rounds: usize,
    /// The closed-loop concurrency sweep for verify.
    pub concurrency: Vec<usize>,
    /// Time bound of a verify step.
    pub step_time: Duration,
    /// Count bound of a verify step.
    pub step_ops: u64,
    /// Concurrency of settle steps with automining.
    pub automine_concurrency: usize,
    /// Concurrency of settle steps with 1-second blocks (enough to fill a block).
    pub settle_concurrency: usize,
    /// Time bound of a settle step.
    pub settle_time: Duration,
    /// Count bound of a settle step.
    pub settle_ops: u64,
    /// Signer counts of our facilitator in the settle scenarios.
    pub signer_counts: Vec<usize>,
    /// Whether to run the TypeScript reference too.
    pub typescript: bool,
    /// Facilitators talk to the chain directly: no RPC counts, no proxy CPU.
    pub direct_rpc: bool,
    /// Which scenario groups run: `verify`, `settle-automine`, `settle-blocks`, `settle-stores`,
    /// `invalid-flood`, `svm` (empty: all).
    pub only: Vec<String>,
    /// The settlement stores compared by `settle-stores` (1 s blocks, c = `settle_concurrency`,
    /// steps bounded by `settle_ops` and `settle_time`).
    pub stores: Vec<StoreKind>,
    /// Rounds of the store comparison (the order reverses every other round).
    pub store_rounds: usize,
    /// Signers of each facilitator in the store comparison.
    pub store_signers: usize,
    /// The Solana scenarios, or `None` to skip them.
    pub svm: Option<crate::svm::SvmOptions>,
    /// The invalid flood (`invalid-flood`).
    pub flood: crate::flood::FloodOptions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            facilitator_bin: PathBuf::from("x402-facilitator"),
            chain_id: 31337,
            payers: 4096,
            verify_bodies: 1000,
            settle_rounds: 10,
            concurrency: vec![1, 8, 32, 128, 512],
            step_time: Duration::from_secs(8),
            step_ops: 200_000,
            automine_concurrency: 16,
            settle_concurrency: 1024,
            settle_time: Duration::from_secs(15),
            settle_ops: 5000,
            signer_counts: vec![1, 4, 8],
            typescript: true,
            direct_rpc: false,
            only: Vec::new(),
            stores: StoreKind::ALL.to_vec(),
            store_rounds: 2,
            store_signers: 4,
            svm: Some(crate::svm::SvmOptions {
                payers: 200,
                concurrency: vec![1, 8, 32, 128],
                step_time: Duration::from_secs(6),
                settle_concurrency: 64,
            }),
            flood: crate::flood::FloodOptions::default(),
        }
    }
}

impl Options {
    /// Whether the scenario group `key` runs.
    pub fn runs(&self, key: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|k| k == key)
    }
}

/// Runs everything and returns the report.
pub async fn run(o: &Options) -> Result<Report, String> {
    let machine = Machine::probe();
    let floor_us = crate::baseline::eip712_hash_and_recover_us(3000)?;
    let mut notes = Vec::new();
    progress("starting anvil with USDC, Permit2 and the x402 proxies");
    let chain = Chain::start(o.chain_id).await;
    let chain_pid = chain.anvil_pid();
    let usdc = chain.bed.usdc();
    // The invalid flood alone needs only its own few payers.
    let alone = ![
        "verify",
        "settle-automine",
        "settle-blocks",
        "settle-stores",
    ]
    .iter()
    .any(|k| o.runs(k));
    let payers = if alone {
        o.flood.payers.min(o.payers)
    } else {
        o.payers
    };
    let keys = corpus::payers(payers);
    let addresses: Vec<_> = keys.iter().map(|k| k.address()).collect();
    progress(&format!(
        "funding {} payers (ETH, USDC mint, Permit2 approval)",
        keys.len()
    ));
    chain
        .fund(&addresses, U256::from(1_000_000_000u64), true)
        .await?;
    let eip3009 = corpus::requirements(&chain, TransferMethod::Eip3009).await?;
    let permit2 = corpus::requirements(&chain, TransferMethod::Permit2).await?;
    progress("signing the corpus");
    // Only what the chosen scenarios use (the store comparison signs its own).
    let settles = o.runs("settle-automine") || o.runs("settle-blocks");
    let verify_keys = &keys[..o.verify_bodies.min(keys.len())];
    let verify_keys = if o.runs("verify") { verify_keys } else { &[] };
    let verify_3009 = Feed::cycling(corpus::sign(verify_keys, &eip3009, 1).await?);
    let verify_permit2 = Feed::cycling(corpus::sign(verify_keys, &permit2, 1).await?);
    let settle_rounds = if settles { o.settle_rounds } else { 0 };
    let settle = Feed::once(corpus::sign(&keys, &eip3009, settle_rounds).await?);
    let most = o.signer_counts.iter().copied().max().unwrap_or(1);
    let signers = chain.new_signers(most).await?;
    let ts_signers = chain.new_signers(1).await?;
    let ours_proxy = RpcProxy::start(chain.bed.endpoint()).await?;
    let ts_proxy = RpcProxy::start(chain.bed.endpoint()).await?;
    // Without the proxies (--direct-rpc) the facilitators talk to anvil directly and RPC calls
    // are not counted; the proxy's own CPU then leaves the measurement too.
    let (ours_proxy, ts_proxy) = if o.direct_rpc {
        notes.push(
            "--direct-rpc: EVM facilitators talked to anvil directly; RPC calls not counted".into(),
        );
        (None, None)
    } else {
        (Some(&ours_proxy), Some(&ts_proxy))
    };
    let setup = |proxy: Option<&RpcProxy>, keys: &[PrivateKeySigner]| EvmSetup {
        chain_id: chain.bed.chain_id(),
        rpc_url: proxy.map_or(chain.bed.endpoint(), RpcProxy::url).to_owned(),
        usdc: chain.bed.usdc(),
        signers: keys.to_vec(),
        store_url: "memory".into(),
    };
    let start_ours_with = |keys: &[PrivateKeySigner]| -> Result<Under<'_>, String> {
        Ok(Under {
            facilitator: targets::start_rust(&o.facilitator_bin, &setup(ours_proxy, keys))?,
            proxy: ours_proxy,
            chain_pid,
            store_pid: None,
        })
    };
    let start_ours = |n: usize| start_ours_with(&signers[..n]);
    let ts = if o.typescript && (o.runs("verify") || settles) {
        match targets::start_ts(&setup(ts_proxy, &ts_signers)) {
            Ok(f) => Some(Under {
                facilitator: f,
                proxy: ts_proxy,
                chain_pid,
                store_pid: None,
            }),
            Err(e) => {
                notes.push(format!("TypeScript reference not run: {e}"));
                None
            }
        }
    } else {
        None
    };

    let mut scenarios = Vec::new();
    if o.runs("verify") {
        let ours = start_ours(1)?;
        for (name, feed) in [
            ("verify EIP-3009", &verify_3009),
            ("verify Permit2", &verify_permit2),
        ] {
            scenarios.push(verify_sweep(&ours, feed, o, name).await?);
            if let Some(ts) = &ts {
                scenarios.push(verify_sweep(ts, feed, o, name).await?);
            }
        }
    }

    let mut flood = None;
    if o.runs("invalid-flood") {
        let flood_signers = chain.new_signers(1).await?;
        let u = start_ours_with(&flood_signers)?;
        progress(&format!("invalid flood — {}", u.facilitator.name));
        let addresses: Vec<_> = flood_signers.iter().map(|k| k.address()).collect();
        let subject = crate::flood::Subject {
            url: &u.facilitator.url,
            pid: Some(u.facilitator.pid),
            proxy: u.proxy,
        };
        let bed = crate::flood::Bed {
            chain: &chain,
            payers: &keys,
            requirements: &eip3009,
            signers: &addresses,
        };
        let report = crate::flood::run(subject, bed, &o.flood).await?;
        for failed in report.failed() {
            notes.push(format!("invalid flood check FAILED — {failed}"));
        }
        flood = Some(report);
    }

    for (name, block_time, key) in [
        ("settle EIP-3009, automine", None, "settle-automine"),
        ("settle EIP-3009, 1 s blocks", Some(1), "settle-blocks"),
    ] {
        if !o.runs(key) {
            continue;
        }
        chain.set_block_time(block_time).await?;
        let c = if block_time.is_some() {
            o.settle_concurrency
        } else {
            o.automine_concurrency
        };
        let mut ours_steps = Scenario {
            name: name.into(),
            target: "x402-rs".into(),
            steps: Vec::new(),
        };
        for &n in &o.signer_counts {
            if settle.remaining() == 0 {
                notes.push(format!(
                    "{name}, {n} signers: not run, the settle corpus is spent"
                ));
                continue;
            }
            let u = start_ours(n)?;
            progress(&format!("{name} — {}", u.facilitator.name));
            let mut step = settle_step(&u, &chain, &settle, o, &signers[..n], c).await?;
            step.label = format!("{n} signer{} c={c}", if n == 1 { "" } else { "s" });
            ours_steps.steps.push(step);
        }
        scenarios.push(ours_steps);
        if let Some(ts) = ts.as_ref().filter(|_| settle.remaining() > 0) {
            progress(&format!("{name} — {}", ts.facilitator.name));
            let mut step = settle_step(ts, &chain, &settle, o, &ts_signers, c).await?;
            step.label = format!("1 signer c={c}");
            scenarios.push(Scenario {
                name: name.into(),
                target: ts.facilitator.name.clone(),
                steps: vec![step],
            });
        }
    }
    let mut stores = Vec::new();
    let mut stores_setup = None;
    if o.runs("settle-stores") && !o.stores.is_empty() {
        let bed = crate::stores::Bed {
            chain: &chain,
            chain_pid,
            payers: &keys,
            requirements: &eip3009,
            proxy: ours_proxy,
        };
        let run = crate::stores::run(bed, o).await?;
        scenarios.extend(run.scenarios);
        notes.extend(run.notes);
        stores = run.figures;
        stores_setup = run.setup;
    }
    chain.set_block_time(None).await?;
    let ran_out = scenarios.iter().flat_map(|s| &s.steps);
    if ran_out
        .filter(|st| st.stopped_by == crate::driver::Stop::Corpus)
        .count()
        > 0
    {
        notes.push(
            "a settle step ran out of corpus before its bounds (raise --payers or --settle-rounds)"
                .into(),
        );
    }

    drop(ts);
    drop(chain);
    match &o.svm {
        Some(_) if !o.runs("svm") => {}
        Some(svm) if crate::svm::validator_installed() => {
            scenarios.extend(crate::svm::run(svm, &o.facilitator_bin).await?);
        }
        Some(_) => notes.push("SVM scenarios not run: solana-test-validator is not installed (scripts/install-tools.sh)".into()),
        None => notes.push("SVM scenarios not run (--no-svm)".into()),
    }
    let comparisons = crate::report::compare(&scenarios);
    let ours_verify = scenarios
        .iter()
        .find(|s| s.name == "verify EIP-3009" && s.target.starts_with("x402-rs"));
    if let Some(cpu) = ours_verify
        .and_then(Scenario::peak)
        .and_then(|p| p.cost.facilitator_cpu_s_per_1k)
    {
        notes.push(format!(
            "x402-rs CPU per EIP-3009 verify at peak throughput: {:.0} µs = {:.1}× the floor of one \
             EIP-712 hash + one secp256k1 recovery ({floor_us:.1} µs in this build, one core)",
            cpu * 1000.0,
            cpu * 1000.0 / floor_us
        ));
    }
    let mut setup_facts = BTreeMap::new();
    setup_facts.insert(
        "chain".into(),
        format!(
            "anvil, chain id {}, Circle FiatTokenV2_2 at {}",
            o.chain_id, usdc
        ),
    );
    setup_facts.insert("corpus".into(), format!(
        "{} funded payers; {} distinct verify bodies per method (cycled); {} settle bodies (each used once); v2, price {} USDC, valid {} s",
        payers, verify_keys.len(), payers * settle_rounds, corpus::PRICE, corpus::VALIDITY_SECONDS));
    setup_facts.insert(
        "bounds".into(),
        format!(
            "verify steps ≤ {} ops and ≤ {:?}, after 1 s of warm-up; settle steps ≤ {} ops and \
             ≤ {:?} (c={} with automining, c={} with 1 s blocks)",
            o.step_ops,
            o.step_time,
            o.settle_ops,
            o.settle_time,
            o.automine_concurrency,
            o.settle_concurrency
        ),
    );
    if let Some(text) = stores_setup {
        setup_facts.insert("stores".into(), text);
    }
    setup_facts.insert(
        "verify CPU floor".into(),
        format!(
            "{floor_us:.1} µs per EIP-712 hash + secp256k1 recovery (alloy, this build, one core)"
        ),
    );
    Ok(Report {
        date: crate::env::now_utc(),
        commit: crate::env::commit(),
        profile: crate::env::profile().into(),
        versions: crate::env::versions(&o.facilitator_bin),
        machine,
        setup: setup_facts,
        scenarios,
        comparisons,
        stores,
        flood,
        notes,
    })
}
