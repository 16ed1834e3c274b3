#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod extensions;
pub mod hooks;
pub mod metrics;
pub mod server;
pub mod telemetry;

use std::sync::Arc;

// rustc drops a dependency that no code names, and its registrations would silently vanish;
// each enabled scheme crate is therefore named here.
#[cfg(feature = "evm")]
use scheme_exact_evm as _;
#[cfg(feature = "svm")]
use scheme_exact_svm as _;
#[cfg(feature = "template")]
use scheme_template as _;
#[cfg(feature = "evm")]
use scheme_upto_evm as _;

use x402_core::{
    Catalogue, DuplicateId, LocalFacilitator, Reconciled, Registry, SchemeConfig, SettlementStore,
    Shared, StoreOptions,
};

use crate::config::Config;
use crate::metrics::Metrics;

/// The schemes linked into this build, collected once; a duplicate id is a start-up error.
pub fn catalogue() -> Result<&'static Catalogue, DuplicateId> {
    Catalogue::linked()
}

/// The scheme table as printed at start-up: one `id  scheme  namespace  versions  crate` line
/// each.
pub fn scheme_table(catalogue: &Catalogue) -> String {
    let mut out = String::new();
    for d in catalogue.iter() {
        let versions: Vec<String> = d.versions.iter().map(|v| format!("v{v}")).collect();
        out.push_str(&format!(
            "{:<14} {:<6} {:<8} {:<6} {}\n",
            d.id,
            d.scheme,
            d.namespace,
            versions.join(","),
            d.crate_name
        ));
    }
    out
}

/// Why the facilitator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Two crates registered one id.
    #[error(transparent)]
    Duplicate(#[from] DuplicateId),
    /// The configuration names a scheme this build does not contain.
    #[error(
        "networks.{network:?}.schemes.{scheme}: no scheme {scheme:?} on {namespace:?} is in this build (linked: {linked})"
    )]
    NotLinked {
        /// The network key.
        network: String,
        /// The scheme key.
        scheme: String,
        /// The network's CAIP-2 namespace.
        namespace: String,
        /// What the build has.
        linked: String,
    },
    /// An extension could not be set up (`[extensions]`).
    #[error("{0}")]
    Extension(String),
    /// A hook could not be set up (`[hooks]`).
    #[error("{0}")]
    Hook(String),
    /// The settlement store could not be opened.
    #[error("store: {0}")]
    Store(#[from] x402_store::OpenError),
    /// A scheme refused its configuration or failed a start-up check.
    #[error("networks.{network:?}.schemes.{scheme}: {source}")]
    Scheme {
        /// The network key.
        network: String,
        /// The scheme key.
        scheme: String,
        /// The scheme's error.
        #[source]
        source: x402_core::registry::RegistryError,
    },
}

/// One line of the resolved plan: scheme × network × signers (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLine {
    /// The scheme.
    pub scheme: String,
    /// The network.
    pub network: String,
    /// The signer addresses.
    pub signers: Vec<String>,
}

/// `error` with no resolved `$VAR` value in its builder's message (a scheme's option parser may
/// quote a value it could not read).
fn redacted(
    error: x402_core::registry::RegistryError,
    secrets: &config::Secrets,
) -> x402_core::registry::RegistryError {
    use x402_core::registry::RegistryError;
    match error {
        RegistryError::Build {
            id,
            network,
            source,
        } => {
            let text = source.to_string();
            let clean = secrets.redact(&text);
            RegistryError::Build {
                id,
                network,
                source: if clean == text {
                    source
                } else {
                    x402_core::SchemeError::Config(clean)
                },
            }
        }
        other => other,
    }
}

