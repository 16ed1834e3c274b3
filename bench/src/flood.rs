//! The invalid flood (issue 12): our facilitator, on anvil with real USDC, receives a flood of
//! invalid `/verify` requests of varied kinds while valid payments (verify, then settle) go on
//! beside it, and the run reports what that did to it:
//!
//! - the facilitator's resident memory (`VmRSS`) before and after the flood and its peak during
//!   it (`VmHWM`, reset just before the flood when `/proc/PID/clear_refs` allows);
//! - `/metrics`: body size and number of series before and after (made-up networks and schemes
//!   are counted as `other`, so the series must not grow with them);
//! - the valid payments' latency percentiles (verify, settle and the whole payment) with no
//!   invalid load and under it;
//! - the status codes the invalid requests were answered with, by kind.
//!
//! Phase 1 runs valid payments alone; phase 2 runs the same payment workers from the start of
//! the flood to its end. The flood is sent from another loopback address (127.0.0.2) than the
//! payments (127.0.0.1), as an attacker and the sellers would be different clients.
//!
//! The run checks only what is cheap and objective — every valid payment verified and settled
//! exactly once (the seller's USDC and the signer's nonce agree with the successes), no invalid
//! request accepted, no 5xx answer, none of the made-up labels in `/metrics` and its series
//! grown by at most [`MAX_SERIES_GROWTH`] whatever the count — and never a timing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;
use axum::body::Bytes;
use serde::Serialize;
use serde_json::Value;
use x402_core::wire::PaymentRequirementsV2;

use crate::chain::Chain;
use crate::corpus;
use crate::driver::Feed;
use crate::procstat;
use crate::proxy::{self, RpcProxy};
use crate::stats::Latency;

/// `/metrics` may gain at most this many series over the flood (new reason codes, the `other`
/// labels' histogram), however many requests with made-up labels it holds.
pub const MAX_SERIES_GROWTH: usize = 150;
/// The scenario's name in the report.
pub const SCENARIO: &str = "invalid flood";
/// Where the flood is sent from (the payments come from 127.0.0.1).
const FLOOD_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// What the flood does.
#[derive(Debug, Clone, Serialize)]
pub struct FloodOptions {
    /// Invalid `/verify` requests sent.
    pub invalid: usize,
    /// Invalid requests started per second (open loop); 0 sends them as fast as `concurrency`
    /// workers are answered (closed loop).
    pub rate_per_s: f64,
    /// Invalid requests in flight at most.
    pub concurrency: usize,
    /// Valid payments made one after another by each of this many workers.
    pub valid_workers: usize,
    /// Valid payments in phase 1 (no invalid load).
    pub baseline_payments: usize,
    /// Valid payments signed for phase 2 (it stops when the flood ends or these are spent).
    pub max_payments_under_load: usize,
    /// Distinct funded payers the valid payments come from.
    pub payers: usize,
}

impl Default for FloodOptions {
    fn default() -> Self {
        Self {
            invalid: std::env::var("X402_BENCH_FLOOD_INVALID")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10_000),
            rate_per_s: 1000.0,
            concurrency: 32,
            valid_workers: 4,
            baseline_payments: 100,
            max_payments_under_load: 1000,
            payers: 64,
        }
    }
}

/// The kinds of invalid request, sent in turn.
const KINDS: [&str; 8] = [
    "malformed JSON",
    "unknown network (eip155:<random>)",
    "unknown network (random string)",
    "unknown scheme (random string)",
    "unknown x402Version",
    "bad signature",
    "wrong amount",
    "expired",
];

/// The facilitator under the flood.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Its base URL (loopback).
    pub url: &'a str,
    /// Its process, for memory and CPU (`None`: not measured).
    pub pid: Option<u32>,
    /// Its counting RPC proxy, if any.
    pub proxy: Option<&'a RpcProxy>,
}

/// The chain side of the flood.
#[derive(Debug, Clone, Copy)]
pub struct Bed<'a> {
    /// The chain (automining).
    pub chain: &'a Chain,
    /// Funded payers (USDC and ETH); the first [`FloodOptions::payers`] are used.
    pub payers: &'a [PrivateKeySigner],
    /// EIP-3009 `exact` requirements on the chain's USDC.
    pub requirements: &'a PaymentRequirementsV2,
    /// The facilitator's signers (their nonces count its transactions).
    pub signers: &'a [Address],
}

