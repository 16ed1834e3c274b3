//! `x402-bench`: throughput, latency and cost per operation of x402 facilitators on loopback
//! chains. See `docs/benchmarks.md` for how to run it and the latest figures.
//!
//! The pieces: [`chain`] (anvil with real USDC, payers funded in bulk), [`corpus`] (pre-signed
//! payments), [`proxy`] (a counting JSON-RPC proxy), [`driver`] (closed- and open-loop load),
//! [`measure`] (one step with its CPU, memory and RPC cost), [`targets`] (our binary and the
//! TypeScript reference as processes), [`stores`] (settles by settlement store), [`flood`]
//! (invalid verifies beside valid payments), [`suite`] (the full run) and [`report`].

pub mod baseline;
pub mod chain;
pub mod corpus;
pub mod driver;
pub mod env;
pub mod flood;
pub mod measure;
pub mod procstat;
pub mod proxy;
pub mod report;
mod scenarios;
pub mod stats;
pub mod stores;
pub mod suite;
pub mod svm;
pub mod targets;

/// Refuses any URL whose host is not a loopback address: the benchmark only ever loads this
/// machine.
pub fn require_loopback(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!("{url}: only loopback addresses may be benchmarked"))
    }
}

#[cfg(test)]
mod tests {
    use super::require_loopback;

    #[test]
    fn only_loopback_is_accepted() {
        assert!(require_loopback("http://127.0.0.1:8402").is_ok());
        assert!(require_loopback("http://[::1]:1/").is_ok());
        assert!(require_loopback("http://localhost:1").is_ok());
        assert!(require_loopback("http://10.0.0.1:8402").is_err());
        assert!(require_loopback("https://x402.org").is_err());
        assert!(require_loopback("not a url").is_err());
    }
}
