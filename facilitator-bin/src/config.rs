//! The facilitator's configuration file (TOML).
//!
//! ```toml
//! listen = "127.0.0.1:8402"
//! auth = "none"            # or [[auth.keys]]: API keys for /verify and /settle (crate::auth)
//!
//! [log]
//! format = "json"          # or "text"
//! level = "info"
//!
//! [limits]
//! max_body_bytes = 65536
//! settle_timeout_ms = 60000   # a settle answers by then (pending if the chain has not decided)
//! header_read_timeout_ms = 10000   # slow or idle connections are closed after this
//! body_read_timeout_ms = 10000     # a body not received by then is answered 408
//! max_connections = 4096           # more wait in the listen backlog
//! per_client_concurrency = 256     # /verify + /settle in progress per client address (429 beyond)
//! max_settles_in_flight = 1024     # settles in progress (503 beyond, nothing sent)
//!
//! [store]
//! url = "$X402_STORE_URL"   # memory | sqlite:<path> | postgres://… (default: a SQLite file
//!                           # under data_dir)
//! data_dir = "/var/lib/x402-facilitator"
//! reconcile_interval_ms = 15000
//!
//! [networks."eip155:8453"]
//! rpc_urls = ["$BASE_RPC_URL"]          # secrets come from the environment, never the file
//! signer_keys = ["$BASE_SIGNER_KEY"]
//! min_signer_balance = "10000000000000000"
//!
//! [networks."eip155:8453".schemes.exact]
//! assets = ["0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"]
//!
//! [extensions.bazaar]       # discovery (feature `bazaar`): catalog what is settled
//! ttl_seconds = 604800       # (crate::extensions); `enabled = false` turns it off
//!
//! [extensions.eip2612GasSponsoring]  # feature `gas-sponsoring`: listed in /supported;
//! enabled = true                     # Permit2 payments with an EIP-2612 permit settle
//!                                    # through settleWithPermit (no options)
//!
//! [extensions.erc20ApprovalGasSponsoring]  # feature `gas-sponsoring`; OFF unless enabled:
//! enabled = true                  # broadcast a payer's signed approve(Permit2) before settling
//! max_gas_limit = 100000          # caps on the buyer's approval transaction
//! max_fee_per_gas = 100000000000  # wei
//! fund_gas = false                # send a payer short of ETH its approval's max cost
//! max_funding_per_payer = 1000000000000000     # wei per payer per day
//! max_funding_per_day = 100000000000000000     # wei per day, all payers (per process)
//! max_fundings_per_day = 1000
//!
//! [hooks.deny_list]          # optional: refuse payments from or to listed addresses
//! path = "/etc/x402/deny.txt"  # (crate::hooks), reloaded when the file changes
//! ```
//!
//! Unknown keys, bad values and unset variables are errors naming the key. A string that starts
//! with `$` is a reference to an environment variable; `signer_keys` accepts references only, so
//! a key can never sit in the file.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;
use x402_core::Network;

pub use self::limits::Limits;
use crate::auth::AuthConfig;

mod limits;

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, or a wrong type.
    #[error("{0}")]
    Parse(String),
    /// A value is wrong.
    #[error("{key}: {problem}")]
    Invalid {
        /// The key path.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Text or JSON.
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter (`info`, `x402=debug,info`).
    #[serde(default = "default_level")]
    pub level: String,
    /// Where to export spans over OTLP/HTTP (`http://collector:4318`); needs the `otel` feature.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: default_level(),
            otlp_endpoint: None,
        }
    }
}

fn default_level() -> String {
    "info".into()
}

/// `[store]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
    data_dir: Option<String>,
    reconcile_interval_ms: Option<u64>,
}

/// Where settlement state lives (`[store]`).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `memory`, `sqlite:<path>` or `postgres://…`, `$VAR`s resolved (it may hold a password:
    /// never printed).
    pub url: String,
    /// How often unresolved settlements are reconciled from the chain.
    pub reconcile_interval: std::time::Duration,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = self.url.split(':').next().unwrap_or_default();
        f.debug_struct("StoreConfig")
            .field("kind", &kind)
            .field("reconcile_interval", &self.reconcile_interval)
            .finish_non_exhaustive()
    }
}

