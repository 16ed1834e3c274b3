//! The README's first command on a busy machine: the demo's Solana payment while a busy loop
//! keeps every core occupied (users run the demo beside their editor and builds; CI machines
//! have two cores).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest the CPU load runs, whatever happens to the demo: the load stops by itself.
const LOAD_CAP: Duration = Duration::from_secs(15 * 60);

/// Busy threads, one per core, until dropped (or [`LOAD_CAP`]).
struct CpuLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl CpuLoad {
    fn start() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..cores)
            .map(|i| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let mut x: u64 = i as u64 + 1;
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_CAP {
                        for _ in 0..100_000 {
                            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        }
                        std::hint::black_box(x);
                    }
                    x
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn the_demo_pays_on_solana_while_every_core_is_busy() {
    let demo = std::path::PathBuf::from(env!("CARGO_BIN_EXE_x402-demo"));
    for sibling in ["x402", "x402-facilitator"] {
        let path = demo.with_file_name(sibling);
        assert!(
            path.exists(),
            "{} is missing: the demo runs it (scripts/test.sh builds it with `cargo build \
             --workspace --bins`; alone: cargo build -p facilitator-bin -p x402-buyer --features \
             x402-buyer/cli)",
            path.display()
        );
    }
    // The CLI records its payments in a ledger: a temporary one, not the user's.
    let ledger = tempfile::tempdir().expect("a temporary directory");
    let load = CpuLoad::start();
    let output = Command::new(&demo)
        .env("X402_LEDGER", ledger.path().join("ledger.jsonl"))
        .env("X402_DEMO_EXIT", "1")
        .env("X402_DEMO_CHAINS", "solana")
        .output()
        .expect("run x402-demo");
    drop(load);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the demo failed under load ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The CLI's report of a paid request, and the balances the demo read from the chain.
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("HTTP 200 after") && l.contains(", transaction ")),
        "no paid request in the demo's output:\n{stdout}"
    );
    assert!(
        stdout.contains("the premium data you paid for on Solana"),
        "the paid content is missing:\n{stdout}"
    );
    assert!(
        stdout.contains("buyer 1000000000 -> 999750000 / seller 0 -> 250000 token units"),
        "the balances did not move by the price:\n{stdout}"
    );
    assert!(
        !stdout.contains("==> the x402 CLI pays /premium on EVM"),
        "X402_DEMO_CHAINS=solana still paid on EVM:\n{stdout}"
    );
}
