//! Drives a facilitator over HTTP.
//!
//! - Closed loop: `concurrency` workers, each sending its next request as soon as the last one is
//!   answered. Measures the throughput the facilitator sustains at that concurrency.
//! - Open loop: requests start at a fixed arrival rate whatever the answers do; latency counts
//!   from each request's *scheduled* start, so queueing inside the facilitator (or in the driver)
//!   is not hidden (no coordinated omission).
//!
//! Every run is bounded by a request count and a wall-clock limit; requests in flight at the
//! limit finish within the client's request timeout.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde::Deserialize;

use crate::require_loopback;
use crate::stats::{Outcome, Recorder};

/// Open-loop requests beyond this many in flight are not sent and count as dropped.
const MAX_IN_FLIGHT: usize = 4096;

/// The facilitator endpoint driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /verify`.
    Verify,
    /// `POST /settle`.
    Settle,
}

impl Route {
    /// The path.
    pub fn path(self) -> &'static str {
        match self {
            Self::Verify => "/verify",
            Self::Settle => "/settle",
        }
    }
}

/// Request bodies to send: cycled (verify can repeat a payload) or each used once (settle),
/// with a cursor shared by every clone.
#[derive(Debug, Clone)]
pub struct Feed {
    bodies: Arc<Vec<Bytes>>,
    cursor: Arc<AtomicUsize>,
    cycle: bool,
}

impl Feed {
    /// Cycles over `bodies` for ever.
    pub fn cycling(bodies: Vec<Bytes>) -> Self {
        Self {
            bodies: Arc::new(bodies),
            cursor: Arc::new(AtomicUsize::new(0)),
            cycle: true,
        }
    }

    /// Hands out each of `bodies` once, in order.
    pub fn once(bodies: Vec<Bytes>) -> Self {
        Self {
            cycle: false,
            ..Self::cycling(bodies)
        }
    }

    /// The next body, or `None` when a use-once feed is spent.
    pub fn next_body(&self) -> Option<Bytes> {
        if self.bodies.is_empty() {
            return None;
        }
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        if self.cycle {
            Some(self.bodies[i % self.bodies.len()].clone())
        } else {
            self.bodies.get(i).cloned()
        }
    }

    /// Bodies a use-once feed has left.
    pub fn remaining(&self) -> usize {
        self.bodies
            .len()
            .saturating_sub(self.cursor.load(Ordering::Relaxed))
    }
}

/// The facilitator's answer, as far as the driver cares.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    is_valid: Option<bool>,
    success: Option<bool>,
    invalid_reason: Option<String>,
    invalid_message: Option<String>,
    error_reason: Option<String>,
    error_message: Option<String>,
    error: Option<String>,
}

/// One facilitator route and the HTTP client that drives it.
#[derive(Debug, Clone)]
pub struct Target {
    client: reqwest::Client,
    endpoint: String,
    route: Route,
}

impl Target {
    /// A target at `base_url` (loopback only) for `route`; requests give up after `timeout`.
    pub fn new(base_url: &str, route: Route, timeout: Duration) -> Result<Self, String> {
        require_loopback(base_url)?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(4096)
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Self {
            client,
            endpoint: format!("{}{}", base_url.trim_end_matches('/'), route.path()),
            route,
        })
    }

    /// Sends one body and classifies the answer.
    pub async fn call(&self, body: Bytes) -> Outcome {
        let sent = self
            .client
            .post(&self.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Outcome::failed(transport(&e)),
        };
        let status = response.status().as_u16();
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Outcome::failed(transport(&e)),
        };
        let Ok(answer) = serde_json::from_slice::<Answer>(&bytes) else {
            return Outcome::Failed {
                reason: format!("http {status}: not JSON"),
                message: String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned(),
            };
        };
        let good = match self.route {
            Route::Verify => answer.is_valid == Some(true),
            Route::Settle => answer.success == Some(true),
        };
        if status == 200 && good {
            return Outcome::Ok;
        }
        let reason = answer
            .invalid_reason
            .or(answer.error_reason)
            .unwrap_or_else(|| "no reason given".into());
        let reason = if status == 200 {
            reason
        } else {
            format!("http {status}: {reason}")
        };
        Outcome::Failed {
            reason: reason.chars().take(80).collect(),
            message: answer
                .invalid_message
                .or(answer.error_message)
                .or(answer.error)
                .unwrap_or_default(),
        }
    }
}

