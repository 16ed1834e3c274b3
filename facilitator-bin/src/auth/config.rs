//! `auth` in the configuration file: who may call `/verify` and `/settle`.
//!
//! ```toml
//! auth = "none"                 # anyone may (a start-up warning says so); or:
//!
//! [[auth.keys]]
//! id = "shop-1"                 # names the key in logs and metrics; the key itself never appears
//! key = "$SHOP1_FACILITATOR_KEY"  # a $VAR reference, at least 32 characters
//! networks = ["eip155:8453"]    # optional: the networks it may use (default: every one)
//! schemes = ["exact"]           # optional: the schemes it may use (default: every one)
//! pay_to = ["0x209693Bc6afc0C5328bA36FaF03C514EF312287C"]  # optional: the recipients it may
//!                               # verify and settle to (EVM: any case; Solana: exactly)
//! verifies_per_second = 100     # optional rate limits (token buckets, bursts of one second)
//! settles_per_second = 20
//! concurrent_settles = 32       # settles of this key in flight at once
//! ```
//!
//! Without `auth` the configuration is refused: open access must be written down.

use sha2::Digest as _;
use x402_core::Network;

use crate::config::{ConfigError, invalid, valid_var};

/// The shortest key accepted, in characters.
pub const MIN_KEY_CHARS: usize = 32;

/// Who may call `/verify` and `/settle`.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthConfig {
    /// Anyone (`auth = "none"`).
    None,
    /// Holders of one of these keys.
    Keys(Vec<KeyConfig>),
}

/// One API key: its id, the SHA-256 of its value (the value itself is not kept), its scope and
/// its limits.
#[derive(Clone, PartialEq)]
pub struct KeyConfig {
    /// The key's name in logs and metrics.
    pub id: String,
    /// SHA-256 of the key.
    pub(crate) digest: [u8; 32],
    /// The networks it may use; `None`: every one.
    pub networks: Option<Vec<Network>>,
    /// The schemes it may use; `None`: every one.
    pub schemes: Option<Vec<String>>,
    /// The recipients it may verify and settle to; `None`: any.
    pub pay_to: Option<Vec<String>>,
    /// Verifies a second.
    pub verifies_per_second: f64,
    /// Settles a second.
    pub settles_per_second: f64,
    /// Settles in flight at once.
    pub concurrent_settles: u32,
}

impl std::fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyConfig")
            .field("id", &self.id)
            .field("networks", &self.networks)
            .field("schemes", &self.schemes)
            .field("pay_to", &self.pay_to)
            .field("verifies_per_second", &self.verifies_per_second)
            .field("settles_per_second", &self.settles_per_second)
            .field("concurrent_settles", &self.concurrent_settles)
            .finish_non_exhaustive()
    }
}

/// A key as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    key: String,
    networks: Option<Vec<String>>,
    schemes: Option<Vec<String>>,
    pay_to: Option<Vec<String>>,
    #[serde(default = "default_verifies")]
    verifies_per_second: f64,
    #[serde(default = "default_settles")]
    settles_per_second: f64,
    #[serde(default = "default_concurrent")]
    concurrent_settles: u32,
}

/// The `[auth]` table as written.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    keys: Vec<RawKey>,
}

fn default_verifies() -> f64 {
    100.0
}
fn default_settles() -> f64 {
    20.0
}
fn default_concurrent() -> u32 {
    32
}

const MISSING: &str = "missing: write `auth = \"none\"` to serve anyone, or configure \
                       [[auth.keys]] (see facilitator.example.toml)";

impl AuthConfig {
    /// Resolves `auth` as written (absent: an error), taking key values from `env`.
    pub(crate) fn resolve(
        raw: Option<toml::Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let table = match raw {
            None => return Err(invalid("auth", MISSING)),
            Some(toml::Value::String(s)) if s == "none" => return Ok(Self::None),
            Some(toml::Value::String(s)) => {
                return Err(invalid(
                    "auth",
                    format!("{s:?}: the only word is \"none\"; keys go in [[auth.keys]]"),
                ));
            }
            Some(value @ toml::Value::Table(_)) => value
                .try_into::<RawTable>()
                .map_err(|e| invalid("auth", e.to_string()))?,
            Some(_) => return Err(invalid("auth", MISSING)),
        };
        if table.keys.is_empty() {
            return Err(invalid("auth.keys", "no key configured"));
        }
        let mut keys: Vec<KeyConfig> = Vec::new();
        for (i, raw) in table.keys.into_iter().enumerate() {
            let key = resolve_key(&format!("auth.keys[{i}]"), raw, env)?;
            if keys.iter().any(|k| k.id == key.id) {
                return Err(invalid(
                    format!("auth.keys[{i}].id"),
                    format!("{:?} is used twice", key.id),
                ));
            }
            if let Some(other) = keys.iter().find(|k| k.digest == key.digest) {
                return Err(invalid(
                    format!("auth.keys[{i}].key"),
                    format!(
                        "the same value as key {:?}; give each key its own",
                        other.id
                    ),
                ));
            }
            keys.push(key);
        }
        Ok(Self::Keys(keys))
    }
}