/// Builds every configured scheme (running its start-up checks) into a dispatcher, sharing one
/// settlement store and one set of per-network resources between schemes.
pub async fn build(config: &Config) -> Result<(LocalFacilitator, Vec<PlanLine>), StartError> {
    let catalogue = catalogue()?;
    let store = open_store(config).await?;
    let shared = Arc::new(Shared::default());
    #[allow(unused_mut)]
    let mut extension_tables = config.extensions.clone();
    // Before the schemes: they read its settings from `shared`.
    #[cfg(feature = "gas-sponsoring")]
    let erc20 = extensions::take_erc20(&mut extension_tables, &shared, &store)
        .map_err(StartError::Extension)?;
    let mut registry = Registry::new();
    let mut plan = Vec::new();
    for s in &config.schemes {
        let descriptor = catalogue
            .find(&s.scheme, s.network.namespace())
            .ok_or_else(|| StartError::NotLinked {
                network: s.network.to_string(),
                scheme: s.scheme.clone(),
                namespace: s.network.namespace().to_owned(),
                linked: catalogue.ids().collect::<Vec<_>>().join(", "),
            })?;
        let scheme_config = SchemeConfig {
            network: s.network.clone(),
            options: s.options.clone(),
            store: store.clone(),
            shared: shared.clone(),
        };
        registry
            .register_descriptor(descriptor, scheme_config)
            .await
            .map_err(|source| StartError::Scheme {
                network: s.network.to_string(),
                scheme: s.scheme.clone(),
                source: redacted(source, &config.secrets),
            })?;
    }
    let mut seen = std::collections::HashSet::new();
    for e in registry.entries() {
        let x402_core::NetworkPattern::Exact(network) = &e.pattern else {
            continue;
        };
        if seen.insert((e.scheme.scheme(), network.clone())) {
            plan.push(PlanLine {
                scheme: e.scheme.scheme().to_owned(),
                network: network.to_string(),
                signers: e.scheme.signers(network),
            });
        }
    }
    #[allow(unused_mut)]
    let mut extensions =
        extensions::build(&extension_tables, &store).map_err(StartError::Extension)?;
    #[cfg(feature = "gas-sponsoring")]
    extensions.extend(erc20);
    let mut facilitator = LocalFacilitator::new(registry)
        .with_timeouts(config.limits.timeouts())
        .with_store(store);
    for extension in extensions {
        facilitator = facilitator.with_extension(extension);
    }
    for hook in hooks::from_config(&config.hooks).map_err(StartError::Hook)? {
        facilitator = facilitator.with_hook(hook);
    }
    Ok((facilitator, plan))
}

/// Opens the configured settlement store. A claim without an intent is taken over once it is
/// older than twice the request deadline: a live settle writes ahead (or ends) well before.
pub async fn open_store(config: &Config) -> Result<Arc<dyn SettlementStore>, StartError> {
    let options = StoreOptions {
        abandon_after: config.limits.timeouts().request_deadline() * 2,
        ..StoreOptions::default()
    };
    let store = x402_store::open(&config.store.url, options).await?;
    tracing::info!(kind = store.kind(), "settlement store open");
    Ok(store)
}

/// Runs one reconciliation pass of every scheme on every network, reports it in `metrics` and
/// the log, and returns the totals.
pub async fn reconcile_once(facilitator: &LocalFacilitator, metrics: &Metrics) -> Reconciled {
    let mut total = Reconciled::default();
    for line in facilitator.reconcile().await {
        let labels = |outcome: &'static str| {
            vec![
                ("scheme", line.scheme.to_owned()),
                ("network", line.network.to_string()),
                ("outcome", outcome.to_owned()),
            ]
        };
        match line.result {
            Ok(r) => {
                metrics.add("x402_reconciled_total", labels("landed"), r.landed);
                metrics.add("x402_reconciled_total", labels("failed"), r.failed);
                metrics.add("x402_reconciled_total", labels("released"), r.released);
                if r.examined > 0 {
                    tracing::info!(scheme = line.scheme, network = %line.network, examined = r.examined, landed = r.landed, failed = r.failed, released = r.released, pending = r.pending, "reconciled settlements");
                }
                total.add(r);
            }
            Err(e) => {
                metrics.inc(
                    "x402_reconcile_errors_total",
                    vec![
                        ("scheme", line.scheme.to_owned()),
                        ("network", line.network.to_string()),
                    ],
                );
                tracing::warn!(scheme = line.scheme, network = %line.network, error = %e, "reconciliation pass failed");
            }
        }
    }
    if let Some(store) = facilitator.store()
        && let Ok(counts) = store.counts().await
    {
        metrics.set(
            "x402_settlements_unresolved",
            Vec::new(),
            counts.unresolved as f64,
        );
    }
    total
}

