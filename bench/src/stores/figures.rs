//! The store comparison's figures: each store's rounds pooled, compared with the memory store,
//! and rendered as the report's Markdown section.

use std::fmt::Write as _;

use serde::Serialize;

use super::{SCENARIO, StoreKind, TARGET_RATIO};
use crate::measure::Step;
use crate::stats::Latency;

/// One measured step of one store.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The round (from 0).
    pub round: usize,
    /// The store.
    pub store: StoreKind,
    /// What the step measured.
    pub step: Step,
}

/// One store's figures over every round.
#[derive(Debug, Clone, Serialize)]
pub struct StoreFigure {
    /// The store.
    pub store: StoreKind,
    /// Steps measured.
    pub rounds: usize,
    /// Settles that succeeded.
    pub ok: u64,
    /// Settles sent.
    pub sent: u64,
    /// Successes per second over the steps' summed wall time.
    pub ok_per_s: f64,
    /// Latency over every settle of every round.
    pub latency_ms: Latency,
    /// The facilitator's CPU per successful settle, in milliseconds.
    pub facilitator_cpu_ms: Option<f64>,
    /// The store server's CPU (PostgreSQL) per successful settle, in milliseconds.
    pub store_server_cpu_ms: Option<f64>,
    /// The chain node's CPU per successful settle, in milliseconds.
    pub chain_cpu_ms: Option<f64>,
    /// `ok_per_s` ÷ the memory store's.
    pub ratio_to_memory: Option<f64>,
    /// The same ratio round by round (each against the memory step of its round).
    pub round_ratios: Vec<f64>,
    /// Whether a durable store keeps [`TARGET_RATIO`] of the memory store's throughput (`None`
    /// for the memory store itself, or without a memory figure).
    pub meets_target: Option<bool>,
}

/// Milliseconds of CPU per successful settle over `steps`, from each step's seconds per 1,000
/// sent; `None` when a step lacks the figure or nothing succeeded.
fn cpu_ms_per_ok(steps: &[&Step], per_1k: impl Fn(&Step) -> Option<f64>) -> Option<f64> {
    let mut total_ms = 0.0;
    for s in steps {
        total_ms += per_1k(s)? * s.summary.sent as f64;
    }
    let ok: u64 = steps.iter().map(|s| s.summary.ok).sum();
    (ok > 0).then(|| total_ms / ok as f64)
}

