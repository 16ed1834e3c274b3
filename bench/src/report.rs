//! The report of a run: JSON for machines, Markdown tables for `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::measure::{Load, Step};
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
    /// Ours, x402-rs and the TypeScript reference side by side, metric by metric.
    pub comparisons: Vec<Comparison>,
    /// Facilitators (or their scenarios) that did not run, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_run: Vec<NotRun>,
    /// Settle throughput and cost by settlement store (empty when not run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<crate::stores::StoreFigure>,
    /// The invalid flood (`None` when not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<crate::flood::FloodReport>,
    /// Anything skipped or worth knowing, in plain words.
    pub notes: Vec<String>,
}

/// Which facilitator a scenario measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Who {
    /// Our `x402-facilitator`.
    Ours,
    /// x402-rs/x402-rs's facilitator (`bench/peer-x402rs`).
    X402Rs,
    /// The TypeScript reference (`@x402/core` with `@x402/evm` or `@x402/svm`).
    TypeScript,
    /// A facilitator given by URL (`x402-bench drive`).
    Other,
}

impl Who {
    /// The peers compared with ours, in report order.
    pub const PEERS: [Who; 2] = [Who::X402Rs, Who::TypeScript];

    /// The column heading.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::X402Rs => "x402-rs",
            Self::TypeScript => "TypeScript",
            Self::Other => "other",
        }
    }
}

/// A facilitator, or one of its scenarios, that did not run.
#[derive(Debug, Clone, Serialize)]
pub struct NotRun {
    /// Which facilitator.
    pub who: Who,
    /// The scenario (`None`: all of them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Why, in plain words.
    pub reason: String,
}

/// One scenario against one facilitator.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// What was measured (`verify EIP-3009`, `settle, 1 s blocks`).
    pub name: String,
    /// Which facilitator, for the report's headings.
    pub target: String,
    /// Which facilitator, for the comparisons.
    pub who: Who,
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

/// One facilitator's figure for a metric, or why there is none.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// Measured.
    Measured {
        /// The figure.
        value: f64,
        /// The step it comes from (`c=128`, `1 signer c=1024`).
        at: String,
        /// A caveat (`31 % of requests failed`).
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Not measured ("n/a" in the report), never a silent zero.
    NotApplicable {
        /// Why.
        reason: String,
    },
}

impl Cell {
    fn value(&self) -> Option<f64> {
        match self {
            Self::Measured { value, .. } => Some(*value),
            Self::NotApplicable { .. } => None,
        }
    }
}

/// One metric, ours against each peer.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The scenario.
    pub scenario: String,
    /// What is compared, with its unit.
    pub what: String,
    /// Whether more is better (throughput) or less (latency, cost).
    pub higher_is_better: bool,
    /// Our figure.
    pub ours: Cell,
    /// x402-rs/x402-rs's figure.
    pub x402_rs: Cell,
    /// The TypeScript reference's figure.
    pub typescript: Cell,
    /// How many times better ours is than x402-rs (> 1: ours better), when both were measured.
    pub ours_vs_x402_rs: Option<f64>,
    /// How many times better ours is than the TypeScript reference (> 1: ours better).
    pub ours_vs_typescript: Option<f64>,
}

