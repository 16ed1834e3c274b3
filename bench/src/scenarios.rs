//! The steps every EVM scenario is made of: a verify concurrency sweep with an open-loop step at
//! half the peak, and a settle step with the blocks and signer nonces read around it.

use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;

use crate::chain::Chain;
use crate::driver::{Feed, Limits, Route, Target};
use crate::measure::{self, Load, Probe, RpcSource, Step};
use crate::proxy::RpcProxy;
use crate::report::Scenario;
use crate::suite::Options;
use crate::targets::Facilitator;

/// A facilitator to drive, its RPC proxy, and the other processes whose CPU a step reads.
pub(crate) struct Under<'a> {
    pub(crate) facilitator: Facilitator,
    pub(crate) proxy: Option<&'a RpcProxy>,
    pub(crate) chain_pid: Option<u32>,
    /// The settlement store's server (PostgreSQL), if the facilitator uses one.
    pub(crate) store_pid: Option<u32>,
}

impl Under<'_> {
    fn probe(&self) -> Probe<'_> {
        Probe {
            facilitator_pid: Some(self.facilitator.pid),
            chain_pid: self.chain_pid,
            store_pid: self.store_pid,
            rpc: self.proxy.map_or(RpcSource::None, RpcSource::Local),
        }
    }
}

pub(crate) fn progress(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "[x402-bench] {line}");
}

/// How long the facilitator is left idle, its sweep connections closed, before the open-loop
/// verify step.
pub(crate) const OPEN_LOOP_SETTLE: Duration = Duration::from_secs(1);

/// The verify sweep against one facilitator, then an open-loop step at half its peak, on fresh
/// connections after [`OPEN_LOOP_SETTLE`].
pub(crate) async fn verify_sweep(
    u: &Under<'_>,
    feed: &Feed,
    o: &Options,
    name: &str,
) -> Result<Scenario, String> {
    let target = Target::new(&u.facilitator.url, Route::Verify, Duration::from_secs(30))?;
    let warm = Limits {
        max_ops: 2000,
        max_time: Duration::from_secs(1),
    };
    measure::step(
        &target,
        feed,
        Load::Closed { concurrency: 8 },
        warm,
        u.probe(),
    )
    .await;
    let limits = Limits {
        max_ops: o.step_ops,
        max_time: o.step_time,
    };
    let mut steps = Vec::new();
    for &c in &o.concurrency {
        progress(&format!("{name} — {}: c={c}", u.facilitator.name));
        steps.push(
            measure::step(
                &target,
                feed,
                Load::Closed { concurrency: c },
                limits,
                u.probe(),
            )
            .await,
        );
    }
    let mut scenario = Scenario {
        name: name.into(),
        target: u.facilitator.name.clone(),
        who: u.facilitator.who,
        steps,
    };
    if let Some(peak) = scenario
        .peak()
        .map(|s| s.summary.ok_per_s)
        .filter(|p| *p > 0.0)
    {
        let rate = (peak / 2.0).max(1.0);
        progress(&format!(
            "{name} — {}: open loop at {rate:.0}/s",
            u.facilitator.name
        ));
        // The open-loop step runs on connections of its own: the sweep's (as many as its
        // largest concurrency, idle in the driver's pool) are closed, and the facilitator gets
        // OPEN_LOOP_SETTLE to finish with them, so the step's peak RSS (reset as it starts)
        // counts what the open-loop load needs and what the facilitator still holds from the
        // sweep by then — not a thousand connections the bench left open. The same for every
        // facilitator.
        drop(target);
        let target = Target::new(&u.facilitator.url, Route::Verify, Duration::from_secs(30))?;
        tokio::time::sleep(OPEN_LOOP_SETTLE).await;
        let step = measure::step(
            &target,
            feed,
            Load::Open { rate_per_s: rate },
            limits,
            u.probe(),
        )
        .await;
        scenario.steps.push(step);
    }
    Ok(scenario)
}

/// One settle step (closed loop at `concurrency`): drives `/settle` and reads the blocks and
/// signer nonces around it.
pub(crate) async fn settle_step(
    u: &Under<'_>,
    chain: &Chain,
    feed: &Feed,
    o: &Options,
    signers: &[PrivateKeySigner],
    concurrency: usize,
) -> Result<Step, String> {
    let load = Load::Closed { concurrency };
    settle_step_at(u, chain, feed, o, signers, load, o.settle_ops).await
}

/// One settle step at `load` of at most `max_ops` settles (and `o.settle_time`): drives
/// `/settle` and reads the blocks and signer nonces around it.
pub(crate) async fn settle_step_at(
    u: &Under<'_>,
    chain: &Chain,
    feed: &Feed,
    o: &Options,
    signers: &[PrivateKeySigner],
    load: Load,
    max_ops: u64,
) -> Result<Step, String> {
    let target = Target::new(&u.facilitator.url, Route::Settle, Duration::from_secs(90))?;
    let addresses: Vec<_> = signers.iter().map(|k| k.address()).collect();
    let nonces_before = chain.nonces(&addresses).await?;
    let first = chain.block_number().await?;
    let limits = Limits {
        max_ops,
        max_time: o.settle_time,
    };
    let mut step = measure::step(&target, feed, load, limits, u.probe()).await;
    // With interval mining the last settles may still be waiting for their block.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let last = chain.block_number().await?;
    let nonces_after = chain.nonces(&addresses).await?;
    step.signer_txs = Some(
        nonces_after
            .iter()
            .zip(&nonces_before)
            .map(|(a, b)| a - b)
            .sum(),
    );
    step.blocks = Some(chain.block_stats(first, last).await?);
    Ok(step)
}
