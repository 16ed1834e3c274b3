//! Settle throughput and cost by settlement store (issue 11): our facilitator with the memory
//! store, the embedded store (a SQLite file) and the PostgreSQL store, with 1-second blocks.
//!
//! One facilitator process per store, started in turn on the same chain, each with fresh signers
//! funded alike and a fresh corpus of the same shape (a settled payment cannot settle twice),
//! every corpus signed before the first step. With several rounds the order alternates (memory,
//! sqlite, postgres, then postgres, sqlite, memory, …) so a drift of the shared machine's load
//! weighs on every store alike; each round gets a new SQLite file and a new PostgreSQL database.
//! The PostgreSQL server is a throw-away cluster
//! ([`PgServer`](x402_tests::postgres::PgServer): fsync on) on the same cores; its CPU —
//! postmaster and backends — is counted beside the facilitator's, since with PostgreSQL part of
//! the store's work leaves the facilitator process.
//!
//! Issue 11's target: a durable store keeps at least [`TARGET_RATIO`] of the memory store's
//! settle throughput. The report states whether each store does; nothing asserts it.
//!
//! [`figures`](mod@figures) pools the rounds and renders the report section; `backends` keeps
//! the SQLite files and the PostgreSQL server.

mod backends;
pub mod figures;

use std::str::FromStr;

use alloy::signers::local::PrivateKeySigner;
use serde::Serialize;
use x402_core::wire::PaymentRequirementsV2;

use crate::chain::Chain;
use crate::corpus;
use crate::driver::Feed;
use crate::measure::Step;
use crate::proxy::RpcProxy;
use crate::report::Scenario;
use crate::scenarios::{Under, progress, settle_step};
use crate::suite::Options;
use crate::targets::{self, EvmSetup};

use backends::Backends;
pub use figures::{Measured, StoreFigure, figures, markdown};

/// Issue 11: a durable store keeps at least this share of the memory store's settle throughput
/// with 1-second blocks.
pub const TARGET_RATIO: f64 = 0.8;

/// The scenario's name in the report.
pub const SCENARIO: &str = "settle EIP-3009, 1 s blocks, by store";

/// A settlement store the facilitator can run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// `memory`: nothing survives the process.
    Memory,
    /// `sqlite:<path>`: the embedded store, one file.
    Sqlite,
    /// `postgres://…`: the store replicas share.
    Postgres,
}

impl StoreKind {
    /// Every kind, in the default order.
    pub const ALL: [Self; 3] = [Self::Memory, Self::Sqlite, Self::Postgres];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// Reads a comma-separated list (`memory,sqlite,postgres`); a repeat is an error.
    pub fn list(text: &str) -> Result<Vec<Self>, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let kind = part.parse()?;
            if out.contains(&kind) {
                return Err(format!("--stores: {part} is named twice"));
            }
            out.push(kind);
        }
        Ok(out)
    }
}

impl FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "memory" => Ok(Self::Memory),
            "sqlite" | "embedded" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(format!(
                "--stores: {s:?} is none of memory, sqlite, postgres"
            )),
        }
    }
}

/// The order the steps run in: `kinds` in the first round, reversed in the second, and so on.
pub fn schedule(kinds: &[StoreKind], rounds: usize) -> Vec<(usize, StoreKind)> {
    let mut out = Vec::new();
    for round in 0..rounds {
        let mut order = kinds.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        out.extend(order.into_iter().map(|k| (round, k)));
    }
    out
}

/// The chain, payers and RPC path the comparison runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bed<'a> {
    pub(crate) chain: &'a Chain,
    pub(crate) chain_pid: Option<u32>,
    pub(crate) payers: &'a [PrivateKeySigner],
    pub(crate) requirements: &'a PaymentRequirementsV2,
    pub(crate) proxy: Option<&'a RpcProxy>,
}

/// What the comparison produced.
#[derive(Debug, Default)]
pub(crate) struct StoreRun {
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) figures: Vec<StoreFigure>,
    pub(crate) notes: Vec<String>,
    pub(crate) setup: Option<String>,
}

