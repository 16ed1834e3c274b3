//! `x402-bench`: benchmarks x402 facilitators on loopback chains.
//!
//! ```text
//! x402-bench run   [--out DIR] [--facilitator-bin PATH] [--peer-bin PATH | --no-peer]
//!                  [--peer-signers 1,8] [--no-ts] [--payers N] [--verify-bodies N]
//!                  [--settle-rounds N] [--concurrency 1,8,32,128,512] [--step-secs S] [--step-ops N]
//!                  [--automine-concurrency C] [--settle-concurrency C] [--settle-secs S]
//!                  [--settle-ops N] [--signers 1,4,8]
//!                  [--stores memory,sqlite,postgres] [--store-rounds N] [--store-signers N]
//!                  [--no-svm] [--svm-payers N] [--direct-rpc]
//!                  [--flood-invalid N] [--flood-rate R] [--flood-concurrency C]
//!                  [--flood-workers N] [--flood-valid N]
//!                  [--only verify,settle-automine,settle-blocks,settle-stores,invalid-flood,svm]
//! x402-bench chain [--out DIR] [--payers N] [--settle-rounds N] [--hold-secs S] [--store URL]
//! x402-bench drive --url URL --corpus FILE [--route verify|settle] [--concurrency LIST]
//!                  [--rate R] [--secs S] [--ops N] [--pid PID] [--chain-pid PID]
//!                  [--store-pid PID] [--rpc-counts URL]
//! ```
//!
//! `run` does everything (chain, corpus, the three facilitators, every scenario) and writes
//! `report.json` and `report.md`; `chain` keeps a funded chain and a corpus up so any facilitator
//! can be pointed at it; `drive` loads one facilitator URL with a corpus file and prints JSON.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use x402_bench::driver::{Feed, Limits, Route, Target};
use x402_bench::measure::{self, Load, Probe, RpcSource};
use x402_bench::report::{self, Scenario};
use x402_bench::{chain, corpus, proxy, suite, targets};

const USAGE: &str = "usage: x402-bench run|chain|drive [options] (see docs/benchmarks.md)";

/// `--key value` pairs and bare `--flag`s.
struct Args(HashMap<String, String>);