/// Resident memory of the facilitator, MiB.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// `VmRSS` when it had just started (before phase 1).
    pub rss_at_start: Option<f64>,
    /// `VmRSS` just before the flood (after phase 1).
    pub rss_before_flood: Option<f64>,
    /// `VmRSS` right after the flood.
    pub rss_after_flood: Option<f64>,
    /// `VmRSS` 2 s after the flood.
    pub rss_after_idle: Option<f64>,
    /// `VmHWM` after the flood: the peak during it when `peak_reset`, else since start.
    pub peak_rss: Option<f64>,
    /// Whether the peak was reset just before the flood.
    pub peak_reset: bool,
}

/// One `/metrics` snapshot.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetricsSnapshot {
    /// Body size in bytes.
    pub bytes: usize,
    /// Sample lines (every line that is neither blank nor a `#` comment).
    pub series: usize,
    /// Sample lines with a label set to `other`.
    pub other_series: usize,
}

impl MetricsSnapshot {
    fn of(body: &str) -> Self {
        let samples = body
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        let (mut series, mut other_series) = (0, 0);
        for l in samples {
            series += 1;
            if l.contains("=\"other\"") {
                other_series += 1;
            }
        }
        Self {
            bytes: body.len(),
            series,
            other_series,
        }
    }
}

/// `/metrics` around the flood.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetricsFigures {
    /// After start-up.
    pub at_start: MetricsSnapshot,
    /// After phase 1, before the flood.
    pub before_flood: MetricsSnapshot,
    /// After the flood.
    pub after_flood: MetricsSnapshot,
    /// Distinct made-up network and scheme strings the flood sent.
    pub random_labels_sent: usize,
    /// How many of them appear anywhere in `/metrics` after the flood (must be 0).
    pub random_labels_found: usize,
}

/// The valid payments of one phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Payments {
    /// Payments started.
    pub sent: u64,
    /// Payments verified valid and settled successfully.
    pub ok: u64,
    /// Wall time of the phase, s.
    pub elapsed_s: f64,
    /// Successful payments per second.
    pub ok_per_s: f64,
    /// `/verify` latency.
    pub verify_ms: Latency,
    /// `/settle` latency (the receipt included: automining).
    pub settle_ms: Latency,
    /// The whole payment: verify, then settle.
    pub payment_ms: Latency,
    /// Failures by what went wrong.
    pub errors: BTreeMap<String, u64>,
    /// HTTP status codes of both routes' answers.
    pub statuses: BTreeMap<String, u64>,
}

/// The invalid requests of one kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Kind {
    /// Requests sent.
    pub sent: u64,
    /// Answers by HTTP status (`transport` when none came).
    pub statuses: BTreeMap<String, u64>,
    /// Answers by `invalidReason` (`isValid: true` counts as `ACCEPTED`).
    pub reasons: BTreeMap<String, u64>,
    /// Latency of the answers.
    pub latency_ms: Latency,
}

/// The invalid flood.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Invalid {
    /// Requests sent.
    pub sent: u64,
    /// Wall time, s.
    pub elapsed_s: f64,
    /// Answers per second.
    pub per_s: f64,
    /// Answers by HTTP status over every kind.
    pub statuses: BTreeMap<String, u64>,
    /// Latency of every answer.
    pub latency_ms: Latency,
    /// By kind.
    pub kinds: BTreeMap<String, Kind>,
}

/// One correctness check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked.
    pub what: String,
    /// Whether it held.
    pub passed: bool,
    /// The figures behind it.
    pub detail: String,
}