/// The directory the default store file lives in when `[store] data_dir` is absent:
/// `$XDG_DATA_HOME/x402-facilitator`, else `$HOME/.local/share/x402-facilitator`.
fn default_data_dir(env: &dyn Fn(&str) -> Option<String>) -> String {
    match (env("XDG_DATA_HOME"), env("HOME")) {
        (Some(xdg), _) if !xdg.is_empty() => format!("{xdg}/x402-facilitator"),
        (_, Some(home)) if !home.is_empty() => format!("{home}/.local/share/x402-facilitator"),
        _ => "x402-facilitator-data".to_owned(),
    }
}

impl StoreConfig {
    fn resolve(raw: RawStore, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let url = match raw.url {
            Some(url) => match resolve("store.url", toml::Value::String(url), env)? {
                serde_json::Value::String(s) => s,
                _ => return Err(invalid("store.url", "must be a string")),
            },
            None => {
                let dir = raw.data_dir.unwrap_or_else(|| default_data_dir(env));
                format!("sqlite:{}/settlements.sqlite3", dir.trim_end_matches('/'))
            }
        };
        if url.trim().is_empty() {
            return Err(invalid("store.url", "is empty"));
        }
        let interval = raw.reconcile_interval_ms.unwrap_or(15_000);
        if interval == 0 {
            return Err(invalid("store.reconcile_interval_ms", "must be positive"));
        }
        Ok(Self {
            url,
            reconcile_interval: std::time::Duration::from_millis(interval),
        })
    }
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    /// `"none"` or a table of keys (`crate::auth::config`); required.
    auth: Option<toml::Value>,
    #[serde(default)]
    log: LogConfig,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    networks: BTreeMap<String, toml::Table>,
    #[serde(default)]
    hooks: crate::hooks::HooksConfig,
    #[serde(default)]
    extensions: BTreeMap<String, toml::Table>,
}

/// One scheme on one network, with its options resolved (secrets included — never print them).
#[derive(Clone)]
pub struct SchemePlan {
    /// The network.
    pub network: Network,
    /// The scheme name (`exact`, `upto`).
    pub scheme: String,
    /// The network's shared keys merged with the scheme's own table, `$VAR`s resolved.
    pub options: serde_json::Value,
}

impl std::fmt::Debug for SchemePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemePlan")
            .field("network", &self.network)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Who may call `/verify` and `/settle`.
    pub auth: AuthConfig,
    /// Logging.
    pub log: LogConfig,
    /// Limits.
    pub limits: Limits,
    /// The settlement store.
    pub store: StoreConfig,
    /// Every scheme on every network.
    pub schemes: Vec<SchemePlan>,
    /// The lifecycle hooks (`[hooks]`, [`crate::hooks`]).
    pub hooks: crate::hooks::HooksConfig,
    /// The extensions' tables (`[extensions.<key>]`, [`crate::extensions`]), `$VAR`s resolved.
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// The values the file's `$VAR` references resolved to, for [`Secrets::redact`].
    pub secrets: Secrets,
}

/// The values `$VAR` references resolved to (signer keys, RPC URLs with tokens, database URLs),
/// so that no message shown at start-up echoes one, whatever produced it (a scheme's option
/// parser may quote the value it could not read).
#[derive(Clone, Default)]
pub struct Secrets(Vec<(String, String)>);

impl Secrets {
    /// Values shorter than this are not secrets worth hiding, and replacing them would mangle
    /// unrelated text (a `$PORT` of `80`).
    const MIN_LEN: usize = 6;

    /// `text` with every resolved value replaced by its `$VAR` name, longest value first.
    pub fn redact(&self, text: &str) -> String {
        let mut pairs: Vec<&(String, String)> = self
            .0
            .iter()
            .filter(|(_, v)| v.len() >= Self::MIN_LEN)
            .collect();
        pairs.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        pairs.into_iter().fold(text.to_owned(), |t, (name, value)| {
            t.replace(value, &format!("${name}"))
        })
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.0.len())
    }
}