fn transport(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "transport: timeout"
    } else if e.is_connect() {
        "transport: connect"
    } else {
        "transport: other"
    }
}

/// The bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests at most.
    pub max_ops: u64,
    /// Wall time at most (requests in flight then still finish).
    pub max_time: Duration,
}

/// What ended a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The request count was reached.
    Count,
    /// The time limit was reached.
    Time,
    /// A use-once feed ran out of bodies.
    Corpus,
}

/// The outcome of one run.
#[derive(Debug)]
pub struct Run {
    /// What was recorded.
    pub recorder: Recorder,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// What ended it.
    pub stopped_by: Stop,
}

/// Everything recorded (once every request has finished).
fn take(rec: &Mutex<Recorder>) -> Recorder {
    std::mem::take(&mut *rec.lock().unwrap_or_else(|p| p.into_inner()))
}

fn record(rec: &Mutex<Recorder>, latency: Duration, outcome: Outcome) {
    rec.lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(latency, outcome);
}

/// Runs `concurrency` workers until `limits` or the feed ends.
pub async fn closed_loop(target: &Target, feed: &Feed, concurrency: usize, limits: Limits) -> Run {
    let rec = Arc::new(Mutex::new(Recorder::default()));
    let issued = Arc::new(AtomicU64::new(0));
    let spent = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + limits.max_time;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (target, feed) = (target.clone(), feed.clone());
        let (rec, issued, spent) = (rec.clone(), issued.clone(), spent.clone());
        workers.spawn(async move {
            while Instant::now() < deadline
                && issued.fetch_add(1, Ordering::Relaxed) < limits.max_ops
            {
                let Some(body) = feed.next_body() else {
                    spent.store(true, Ordering::Relaxed);
                    break;
                };
                let t0 = Instant::now();
                let outcome = target.call(body).await;
                record(&rec, t0.elapsed(), outcome);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    let stopped_by = if spent.load(Ordering::Relaxed) {
        Stop::Corpus
    } else if issued.load(Ordering::Relaxed) >= limits.max_ops {
        Stop::Count
    } else {
        Stop::Time
    };
    Run {
        recorder: take(&rec),
        elapsed,
        stopped_by,
    }
}

/// Starts `rate` requests a second until `limits` or the feed ends.
pub async fn open_loop(target: &Target, feed: &Feed, rate: f64, limits: Limits) -> Run {
    let rate = rate.max(0.1);
    let planned = ((rate * limits.max_time.as_secs_f64()) as u64).min(limits.max_ops);
    let rec = Arc::new(Mutex::new(Recorder::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    let mut stopped_by = if planned == limits.max_ops {
        Stop::Count
    } else {
        Stop::Time
    };
    for i in 0..planned {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at).await;
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            record(
                &rec,
                Duration::ZERO,
                Outcome::failed("dropped: in-flight cap"),
            );
            continue;
        }
        let Some(body) = feed.next_body() else {
            stopped_by = Stop::Corpus;
            break;
        };
        let (target, rec, in_flight) = (target.clone(), rec.clone(), in_flight.clone());
        in_flight.fetch_add(1, Ordering::Relaxed);
        requests.spawn(async move {
            let outcome = target.call(body).await;
            record(&rec, at.elapsed(), outcome);
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        // Reap finished requests now and then so the set stays small.
        while requests.try_join_next().is_some() {}
    }
    while requests.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    Run {
        recorder: take(&rec),
        elapsed,
        stopped_by,
    }
}