impl Args {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let key = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {a:?}"))?;
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                _ => String::new(),
            };
            map.insert(key.to_owned(), value);
        }
        Ok(Self(map))
    }

    fn get<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.0
            .get(key)
            .map(|v| v.parse().map_err(|_| format!("--{key}: cannot read {v:?}")))
            .transpose()
    }

    fn list(&self, key: &str) -> Result<Option<Vec<usize>>, String> {
        self.0
            .get(key)
            .map(|v| {
                v.split(',')
                    .map(|x| {
                        x.trim()
                            .parse()
                            .map_err(|_| format!("--{key}: cannot read {v:?}"))
                    })
                    .collect()
            })
            .transpose()
    }

    fn flag(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

fn out_dir(args: &Args) -> Result<PathBuf, String> {
    let dir = args
        .get::<PathBuf>("out")?
        .unwrap_or_else(|| PathBuf::from("bench-report"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

fn say(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

async fn run(args: &Args) -> Result<(), String> {
    let mut o = suite::Options::default();
    o.facilitator_bin = match args.get::<PathBuf>("facilitator-bin")? {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("x402-facilitator"),
    };
    o.payers = args.get("payers")?.unwrap_or(o.payers);
    o.verify_bodies = args.get("verify-bodies")?.unwrap_or(o.verify_bodies);
    o.settle_rounds = args.get("settle-rounds")?.unwrap_or(o.settle_rounds);
    o.concurrency = args.list("concurrency")?.unwrap_or(o.concurrency);
    o.step_time = args
        .get::<f64>("step-secs")?
        .map_or(o.step_time, Duration::from_secs_f64);
    o.step_ops = args.get("step-ops")?.unwrap_or(o.step_ops);
    o.automine_concurrency = args
        .get("automine-concurrency")?
        .unwrap_or(o.automine_concurrency);
    o.settle_concurrency = args
        .get("settle-concurrency")?
        .unwrap_or(o.settle_concurrency);
    o.settle_time = args
        .get::<f64>("settle-secs")?
        .map_or(o.settle_time, Duration::from_secs_f64);
    o.settle_ops = args.get("settle-ops")?.unwrap_or(o.settle_ops);
    o.signer_counts = args.list("signers")?.unwrap_or(o.signer_counts);
    if let Some(list) = args.get::<String>("stores")? {
        o.stores = x402_bench::stores::StoreKind::list(&list)?;
    }
    o.store_rounds = args.get("store-rounds")?.unwrap_or(o.store_rounds);
    o.store_signers = args.get("store-signers")?.unwrap_or(o.store_signers);
    let f = &mut o.flood;
    f.invalid = args.get("flood-invalid")?.unwrap_or(f.invalid);
    f.rate_per_s = args.get("flood-rate")?.unwrap_or(f.rate_per_s);
    f.concurrency = args.get("flood-concurrency")?.unwrap_or(f.concurrency);
    f.valid_workers = args.get("flood-workers")?.unwrap_or(f.valid_workers);
    f.baseline_payments = args.get("flood-valid")?.unwrap_or(f.baseline_payments);
    o.typescript = !args.flag("no-ts");
    o.peer_bin = args.get::<PathBuf>("peer-bin")?;
    if args.flag("no-peer") {
        o.peer_bin = None;
        o.no_peer_reason = "--no-peer".into();
    }
    o.peer_signer_counts = args.list("peer-signers")?.unwrap_or_default();
    o.direct_rpc = args.flag("direct-rpc");
    if let Some(only) = args.get::<String>("only")? {
        o.only = only.split(',').map(|s| s.trim().to_owned()).collect();
    }
    if args.flag("no-svm") {
        o.svm = None;
    } else if let (Some(svm), Some(n)) = (o.svm.as_mut(), args.get("svm-payers")?) {
        svm.payers = n;
    }
    let dir = out_dir(args)?;
    let report = suite::run(&o).await?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    let md = report::markdown(&report);
    for (name, text) in [("report.json", &json), ("report.md", &md)] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    say(&md);
    match report.failed_checks().as_slice() {
        [] => Ok(()),
        failed => Err(format!("checks failed:\n{}", failed.join("\n"))),
    }
}

async fn hold_chain(args: &Args) -> Result<(), String> {
    let dir = out_dir(args)?;
    let chain = chain::Chain::start(args.get("chain-id")?.unwrap_or(31337)).await;
    let keys = corpus::payers(args.get("payers")?.unwrap_or(1000));
    let addresses: Vec<_> = keys.iter().map(|k| k.address()).collect();
    chain
        .fund(
            &addresses,
            alloy::primitives::U256::from(1_000_000_000u64),
            true,
        )
        .await?;
    let method = x402_evm::assets::TransferMethod::Eip3009;
    let eip3009 = corpus::requirements(&chain, method).await?;
    let permit2 = corpus::requirements(&chain, x402_evm::assets::TransferMethod::Permit2).await?;
    let rounds = args.get("settle-rounds")?.unwrap_or(5);
    corpus::write_jsonl(
        &dir.join("verify-eip3009.jsonl"),
        &corpus::sign(&keys, &eip3009, 1).await?,
    )?;
    corpus::write_jsonl(
        &dir.join("verify-permit2.jsonl"),
        &corpus::sign(&keys, &permit2, 1).await?,
    )?;
    corpus::write_jsonl(
        &dir.join("settle.jsonl"),
        &corpus::sign(&keys, &eip3009, rounds).await?,
    )?;
    let proxy = proxy::RpcProxy::start(chain.bed.endpoint()).await?;
    let setup = targets::EvmSetup {
        chain_id: chain.bed.chain_id(),
        rpc_url: proxy.url().to_owned(),
        usdc: chain.bed.usdc(),
        signers: chain.new_signers(args.get("signers")?.unwrap_or(1)).await?,
        store_url: args.get("store")?.unwrap_or_else(|| "memory".into()),
    };
    let (toml, env) = targets::rust_config(&setup);
    std::fs::write(dir.join("facilitator.toml"), toml).map_err(|e| e.to_string())?;
    let env: String = env
        .iter()
        .map(|(k, v)| format!("export {k}={v}\n"))
        .collect();
    std::fs::write(dir.join("facilitator.env"), env).map_err(|e| e.to_string())?;
    say(&format!(
        "rpc {} (counting proxy; counts at {}/counts), anvil {}, chain id {}, USDC {}\n\
         corpus and facilitator.toml/.env in {}",
        proxy.url(),
        proxy.url(),
        chain.bed.endpoint(),
        chain.bed.chain_id(),
        chain.bed.usdc(),
        dir.display()
    ));
    let hold = Duration::from_secs(args.get("hold-secs")?.unwrap_or(3600));
    tokio::select! {
        () = tokio::time::sleep(hold) => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    Ok(())
}

async fn drive(args: &Args) -> Result<(), String> {
    let url: String = args.get("url")?.ok_or("--url is required")?;
    let file: PathBuf = args.get("corpus")?.ok_or("--corpus is required")?;
    let route = match args.get::<String>("route")?.as_deref() {
        None | Some("verify") => Route::Verify,
        Some("settle") => Route::Settle,
        Some(other) => return Err(format!("--route: {other:?} is neither verify nor settle")),
    };
    let bodies = corpus::read_jsonl(&file)?;
    let feed = match route {
        Route::Verify => Feed::cycling(bodies),
        Route::Settle => Feed::once(bodies),
    };
    let timeout = Duration::from_secs(if route == Route::Settle { 90 } else { 30 });
    let target = Target::new(&url, route, timeout)?;
    let limits = Limits {
        max_ops: args.get("ops")?.unwrap_or(100_000),
        max_time: Duration::from_secs_f64(args.get("secs")?.unwrap_or(10.0)),
    };
    let rpc_url: Option<String> = args.get("rpc-counts")?;
    let probe = Probe {
        facilitator_pid: args.get("pid")?,
        chain_pid: args.get("chain-pid")?,
        store_pid: args.get("store-pid")?,
        rpc: rpc_url
            .as_deref()
            .map_or(RpcSource::None, RpcSource::Remote),
    };
    let mut loads: Vec<Load> = args
        .list("concurrency")?
        .unwrap_or_default()
        .into_iter()
        .map(|concurrency| Load::Closed { concurrency })
        .collect();
    if let Some(rate_per_s) = args.get::<f64>("rate")? {
        loads.push(Load::Open { rate_per_s });
    }
    if loads.is_empty() {
        loads.push(Load::Closed { concurrency: 8 });
    }
    let mut scenario = Scenario {
        name: format!("{} {}", route.path(), file.display()),
        target: url.clone(),
        who: x402_bench::report::Who::Other,
        steps: Vec::new(),
    };
    for load in loads {
        scenario
            .steps
            .push(measure::step(&target, &feed, load, limits, probe).await);
    }
    say(&serde_json::to_string_pretty(&scenario).map_err(|e| e.to_string())?);
    Ok(())
}

fn main() -> ExitCode {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = all.split_first() else {
        let _ = writeln!(std::io::stderr(), "{USAGE}");
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "x402-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = Args::parse(rest).and_then(|args| {
        runtime.block_on(async {
            match command.as_str() {
                "run" => run(&args).await,
                "chain" => hold_chain(&args).await,
                "drive" => drive(&args).await,
                _ => Err(USAGE.into()),
            }
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "x402-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
