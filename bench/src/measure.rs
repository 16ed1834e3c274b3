//! One measured step: a driver run plus what it cost — RPC calls per operation (from the counting
//! proxy), CPU seconds per 1,000 operations of the facilitator, the chain node, the driver and a
//! store server (PostgreSQL) when there is one, and the facilitator's peak RSS during the step.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::chain::BlockStats;
use crate::driver::{self, Feed, Limits, Stop, Target};
use crate::procstat;
use crate::proxy::{self, Counts, RpcProxy};
use crate::stats::Summary;

/// How requests are offered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Load {
    /// `concurrency` requests always in flight.
    Closed {
        /// Workers.
        concurrency: usize,
    },
    /// A fixed arrival rate.
    Open {
        /// Requests started per second.
        rate_per_s: f64,
    },
}

impl Load {
    /// A short label (`c=32`, `370/s`).
    pub fn label(&self) -> String {
        match self {
            Self::Closed { concurrency } => format!("c={concurrency}"),
            Self::Open { rate_per_s } => format!("{rate_per_s:.0}/s open"),
        }
    }
}

/// Where RPC tallies come from.
#[derive(Debug, Clone, Copy)]
pub enum RpcSource<'a> {
    /// Not counted.
    None,
    /// A proxy in this process.
    Local(&'a RpcProxy),
    /// A proxy in another process (`GET URL/counts`).
    Remote(&'a str),
}

/// The processes and counters a step reads.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    /// The facilitator's process.
    pub facilitator_pid: Option<u32>,
    /// The chain node (anvil or solana-test-validator).
    pub chain_pid: Option<u32>,
    /// A settlement store's server (PostgreSQL's postmaster), counted with its descendants.
    pub store_pid: Option<u32>,
    /// The RPC tallies.
    pub rpc: RpcSource<'a>,
}

#[derive(Debug)]
struct Sample {
    facilitator: Option<f64>,
    anvil: Option<f64>,
    store: Option<f64>,
    driver: Option<f64>,
    rpc: Option<Counts>,
}

impl Probe<'_> {
    async fn sample(&self) -> Sample {
        let rpc = match self.rpc {
            RpcSource::None => None,
            RpcSource::Local(p) => Some(p.counts()),
            RpcSource::Remote(url) => proxy::fetch_counts(url).await.ok(),
        };
        Sample {
            facilitator: self.facilitator_pid.and_then(procstat::cpu_seconds),
            anvil: self.chain_pid.and_then(procstat::cpu_seconds),
            store: self.store_pid.and_then(procstat::tree_cpu_seconds),
            driver: procstat::cpu_seconds(std::process::id()),
            rpc,
        }
    }
}

/// JSON-RPC calls per operation.
#[derive(Debug, Clone, Serialize)]
pub struct RpcPerOp {
    /// All methods.
    pub total: f64,
    /// Per method.
    pub by_method: BTreeMap<String, f64>,
}

/// CPU seconds per 1,000 operations, and memory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cost {
    /// The facilitator process.
    pub facilitator_cpu_s_per_1k: Option<f64>,
    /// The chain node (anvil or solana-test-validator).
    pub chain_cpu_s_per_1k: Option<f64>,
    /// The benchmark process (HTTP driver and RPC proxy).
    pub driver_cpu_s_per_1k: Option<f64>,
    /// The settlement store's server (PostgreSQL: postmaster and backends), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_cpu_s_per_1k: Option<f64>,
    /// Share of all cores the processes above kept busy during the step.
    pub cpu_busy_fraction: Option<f64>,
    /// The facilitator's peak RSS during the step, in MiB: its `VmHWM`, reset to its current
    /// RSS right before the step (`/proc/PID/clear_refs`), so it counts what was resident when
    /// the step began — memory an earlier step left behind included — and the highest point
    /// since.
    pub facilitator_peak_rss_mib: Option<f64>,
    /// The facilitator's RSS when the step began (right after that reset), in MiB: what the
    /// steps before left resident.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facilitator_rss_at_start_mib: Option<f64>,
    /// The facilitator's RSS when the step's last answer came, in MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facilitator_rss_at_end_mib: Option<f64>,
}

/// One measured step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The load label.
    pub label: String,
    /// How requests were offered.
    pub load: Load,
    /// What ended the step.
    pub stopped_by: Stop,
    /// Outcomes, throughput and latency.
    pub summary: Summary,
    /// RPC calls per operation.
    pub rpc_per_op: Option<RpcPerOp>,
    /// CPU and memory.
    pub cost: Cost,
    /// Settle steps: what the blocks held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocks: Option<BlockStats>,
    /// Settle steps: transactions the facilitator's signers sent (their nonce delta).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_txs: Option<u64>,
}

/// Runs one step of `load` within `limits` and measures it.
pub async fn step(
    target: &Target,
    feed: &Feed,
    load: Load,
    limits: Limits,
    probe: Probe<'_>,
) -> Step {
    if let Some(pid) = probe.facilitator_pid {
        procstat::reset_peak_rss(pid);
    }
    let rss_at_start = probe.facilitator_pid.and_then(procstat::rss_mib);
    let before = probe.sample().await;
    let run = match load {
        Load::Closed { concurrency } => {
            driver::closed_loop(target, feed, concurrency, limits).await
        }
        Load::Open { rate_per_s } => driver::open_loop(target, feed, rate_per_s, limits).await,
    };
    let rss_at_end = probe.facilitator_pid.and_then(procstat::rss_mib);
    let after = probe.sample().await;
    let summary = run.recorder.summary(run.elapsed);
    let ops = summary.sent as f64;
    let per_k = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if ops > 0.0 => Some((a - b) / ops * 1000.0),
        _ => None,
    };
    let busy = match (
        after.facilitator,
        before.facilitator,
        after.anvil,
        before.anvil,
    ) {
        (Some(fa), Some(fb), aa, ab) => {
            let anvil = aa.zip(ab).map_or(0.0, |(a, b)| a - b);
            let driver = after.driver.zip(before.driver).map_or(0.0, |(a, b)| a - b);
            let store = after.store.zip(before.store).map_or(0.0, |(a, b)| a - b);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            Some((fa - fb + anvil + driver + store) / (summary.elapsed_s * cores).max(1e-9))
        }
        _ => None,
    };
    let rpc_per_op = match (after.rpc, before.rpc) {
        (Some(a), Some(b)) if ops > 0.0 => {
            let d = proxy::delta(&a, &b);
            Some(RpcPerOp {
                total: d.values().sum::<u64>() as f64 / ops,
                by_method: d.into_iter().map(|(m, n)| (m, n as f64 / ops)).collect(),
            })
        }
        _ => None,
    };
    Step {
        label: load.label(),
        load,
        stopped_by: run.stopped_by,
        rpc_per_op,
        cost: Cost {
            facilitator_cpu_s_per_1k: per_k(after.facilitator, before.facilitator),
            chain_cpu_s_per_1k: per_k(after.anvil, before.anvil),
            driver_cpu_s_per_1k: per_k(after.driver, before.driver),
            store_cpu_s_per_1k: per_k(after.store, before.store),
            cpu_busy_fraction: busy,
            facilitator_peak_rss_mib: probe.facilitator_pid.and_then(procstat::peak_rss_mib),
            facilitator_rss_at_start_mib: rss_at_start,
            facilitator_rss_at_end_mib: rss_at_end,
        },
        blocks: None,
        signer_txs: None,
        summary,
    }
}