/// A TOML error as its message and position, without the excerpt of the file the `toml` crate
/// quotes (the line may hold a literal secret).
fn toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!(" (line {line}, column {column})")
    });
    ConfigError::Parse(format!(
        "{}{}",
        e.message().trim_end(),
        at.unwrap_or_default()
    ))
}

impl Config {
    /// Reads and resolves a file, taking `$VAR`s from `env`.
    pub fn load(path: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, env)
    }

    /// Parses and resolves TOML text.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        // Every value a `$VAR` resolves to is remembered, to be kept out of later messages.
        let secrets = std::cell::RefCell::new(Vec::new());
        let recording = |name: &str| {
            let value = env(name);
            if let Some(v) = &value
                && !matches!(name, "HOME" | "XDG_DATA_HOME")
            {
                secrets.borrow_mut().push((name.to_owned(), v.clone()));
            }
            value
        };
        let env: &dyn Fn(&str) -> Option<String> = &recording;
        let listen = raw
            .listen
            .parse()
            .map_err(|e| invalid("listen", format!("{:?}: {e}", raw.listen)))?;
        let l = &raw.limits;
        for (key, value) in [
            ("max_body_bytes", l.max_body_bytes as u64),
            ("settle_timeout_ms", l.settle_timeout_ms),
            ("header_read_timeout_ms", l.header_read_timeout_ms),
            ("body_read_timeout_ms", l.body_read_timeout_ms),
            ("max_connections", l.max_connections as u64),
            ("per_client_concurrency", l.per_client_concurrency as u64),
            ("max_settles_in_flight", l.max_settles_in_flight as u64),
        ] {
            if value == 0 {
                return Err(invalid(format!("limits.{key}"), "must be positive"));
            }
        }
        let deadline = raw.limits.timeouts().request_deadline();
        if std::time::Duration::from_millis(raw.limits.shutdown_grace_ms) < deadline {
            return Err(invalid(
                "limits.shutdown_grace_ms",
                format!(
                    "{} is shorter than the request deadline ({} ms: settle_timeout_ms plus a \
                     margin); shutdown would cut in-flight settles short",
                    raw.limits.shutdown_grace_ms,
                    deadline.as_millis()
                ),
            ));
        }
        let mut schemes = Vec::new();
        for (name, table) in &raw.networks {
            let key = format!("networks.{name:?}");
            let network = Network::parse(name).map_err(|e| invalid(&key, e.to_string()))?;
            if let Some(keys) = table.get("signer_keys") {
                require_references(&format!("{key}.signer_keys"), keys)?;
            }
            let mut shared = table.clone();
            let scheme_tables = match shared.remove("schemes") {
                Some(toml::Value::Table(t)) => t,
                Some(_) => return Err(invalid(format!("{key}.schemes"), "must be a table")),
                None => return Err(invalid(&key, "no [schemes] configured for this network")),
            };
            if scheme_tables.is_empty() {
                return Err(invalid(format!("{key}.schemes"), "no scheme configured"));
            }
            for (scheme, options) in scheme_tables {
                let skey = format!("{key}.schemes.{scheme}");
                let toml::Value::Table(own) = options else {
                    return Err(invalid(skey, "must be a table"));
                };
                let mut merged = shared.clone();
                for (k, v) in own {
                    if merged.contains_key(&k) {
                        return Err(invalid(
                            format!("{skey}.{k}"),
                            "also set on the network; set it in one place",
                        ));
                    }
                    merged.insert(k, v);
                }
                let resolved = resolve(&skey, toml::Value::Table(merged), env)?;
                schemes.push(SchemePlan {
                    network: network.clone(),
                    scheme,
                    options: resolved,
                });
            }
        }
        let mut extensions = BTreeMap::new();
        for (name, table) in raw.extensions {
            let key = format!("extensions.{name}");
            extensions.insert(name, resolve(&key, toml::Value::Table(table), env)?);
        }
        let store = StoreConfig::resolve(raw.store, env)?;
        let auth = AuthConfig::resolve(raw.auth, env)?;
        Ok(Self {
            listen,
            auth,
            log: raw.log,
            limits: raw.limits,
            store,
            schemes,
            hooks: raw.hooks,
            extensions,
            secrets: Secrets(secrets.take()),
        })
    }
}

