//! The full run: one anvil, one corpus, our facilitator, x402-rs/x402-rs's (`bench/peer-x402rs`)
//! and the TypeScript reference driven in turn, each through its own counting RPC proxy, every
//! scenario of issues 8 and 19 that this machine can run, our facilitator's settlement stores
//! compared (issue 11, [`crate::stores`]), and one report with the three side by side.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use x402_evm::assets::TransferMethod;

use crate::chain::Chain;
use crate::corpus;
use crate::driver::Feed;
use crate::measure::{Load, Step};
use crate::procstat::Machine;
use crate::proxy::RpcProxy;
use crate::report::{NotRun, Report, Scenario, Who};
use crate::scenarios::{Under, progress, settle_step_at, verify_sweep};
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
    /// x402-rs/x402-rs's facilitator binary (built from `bench/peer-x402rs`), or `None`.
    pub peer_bin: Option<PathBuf>,
    /// Why the peer does not run when `peer_bin` is `None`.
    pub no_peer_reason: String,
    /// Signer counts of x402-rs's facilitator in the settle scenarios (empty: 1 and the most of
    /// `signer_counts`).
    pub peer_signer_counts: Vec<usize>,
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
            settle_rounds: 12,
            concurrency: vec![1, 8, 32, 128, 512],
            step_time: Duration::from_secs(8),
            step_ops: 200_000,
            automine_concurrency: 16,
            settle_concurrency: 1024,
            settle_time: Duration::from_secs(15),
            settle_ops: 5000,
            signer_counts: vec![1, 4, 8],
            typescript: true,
            peer_bin: None,
            no_peer_reason: "no --peer-bin given (bench/run.sh builds and passes it)".into(),
            peer_signer_counts: Vec::new(),
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

    /// The peer's signer counts: as given, else 1 and the most of ours.
    pub fn peer_signers(&self) -> Vec<usize> {
        if !self.peer_signer_counts.is_empty() {
            return self.peer_signer_counts.clone();
        }
        let most = self.signer_counts.iter().copied().max().unwrap_or(1);
        let mut v = vec![1, most];
        v.dedup();
        v
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A peer's first start: the facilitator, or `None` with the reason recorded.
fn started<'a>(
    who: Who,
    start: Option<Result<Under<'a>, String>>,
    notes: &mut Vec<String>,
    not_run: &mut Vec<NotRun>,
) -> Option<Under<'a>> {
    match start? {
        Ok(u) => Some(u),
        Err(e) => {
            let first = e.lines().next().unwrap_or_default().to_owned();
            notes.push(format!("{} not run: {e}", who.label()));
            not_run.push(NotRun {
                who,
                scenario: None,
                reason: format!("failed to start: {first}"),
            });
            None
        }
    }
}

/// One facilitator's settle steps in a scenario: how to start it with `n` signers.
struct Series<'a> {
    who: Who,
    target: String,
    counts: Vec<usize>,
    signers: &'a [PrivateKeySigner],
    start: &'a (dyn Fn(usize) -> Result<Under<'a>, String> + 'a),
}

/// What a settle scenario runs on.
struct SettleBed<'a> {
    chain: &'a Chain,
    feed: &'a Feed,
    o: &'a Options,
    concurrency: usize,
    /// Adds an open-loop step at half the best closed-loop throughput.
    half_peak: bool,
    /// Settle steps still to run in the whole run, over which the settle corpus left is shared
    /// (so the facilitators that run last are not starved).
    steps_left: &'a std::cell::Cell<usize>,
}

impl SettleBed<'_> {
    /// The settles the next step may use: `--settle-ops`, or an equal share of what is left.
    fn budget(&self) -> u64 {
        let left = self.steps_left.get().max(1);
        self.steps_left.set(left - 1);
        (self.o.settle_ops).min((self.feed.remaining() / left) as u64)
    }
}

