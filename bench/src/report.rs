//! The report of a run: JSON for machines, Markdown tables for `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::measure::Step;
use crate::procstat::Machine;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the run started (UTC, ISO 8601).
    pub date: String,
    /// The workspace commit (`+dirty` with uncommitted changes).
    pub commit: String,
    /// The build profile of the benchmark binary.
    pub profile: String,
    /// The machine.
    pub machine: Machine,
    /// Tool and library versions.
    pub versions: BTreeMap<String, String>,
    /// Corpus and chain facts.
    pub setup: BTreeMap<String, String>,
    /// The scenarios, in the order they ran.
    pub scenarios: Vec<Scenario>,
    /// Ours ÷ theirs.
    pub comparisons: Vec<Comparison>,
    /// Settle throughput and cost by settlement store (empty when not run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<crate::stores::StoreFigure>,
    /// The invalid flood (`None` when not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<crate::flood::FloodReport>,
    /// Anything skipped or worth knowing, in plain words.
    pub notes: Vec<String>,
}

/// One scenario against one facilitator.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// What was measured (`verify EIP-3009`, `settle, 1 s blocks`).
    pub name: String,
    /// Which facilitator.
    pub target: String,
    /// The steps.
    pub steps: Vec<Step>,
}

impl Report {
    /// The correctness checks of the run that failed (the invalid flood's).
    pub fn failed_checks(&self) -> Vec<String> {
        self.flood
            .as_ref()
            .map(crate::flood::FloodReport::failed)
            .unwrap_or_default()
    }
}

impl Scenario {
    /// The best successful throughput over the closed-loop steps.
    pub fn peak(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| matches!(s.load, crate::measure::Load::Closed { .. }))
            .max_by(|a, b| a.summary.ok_per_s.total_cmp(&b.summary.ok_per_s))
    }
}

/// A ratio between two facilitators.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What is compared.
    pub what: String,
    /// Our figure.
    pub ours: f64,
    /// The other facilitator's figure.
    pub theirs: f64,
    /// `ours ÷ theirs` (or `theirs ÷ ours` for latencies, so > 1 always means we are better).
    pub ratio: f64,
}

impl Comparison {
    /// Throughput: `ours ÷ theirs`.
    pub fn throughput(what: impl Into<String>, ours: f64, theirs: f64) -> Self {
        Self {
            what: what.into(),
            ours,
            theirs,
            ratio: if theirs > 0.0 {
                ours / theirs
            } else {
                f64::INFINITY
            },
        }
    }

