//! What one benchmark step measured: every latency (exact percentiles, no histogram buckets),
//! successes, and errors grouped by reason.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// How many full error messages a step keeps as samples.
const ERROR_SAMPLES: usize = 5;

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `isValid: true` (verify) or `success: true` (settle).
    Ok,
    /// Anything else: a short, bounded reason used as a grouping key, and the full message.
    Failed {
        /// The grouping key (a reason code, `http 503`, `transport: timeout`, …).
        reason: String,
        /// The message the facilitator gave, if any.
        message: String,
    },
}

impl Outcome {
    /// A failure with `reason` and no message.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::Failed {
            reason: reason.into(),
            message: String::new(),
        }
    }
}

/// Collects the outcomes of one step.
#[derive(Debug, Default)]
pub struct Recorder {
    latencies_us: Vec<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    nonce_errors: u64,
    samples: Vec<String>,
}

impl Recorder {
    /// Records one finished request.
    pub fn record(&mut self, latency: Duration, outcome: Outcome) {
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Failed { reason, message } => {
                let text = format!("{reason}: {message}");
                if text.to_ascii_lowercase().contains("nonce") {
                    self.nonce_errors += 1;
                }
                if self.samples.len() < ERROR_SAMPLES {
                    self.samples.push(abridge(&text));
                }
                *self.errors.entry(reason).or_default() += 1;
            }
        }
    }

    /// Requests recorded so far.
    pub fn count(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    /// Successful requests recorded so far.
    pub fn ok(&self) -> u64 {
        self.ok
    }

    /// The tallies and percentiles over `elapsed`.
    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.latencies_us.sort_unstable();
        let secs = elapsed.as_secs_f64();
        let sent = self.latencies_us.len() as u64;
        Summary {
            sent,
            ok: self.ok,
            failed: sent - self.ok,
            elapsed_s: secs,
            ok_per_s: if secs > 0.0 {
                self.ok as f64 / secs
            } else {
                0.0
            },
            latency_ms: Latency::of_sorted(&self.latencies_us),
            errors: self.errors,
            nonce_errors: self.nonce_errors,
            error_samples: self.samples,
            latencies_us: self.latencies_us,
        }
    }
}

/// A long message's head and tail (libraries put the detail at the end: viem's `Details:`).
fn abridge(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 400 {
        return text.to_owned();
    }
    let head: String = chars[..200].iter().collect();
    let tail: String = chars[chars.len() - 200..].iter().collect();
    format!("{head} … {tail}")
}

/// Latency percentiles in milliseconds (nearest rank over every request).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Latency {
    /// The percentiles of latencies in microseconds, sorted in ascending order.
    pub fn of_sorted(sorted_us: &[u64]) -> Self {
        if sorted_us.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        let rank = |p: f64| {
            let i = ((p * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
            ms(sorted_us[i - 1])
        };
        let total: u128 = sorted_us.iter().map(|&u| u128::from(u)).sum();
        Self {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: ms(*sorted_us.last().unwrap_or(&0)),
            mean: total as f64 / sorted_us.len() as f64 / 1000.0,
        }
    }
}

/// The tallies of one step.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Requests that finished (successfully or not).
    pub sent: u64,
    /// Successful requests.
    pub ok: u64,
    /// Requests that did not succeed.
    pub failed: u64,
    /// Wall time of the step, from its first request to its last answer.
    pub elapsed_s: f64,
    /// Successful requests per second of wall time.
    pub ok_per_s: f64,
    /// Latency over every request (successful or not).
    pub latency_ms: Latency,
    /// Failures by reason.
    pub errors: BTreeMap<String, u64>,
    /// Failures whose reason or message mentions a nonce.
    pub nonce_errors: u64,
    /// The first few failure messages in full.
    pub error_samples: Vec<String>,
    /// Every latency in microseconds, ascending (kept to pool steps; not in the report).
    #[serde(skip)]
    pub latencies_us: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut r = Recorder::default();
        for ms in 1..=100u64 {
            r.record(Duration::from_millis(ms), Outcome::Ok);
        }
        r.record(
            Duration::from_millis(1000),
            Outcome::Failed {
                reason: "x".into(),
                message: "Nonce too low".into(),
            },
        );
        let s = r.summary(Duration::from_secs(2));
        assert_eq!((s.sent, s.ok, s.failed, s.nonce_errors), (101, 100, 1, 1));
        assert_eq!(s.latency_ms.p50, 51.0);
        assert_eq!(s.latency_ms.p99, 100.0);
        assert_eq!(s.latency_ms.max, 1000.0);
        assert_eq!(s.ok_per_s, 50.0);
        assert_eq!(s.errors["x"], 1);
    }
}