/// `ours` against `theirs` so that > 1 always means ours is better.
fn ratio(ours: &Cell, theirs: &Cell, higher_is_better: bool) -> Option<f64> {
    let (a, b) = (ours.value()?, theirs.value()?);
    let r = if higher_is_better { a / b } else { b / a };
    r.is_finite().then_some(r)
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

/// A metric of a scenario: what it reads from the scenario's steps.
struct Metric {
    what: &'static str,
    higher_is_better: bool,
    read: fn(&Scenario) -> Result<(f64, &Step), String>,
}

/// The step's failures as a caveat or, when nothing succeeded, as the reason for "n/a".
fn success(step: &Step) -> Result<Option<String>, String> {
    let s = &step.summary;
    if s.sent == 0 {
        return Err(format!("nothing was sent at {}", step.label));
    }
    if s.ok == 0 {
        let top = s
            .errors
            .iter()
            .max_by_key(|(_, n)| **n)
            .map_or("no reason given", |(r, _)| r.as_str());
        return Err(format!("every request failed at {} ({top})", step.label));
    }
    Ok((s.failed > 0).then(|| {
        format!(
            "{:.0} % of {} failed",
            s.failed as f64 * 100.0 / s.sent as f64,
            s.sent
        )
    }))
}

fn closed(s: &Scenario, concurrency: usize) -> Result<&Step, String> {
    s.steps
        .iter()
        .find(|st| st.load == Load::Closed { concurrency })
        .ok_or_else(|| format!("no c={concurrency} step"))
}

fn open(s: &Scenario) -> Result<&Step, String> {
    s.steps
        .iter()
        .find(|st| matches!(st.load, Load::Open { .. }))
        .ok_or_else(|| "no open-loop step (no successful closed-loop step to take half of)".into())
}

fn peak(s: &Scenario) -> Result<&Step, String> {
    s.peak().ok_or_else(|| "no closed-loop step".into())
}

fn one_signer(s: &Scenario) -> Result<&Step, String> {
    s.steps
        .iter()
        .find(|st| st.label.starts_with("1 signer ") && matches!(st.load, Load::Closed { .. }))
        .ok_or_else(|| "no 1-signer step".into())
}

fn cpu(st: &Step) -> Result<(f64, &Step), String> {
    st.cost
        .facilitator_cpu_s_per_1k
        .map(|v| (v, st))
        .ok_or_else(|| "CPU not read".into())
}

fn rpc(st: &Step) -> Result<(f64, &Step), String> {
    st.rpc_per_op
        .as_ref()
        .map(|r| (r.total, st))
        .ok_or_else(|| "RPC calls not counted (--direct-rpc)".into())
}

fn rss(st: &Step) -> Result<(f64, &Step), String> {
    st.cost
        .facilitator_peak_rss_mib
        .map(|v| (v, st))
        .ok_or_else(|| "RSS not read".into())
}

const VERIFY: &[Metric] = &[
    Metric {
        what: "verify throughput at best concurrency, ok/s",
        higher_is_better: true,
        read: |s| peak(s).map(|st| (st.summary.ok_per_s, st)),
    },
    Metric {
        what: "facilitator CPU per verify at peak, ms",
        higher_is_better: false,
        read: |s| peak(s).and_then(cpu),
    },
    Metric {
        what: "JSON-RPC calls per verify at peak",
        higher_is_better: false,
        read: |s| peak(s).and_then(rpc),
    },
    Metric {
        what: "verify p50 at c=1, ms",
        higher_is_better: false,
        read: |s| closed(s, 1).map(|st| (st.summary.latency_ms.p50, st)),
    },
    Metric {
        what: "verify p99 at half of peak (open loop), ms",
        higher_is_better: false,
        read: |s| open(s).map(|st| (st.summary.latency_ms.p99, st)),
    },
    Metric {
        what: "facilitator peak RSS under open-loop verify load, MiB",
        higher_is_better: false,
        read: |s| open(s).and_then(rss),
    },
];

const SETTLE_BLOCKS: &[Metric] = &[
    Metric {
        what: "settles/s, 1 signer",
        higher_is_better: true,
        read: |s| one_signer(s).map(|st| (st.summary.ok_per_s, st)),
    },
    Metric {
        what: "settles/s at the best signer count",
        higher_is_better: true,
        read: |s| peak(s).map(|st| (st.summary.ok_per_s, st)),
    },
    Metric {
        what: "settles succeeded of sent, 1 signer, %",
        higher_is_better: true,
        read: |s| {
            one_signer(s).map(|st| {
                let sum = &st.summary;
                (sum.ok as f64 * 100.0 / sum.sent.max(1) as f64, st)
            })
        },
    },
    Metric {
        what: "JSON-RPC calls per settle request, 1 signer",
        higher_is_better: false,
        read: |s| one_signer(s).and_then(rpc),
    },
    Metric {
        what: "facilitator CPU per settle request, 1 signer, ms",
        higher_is_better: false,
        read: |s| one_signer(s).and_then(cpu),
    },
    Metric {
        what: "settle p50 at half of peak settle load (open loop), ms",
        higher_is_better: false,
        read: |s| open(s).map(|st| (st.summary.latency_ms.p50, st)),
    },
];

const SETTLE_AUTOMINE: &[Metric] = &[
    Metric {
        what: "settles/s, 1 signer",
        higher_is_better: true,
        read: |s| one_signer(s).map(|st| (st.summary.ok_per_s, st)),
    },
    Metric {
        what: "settles succeeded of sent, 1 signer, %",
        higher_is_better: true,
        read: |s| {
            one_signer(s).map(|st| {
                let sum = &st.summary;
                (sum.ok as f64 * 100.0 / sum.sent.max(1) as f64, st)
            })
        },
    },
    Metric {
        what: "JSON-RPC calls per settle request, 1 signer",
        higher_is_better: false,
        read: |s| one_signer(s).and_then(rpc),
    },
];

const SVM_VERIFY: &[Metric] = &[
    Metric {
        what: "verify throughput at best concurrency, ok/s",
        higher_is_better: true,
        read: |s| peak(s).map(|st| (st.summary.ok_per_s, st)),
    },
    Metric {
        what: "facilitator CPU per verify at peak, ms",
        higher_is_better: false,
        read: |s| peak(s).and_then(cpu),
    },
    Metric {
        what: "JSON-RPC calls per verify at peak",
        higher_is_better: false,
        read: |s| peak(s).and_then(rpc),
    },
];

const SVM_SETTLE: &[Metric] = &[
    Metric {
        what: "settles/s",
        higher_is_better: true,
        read: |s| peak(s).map(|st| (st.summary.ok_per_s, st)),
    },
    Metric {
        what: "JSON-RPC calls per settle request",
        higher_is_better: false,
        read: |s| peak(s).and_then(rpc),
    },
    Metric {
        what: "settle p50, ms",
        higher_is_better: false,
        read: |s| peak(s).map(|st| (st.summary.latency_ms.p50, st)),
    },
];

/// The metrics of each compared scenario, in report order (issue 19's targets among them).
const COMPARED: &[(&str, &[Metric])] = &[
    ("verify EIP-3009", VERIFY),
    ("verify Permit2", VERIFY),
    ("settle EIP-3009, 1 s blocks", SETTLE_BLOCKS),
    ("settle EIP-3009, automine", SETTLE_AUTOMINE),
    ("verify SVM (SPL Token)", SVM_VERIFY),
    ("settle SVM (SPL Token)", SVM_SETTLE),
];

/// One facilitator's cell for `metric` of scenario `name`.
fn cell(scenarios: &[Scenario], not_run: &[NotRun], name: &str, who: Who, metric: &Metric) -> Cell {
    let Some(scenario) = scenarios.iter().find(|s| s.name == name && s.who == who) else {
        let reason = not_run
            .iter()
            .find(|n| n.who == who && n.scenario.as_deref() == Some(name))
            .or_else(|| {
                not_run
                    .iter()
                    .find(|n| n.who == who && n.scenario.is_none())
            })
            .map_or_else(|| "not run".to_owned(), |n| n.reason.clone());
        return Cell::NotApplicable { reason };
    };
    match (metric.read)(scenario).and_then(|(v, st)| success(st).map(|note| (v, st, note))) {
        Ok((value, st, note)) => Cell::Measured {
            value,
            at: st.label.clone(),
            note,
        },
        Err(reason) => Cell::NotApplicable { reason },
    }
}

/// Ours, x402-rs and the TypeScript reference, metric by metric, for every scenario ours ran.
pub fn compare(scenarios: &[Scenario], not_run: &[NotRun]) -> Vec<Comparison> {
    let mut out = Vec::new();
    for (name, metrics) in COMPARED {
        if !scenarios
            .iter()
            .any(|s| s.name == *name && s.who == Who::Ours)
        {
            continue;
        }
        for m in *metrics {
            let [ours, x402_rs, typescript] = [Who::Ours, Who::X402Rs, Who::TypeScript]
                .map(|who| cell(scenarios, not_run, name, who, m));
            out.push(Comparison {
                scenario: (*name).to_owned(),
                what: m.what.to_owned(),
                higher_is_better: m.higher_is_better,
                ours_vs_x402_rs: ratio(&ours, &x402_rs, m.higher_is_better),
                ours_vs_typescript: ratio(&ours, &typescript, m.higher_is_better),
                ours,
                x402_rs,
                typescript,
            });
        }
    }
    out
}

fn figure(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Measured { value, at, note } => {
            let note = note.as_ref().map_or_else(String::new, |n| format!("; {n}"));
            format!("{} ({at}{note})", figure(*value))
        }
        Cell::NotApplicable { reason } => format!("n/a ({})", reason.replace('|', "/")),
    }
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or_else(|| "–".into(), |r| format!("{r:.1}×"))
}

