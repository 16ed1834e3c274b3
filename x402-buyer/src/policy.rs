//! What a buyer is willing to pay: known assets (with decimals), limits per request and in total,
//! rolling budgets, recipients, a per-origin rate limit, allowed networks, filters, and a
//! preference order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use x402_core::wire::PaymentRequirements;
use x402_core::{Amount, Network, NetworkPattern, RequirementsView, price_to_atomic};

use crate::governance::{Budget, RateLimit};
use crate::select::{Candidate, Filter};

/// An asset the buyer can value: without its decimals no limit can be checked, so only known
/// assets are ever paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAsset {
    /// The network.
    pub network: Network,
    /// The token address or mint.
    pub address: String,
    /// Decimals.
    pub decimals: u8,
    /// A display symbol (`USDC`).
    pub symbol: String,
}

/// The buyer's spending policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The assets that may be paid (with their decimals).
    pub assets: Vec<KnownAsset>,
    /// The most one request may cost, in the asset's units (`"0.10"`); `None` = no limit.
    pub max_per_request: Option<String>,
    /// The most this client may spend per asset over its lifetime; `None` = no limit.
    pub max_total: Option<String>,
    /// Allowed networks (`eip155:8453`, `eip155:*`); empty = any network a scheme is registered for.
    pub networks: Vec<NetworkPattern>,
    /// Preferred networks, best first; others follow in the seller's order.
    pub prefer_networks: Vec<NetworkPattern>,
    /// Preferred schemes, best first (`exact` before `upto`, say).
    pub prefer_schemes: Vec<String>,
    /// The longest authorization window the buyer signs, in seconds.
    pub max_timeout_seconds: u64,
    /// Rolling budgets per asset ([`Budget::per_hour`], [`Budget::per_day`]), counted from the
    /// buyer's ledger so that they survive a restart.
    pub budgets: Vec<Budget>,
    /// Pay only these recipients (`payTo`); empty = any recipient not denied.
    pub allow_recipients: Vec<String>,
    /// Never pay these recipients (checked before the allow list).
    pub deny_recipients: Vec<String>,
    /// At most this many payments to one origin within a sliding window.
    pub rate_limit: Option<RateLimit>,
    /// The caller's filters, run after the built-in checks, in the order added.
    pub filters: Vec<Filter>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            assets: Vec::new(),
            max_per_request: None,
            max_total: None,
            networks: Vec::new(),
            prefer_networks: Vec::new(),
            prefer_schemes: Vec::new(),
            max_timeout_seconds: 3600,
            budgets: Vec::new(),
            allow_recipients: Vec::new(),
            deny_recipients: Vec::new(),
            rate_limit: None,
            filters: Vec::new(),
        }
    }
}

/// Builders, for the fields that are lists or need a shape.
impl Policy {
    /// Adds a known asset that may be paid.
    pub fn with_asset(mut self, asset: KnownAsset) -> Self {
        self.assets.push(asset);
        self
    }

    /// Adds a rolling budget.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budgets.push(budget);
        self
    }

    /// At most `amount` of each asset within any hour (a sliding window).
    pub fn max_per_hour(self, amount: impl Into<String>) -> Self {
        self.with_budget(Budget::per_hour(amount))
    }

    /// At most `amount` of each asset within any 24 hours (a sliding window).
    pub fn max_per_day(self, amount: impl Into<String>) -> Self {
        self.with_budget(Budget::per_day(amount))
    }

    /// Adds `pay_to` to the recipients that may be paid (then only listed ones are).
    pub fn allow_recipient(mut self, pay_to: impl Into<String>) -> Self {
        self.allow_recipients.push(pay_to.into());
        self
    }

    /// Never pays `pay_to`.
    pub fn deny_recipient(mut self, pay_to: impl Into<String>) -> Self {
        self.deny_recipients.push(pay_to.into());
        self
    }

    /// At most `payments` payments to one origin within any `window`.
    pub fn max_payments_per_origin(mut self, payments: u32, window: Duration) -> Self {
        self.rate_limit = Some(RateLimit { payments, window });
        self
    }

    /// Adds a filter: an option it answers `Err(reason)` for is not paid, and `name: reason` is
    /// listed when no option is left.
    pub fn filter(
        mut self,
        name: impl Into<String>,
        check: impl Fn(&Candidate<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.filters.push(Filter {
            name: name.into(),
            check: Arc::new(check),
        });
        self
    }

    /// How far back the budgets and the rate limit look.
    pub(crate) fn horizon(&self) -> Duration {
        self.budgets
            .iter()
            .map(|b| b.window)
            .chain(self.rate_limit.map(|r| r.window))
            .max()
            .unwrap_or_default()
    }

    /// Why the recipient may not be paid, if it may not.
    pub(crate) fn recipient_refusal(&self, pay_to: &str) -> Option<String> {
        if self.deny_recipients.iter().any(|d| same_address(d, pay_to)) {
            return Some(format!("the recipient {pay_to} is on the deny list"));
        }
        if !self.allow_recipients.is_empty()
            && !self
                .allow_recipients
                .iter()
                .any(|a| same_address(a, pay_to))
        {
            return Some(format!("the recipient {pay_to} is not on the allow list"));
        }
        None
    }
}

