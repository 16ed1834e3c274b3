//! Prometheus metrics in the text exposition format, kept in process.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Latency buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Inner {
    counters: BTreeMap<(&'static str, Labels), u64>,
    gauges: BTreeMap<(&'static str, Labels), f64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// Help text of each metric.
const HELP: &[(&str, &str, &str)] = &[
    (
        "x402_requests_total",
        "counter",
        "Facilitator requests by route, scheme, network, outcome and reason.",
    ),
    (
        "x402_request_duration_seconds",
        "histogram",
        "Facilitator request latency by route, scheme and network.",
    ),
    (
        "x402_settlements_total",
        "counter",
        "Settle outcomes by scheme, network and outcome (success, failed, pending, duplicate).",
    ),
    (
        "x402_signer_balance",
        "gauge",
        "Native balance of each settlement signer, in the chain's smallest unit.",
    ),
    (
        "x402_rpc_up",
        "gauge",
        "1 when the network's RPC answered the last readiness probe.",
    ),
    (
        "x402_rpc_probe_duration_seconds",
        "histogram",
        "Latency of readiness probes against each network's RPC.",
    ),
    (
        "x402_rpc_errors_total",
        "counter",
        "Readiness probes that failed, by network.",
    ),
    (
        "x402_rpc_requests_total",
        "counter",
        "JSON-RPC attempts by network, endpoint index, method and outcome (ok, error).",
    ),
    (
        "x402_rpc_duration_seconds",
        "histogram",
        "JSON-RPC attempt latency by network and method.",
    ),
    (
        "x402_settlements_unresolved",
        "gauge",
        "Settlement records the chain may still change (written ahead or pending), as of the last readiness probe or reconciliation pass.",
    ),
    (
        "x402_reconciled_total",
        "counter",
        "Settlement records resolved by reconciliation, by scheme, network and outcome (landed, failed, released).",
    ),
    (
        "x402_auth_refusals_total",
        "counter",
        "Requests refused by access control, by route, API key id (empty when no known key was sent) and cause.",
    ),
    (
        "x402_limit_refusals_total",
        "counter",
        "Requests refused by the server's limits, by route and cause (client_concurrency, settles_in_flight, body_timeout).",
    ),
    (
        "x402_settles_in_flight",
        "gauge",
        "Settles in progress, as of this scrape ([limits] max_settles_in_flight bounds it).",
    ),
    (
        "x402_http_connections",
        "gauge",
        "Client connections open, as of this scrape ([limits] max_connections bounds it).",
    ),
    (
        "x402_reconcile_errors_total",
        "counter",
        "Reconciliation passes that failed, by scheme and network.",
    ),
];

/// The facilitator's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one to a counter.
    pub fn inc(&self, name: &'static str, labels: Labels) {
        self.add(name, labels, 1);
    }

    /// Adds `n` to a counter.
    pub fn add(&self, name: &'static str, labels: Labels, n: u64) {
        *self.lock().counters.entry((name, labels)).or_default() += n;
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, labels: Labels, value: f64) {
        self.lock().gauges.insert((name, labels), value);
    }

    /// Records a duration in a histogram.
    pub fn observe(&self, name: &'static str, labels: Labels, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut inner = self.lock();
        let h = inner
            .histograms
            .entry((name, labels))
            .or_insert_with(|| Histogram {
                buckets: vec![0; BUCKETS.len()],
                ..Histogram::default()
            });
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.buckets[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The exposition text. The series are copied out under the lock and formatted after it is
    /// released, so a scrape never holds up the requests that record.
    pub fn render(&self) -> String {
        let inner = {
            let locked = self.lock();
            Inner {
                counters: locked.counters.clone(),
                gauges: locked.gauges.clone(),
                histograms: locked.histograms.clone(),
            }
        };
        let mut out = String::new();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, labels), v) in &inner.counters {
                if n == name {
                    let _ = writeln!(out, "{n}{} {v}", fmt_labels(labels, None));
                }
            }
            for ((n, labels), v) in &inner.gauges {
                if n == name {
                    let _ = writeln!(out, "{n}{} {v}", fmt_labels(labels, None));
                }
            }
            for ((n, labels), h) in &inner.histograms {
                if n != name {
                    continue;
                }
                for (le, count) in BUCKETS.iter().zip(&h.buckets) {
                    let _ = writeln!(
                        out,
                        "{n}_bucket{} {count}",
                        fmt_labels(labels, Some(&le.to_string()))
                    );
                }
                let _ = writeln!(
                    out,
                    "{n}_bucket{} {}",
                    fmt_labels(labels, Some("+Inf")),
                    h.count
                );
                let _ = writeln!(out, "{n}_sum{} {}", fmt_labels(labels, None), h.sum);
                let _ = writeln!(out, "{n}_count{} {}", fmt_labels(labels, None), h.count);
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn fmt_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let m = Metrics::default();
        m.inc(
            "x402_requests_total",
            vec![("route", "verify".into()), ("reason", "a\"b".into())],
        );
        m.set(
            "x402_signer_balance",
            vec![("address", "0xabc".into())],
            5.0,
        );
        m.observe(
            "x402_request_duration_seconds",
            vec![("route", "verify".into())],
            Duration::from_millis(3),
        );
        let text = m.render();
        assert!(
            text.contains(r#"x402_requests_total{route="verify",reason="a\"b"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"x402_signer_balance{address="0xabc"} 5"#),
            "{text}"
        );
        assert!(
            text.contains(r#"x402_request_duration_seconds_bucket{route="verify",le="0.005"} 1"#)
        );
        assert!(
            text.contains(r#"x402_request_duration_seconds_bucket{route="verify",le="0.0025"} 0"#)
        );
        assert!(text.contains(r#"x402_request_duration_seconds_count{route="verify"} 1"#));
        assert!(text.contains("# TYPE x402_request_duration_seconds histogram"));
    }
}

/// Feeds every RPC attempt of the EVM transports into the metrics.
#[cfg(feature = "evm")]
#[derive(Debug)]
pub struct RpcMetrics(pub std::sync::Arc<Metrics>);

#[cfg(feature = "evm")]
impl x402_evm::provider::RpcObserver for RpcMetrics {
    fn observe(&self, label: &str, endpoint: usize, method: &str, elapsed: Duration, ok: bool) {
        self.0.inc(
            "x402_rpc_requests_total",
            vec![
                ("network", label.to_owned()),
                ("endpoint", endpoint.to_string()),
                ("method", method.to_owned()),
                ("outcome", if ok { "ok" } else { "error" }.to_owned()),
            ],
        );
        self.0.observe(
            "x402_rpc_duration_seconds",
            vec![("network", label.to_owned()), ("method", method.to_owned())],
            elapsed,
        );
    }
}