/// The three-way comparison as a Markdown table.
pub fn comparisons_table(comparisons: &[Comparison]) -> String {
    let mut out = String::from(
        "| scenario | what | ours | x402-rs | TypeScript | ours vs x402-rs | ours vs TypeScript |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for c in comparisons {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            c.scenario,
            c.what,
            cell_text(&c.ours),
            cell_text(&c.x402_rs),
            cell_text(&c.typescript),
            ratio_text(c.ours_vs_x402_rs),
            ratio_text(c.ours_vs_typescript),
        );
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
        out.push_str(
            "\n## Ours, x402-rs and the TypeScript reference (same run)\n\n\
             Each cell: the figure (the step it comes from). Ratios: how many times better ours \
             is (> 1: ours better; throughput ours ÷ theirs, latency and cost theirs ÷ ours).\n\n",
        );
        out.push_str(&comparisons_table(&r.comparisons));
    }
    for n in &r.not_run {
        let what = n
            .scenario
            .as_ref()
            .map_or_else(String::new, |s| format!(", {s}"));
        let _ = writeln!(out, "\n> not run: {}{what}: {}", n.who.label(), n.reason);
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

    fn failing(label: &str) -> Step {
        let mut st = step(label, 0);
        st.summary.error_samples.clear();
        st
    }

    fn scenario(who: Who, steps: Vec<Step>) -> Scenario {
        Scenario {
            name: "verify EIP-3009".into(),
            target: who.label().into(),
            who,
            steps,
        }
    }

    fn report(scenarios: Vec<Scenario>, not_run: Vec<NotRun>) -> Report {
        Report {
            date: "d".into(),
            commit: "c".into(),
            profile: "release".into(),
            machine: crate::procstat::Machine::probe(),
            versions: BTreeMap::new(),
            setup: BTreeMap::new(),
            comparisons: compare(&scenarios, &not_run),
            scenarios,
            not_run,
            stores: Vec::new(),
            flood: None,
            notes: vec!["n".into()],
        }
    }

    #[test]
    fn markdown_has_a_row_per_step_and_three_way_ratios() {
        let r = report(
            vec![
                scenario(Who::Ours, vec![step("c=1", 100)]),
                scenario(Who::X402Rs, vec![step("c=1", 50)]),
                scenario(Who::TypeScript, vec![step("c=1", 10)]),
            ],
            Vec::new(),
        );
        let peak = &r.comparisons[0];
        assert_eq!(peak.what, "verify throughput at best concurrency, ok/s");
        assert_eq!(peak.ours_vs_x402_rs, Some(2.0));
        assert_eq!(peak.ours_vs_typescript, Some(10.0));
        let md = markdown(&r);
        assert!(md.contains("| c=1 | 100 / 101 | 100.0 |"), "{md}");
        assert!(md.contains("1× invalid_x"), "{md}");
        assert!(
            md.contains(
                "| verify EIP-3009 | verify throughput at best concurrency, ok/s \
                 | 100 (c=1; 1 % of 101 failed) | 50.0 (c=1; 2 % of 51 failed) \
                 | 10.0 (c=1; 9 % of 11 failed) | 2.0× | 10.0× |"
            ),
            "{md}"
        );
        // p50 at c=1: 2 ms for every facilitator
        assert_eq!(r.comparisons[3].ours_vs_x402_rs, Some(1.0));
    }

    #[test]
    fn what_did_not_run_or_failed_is_n_a_with_its_reason() {
        let r = report(
            vec![
                scenario(Who::Ours, vec![step("c=1", 100)]),
                scenario(Who::TypeScript, vec![failing("c=1")]),
            ],
            vec![NotRun {
                who: Who::X402Rs,
                scenario: None,
                reason: "--no-peer".into(),
            }],
        );
        let peak = &r.comparisons[0];
        assert!(matches!(&peak.x402_rs, Cell::NotApplicable { reason } if reason == "--no-peer"));
        assert!(
            matches!(&peak.typescript, Cell::NotApplicable { reason }
                if reason == "every request failed at c=1 (invalid_x)"),
            "{peak:?}"
        );
        assert_eq!(
            (peak.ours_vs_x402_rs, peak.ours_vs_typescript),
            (None, None)
        );
        // no open-loop step: n/a for ours too
        let rss = r
            .comparisons
            .iter()
            .find(|c| c.what.contains("RSS"))
            .unwrap();
        assert!(matches!(rss.ours, Cell::NotApplicable { .. }));
        let md = markdown(&r);
        assert!(md.contains("| n/a (--no-peer) |"), "{md}");
        assert!(md.contains("> not run: x402-rs: --no-peer"), "{md}");
        // a scenario ours did not run is not compared
        assert!(
            r.comparisons
                .iter()
                .all(|c| c.scenario == "verify EIP-3009")
        );
    }
}