/// Runs the comparison on `bed` with 1-second blocks (left on for the caller to reset).
pub(crate) async fn run(bed: Bed<'_>, o: &Options) -> Result<StoreRun, String> {
    let mut out = StoreRun::default();
    let (backends, pg) = Backends::start(&o.stores).await?;
    let mut kinds = o.stores.clone();
    if let Err(e) = pg {
        out.notes.push(format!(
            "PostgreSQL store not measured: the server did not start: {}",
            e.lines().next().unwrap_or_default()
        ));
        kinds.retain(|k| *k != StoreKind::Postgres);
    }
    let plan = schedule(&kinds, o.store_rounds.max(1));
    if plan.is_empty() {
        return Ok(out);
    }
    let c = o.settle_concurrency;
    if c > bed.payers.len() {
        out.notes.push(format!(
            "store comparison: c={c} exceeds the {} payers, so settles of one payer wait for \
             each other's receipts",
            bed.payers.len()
        ));
    }
    let per_step = usize::try_from(o.settle_ops).unwrap_or(usize::MAX);
    progress(&format!(
        "signing {} × {per_step} settle bodies for the store comparison",
        plan.len()
    ));
    let mut feeds = Vec::new();
    for _ in &plan {
        let bodies = corpus::sign_n(bed.payers, bed.requirements, per_step).await?;
        feeds.push(Feed::once(bodies));
    }
    let n = o.store_signers.max(1);
    out.setup = Some(format!(
        "{}; order per round {}, reversed every other round; each step a fresh facilitator \
         process with {n} fresh signer{} holding 1,000 ETH, a fresh store and {per_step} fresh \
         payments; c={c}, ≤ {} ops and ≤ {:?} a step",
        backends.describe(),
        kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", "),
        if n == 1 { "" } else { "s" },
        o.settle_ops,
        o.settle_time,
    ));
    bed.chain.set_block_time(Some(1)).await?;
    let mut measured = Vec::new();
    for (&(round, kind), feed) in plan.iter().zip(&feeds) {
        let signers = bed.chain.new_signers(n).await?;
        let setup = EvmSetup {
            chain_id: bed.chain.bed.chain_id(),
            rpc_url: bed
                .proxy
                .map_or(bed.chain.bed.endpoint(), RpcProxy::url)
                .to_owned(),
            usdc: bed.chain.bed.usdc(),
            signers: signers.clone(),
            store_url: backends.url(kind, round)?,
        };
        let facilitator = match targets::start_rust(&o.facilitator_bin, &setup) {
            Ok(f) => f,
            Err(e) => {
                out.notes.push(format!(
                    "{} store, round {}: not measured: {e}",
                    kind.name(),
                    round + 1
                ));
                continue;
            }
        };
        let u = Under {
            facilitator,
            proxy: bed.proxy,
            chain_pid: bed.chain_pid,
            store_pid: backends.server_pid(kind),
        };
        progress(&format!(
            "{SCENARIO} — {}, round {}",
            u.facilitator.name,
            round + 1
        ));
        let mut step = settle_step(&u, bed.chain, feed, o, &signers, c).await?;
        step.label = format!(
            "round {}: {n} signer{} c={c}",
            round + 1,
            if n == 1 { "" } else { "s" }
        );
        measured.push(Measured {
            round,
            store: kind,
            step,
        });
    }
    out.figures = figures(&measured);
    for kind in kinds {
        let steps: Vec<Step> = measured
            .iter()
            .filter(|m| m.store == kind)
            .map(|m| m.step.clone())
            .collect();
        if !steps.is_empty() {
            out.scenarios.push(Scenario {
                name: SCENARIO.into(),
                target: format!("ours ({} store)", kind.name()),
                who: crate::report::Who::Ours,
                steps,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_schedules_alternate() {
        assert_eq!(
            StoreKind::list("memory, sqlite,postgres").unwrap(),
            StoreKind::ALL
        );
        assert!(StoreKind::list("memory,memory").is_err());
        assert!(StoreKind::list("redis").is_err());
        use StoreKind::{Memory as M, Postgres as P, Sqlite as S};
        assert_eq!(
            schedule(&[M, S, P], 2),
            [(0, M), (0, S), (0, P), (1, P), (1, S), (1, M)]
        );
    }
}
