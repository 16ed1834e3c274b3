//! The facilitator's lifecycle hooks ([`x402_core::hook`]) configured under `[hooks]`.
//!
//! ```toml
//! [hooks.deny_list]
//! path = "/etc/x402/deny.txt"   # one address a line; `#` starts a comment
//! reload_interval_ms = 1000     # how often the file's modification is looked for (default 1000)
//! ```
//!
//! One hook ships: [`DenyList`], a compliance screen refusing payments from or to the addresses
//! of a file, before anything is verified on chain or sent.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;
use x402_core::hook::{Before, FacilitatorHook, HookCall};
use x402_core::{FacilitatorError, Reason, Rejection};

/// `[hooks]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// `[hooks.deny_list]`: the payer/recipient deny-list.
    #[serde(default)]
    pub deny_list: Option<DenyListConfig>,
}

/// `[hooks.deny_list]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DenyListConfig {
    /// The file: one address a line (EVM `0x…`, Solana base58), `#` comments, blank lines.
    pub path: PathBuf,
    /// How often the file's modification time and size are looked at; a change reloads it.
    #[serde(default = "default_reload_ms")]
    pub reload_interval_ms: u64,
}

fn default_reload_ms() -> u64 {
    1000
}

/// The hooks the configuration describes, in the order they run.
pub fn from_config(config: &HooksConfig) -> Result<Vec<Arc<dyn FacilitatorHook>>, String> {
    let mut hooks: Vec<Arc<dyn FacilitatorHook>> = Vec::new();
    if let Some(d) = &config.deny_list {
        if d.reload_interval_ms == 0 {
            return Err("hooks.deny_list.reload_interval_ms: must be positive".to_owned());
        }
        let list = DenyList::load(&d.path, Duration::from_millis(d.reload_interval_ms))
            .map_err(|e| format!("hooks.deny_list: {e}"))?;
        tracing::info!(path = %d.path.display(), entries = list.len(), "deny list loaded");
        hooks.push(Arc::new(list));
    }
    Ok(hooks)
}

/// The addresses of a deny-list file, in canonical form: EVM addresses lower-case (so any case,
/// checksummed or not, matches), anything else (Solana base58 keys) exactly as written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Entries(HashSet<String>);

impl Entries {
    /// Parses a file's text; an entry that is no address is an error naming its line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut set = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or_default().trim();
            if entry.is_empty() {
                continue;
            }
            let canonical = canonical_entry(entry).map_err(|e| format!("line {}: {e}", n + 1))?;
            set.insert(canonical);
        }
        Ok(Self(set))
    }

    /// Whether `address` (as a payload or requirements write it) is listed.
    pub fn contains(&self, address: &str) -> bool {
        self.0.contains(&canonical(address))
    }

    /// How many addresses.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn is_evm_shaped(s: &str) -> bool {
    s.len() == 42
        && (s.starts_with("0x") || s.starts_with("0X"))
        && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The form addresses are compared in: an EVM address lower-cased, anything else unchanged.
fn canonical(address: &str) -> String {
    if is_evm_shaped(address) {
        address.to_ascii_lowercase()
    } else {
        address.to_owned()
    }
}

fn canonical_entry(entry: &str) -> Result<String, String> {
    if entry.starts_with("0x") || entry.starts_with("0X") {
        if !is_evm_shaped(entry) {
            return Err(format!(
                "{entry:?} is not an EVM address (0x and 40 hex digits)"
            ));
        }
        #[cfg(feature = "evm")]
        x402_evm::parse::address("address", entry).map_err(|e| format!("{entry:?}: {e}"))?;
        return Ok(entry.to_ascii_lowercase());
    }
    match base58_len(entry) {
        Some(32) => Ok(entry.to_owned()),
        Some(n) => Err(format!(
            "{entry:?} decodes to {n} bytes, not a 32-byte Solana key"
        )),
        None => Err(format!(
            "{entry:?} is neither an EVM address nor a base58 Solana key"
        )),
    }
}

/// The decoded length of a base58 (Bitcoin alphabet) string; `None` when it is not base58.
fn base58_len(s: &str) -> Option<usize> {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    let mut bytes: Vec<u8> = Vec::new(); // little-endian
    for c in s.bytes() {
        let mut carry = ALPHABET.iter().position(|&a| a == c)? as u32;
        for b in &mut bytes {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    Some(zeros + bytes.len())
}

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
    })
}