/// Everything the flood measured.
#[derive(Debug, Clone, Serialize)]
pub struct FloodReport {
    /// How it ran.
    pub options: FloodOptions,
    /// Valid payments without invalid load.
    pub baseline: Payments,
    /// Valid payments during the flood.
    pub under_load: Payments,
    /// The flood.
    pub invalid: Invalid,
    /// Memory.
    pub memory: Memory,
    /// `/metrics`.
    pub metrics: MetricsFigures,
    /// Facilitator CPU seconds during the flood phase (both streams).
    pub facilitator_cpu_s: Option<f64>,
    /// JSON-RPC calls during the flood phase, by method (both streams).
    pub rpc_calls: BTreeMap<String, u64>,
    /// What was checked.
    pub checks: Vec<Check>,
}

impl FloodReport {
    /// The checks that failed.
    pub fn failed(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{}: {}", c.what, c.detail))
            .collect()
    }
}

/// A small deterministic generator (SplitMix64): made-up strings without a dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `len` characters of `[a-z0-9]`.
    fn word(&mut self, len: usize) -> String {
        const ABC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| ABC[self.below(ABC.len())] as char)
            .collect()
    }
}

fn set_both(v: &mut Value, field: &str, value: Value) {
    v["paymentPayload"]["accepted"][field] = value.clone();
    v["paymentRequirements"][field] = value;
}