    /// Latency or cost: `theirs ÷ ours`.
    pub fn latency(what: impl Into<String>, ours: f64, theirs: f64) -> Self {
        Self {
            what: what.into(),
            ours,
            theirs,
            ratio: if ours > 0.0 {
                theirs / ours
            } else {
                f64::INFINITY
            },
        }
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

fn errors(step: &Step) -> String {
    if step.summary.errors.is_empty() {
        return "0".into();
    }
    step.summary
        .errors
        .iter()
        .map(|(r, n)| format!("{n}× {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The steps of one scenario as a Markdown table (a store server column when one was
/// measured).
pub fn steps_table(steps: &[Step]) -> String {
    let server = steps.iter().any(|s| s.cost.store_cpu_s_per_1k.is_some());
    let (server_head, server_rule) = if server {
        (" store server CPU s/1k |", "---|")
    } else {
        ("", "")
    };
    let mut out = format!(
        "| load | ok / sent | ok/s | p50 ms | p95 ms | p99 ms | max ms | errors | RPC/op | \
         facilitator CPU s/1k | chain CPU s/1k |{server_head} driver CPU s/1k | CPU busy | \
         peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|{server_rule}---|---|---|\n",
    );
    for s in steps {
        let l = &s.summary.latency_ms;
        let server_cell = if server {
            format!(" {} |", opt(s.cost.store_cpu_s_per_1k, 3))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} / {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} | {} |{} {} | {} | {} |",
            s.label,
            s.summary.ok,
            s.summary.sent,
            s.summary.ok_per_s,
            l.p50,
            l.p95,
            l.p99,
            l.max,
            errors(s),
            opt(s.rpc_per_op.as_ref().map(|r| r.total), 2),
            opt(s.cost.facilitator_cpu_s_per_1k, 3),
            opt(s.cost.chain_cpu_s_per_1k, 3),
            server_cell,
            opt(s.cost.driver_cpu_s_per_1k, 3),
            s.cost
                .cpu_busy_fraction
                .map_or_else(|| "–".into(), |b| format!("{:.0} %", b * 100.0)),
            opt(s.cost.facilitator_peak_rss_mib, 1),
        );
    }
    out
}

fn rpc_breakdown(steps: &[Step]) -> String {
    let Some(step) = steps.iter().rev().find(|s| s.rpc_per_op.is_some()) else {
        return String::new();
    };
    let Some(rpc) = &step.rpc_per_op else {
        return String::new();
    };
    let parts: Vec<String> = rpc
        .by_method
        .iter()
        .map(|(m, n)| format!("`{m}` {n:.2}"))
        .collect();
    format!(
        "RPC calls per operation at {}: {}.\n",
        step.label,
        parts.join(", ")
    )
}

fn block_lines(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        if let Some(b) = s.blocks.as_ref().filter(|b| b.max_per_block <= 1) {
            let _ = writeln!(
                out,
                "Blocks at {}: one settlement a block (automine), {} gas each; signers sent {} \
                 transactions for {} successes; {} nonce errors.",
                s.label,
                b.gas_per_settle,
                s.signer_txs.map_or_else(|| "?".into(), |n| n.to_string()),
                s.summary.ok,
                s.summary.nonce_errors,
            );
        } else if let Some(b) = &s.blocks {
            let _ = writeln!(
                out,
                "Blocks at {}: {} blocks, {} settlements, {} gas each, gas limit {} admits {} a block; \
                 {} steady blocks held {:.1} on average (fill {:.0} %), most {}; signers sent {} \
                 transactions for {} successes; {} nonce errors.",
                s.label,
                b.blocks,
                b.settles,
                b.gas_per_settle,
                b.gas_limit,
                b.admitted_per_block,
                b.steady_blocks,
                b.mean_per_steady_block,
                b.fill * 100.0,
                b.max_per_block,
                s.signer_txs.map_or_else(|| "?".into(), |n| n.to_string()),
                s.summary.ok,
                s.summary.nonce_errors,
            );
        }
    }
    out
}

/// Ours ÷ the TypeScript reference, scenario by scenario.
pub fn compare(scenarios: &[Scenario]) -> Vec<Comparison> {
    let mut out = Vec::new();
    let is_ts = |s: &&Scenario| s.target.starts_with("TypeScript");
    for ts in scenarios.iter().filter(is_ts) {
        let Some(ours) = scenarios.iter().find(|s| s.name == ts.name && !is_ts(s)) else {
            continue;
        };
        let ran = |s: &Scenario| s.steps.first().is_some_and(|st| st.summary.sent > 0);
        if !ran(ours) || !ran(ts) {
            continue;
        }
        if ts.name.starts_with("verify") {
            if let (Some(a), Some(b)) = (ours.peak(), ts.peak()) {
                out.push(Comparison::throughput(
                    format!("{}: peak ok/s", ts.name),
                    a.summary.ok_per_s,
                    b.summary.ok_per_s,
                ));
            }
            if let (Some(a), Some(b)) = (ours.steps.first(), ts.steps.first()) {
                out.push(Comparison::latency(
                    format!("{}: p50 ms at {}", ts.name, a.label),
                    a.summary.latency_ms.p50,
                    b.summary.latency_ms.p50,
                ));
            }
            let cpu = |s: &Scenario| s.peak().and_then(|p| p.cost.facilitator_cpu_s_per_1k);
            if let (Some(a), Some(b)) = (cpu(ours), cpu(ts)) {
                out.push(Comparison::latency(
                    format!("{}: facilitator CPU s per 1k at peak", ts.name),
                    a,
                    b,
                ));
            }
        } else if let (Some(a), Some(b)) = (
            ours.steps.iter().find(|s| s.label.starts_with("1 signer ")),
            ts.steps.first(),
        ) {
            out.push(Comparison::throughput(
                format!("{}: ok/s, 1 signer each", ts.name),
                a.summary.ok_per_s,
                b.summary.ok_per_s,
            ));
            out.push(Comparison::throughput(
                format!("{}: successes of sent", ts.name),
                a.summary.ok as f64 / a.summary.sent.max(1) as f64,
                b.summary.ok as f64 / b.summary.sent.max(1) as f64,
            ));
        }
    }
    out
}

/// The whole report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# x402-bench report\n");
    let _ = writeln!(
        out,
        "{} · commit `{}` · {} build · {} ({} CPUs, {:.0} GiB, kernel {}), load average {:.2} at start\n",
        r.date,
        r.commit,
        r.profile,
        r.machine.cpu,
        r.machine.cpus,
        r.machine.memory_gib,
        r.machine.kernel,
        r.machine.load_at_start
    );
    for (k, v) in r.versions.iter().chain(&r.setup) {
        let _ = writeln!(out, "- {k}: {v}");
    }
    for s in &r.scenarios {
        let _ = writeln!(out, "\n## {} — {}\n", s.name, s.target);
        out.push_str(&steps_table(&s.steps));
        out.push('\n');
        out.push_str(&rpc_breakdown(&s.steps));
        out.push_str(&block_lines(&s.steps));
        for step in &s.steps {
            for sample in &step.summary.error_samples {
                let _ = writeln!(out, "\n> {}: {}", step.label, sample.replace('\n', " "));
            }
        }
    }
    if !r.comparisons.is_empty() {
        out.push_str("\n## Ours against the TypeScript reference\n\n| what | ours | theirs | ratio (> 1: ours better) |\n|---|---|---|---|\n");
        for c in &r.comparisons {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {:.2} | {:.1}× |",
                c.what, c.ours, c.theirs, c.ratio
            );
        }
    }
    if !r.stores.is_empty() {
        out.push_str(&crate::stores::markdown(&r.stores));
    }
    if let Some(flood) = &r.flood {
        out.push_str(&crate::flood::markdown(flood));
    }
    if !r.notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in &r.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::Stop;
    use crate::measure::{Cost, Load};
    use crate::stats::{Outcome, Recorder};

    fn step(label: &str, ok_per_s_ops: u64) -> Step {
        let mut r = Recorder::default();
        for _ in 0..ok_per_s_ops {
            r.record(std::time::Duration::from_millis(2), Outcome::Ok);
        }
        r.record(
            std::time::Duration::from_millis(9),
            Outcome::failed("invalid_x"),
        );
        Step {
            label: label.into(),
            load: Load::Closed { concurrency: 1 },
            stopped_by: Stop::Time,
            summary: r.summary(std::time::Duration::from_secs(1)),
            rpc_per_op: None,
            cost: Cost::default(),
            blocks: None,
            signer_txs: None,
        }
    }

    #[test]
    fn markdown_has_a_row_per_step_and_ratios() {
        let scenario = |target: &str, ops| Scenario {
            name: "verify EIP-3009".into(),
            target: target.into(),
            steps: vec![step("c=1", ops)],
        };
        let scenarios = vec![scenario("x402-rs", 100), scenario("TypeScript ref", 10)];
        let comparisons = compare(&scenarios);
        assert_eq!(comparisons[0].ratio, 10.0);
        let report = Report {
            date: "d".into(),
            commit: "c".into(),
            profile: "release".into(),
            machine: crate::procstat::Machine::probe(),
            versions: BTreeMap::new(),
            setup: BTreeMap::new(),
            scenarios,
            comparisons,
            stores: Vec::new(),
            flood: None,
            notes: vec!["n".into()],
        };
        let md = markdown(&report);
        assert!(md.contains("| c=1 | 100 / 101 | 100.0 |"), "{md}");
        assert!(md.contains("1× invalid_x"), "{md}");
        assert!(
            md.contains("| verify EIP-3009: peak ok/s | 100.00 | 10.00 | 10.0× |"),
            "{md}"
        );
    }
}