fn resolve_key(
    at: &str,
    raw: RawKey,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<KeyConfig, ConfigError> {
    let id_ok = !raw.id.is_empty()
        && raw.id.len() <= 64
        && raw
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !id_ok {
        return Err(invalid(
            format!("{at}.id"),
            "1 to 64 characters of A-Z, a-z, 0-9, '-', '_', '.'",
        ));
    }
    // Never echo the text: it may be the key written in by mistake.
    let var = raw
        .key
        .strip_prefix('$')
        .filter(|v| valid_var(v))
        .ok_or_else(|| {
            invalid(
                format!("{at}.key"),
                "keys must be $VAR references to the environment, never literals",
            )
        })?;
    let value =
        env(var).ok_or_else(|| invalid(format!("{at}.key"), format!("${var} is not set")))?;
    if value.chars().count() < MIN_KEY_CHARS || value.chars().any(char::is_whitespace) {
        return Err(invalid(
            format!("{at}.key"),
            format!(
                "${var} must hold at least {MIN_KEY_CHARS} characters and no whitespace \
                 (e.g. `openssl rand -hex 32`)"
            ),
        ));
    }
    let networks = match raw.networks {
        None => None,
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(j, n)| {
                    Network::parse(n)
                        .map_err(|e| invalid(format!("{at}.networks[{j}]"), e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    for (name, list) in [("schemes", &raw.schemes), ("pay_to", &raw.pay_to)] {
        if let Some(list) = list {
            if list.is_empty() {
                return Err(invalid(
                    format!("{at}.{name}"),
                    "empty: the key could do nothing (leave it out to allow every one)",
                ));
            }
            if let Some(j) = list
                .iter()
                .position(|s| s.trim().is_empty() || s != s.trim())
            {
                return Err(invalid(format!("{at}.{name}[{j}]"), "empty or padded"));
            }
        }
    }
    if networks.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid(
            format!("{at}.networks"),
            "empty: the key could do nothing (leave it out to allow every one)",
        ));
    }
    for (name, rate) in [
        ("verifies_per_second", raw.verifies_per_second),
        ("settles_per_second", raw.settles_per_second),
    ] {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(invalid(format!("{at}.{name}"), "must be a positive number"));
        }
    }
    if raw.concurrent_settles == 0 {
        return Err(invalid(
            format!("{at}.concurrent_settles"),
            "must be at least 1",
        ));
    }
    Ok(KeyConfig {
        id: raw.id,
        digest: sha2::Sha256::digest(value.as_bytes()).into(),
        networks,
        schemes: raw.schemes,
        pay_to: raw.pay_to,
        verifies_per_second: raw.verifies_per_second,
        settles_per_second: raw.settles_per_second,
        concurrent_settles: raw.concurrent_settles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "k3y-0123456789abcdef0123456789abcdef";

    fn env(name: &str) -> Option<String> {
        match name {
            "SHOP_KEY" => Some(SECRET.into()),
            "OTHER_KEY" => Some(format!("{SECRET}-other")),
            "SHORT" => Some("short".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<AuthConfig, ConfigError> {
        let table: toml::Table = toml::from_str(text).unwrap();
        AuthConfig::resolve(table.get("auth").cloned(), &env)
    }

    #[test]
    fn keys_resolve_with_defaults_and_never_print() {
        let c = parse(
            r#"
            [[auth.keys]]
            id = "shop-1"
            key = "$SHOP_KEY"
            networks = ["eip155:8453"]
            pay_to = ["0xabc"]
            settles_per_second = 0.5
            [[auth.keys]]
            id = "ops"
            key = "$OTHER_KEY"
        "#,
        )
        .unwrap();
        let AuthConfig::Keys(keys) = &c else {
            panic!("keys")
        };
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].id, "shop-1");
        assert_eq!(keys[0].settles_per_second, 0.5);
        assert_eq!(keys[0].verifies_per_second, 100.0);
        assert_eq!(keys[1].networks, None);
        assert_eq!(keys[1].concurrent_settles, 32);
        let shown = format!("{c:?}");
        assert!(shown.contains("shop-1"), "{shown}");
        assert!(
            !shown.contains(SECRET) && !shown.contains("digest"),
            "{shown}"
        );
        assert_eq!(parse("auth = \"none\"").unwrap(), AuthConfig::None);
    }

    #[test]
    fn problems_name_the_key_and_never_the_value() {
        let key = |body: &str| format!("[[auth.keys]]\nid = \"a\"\n{body}");
        let cases = [
            (String::new(), "auth: missing"),
            ("auth = \"open\"".to_owned(), "the only word is \"none\""),
            ("auth = true".to_owned(), "auth: missing"),
            ("[auth]\nkeys = []".to_owned(), "auth.keys: no key"),
            (key(&format!("key = \"{SECRET}\"")), "never literals"),
            (key("key = \"$NOPE\""), "$NOPE is not set"),
            (key("key = \"$SHORT\""), "at least 32 characters"),
            (key("key = \"$SHOP_KEY\"\nkeyy = 1"), "unknown field `keyy`"),
            (
                key("key = \"$SHOP_KEY\"\nnetworks = [\"base\"]"),
                "networks[0]",
            ),
            (key("key = \"$SHOP_KEY\"\npay_to = []"), "pay_to: empty"),
            (
                key("key = \"$SHOP_KEY\"\nsettles_per_second = 0"),
                "settles_per_second",
            ),
            (
                key("key = \"$SHOP_KEY\"\nconcurrent_settles = 0"),
                "concurrent_settles",
            ),
            (
                format!(
                    "{}\n{}",
                    key("key = \"$SHOP_KEY\""),
                    key("key = \"$OTHER_KEY\"")
                ),
                "\"a\" is used twice",
            ),
            (
                format!(
                    "{}\n[[auth.keys]]\nid = \"b\"\nkey = \"$SHOP_KEY\"",
                    key("key = \"$SHOP_KEY\"")
                ),
                "the same value as key \"a\"",
            ),
            (
                "[[auth.keys]]\nid = \"a b\"\nkey = \"$SHOP_KEY\"".to_owned(),
                ".id",
            ),
        ];
        for (text, needle) in cases {
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
            assert!(!e.contains(SECRET), "{e}");
        }
    }
}