/// Pools the steps of each store (in the order of their first step) and compares each with the
/// memory store.
pub fn figures(measured: &[Measured]) -> Vec<StoreFigure> {
    let mut kinds: Vec<StoreKind> = Vec::new();
    for m in measured {
        if !kinds.contains(&m.store) {
            kinds.push(m.store);
        }
    }
    let of = |kind: StoreKind| -> Vec<&Measured> {
        measured.iter().filter(|m| m.store == kind).collect()
    };
    let mut out: Vec<StoreFigure> = kinds
        .iter()
        .map(|&kind| {
            let ms = of(kind);
            let steps: Vec<&Step> = ms.iter().map(|m| &m.step).collect();
            let ok: u64 = steps.iter().map(|s| s.summary.ok).sum();
            let elapsed: f64 = steps.iter().map(|s| s.summary.elapsed_s).sum();
            let mut latencies: Vec<u64> = steps
                .iter()
                .flat_map(|s| s.summary.latencies_us.iter().copied())
                .collect();
            latencies.sort_unstable();
            StoreFigure {
                store: kind,
                rounds: steps.len(),
                ok,
                sent: steps.iter().map(|s| s.summary.sent).sum(),
                ok_per_s: if elapsed > 0.0 {
                    ok as f64 / elapsed
                } else {
                    0.0
                },
                latency_ms: Latency::of_sorted(&latencies),
                facilitator_cpu_ms: cpu_ms_per_ok(&steps, |s| s.cost.facilitator_cpu_s_per_1k),
                store_server_cpu_ms: cpu_ms_per_ok(&steps, |s| s.cost.store_cpu_s_per_1k),
                chain_cpu_ms: cpu_ms_per_ok(&steps, |s| s.cost.chain_cpu_s_per_1k),
                ratio_to_memory: None,
                round_ratios: Vec::new(),
                meets_target: None,
            }
        })
        .collect();
    let memory_rate = out
        .iter()
        .find(|f| f.store == StoreKind::Memory)
        .map(|f| f.ok_per_s)
        .filter(|r| *r > 0.0);
    let memory_steps = of(StoreKind::Memory);
    for f in &mut out {
        let Some(memory_rate) = memory_rate else {
            break;
        };
        let ratio = f.ok_per_s / memory_rate;
        f.ratio_to_memory = Some(ratio);
        f.meets_target = (f.store != StoreKind::Memory).then_some(ratio >= TARGET_RATIO);
        f.round_ratios = of(f.store)
            .iter()
            .filter_map(|m| {
                let base = memory_steps.iter().find(|b| b.round == m.round)?;
                let rate = base.step.summary.ok_per_s;
                (rate > 0.0).then(|| m.step.summary.ok_per_s / rate)
            })
            .collect();
    }
    out
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

/// The store comparison as a Markdown section.
pub fn markdown(figures: &[StoreFigure]) -> String {
    let mut out = format!(
        "\n## Settlement stores — {SCENARIO}\n\n\
         Target (issue 11): a durable store keeps ≥ {:.0} % of the memory store's settle \
         throughput. CPU is per successful settle; \"extra\" is the facilitator's plus the \
         store server's CPU less the memory store's facilitator CPU.\n\n\
         | store | steps | succeeded / sent | settles/s | ÷ memory | target | facilitator CPU \
         ms/settle | store server CPU ms/settle | extra CPU ms/settle | anvil CPU ms/settle | \
         p50 ms | p99 ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        TARGET_RATIO * 100.0
    );
    let memory_cpu = figures
        .iter()
        .find(|f| f.store == StoreKind::Memory)
        .and_then(|f| f.facilitator_cpu_ms);
    for f in figures {
        let extra = match (f.store, f.facilitator_cpu_ms, memory_cpu) {
            (StoreKind::Memory, _, _) => None,
            (_, Some(cpu), Some(base)) => Some(cpu + f.store_server_cpu_ms.unwrap_or(0.0) - base),
            _ => None,
        };
        let target = match f.meets_target {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "–",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} / {} | {:.1} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} |",
            f.store.name(),
            f.rounds,
            f.ok,
            f.sent,
            f.ok_per_s,
            opt(f.ratio_to_memory, 2),
            target,
            opt(f.facilitator_cpu_ms, 2),
            opt(f.store_server_cpu_ms, 2),
            opt(extra, 2),
            opt(f.chain_cpu_ms, 2),
            f.latency_ms.p50,
            f.latency_ms.p99,
        );
    }
    let per_round: Vec<String> = figures
        .iter()
        .filter(|f| f.store != StoreKind::Memory && !f.round_ratios.is_empty())
        .map(|f| {
            let r: Vec<String> = f.round_ratios.iter().map(|r| format!("{r:.2}")).collect();
            format!("{} {}", f.store.name(), r.join(", "))
        })
        .collect();
    if !per_round.is_empty() {
        let _ = writeln!(out, "\n÷ memory round by round: {}.", per_round.join("; "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Stop;
    use crate::measure::{Cost, Load};
    use crate::stats::{Outcome, Recorder};

    fn step(ok: u64, secs: u64, cpu_s_per_1k: f64) -> Step {
        let mut r = Recorder::default();
        for i in 0..ok {
            r.record(std::time::Duration::from_millis(1000 + i), Outcome::Ok);
        }
        Step {
            label: "round".into(),
            load: Load::Closed { concurrency: 8 },
            stopped_by: Stop::Time,
            summary: r.summary(std::time::Duration::from_secs(secs)),
            rpc_per_op: None,
            cost: Cost {
                facilitator_cpu_s_per_1k: Some(cpu_s_per_1k),
                ..Cost::default()
            },
            blocks: None,
            signer_txs: None,
        }
    }

    #[test]
    fn figures_pool_rounds_and_compare_with_memory() {
        use StoreKind::{Memory as M, Sqlite as S};
        let m = |round, store, step| Measured { round, store, step };
        let measured = vec![
            m(0, M, step(200, 10, 1.0)),
            m(0, S, step(150, 10, 2.0)),
            m(1, S, step(190, 10, 2.0)),
            m(1, M, step(200, 10, 1.0)),
        ];
        let f = figures(&measured);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].store, f[0].ok, f[0].ok_per_s), (M, 400, 20.0));
        assert_eq!(f[0].meets_target, None);
        assert_eq!((f[1].ok, f[1].ok_per_s), (340, 17.0));
        assert_eq!(f[1].ratio_to_memory, Some(0.85));
        assert_eq!(f[1].meets_target, Some(true));
        assert_eq!(f[1].round_ratios, [0.75, 0.95]);
        // 2 s per 1,000 sent, every one a success: 2 ms each.
        assert_eq!(f[1].facilitator_cpu_ms, Some(2.0));
        assert_eq!(f[1].store_server_cpu_ms, None);
        // Pooled percentiles: 340 latencies of 1,000 + i ms.
        assert_eq!(f[1].latency_ms.max, 1189.0);
        let md = markdown(&f);
        assert!(
            md.contains("| sqlite | 2 | 340 / 340 | 17.0 | 0.85 | met | 2.00 |"),
            "{md}"
        );
        assert!(md.contains("sqlite 0.75, 0.95"), "{md}");
    }
}