/// Reconciles now and then every `interval`, for as long as the task lives.
pub fn spawn_reconciler(
    facilitator: Arc<LocalFacilitator>,
    metrics: Arc<Metrics>,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            reconcile_once(&facilitator, &metrics).await;
        }
    })
}

/// The plan as printed by `--check-config --json`: `[{"scheme","network","signers":[…]}]`.
pub fn plan_json(plan: &[PlanLine]) -> serde_json::Value {
    plan.iter()
        .map(|line| {
            serde_json::json!({
                "scheme": line.scheme,
                "network": line.network,
                "signers": line.signers,
            })
        })
        .collect()
}

/// The plan as printed by `--check-config` and logged at start-up.
pub fn plan_table(plan: &[PlanLine]) -> String {
    let mut out = String::from("scheme  network                                   signers\n");
    for line in plan {
        out.push_str(&format!(
            "{:<7} {:<41} {}\n",
            line.scheme,
            line.network,
            line.signers.join(",")
        ));
    }
    out
}

#[cfg(all(test, feature = "template"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Which keys a network table may hold is the schemes' business: a key no scheme reads fails
    /// start-up, named with its network and scheme, without a key list in this crate.
    #[tokio::test]
    async fn a_key_no_scheme_reads_fails_start_up_naming_it() {
        let text = r#"
            listen = "127.0.0.1:0"
            auth = "none"
            [store]
            url = "memory"
            [networks."toy:local"]
            rpc_url = "http://127.0.0.1:1"
            [networks."toy:local".schemes.exact]
        "#;
        let config = Config::parse(text, &|_| None).expect("the file itself is well formed");
        let Err(error) = build(&config).await else {
            panic!("an unknown key is refused");
        };
        let message = error.to_string();
        assert!(
            message.starts_with(r#"networks."toy:local".schemes.exact: "#),
            "{message}"
        );
        assert!(message.contains("unknown field `rpc_url`"), "{message}");

        let good = Config::parse(&text.replace("rpc_url", "# rpc_url"), &|_| None).unwrap();
        assert!(build(&good).await.is_ok());
    }

    /// A scheme's option parser may quote the value it could not read; a value that came from a
    /// `$VAR` never reaches the start-up error.
    #[tokio::test]
    async fn a_start_up_error_never_quotes_a_resolved_secret() {
        let text = r#"
            listen = "127.0.0.1:0"
            auth = "none"
            [store]
            url = "memory"
            [networks."toy:local".schemes.exact]
            balances = { "0x0000000000000000000000000000000000000001" = "$BALANCE" }
        "#;
        let secret = "sk-live-0123456789abcdef";
        let env = |name: &str| (name == "BALANCE").then(|| secret.to_owned());
        let config = Config::parse(text, &env).unwrap();
        let Err(error) = build(&config).await else {
            panic!("a balance that is no number is refused");
        };
        let mut shown = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(e) = source {
            shown.push_str(&format!(" / {e}"));
            source = e.source();
        }
        assert!(!shown.contains(secret), "{shown}");
        assert!(
            shown.contains("$BALANCE"),
            "the variable is named instead: {shown}"
        );
    }

    /// A TOML syntax error names the line, not its text (it may hold a literal secret).
    #[test]
    fn a_syntax_error_names_the_line_without_quoting_it() {
        let text = "listen = \"127.0.0.1:0\"\nrpc = http://node.example/secret-token-42\n";
        let error = Config::parse(text, &|_| None).unwrap_err().to_string();
        assert!(!error.contains("secret-token-42"), "{error}");
        assert!(error.contains("line 2"), "{error}");
    }
}