fn require_references(key: &str, value: &toml::Value) -> Result<(), ConfigError> {
    let toml::Value::Array(items) = value else {
        return Err(invalid(key, "must be a list of $VAR references"));
    };
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s) if s.starts_with('$') => {}
            _ => {
                return Err(invalid(
                    format!("{key}[{i}]"),
                    "signer keys must be $VAR references to the environment, never literals",
                ));
            }
        }
    }
    Ok(())
}

pub(crate) fn valid_var(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Converts TOML to JSON, replacing `$VAR` strings by the variable's value.
fn resolve(
    key: &str,
    value: toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, ConfigError> {
    Ok(match value {
        toml::Value::String(s) => match s.strip_prefix('$') {
            Some(var) if valid_var(var) => serde_json::Value::String(
                env(var).ok_or_else(|| invalid(key, format!("${var} is not set")))?,
            ),
            Some(_) => {
                return Err(invalid(
                    key,
                    format!("{s:?} is not a $VAR reference (A-Z, 0-9, _)"),
                ));
            }
            None => serde_json::Value::String(s),
        },
        toml::Value::Integer(i) => serde_json::Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| invalid(key, "not a finite number"))?,
        toml::Value::Boolean(b) => serde_json::Value::Bool(b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => serde_json::Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| resolve(&format!("{key}[{i}]"), v, env))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => serde_json::Value::Object(
            t.into_iter()
                .map(|(k, v)| {
                    let sub = format!("{key}.{k}");
                    resolve(&sub, v, env).map(|v| (k, v))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use x402_core::SettleTimeouts;

    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "RPC" => Some("http://127.0.0.1:8545/secret-token".into()),
            "KEY" => Some("0xac09".into()),
            "PG" => Some("postgres://x402:hunter2@db.internal/x402".into()),
            "HOME" => Some("/home/op".into()),
            _ => None,
        }
    }

    const GOOD: &str = r#"
listen = "127.0.0.1:0"
auth = "none"
[networks."eip155:31337"]
rpc_urls = ["$RPC"]
signer_keys = ["$KEY"]
[networks."eip155:31337".schemes.exact]
assets = ["0x0000000000000000000000000000000000000001"]
"#;

    #[test]
    fn the_store_defaults_to_a_file_under_the_data_dir_and_its_url_is_never_printed() {
        let c = Config::parse(GOOD, &env).unwrap();
        assert_eq!(
            c.store.url,
            "sqlite:/home/op/.local/share/x402-facilitator/settlements.sqlite3"
        );
        let dir = GOOD.replacen(
            "[networks.",
            "[store]\ndata_dir = \"/var/lib/x402/\"\n[networks.",
            1,
        );
        let c = Config::parse(&dir, &env).unwrap();
        assert_eq!(c.store.url, "sqlite:/var/lib/x402/settlements.sqlite3");
        let pg = GOOD.replacen("[networks.", "[store]\nurl = \"$PG\"\n[networks.", 1);
        let c = Config::parse(&pg, &env).unwrap();
        assert_eq!(c.store.url, "postgres://x402:hunter2@db.internal/x402");
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
        let unset = GOOD.replacen("[networks.", "[store]\nurl = \"$NOPE\"\n[networks.", 1);
        let e = Config::parse(&unset, &env).unwrap_err().to_string();
        assert!(e.contains("store.url") && e.contains("$NOPE"), "{e}");
        let typo = GOOD.replacen("[networks.", "[store]\nulr = \"memory\"\n[networks.", 1);
        assert!(Config::parse(&typo, &env).is_err());
    }

    #[test]
    fn resolves_references_and_merges_tables() {
        let c = Config::parse(GOOD, &env).unwrap();
        assert_eq!(c.schemes.len(), 1);
        let o = &c.schemes[0].options;
        assert_eq!(o["rpc_urls"][0], "http://127.0.0.1:8545/secret-token");
        assert_eq!(o["signer_keys"][0], "0xac09");
        assert!(o["assets"].is_array());
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("secret-token") && !shown.contains("0xac09"),
            "{shown}"
        );
    }

    // A key no scheme reads is refused by the scheme at start-up (`lib.rs`'s tests), not here.
    #[test]
    fn errors_name_the_key() {
        let cases = [
            (GOOD.replace("listen", "listne"), "listne"),
            (GOOD.replace("$RPC", "$UNSET_VAR"), "$UNSET_VAR is not set"),
            (
                GOOD.replace(r#"["$KEY"]"#, r#"["0xac09"]"#),
                "signer_keys[0]",
            ),
            (GOOD.replace("eip155:31337", "base"), "networks.\"base\""),
            (GOOD.replace("127.0.0.1:0", "nowhere"), "listen"),
            (GOOD.replace("$RPC", "$lower"), "not a $VAR reference"),
            (
                GOOD.replace("[networks.\"eip155:31337\".schemes.exact]\n", ""),
                "no [schemes] configured",
            ),
        ];
        for (text, needle) in cases {
            let err = Config::parse(&text, &env).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle:?} not in {err:?}");
        }
    }

    #[test]
    fn server_limits_default_and_refuse_zero() {
        let c = Config::parse(GOOD, &env).unwrap();
        let l = &c.limits;
        assert_eq!(
            (
                l.header_read_timeout_ms,
                l.body_read_timeout_ms,
                l.max_connections,
                l.per_client_concurrency,
                l.max_settles_in_flight
            ),
            (10_000, 10_000, 4096, 256, 1024)
        );
        let set = "[limits]\nheader_read_timeout_ms = 2000\nmax_settles_in_flight = 3\n";
        let c = Config::parse(&format!("{GOOD}{set}"), &env).unwrap();
        assert_eq!(c.limits.header_read_timeout_ms, 2000);
        assert_eq!(c.limits.max_settles_in_flight, 3);
        for key in [
            "header_read_timeout_ms",
            "body_read_timeout_ms",
            "max_connections",
            "per_client_concurrency",
            "max_settles_in_flight",
        ] {
            let zero = format!("{GOOD}[limits]\n{key} = 0\n");
            let err = Config::parse(&zero, &env).unwrap_err().to_string();
            assert!(err.contains(&format!("limits.{key}")), "{err}");
        }
    }

    #[test]
    fn settle_bounds_derive_from_one_setting() {
        let c = Config::parse(GOOD, &env).unwrap();
        assert_eq!(c.limits.timeouts(), SettleTimeouts::default());
        let limits = "[limits]\nsettle_timeout_ms = 20000\nshutdown_grace_ms = 25000\n";
        let c = Config::parse(&format!("{GOOD}{limits}"), &env).unwrap();
        let t = c.limits.timeouts();
        assert_eq!(t.answer_within(), std::time::Duration::from_secs(20));
        assert_eq!(t.request_deadline(), std::time::Duration::from_secs(25));
        assert_eq!(t.client_timeout(), std::time::Duration::from_secs(30));
        // A grace shorter than the request deadline would cut in-flight settles short.
        let short = "[limits]\nsettle_timeout_ms = 20000\nshutdown_grace_ms = 24999\n";
        let err = Config::parse(&format!("{GOOD}{short}"), &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.shutdown_grace_ms"), "{err}");
        // The former name is refused, not ignored.
        let old = "[limits]\nrequest_timeout_ms = 20000\n";
        let err = Config::parse(&format!("{GOOD}{old}"), &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("request_timeout_ms"), "{err}");
    }
}