fn bytes_of(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// The flood's request bodies, in the order they are sent (kinds in turn), and the made-up
/// labels they carry.
struct Flood {
    bodies: Vec<(usize, Bytes)>,
    labels: Vec<String>,
}

/// Builds `n` invalid bodies from signed `valid` and `expired` payments (JSON values).
fn build_flood(n: usize, valid: &[Value], expired: &[Value], rng: &mut Rng) -> Flood {
    let mut bodies = Vec::with_capacity(n);
    let mut labels = Vec::new();
    for i in 0..n {
        let kind = i % KINDS.len();
        let mut v = valid[rng.below(valid.len())].clone();
        let body = match kind {
            0 => {
                let text = serde_json::to_string(&v).unwrap_or_default();
                match (i / KINDS.len()) % 6 {
                    // cut short
                    0 => Bytes::from(text[..1 + rng.below(text.len() - 1)].to_owned()),
                    // random bytes, not even UTF-8
                    1 => Bytes::from(
                        (0..1 + rng.below(300))
                            .map(|_| rng.next() as u8)
                            .collect::<Vec<u8>>(),
                    ),
                    // a field of the wrong type
                    2 => {
                        v["paymentRequirements"]["amount"] = Value::from(rng.next());
                        v["paymentPayload"]["payload"] = Value::from(rng.word(12));
                        bytes_of(&v)
                    }
                    // nested far too deep
                    3 => {
                        let depth = 200 + rng.below(800);
                        Bytes::from(format!("{}{}", "[".repeat(depth), "]".repeat(depth)))
                    }
                    // not an object
                    4 => Bytes::from(format!("\"{}\"", rng.word(40))),
                    // missing parts
                    _ => Bytes::from(format!("{{\"x402Version\":2,\"{}\":{{}}}}", rng.word(10))),
                }
            }
            1 => {
                let network = format!("eip155:{}", rng.next() >> 1);
                set_both(&mut v, "network", network.clone().into());
                labels.push(network);
                bytes_of(&v)
            }
            2 => {
                let network = format!("{}:{}", rng.word(8), rng.word(24));
                set_both(&mut v, "network", network.clone().into());
                labels.push(network);
                bytes_of(&v)
            }
            3 => {
                let scheme = format!("s{}", rng.word(15));
                set_both(&mut v, "scheme", scheme.clone().into());
                labels.push(scheme);
                bytes_of(&v)
            }
            4 => {
                let version = 3 + rng.below(1_000_000);
                v["x402Version"] = version.into();
                v["paymentPayload"]["x402Version"] = version.into();
                bytes_of(&v)
            }
            5 => {
                // Flip one hex digit of r or s (not v): the signature recovers to someone else,
                // or to nobody.
                let sig = v["paymentPayload"]["payload"]["signature"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let mut chars: Vec<char> = sig.chars().collect();
                if chars.len() > 130 {
                    let at = 2 + rng.below(128);
                    let old = chars[at].to_digit(16).unwrap_or(0);
                    let new = (old + 1 + rng.below(15) as u32) % 16;
                    chars[at] = std::char::from_digit(new, 16).unwrap_or('0');
                }
                v["paymentPayload"]["payload"]["signature"] =
                    chars.into_iter().collect::<String>().into();
                bytes_of(&v)
            }
            6 => {
                // The seller asks for more than the buyer signed.
                let signed: u64 = v["paymentRequirements"]["amount"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(10_000);
                let asked = signed + 1 + rng.below(1_000_000) as u64;
                set_both(&mut v, "amount", asked.to_string().into());
                bytes_of(&v)
            }
            _ => bytes_of(&expired[rng.below(expired.len())]),
        };
        bodies.push((kind, body));
    }
    Flood { bodies, labels }
}

/// Answers of the flood, by kind.
#[derive(Default)]
struct Tally {
    kinds: BTreeMap<usize, (Kind, Vec<u64>)>,
}

impl Tally {
    fn record(&mut self, kind: usize, status: String, reason: String, latency: Duration) {
        let (k, lat) = self.kinds.entry(kind).or_default();
        k.sent += 1;
        *k.statuses.entry(status).or_default() += 1;
        *k.reasons.entry(reason).or_default() += 1;
        lat.push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    fn finish(self, elapsed: Duration) -> Invalid {
        let mut out = Invalid {
            elapsed_s: elapsed.as_secs_f64(),
            ..Invalid::default()
        };
        let mut all = Vec::new();
        for (i, (mut k, mut lat)) in self.kinds {
            lat.sort_unstable();
            k.latency_ms = Latency::of_sorted(&lat);
            all.extend(lat);
            out.sent += k.sent;
            for (s, n) in &k.statuses {
                *out.statuses.entry(s.clone()).or_default() += n;
            }
            out.kinds.insert(KINDS[i].to_owned(), k);
        }
        all.sort_unstable();
        out.latency_ms = Latency::of_sorted(&all);
        out.per_s = out.sent as f64 / out.elapsed_s.max(1e-9);
        out
    }
}

/// What one answer said.
struct Answered {
    status: String,
    /// `isValid` or `success`.
    good: bool,
    /// The reason given, or the status when there is none.
    reason: String,
}

async fn post(client: &reqwest::Client, url: &str, body: Bytes) -> Answered {
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            return Answered {
                status: "transport".into(),
                good: false,
                reason: format!("transport: {e}"),
            };
        }
    };
    let status = response.status().as_u16().to_string();
    let Ok(bytes) = response.bytes().await else {
        return Answered {
            reason: "transport: body".into(),
            status: "transport".into(),
            good: false,
        };
    };
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let good = v["isValid"] == Value::Bool(true) || v["success"] == Value::Bool(true);
    let reason = if good {
        "ACCEPTED".to_owned()
    } else {
        v["invalidReason"]
            .as_str()
            .or_else(|| v["errorReason"].as_str())
            .map_or_else(|| format!("http {status}, no reason"), str::to_owned)
    };
    Answered {
        status,
        good,
        reason,
    }
}

/// Sends the flood: open loop at `rate` (0: closed loop), at most `concurrency` in flight.
async fn send_flood(
    client: &reqwest::Client,
    url: &str,
    flood: Vec<(usize, Bytes)>,
    rate: f64,
    concurrency: usize,
) -> Invalid {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (kind, body)) in flood.into_iter().enumerate() {
        if rate > 0.0 {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (client, url, tally) = (client.clone(), url.to_owned(), tally.clone());
        tasks.spawn(async move {
            let t0 = Instant::now();
            let a = post(&client, &url, body).await;
            let latency = t0.elapsed();
            drop(permit);
            tally
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(kind, a.status, a.reason, latency);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    tally.finish(elapsed)
}

/// Valid payments by `workers` workers from `feed` until it is spent or `stop` is set.
async fn pay(
    client: &reqwest::Client,
    url: &str,
    feed: &Feed,
    workers: usize,
    stop: &Arc<AtomicBool>,
) -> Payments {
    #[derive(Default)]
    struct Rec {
        verify: Vec<u64>,
        settle: Vec<u64>,
        payment: Vec<u64>,
        sent: u64,
        ok: u64,
        errors: BTreeMap<String, u64>,
        statuses: BTreeMap<String, u64>,
    }
    let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let rec = Arc::new(Mutex::new(Rec::default()));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (client, feed, stop, rec) = (client.clone(), feed.clone(), stop.clone(), rec.clone());
        let (verify_url, settle_url) = (format!("{url}/verify"), format!("{url}/settle"));
        set.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Some(body) = feed.next_body() else { break };
                let t0 = Instant::now();
                let v = post(&client, &verify_url, body.clone()).await;
                let t1 = Instant::now();
                let s = if v.good {
                    Some(post(&client, &settle_url, body).await)
                } else {
                    None
                };
                let t2 = Instant::now();
                let mut r = rec.lock().unwrap_or_else(|p| p.into_inner());
                r.sent += 1;
                r.verify.push(us(t1 - t0));
                *r.statuses.entry(v.status.clone()).or_default() += 1;
                match s {
                    None => *r.errors.entry(format!("verify: {}", v.reason)).or_default() += 1,
                    Some(s) => {
                        r.settle.push(us(t2 - t1));
                        *r.statuses.entry(s.status.clone()).or_default() += 1;
                        if s.good {
                            r.ok += 1;
                            r.payment.push(us(t2 - t0));
                        } else {
                            *r.errors.entry(format!("settle: {}", s.reason)).or_default() += 1;
                        }
                    }
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let mut r = std::mem::take(&mut *rec.lock().unwrap_or_else(|p| p.into_inner()));
    let lat = |v: &mut Vec<u64>| {
        v.sort_unstable();
        Latency::of_sorted(v)
    };
    Payments {
        sent: r.sent,
        ok: r.ok,
        elapsed_s: elapsed,
        ok_per_s: r.ok as f64 / elapsed.max(1e-9),
        verify_ms: lat(&mut r.verify),
        settle_ms: lat(&mut r.settle),
        payment_ms: lat(&mut r.payment),
        errors: r.errors,
        statuses: r.statuses,
    }
}

async fn scrape(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let r = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .map_err(|e| format!("GET /metrics: {e}"))?;
    r.text().await.map_err(|e| format!("GET /metrics: {e}"))
}

fn client(local: Option<IpAddr>) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(90))
        .local_address(local)
        .build()
        .map_err(|e| format!("http client: {e}"))
}

fn to_values(bodies: &[Bytes]) -> Result<Vec<Value>, String> {
    bodies
        .iter()
        .map(|b| serde_json::from_slice(b).map_err(|e| e.to_string()))
        .collect()
}

fn progress(line: &str) {
    crate::scenarios::progress(line);
}

/// Runs the flood against `subject` on `bed` (automining) and checks what is cheap to check.
pub async fn run(
    subject: Subject<'_>,
    bed: Bed<'_>,
    o: &FloodOptions,
) -> Result<FloodReport, String> {
    crate::require_loopback(subject.url)?;
    let url = subject.url.trim_end_matches('/');
    let payers = &bed.payers[..o.payers.min(bed.payers.len())];
    if payers.is_empty() {
        return Err("the invalid flood needs funded payers".into());
    }
    progress(&format!(
        "invalid flood: signing {} + {} payments and {} invalid bodies",
        o.baseline_payments, o.max_payments_under_load, o.invalid
    ));
    let baseline = Feed::once(corpus::sign_n(payers, bed.requirements, o.baseline_payments).await?);
    let loaded =
        Feed::once(corpus::sign_n(payers, bed.requirements, o.max_payments_under_load).await?);
    // Material for the invalid kinds: signed payments nobody settles, and expired ones (signed
    // by a buyer whose clock is two hours behind: validBefore an hour ago).
    let pool = (o.invalid / KINDS.len()).clamp(1, 256);
    let decoys = to_values(&corpus::sign_n(payers, bed.requirements, pool).await?)?;
    let reqs = x402_core::wire::PaymentRequirements::V2(bed.requirements.clone());
    let view = reqs.view().map_err(|e| e.to_string())?;
    let mut expired = Vec::with_capacity(pool);
    let clock: x402_core::SharedClock = Arc::new(x402_core::ShiftedClock::new(-7200));
    for k in payers.iter().cycle().take(pool) {
        use x402_core::BuyerRole as _;
        let buyer = scheme_exact_evm::Buyer::new(Arc::new(k.clone())).with_clock(clock.clone());
        let payload = buyer.sign(&view).await.map_err(|e| e.to_string())?;
        let request = corpus::request_v2(bed.requirements, payload);
        expired.push(serde_json::to_value(&request).map_err(|e| e.to_string())?);
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let flood = build_flood(o.invalid, &decoys, &expired, &mut Rng(seed));
    let mut labels = flood.labels.clone();
    labels.sort_unstable();
    labels.dedup();

    let payments = client(None)?;
    let attacker = client(Some(IpAddr::V4(FLOOD_ADDRESS)))?;
    let seller = bed.chain.bed.seller().address;
    let paid_before = bed.chain.bed.usdc_balance(seller).await;
    let nonces_before: u64 = bed.chain.nonces(bed.signers).await?.iter().sum();
    let rss = |pid: Option<u32>| pid.and_then(procstat::rss_mib);
    let mut memory = Memory {
        rss_at_start: rss(subject.pid),
        ..Memory::default()
    };
    let mut metrics = MetricsFigures {
        at_start: MetricsSnapshot::of(&scrape(&payments, url).await?),
        random_labels_sent: labels.len(),
        ..MetricsFigures::default()
    };

    progress(&format!(
        "invalid flood: phase 1, {} valid payments alone ({} workers)",
        o.baseline_payments, o.valid_workers
    ));
    let never = Arc::new(AtomicBool::new(false));
    let phase1 = pay(&payments, url, &baseline, o.valid_workers, &never).await;

    metrics.before_flood = MetricsSnapshot::of(&scrape(&payments, url).await?);
    memory.rss_before_flood = rss(subject.pid);
    memory.peak_reset = subject.pid.is_some_and(procstat::reset_peak_rss);
    let cpu_before = subject.pid.and_then(procstat::cpu_seconds);
    let rpc_before = subject.proxy.map(RpcProxy::counts);
    let how = if o.rate_per_s > 0.0 {
        format!("{:.0}/s", o.rate_per_s)
    } else {
        "closed loop".into()
    };
    progress(&format!(
        "invalid flood: phase 2, {} invalid verifies ({how}, ≤ {} in flight) beside valid payments",
        o.invalid, o.concurrency
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let verify_url = format!("{url}/verify");
    let flood_run = async {
        let out = send_flood(
            &attacker,
            &verify_url,
            flood.bodies,
            o.rate_per_s,
            o.concurrency,
        )
        .await;
        stop.store(true, Ordering::Relaxed);
        out
    };
    let (invalid, phase2) = tokio::join!(
        flood_run,
        pay(&payments, url, &loaded, o.valid_workers, &stop)
    );
    memory.rss_after_flood = rss(subject.pid);
    memory.peak_rss = subject.pid.and_then(procstat::peak_rss_mib);
    let facilitator_cpu_s = subject
        .pid
        .and_then(procstat::cpu_seconds)
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    let rpc_calls = match (subject.proxy.map(RpcProxy::counts), rpc_before) {
        (Some(a), Some(b)) => proxy::delta(&a, &b),
        _ => BTreeMap::new(),
    };
    let body = scrape(&payments, url).await?;
    metrics.after_flood = MetricsSnapshot::of(&body);
    metrics.random_labels_found = labels.iter().filter(|l| body.contains(l.as_str())).count();
    tokio::time::sleep(Duration::from_secs(2)).await;
    memory.rss_after_idle = rss(subject.pid);

    // The chain's word on the payments.
    let paid = bed.chain.bed.usdc_balance(seller).await - paid_before;
    let txs = bed.chain.nonces(bed.signers).await?.iter().sum::<u64>() - nonces_before;
    let price: U256 = bed.requirements.amount.get();
    let settled = phase1.ok + phase2.ok;
    let mut checks = Vec::new();
    let mut check = |what: &str, passed: bool, detail: String| {
        checks.push(Check {
            what: what.into(),
            passed,
            detail,
        });
    };
    check(
        "every valid payment verified and settled",
        phase1.ok == phase1.sent && phase2.ok == phase2.sent && phase1.sent > 0,
        format!(
            "alone {}/{}, under the flood {}/{}; failures {:?} {:?}",
            phase1.ok, phase1.sent, phase2.ok, phase2.sent, phase1.errors, phase2.errors
        ),
    );
    check(
        "each settled exactly once on chain",
        paid == price * U256::from(settled) && txs == settled,
        format!(
            "{settled} successes; the seller received {paid} units ({price} each); the signers sent {txs} transactions"
        ),
    );
    let accepted: u64 = invalid
        .kinds
        .values()
        .map(|k| k.reasons.get("ACCEPTED").copied().unwrap_or(0))
        .sum();
    check(
        "no invalid request accepted",
        accepted == 0 && invalid.sent == o.invalid as u64,
        format!("{} sent, {accepted} answered isValid: true", invalid.sent),
    );
    let bad = |m: &BTreeMap<String, u64>| -> u64 {
        m.iter()
            .filter(|(s, _)| s.starts_with('5') || s.as_str() == "transport")
            .map(|(_, n)| n)
            .sum()
    };
    let fives = bad(&invalid.statuses) + bad(&phase1.statuses) + bad(&phase2.statuses);
    check(
        "no 5xx and no request left unanswered",
        fives == 0,
        format!(
            "invalid {:?}; valid alone {:?}, under the flood {:?}",
            invalid.statuses, phase1.statuses, phase2.statuses
        ),
    );
    let growth = metrics
        .after_flood
        .series
        .saturating_sub(metrics.before_flood.series);
    check(
        "/metrics did not grow with made-up labels",
        metrics.random_labels_found == 0 && growth <= MAX_SERIES_GROWTH,
        format!(
            "{} made-up networks/schemes sent, {} found in /metrics; series {} → {} (+{growth}, at most {MAX_SERIES_GROWTH})",
            metrics.random_labels_sent,
            metrics.random_labels_found,
            metrics.before_flood.series,
            metrics.after_flood.series
        ),
    );
    Ok(FloodReport {
        options: o.clone(),
        baseline: phase1,
        under_load: phase2,
        invalid,
        memory,
        metrics,
        facilitator_cpu_s,
        rpc_calls,
        checks,
    })
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.1}"))
}

fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "–".into();
    }
    m.iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The flood's section of the report.
pub fn markdown(r: &FloodReport) -> String {
    let mut out = String::new();
    let o = &r.options;
    let how = if o.rate_per_s > 0.0 {
        format!("at {:.0}/s (open loop)", o.rate_per_s)
    } else {
        "as fast as answered (closed loop)".into()
    };
    let _ = writeln!(
        out,
        "\n## {SCENARIO}\n\n{} invalid `/verify` requests {how}, at most {} in flight, from \
         127.0.0.2; valid payments (verify, then settle; automining) by {} workers from 127.0.0.1, \
         {} alone, then throughout the flood.\n",
        r.invalid.sent, o.concurrency, o.valid_workers, r.baseline.sent
    );
    out.push_str(
        "| valid payments | ok / sent | ok/s | verify p50 / p95 / p99 ms | settle p50 / p95 / p99 ms | payment p50 / p95 / p99 ms |\n|---|---|---|---|---|---|\n",
    );
    for (name, p) in [("alone", &r.baseline), ("under the flood", &r.under_load)] {
        let l = |l: &Latency| format!("{:.2} / {:.2} / {:.2}", l.p50, l.p95, l.p99);
        let _ = writeln!(
            out,
            "| {name} | {} / {} | {:.1} | {} | {} | {} |",
            p.ok,
            p.sent,
            p.ok_per_s,
            l(&p.verify_ms),
            l(&p.settle_ms),
            l(&p.payment_ms)
        );
    }
    let i = &r.invalid;
    let _ = writeln!(
        out,
        "\nInvalid requests: {} in {:.1} s ({:.0}/s), p50 {:.2} / p99 {:.2} ms; statuses {}.\n",
        i.sent,
        i.elapsed_s,
        i.per_s,
        i.latency_ms.p50,
        i.latency_ms.p99,
        counts(&i.statuses)
    );
    out.push_str(
        "| kind | sent | statuses | reasons | p50 ms | p99 ms |\n|---|---|---|---|---|---|\n",
    );
    for (name, k) in &i.kinds {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {:.2} | {:.2} |",
            k.sent,
            counts(&k.statuses),
            counts(&k.reasons),
            k.latency_ms.p50,
            k.latency_ms.p99
        );
    }
    let m = &r.memory;
    let _ = writeln!(
        out,
        "\nFacilitator memory (MiB): VmRSS {} at start, {} before the flood, {} after it, {} 2 s \
         later; VmHWM {} ({}).",
        mib(m.rss_at_start),
        mib(m.rss_before_flood),
        mib(m.rss_after_flood),
        mib(m.rss_after_idle),
        mib(m.peak_rss),
        if m.peak_reset {
            "peak during the flood"
        } else {
            "peak since start: clear_refs refused"
        }
    );
    let s = &r.metrics;
    let _ = writeln!(
        out,
        "\n`/metrics`: {} series / {} bytes at start, {} / {} before the flood, {} / {} after it \
         ({} series with an `other` label); {} made-up networks and schemes sent, {} of them in \
         `/metrics`.",
        s.at_start.series,
        s.at_start.bytes,
        s.before_flood.series,
        s.before_flood.bytes,
        s.after_flood.series,
        s.after_flood.bytes,
        s.after_flood.other_series,
        s.random_labels_sent,
        s.random_labels_found
    );
    if let Some(cpu) = r.facilitator_cpu_s {
        let _ = writeln!(
            out,
            "\nFacilitator CPU during the flood phase: {cpu:.2} s; RPC calls in it: {}.",
            counts(&r.rpc_calls)
        );
    }
    out.push_str("\nChecks:\n\n");
    for c in &r.checks {
        let _ = writeln!(
            out,
            "- {} {}: {}",
            if c.passed { "✓" } else { "✗ FAILED" },
            c.what,
            c.detail
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        serde_json::json!({
            "x402Version": 2,
            "paymentPayload": {
                "x402Version": 2,
                "accepted": {"scheme": "exact", "network": "eip155:31337", "amount": "10000"},
                "payload": {"signature": format!("0x{}", "ab".repeat(65))}
            },
            "paymentRequirements": {"scheme": "exact", "network": "eip155:31337", "amount": "10000"}
        })
    }

    #[test]
    fn every_kind_is_built_and_labels_are_made_up() {
        let valid = vec![sample()];
        let flood = build_flood(80, &valid, &valid, &mut Rng(7));
        assert_eq!(flood.bodies.len(), 80);
        for k in 0..KINDS.len() {
            assert_eq!(flood.bodies.iter().filter(|(i, _)| *i == k).count(), 10);
        }
        // networks twice, schemes once, per round of kinds
        assert_eq!(flood.labels.len(), 30);
        let sig = |b: &Bytes| -> String {
            let v: Value = serde_json::from_slice(b).unwrap_or(Value::Null);
            v["paymentPayload"]["payload"]["signature"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let original = sig(&bytes_of(&sample()));
        for (k, b) in &flood.bodies {
            match *k {
                5 => assert_ne!(sig(b), original),
                6 => {
                    let v: Value = serde_json::from_slice(b).unwrap_or(Value::Null);
                    assert_ne!(v["paymentRequirements"]["amount"], "10000");
                    assert_eq!(
                        v["paymentRequirements"]["amount"],
                        v["paymentPayload"]["accepted"]["amount"]
                    );
                }
                _ => {}
            }
        }
    }

    #[test]
    fn series_are_counted_without_comments() {
        let s = MetricsSnapshot::of(
            "# HELP a x\n# TYPE a counter\na{network=\"other\"} 1\na{network=\"eip155:1\"} 2\n\nb 3\n",
        );
        assert_eq!((s.series, s.other_series), (3, 1));
    }
}