/// One facilitator's settle scenario `name`: a closed-loop step per signer count and, with
/// `half_peak`, an open-loop step at half the best of them (same signer count). A peer that
/// cannot start is noted; ours must.
async fn settle_series(
    s: &Series<'_>,
    name: &str,
    bed: &SettleBed<'_>,
    notes: &mut Vec<String>,
    not_run: &mut Vec<NotRun>,
) -> Result<Option<Scenario>, String> {
    let (c, feed) = (bed.concurrency, bed.feed);
    let mut steps: Vec<(usize, Step)> = Vec::new();
    let mut failed_start = None;
    let spent = "the settle corpus is spent (raise --payers or --settle-rounds)";
    for &n in &s.counts {
        let budget = bed.budget();
        if budget == 0 {
            notes.push(format!(
                "{name}, {}, {n} signer{}: not run, {spent}",
                s.target,
                plural(n)
            ));
            continue;
        }
        let u = match (s.start)(n) {
            Ok(u) => u,
            Err(e) if s.who != Who::Ours => {
                failed_start = Some(e.lines().next().unwrap_or_default().to_owned());
                continue;
            }
            Err(e) => return Err(e),
        };
        progress(&format!("{name} — {}", u.facilitator.name));
        let load = Load::Closed { concurrency: c };
        let signers = &s.signers[..n];
        let mut step = settle_step_at(&u, bed.chain, feed, bed.o, signers, load, budget).await?;
        step.label = format!("{n} signer{} c={c}", plural(n));
        steps.push((n, step));
    }
    let peak = steps
        .iter()
        .filter(|(_, st)| st.summary.ok > 0)
        .max_by(|a, b| a.1.summary.ok_per_s.total_cmp(&b.1.summary.ok_per_s))
        .map(|(n, st)| (*n, st.summary.ok_per_s));
    let budget = if bed.half_peak { bed.budget() } else { 0 };
    if bed.half_peak && budget == 0 {
        notes.push(format!(
            "{name}, {}: half-peak step not run, {spent}",
            s.target
        ));
    }
    if let Some((n, peak)) = peak.filter(|_| budget > 0) {
        let rate = peak / 2.0;
        match (s.start)(n) {
            Ok(u) => {
                progress(&format!(
                    "{name} — {}: open loop at {rate:.1}/s",
                    u.facilitator.name
                ));
                let load = Load::Open { rate_per_s: rate };
                let signers = &s.signers[..n];
                let mut step =
                    settle_step_at(&u, bed.chain, feed, bed.o, signers, load, budget).await?;
                let rate = if rate < 10.0 {
                    format!("{rate:.1}")
                } else {
                    format!("{rate:.0}")
                };
                step.label = format!("{n} signer{} {rate}/s open (½ peak)", plural(n));
                steps.push((n, step));
            }
            Err(e) => notes.push(format!("{name}, {}: half-peak step not run: {e}", s.target)),
        }
    }
    if steps.is_empty() {
        let reason = match failed_start {
            Some(reason) => {
                notes.push(format!("{name}, {}: not run: {reason}", s.target));
                format!("failed to start: {reason}")
            }
            None => spent.to_owned(),
        };
        not_run.push(NotRun {
            who: s.who,
            scenario: Some(name.to_owned()),
            reason,
        });
        return Ok(None);
    }
    Ok(Some(Scenario {
        name: name.into(),
        target: s.target.clone(),
        who: s.who,
        steps: steps.into_iter().map(|(_, st)| st).collect(),
    }))
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
    let peer_counts = o.peer_signers();
    let peer_bin = o.peer_bin.as_deref();
    let peer_signers = match peer_bin {
        Some(_) => {
            // x402-rs's facilitator checks this contract exists before it starts (see the const).
            chain
                .set_code(targets::PEER_VALIDATOR_6492, targets::PEER_VALIDATOR_STUB)
                .await?;
            chain
                .new_signers(peer_counts.iter().copied().max().unwrap_or(1))
                .await?
        }
        None => Vec::new(),
    };
    let mut not_run = Vec::new();
    match peer_bin {
        Some(_) => notes.push(format!(
            "x402-rs {}: the bench chain has no ERC-6492 validator at {}, which their facilitator \
             requires at start; a reverting stub was placed there (EOA payments never call it)",
            targets::peer_version(),
            targets::PEER_VALIDATOR_6492
        )),
        None => not_run.push(NotRun {
            who: Who::X402Rs,
            scenario: None,
            reason: o.no_peer_reason.clone(),
        }),
    }
    if !o.typescript {
        not_run.push(NotRun {
            who: Who::TypeScript,
            scenario: None,
            reason: "--no-ts".into(),
        });
    }
    let ours_proxy = RpcProxy::start(chain.bed.endpoint()).await?;
    let peer_proxy = RpcProxy::start(chain.bed.endpoint()).await?;
    let ts_proxy = RpcProxy::start(chain.bed.endpoint()).await?;
    // Without the proxies (--direct-rpc) the facilitators talk to anvil directly and RPC calls
    // are not counted; the proxy's own CPU then leaves the measurement too.
    let (ours_proxy, peer_proxy, ts_proxy) = if o.direct_rpc {
        notes.push(
            "--direct-rpc: EVM facilitators talked to anvil directly; RPC calls not counted".into(),
        );
        (None, None, None)
    } else {
        (Some(&ours_proxy), Some(&peer_proxy), Some(&ts_proxy))
    };
    let setup = |proxy: Option<&RpcProxy>, keys: &[PrivateKeySigner]| EvmSetup {
        chain_id: chain.bed.chain_id(),
        rpc_url: proxy.map_or(chain.bed.endpoint(), RpcProxy::url).to_owned(),
        usdc: chain.bed.usdc(),
        signers: keys.to_vec(),
        store_url: "memory".into(),
    };
    let under = |facilitator, proxy| Under {
        facilitator,
        proxy,
        chain_pid,
        store_pid: None,
    };
    let start_ours_with = |keys: &[PrivateKeySigner]| -> Result<Under<'_>, String> {
        Ok(under(
            targets::start_rust(&o.facilitator_bin, &setup(ours_proxy, keys))?,
            ours_proxy,
        ))
    };
    let start_ours = |n: usize| start_ours_with(&signers[..n]);
    let start_peer = |n: usize| -> Result<Under<'_>, String> {
        let bin = peer_bin.ok_or("no peer binary")?;
        let keys = peer_signers.get(..n).ok_or("too few peer signers")?;
        Ok(under(
            targets::start_peer(bin, &setup(peer_proxy, keys))?,
            peer_proxy,
        ))
    };
    let start_ts = |_: usize| -> Result<Under<'_>, String> {
        Ok(under(
            targets::start_ts(&setup(ts_proxy, &ts_signers))?,
            ts_proxy,
        ))
    };
    let evm = o.runs("verify") || settles;
    // Each peer is started once up front: one that cannot start is left out of every EVM
    // scenario (with its reason) instead of failing the run.
    let peer = (peer_bin.is_some() && evm).then(|| start_peer(1));
    let peer = started(Who::X402Rs, peer, &mut notes, &mut not_run);
    let ts = (o.typescript && evm).then(|| start_ts(1));
    let ts = started(Who::TypeScript, ts, &mut notes, &mut not_run);

    let mut scenarios = Vec::new();
    if o.runs("verify") {
        let ours = start_ours(1)?;
        for (name, feed) in [
            ("verify EIP-3009", &verify_3009),
            ("verify Permit2", &verify_permit2),
        ] {
            scenarios.push(verify_sweep(&ours, feed, o, name).await?);
            for u in [&peer, &ts].into_iter().flatten() {
                scenarios.push(verify_sweep(u, feed, o, name).await?);
            }
        }
    }
    let (peer_ran, ts_ran) = (peer.is_some(), ts.is_some());
    drop((peer, ts));

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

    let mut series = vec![Series {
        who: Who::Ours,
        target: "ours".into(),
        counts: o.signer_counts.clone(),
        signers: &signers,
        start: &start_ours,
    }];
    if peer_ran {
        series.push(Series {
            who: Who::X402Rs,
            target: format!("x402-rs {}", targets::peer_version()),
            counts: peer_counts.clone(),
            signers: &peer_signers,
            start: &start_peer,
        });
    }
    if ts_ran {
        series.push(Series {
            who: Who::TypeScript,
            target: "TypeScript @x402/core + @x402/evm".into(),
            counts: vec![1],
            signers: &ts_signers,
            start: &start_ts,
        });
    }
    let modes = [
        ("settle EIP-3009, automine", None, "settle-automine"),
        ("settle EIP-3009, 1 s blocks", Some(1), "settle-blocks"),
    ];
    let steps_left = std::cell::Cell::new(
        modes
            .iter()
            .filter(|(_, _, key)| o.runs(key))
            .map(|(_, block_time, _)| {
                let half = usize::from(block_time.is_some());
                series.iter().map(|s| s.counts.len() + half).sum::<usize>()
            })
            .sum(),
    );
    for (name, block_time, key) in modes {
        if !o.runs(key) {
            continue;
        }
        chain.set_block_time(block_time).await?;
        let bed = SettleBed {
            chain: &chain,
            feed: &settle,
            o,
            concurrency: if block_time.is_some() {
                o.settle_concurrency
            } else {
                o.automine_concurrency
            },
            half_peak: block_time.is_some(),
            steps_left: &steps_left,
        };
        for s in &series {
            if let Some(scenario) = settle_series(s, name, &bed, &mut notes, &mut not_run).await? {
                scenarios.push(scenario);
            }
        }
    }
    drop(series);
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

    drop(chain);
    match &o.svm {
        Some(_) if !o.runs("svm") => {}
        Some(svm) if crate::svm::validator_installed() => {
            let who = crate::svm::Facilitators {
                ours: &o.facilitator_bin,
                peer: peer_bin,
                typescript: o.typescript,
            };
            let run = crate::svm::run(svm, who).await?;
            scenarios.extend(run.scenarios);
            notes.extend(run.notes);
            not_run.extend(run.not_run);
        }
        Some(_) => notes.push("SVM scenarios not run: solana-test-validator is not installed (scripts/install-tools.sh)".into()),
        None => notes.push("SVM scenarios not run (--no-svm)".into()),
    }
    let comparisons = crate::report::compare(&scenarios, &not_run);
    for who in [Who::Ours, Who::X402Rs, Who::TypeScript] {
        let verify = scenarios
            .iter()
            .find(|s| s.name == "verify EIP-3009" && s.who == who);
        if let Some(cpu) = verify
            .and_then(Scenario::peak)
            .filter(|p| p.summary.ok > 0)
            .and_then(|p| p.cost.facilitator_cpu_s_per_1k)
        {
            notes.push(format!(
                "{} CPU per EIP-3009 verify at peak throughput: {:.0} µs = {:.1}× the floor of \
                 one EIP-712 hash + one secp256k1 recovery ({floor_us:.1} µs in this build, one \
                 core)",
                who.label(),
                cpu * 1000.0,
                cpu * 1000.0 / floor_us
            ));
        }
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
            "{floor_us:.1} µs per EIP-712 hash + secp256k1 recovery (the facilitator's own code: libsecp256k1, this build, one core)"
        ),
    );
    if peer_bin.is_some() {
        setup_facts.insert(
            "x402-rs".into(),
            format!(
                "signers {:?} in the settle scenarios (--peer-signers); ours {:?}; TypeScript 1",
                peer_counts, o.signer_counts
            ),
        );
    }
    Ok(Report {
        date: crate::env::now_utc(),
        commit: crate::env::commit(),
        profile: crate::env::profile().into(),
        versions: crate::env::versions(&o.facilitator_bin, peer_bin),
        machine,
        setup: setup_facts,
        scenarios,
        comparisons,
        not_run,
        stores,
        flood,
        notes,
    })
}