/// The amount of `r` for people (`0.01 USDC`), in `asset`'s units.
pub(crate) fn shown(r: &PaymentRequirements, asset: &KnownAsset) -> String {
    match r.view() {
        Ok(v) => format!(
            "{} {}",
            format_units(v.amount, asset.decimals),
            asset.symbol
        ),
        Err(_) => "an unreadable amount".to_owned(),
    }
}

/// Addresses compare case-insensitively when both are `0x` hex (EVM), exactly otherwise.
pub(crate) fn same_address(a: &str, b: &str) -> bool {
    let hex = |s: &str| s.starts_with("0x") || s.starts_with("0X");
    if hex(a) && hex(b) {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// The key of an asset in the spending ledger.
pub(crate) fn ledger_key(network: &Network, asset: &str) -> String {
    let asset = if asset.starts_with("0x") {
        asset.to_ascii_lowercase()
    } else {
        asset.to_owned()
    };
    format!("{network}|{asset}")
}

/// `amount` atomic units written with `decimals` decimals (`10000`, 6 → `0.01`).
pub fn format_units(amount: Amount, decimals: u8) -> String {
    let digits = amount.to_string();
    let d = usize::from(decimals);
    if d == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    }
}

impl Policy {
    /// The known asset `asset` on `network`.
    pub fn asset(&self, network: &Network, asset: &str) -> Option<&KnownAsset> {
        self.assets
            .iter()
            .find(|a| &a.network == network && same_address(&a.address, asset))
    }

    /// Why this requirement may not be paid by the built-in checks, if it may not (`spent` = what
    /// this buyer authorized so far, per asset).
    pub(crate) fn refusal(
        &self,
        r: &RequirementsView<'_>,
        spent: &HashMap<String, Amount>,
    ) -> Option<String> {
        if !self.networks.is_empty() && !self.networks.iter().any(|p| p.matches(&r.network)) {
            return Some(format!("network {} is not allowed", r.network));
        }
        let Some(asset) = self.asset(&r.network, r.asset) else {
            return Some(format!(
                "asset {} on {} is unknown: its decimals cannot be checked",
                r.asset, r.network
            ));
        };
        if r.max_timeout_seconds > self.max_timeout_seconds {
            return Some(format!(
                "it asks for a {} s authorization window, longer than the {} s allowed",
                r.max_timeout_seconds, self.max_timeout_seconds
            ));
        }
        let shown = |a: Amount| format!("{} {}", format_units(a, asset.decimals), asset.symbol);
        if let Some(max) = &self.max_per_request {
            match price_to_atomic(max, asset.decimals) {
                Ok(max) if r.amount > max => {
                    return Some(format!(
                        "it costs {}, more than the maximum of {} per request",
                        shown(r.amount),
                        shown(max)
                    ));
                }
                Ok(_) => {}
                Err(e) => return Some(format!("the per-request maximum is unusable: {e}")),
            }
        }
        if let Some(total) = &self.max_total {
            let used = spent
                .get(&ledger_key(&r.network, r.asset))
                .copied()
                .unwrap_or_default();
            match price_to_atomic(total, asset.decimals) {
                Ok(total) if used.get().saturating_add(r.amount.get()) > total.get() => {
                    return Some(format!(
                        "it costs {}, and {} of the total budget of {} is already spent",
                        shown(r.amount),
                        shown(used),
                        shown(total)
                    ));
                }
                Ok(_) => {}
                Err(e) => return Some(format!("the total maximum is unusable: {e}")),
            }
        }
        None
    }

    /// The preference rank of a requirement (lower is better).
    pub(crate) fn rank(&self, r: &RequirementsView<'_>) -> (usize, usize) {
        let network = self
            .prefer_networks
            .iter()
            .position(|p| p.matches(&r.network))
            .unwrap_or(self.prefer_networks.len());
        let scheme = self
            .prefer_schemes
            .iter()
            .position(|s| s == r.scheme)
            .unwrap_or(self.prefer_schemes.len());
        (network, scheme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(format_units(Amount::from(10_000), 6), "0.01");
        assert_eq!(format_units(Amount::from(1_000_000), 6), "1");
        assert_eq!(format_units(Amount::from(1), 6), "0.000001");
        assert_eq!(format_units(Amount::from(1_234_500), 6), "1.2345");
        assert_eq!(format_units(Amount::from(7), 0), "7");
        assert_eq!(format_units(Amount::ZERO, 6), "0");
    }
}