fn read(path: &Path) -> Result<(Stamp, Entries), String> {
    let before = stamp(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let entries = Entries::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((before, entries))
}

/// A payer/recipient deny-list read from a file and reloaded when the file changes.
///
/// Before every verify and settle, the payer the payload names ([`HookCall::payer`]) and the
/// requirements' `payTo` are looked up; a listed payer is refused with `payer_denied`, a listed
/// recipient with `recipient_denied` — nothing is verified on chain, claimed or sent. EVM
/// addresses match in any case (a mixed-case entry must carry a valid EIP-55 checksum); Solana
/// keys match exactly.
///
/// The file's modification time and size are looked at, at most once per reload interval, by
/// the first request after it; a change reloads the whole file. A file that has become
/// unreadable or holds a bad line keeps the last good list (logged): replace the file
/// atomically (write a new one, rename it over) so a half-written file is never read. The
/// file must exist and parse at start-up.
#[derive(Debug)]
pub struct DenyList {
    path: PathBuf,
    interval: Duration,
    entries: RwLock<Arc<Entries>>,
    /// When the file was last looked at, and the version then read.
    checked: Mutex<(Instant, Stamp)>,
}

impl DenyList {
    /// Reads `path` (it must exist and parse), to be looked at again every `interval`.
    pub fn load(path: &Path, interval: Duration) -> Result<Self, String> {
        let (stamp, entries) = read(path)?;
        Ok(Self {
            path: path.to_owned(),
            interval,
            entries: RwLock::new(Arc::new(entries)),
            checked: Mutex::new((Instant::now(), stamp)),
        })
    }

    /// How many addresses are listed now.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    /// Whether the list is empty now.
    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    fn current(&self) -> Arc<Entries> {
        match self.entries.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads the file when the interval has passed and it changed. One request looks; the
    /// others meanwhile use the list as it is.
    fn refresh(&self) {
        let Ok(mut checked) = self.checked.try_lock() else {
            return;
        };
        if checked.0.elapsed() < self.interval {
            return;
        }
        checked.0 = Instant::now();
        match stamp(&self.path) {
            Ok(s) if s == checked.1 => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "deny list unreadable; keeping the last list");
                return;
            }
        }
        match read(&self.path) {
            Ok((s, entries)) => {
                tracing::info!(path = %self.path.display(), entries = entries.len(), "deny list reloaded");
                checked.1 = s;
                match self.entries.write() {
                    Ok(mut e) => *e = Arc::new(entries),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(entries),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "deny list not reloaded; keeping the last list");
            }
        }
    }

    fn screen(&self, call: &HookCall<'_>) -> Before {
        self.refresh();
        let entries = self.current();
        if let Some(payer) = &call.payer
            && entries.contains(payer)
        {
            tracing::info!(hook = "deny_list", operation = ?call.operation, payer = %payer, "payer denied");
            return Before::Abort(Rejection::with_message(
                Reason::PAYER_DENIED,
                format!("the payer {payer} is on this facilitator's deny list"),
            ));
        }
        if entries.contains(call.pay_to) {
            tracing::info!(hook = "deny_list", operation = ?call.operation, pay_to = %call.pay_to, "recipient denied");
            return Before::Abort(Rejection::with_message(
                Reason::RECIPIENT_DENIED,
                format!(
                    "the recipient {} is on this facilitator's deny list",
                    call.pay_to
                ),
            ));
        }
        Before::Proceed
    }
}

#[async_trait]
impl FacilitatorHook for DenyList {
    fn name(&self) -> &str {
        "deny_list"
    }

    async fn before_verify(&self, call: &HookCall<'_>) -> Result<Before, FacilitatorError> {
        Ok(self.screen(call))
    }

    async fn before_settle(&self, call: &HookCall<'_>) -> Result<Before, FacilitatorError> {
        Ok(self.screen(call))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SOL: &str = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin";

    #[test]
    fn entries_compare_canonically() {
        let text = format!(
            "# sanctioned\n0x209693Bc6afc0C5328bA36FaF03C514EF312287C\n\n  {SOL}  # a Solana key\n0xABCDEF0000000000000000000000000000000001\n"
        );
        let e = Entries::parse(&text).unwrap();
        assert_eq!(e.len(), 3);
        assert!(e.contains("0x209693bc6afc0c5328ba36faf03c514ef312287c"));
        assert!(e.contains("0x209693BC6AFC0C5328BA36FAF03C514EF312287C"));
        assert!(e.contains("0xabcdef0000000000000000000000000000000001"));
        assert!(e.contains(SOL));
        // base58 is case-sensitive: another case is another key.
        assert!(!e.contains(&SOL.to_lowercase()));
        assert!(!e.contains("0x0000000000000000000000000000000000000001"));
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, needle) in [
            ("0x1234\n", "line 1"),
            ("ok\n", "line 1"),
            ("\n0xZZ9693Bc6afc0C5328bA36FaF03C514EF312287C", "line 2"),
            ("11111111111111111111111111111111\n0OIl", "line 2"),
            ("1111\n", "not a 32-byte"),
        ] {
            let e = Entries::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        // 32 ones is the all-zero key (the system program).
        assert!(Entries::parse("11111111111111111111111111111111").is_ok());
    }

    #[cfg(feature = "evm")]
    #[test]
    fn a_mixed_case_entry_needs_its_checksum() {
        let e = Entries::parse("0x209693bC6afc0C5328bA36FaF03C514EF312287C").unwrap_err();
        assert!(e.contains("checksum"), "{e}");
    }
}
