//! `x402 pay`'s spending governance options (rolling budgets, recipients, the per-origin rate
//! limit) and where the ledger is kept.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::{Buyer, JsonlLedger, Policy, RateLimit};

/// The governance options of `x402 pay` (flattened into its arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct GovernanceArgs {
    /// The most that may be paid per asset within any hour (a sliding window, in the asset's
    /// units), counted from the ledger: payments of earlier runs count.
    #[arg(long, value_name = "AMOUNT", env = "X402_PER_HOUR")]
    per_hour: Option<String>,
    /// The most that may be paid per asset within any 24 hours (a sliding window), counted from
    /// the ledger.
    #[arg(long, value_name = "AMOUNT", env = "X402_PER_DAY")]
    per_day: Option<String>,
    /// Pay only this recipient (payTo); repeatable [default: any recipient not denied].
    #[arg(long = "allow-recipient", value_name = "ADDRESS")]
    allow_recipients: Vec<String>,
    /// Never pay this recipient (payTo); repeatable. Wins over --allow-recipient.
    #[arg(long = "deny-recipient", value_name = "ADDRESS")]
    deny_recipients: Vec<String>,
    /// At most N payments to one origin (scheme://host:port) within any DURATION (90s, 10m, 1h,
    /// 1d), counted from the ledger.
    #[arg(long, value_name = "N/DURATION", value_parser = parse_rate)]
    rate_limit: Option<RateLimit>,
    /// The ledger file every payment is appended to, and the budgets and the rate limit are
    /// counted from [default: $XDG_DATA_HOME/x402/ledger.jsonl, else
    /// ~/.local/share/x402/ledger.jsonl; %APPDATA%\x402\ledger.jsonl on Windows].
    #[arg(long, value_name = "PATH", env = "X402_LEDGER")]
    pub(super) ledger: Option<String>,
}

impl GovernanceArgs {
    /// `policy` with these limits.
    pub(super) fn apply(&self, mut policy: Policy) -> Policy {
        if let Some(amount) = &self.per_hour {
            policy = policy.max_per_hour(amount.clone());
        }
        if let Some(amount) = &self.per_day {
            policy = policy.max_per_day(amount.clone());
        }
        policy
            .allow_recipients
            .extend(self.allow_recipients.clone());
        policy.deny_recipients.extend(self.deny_recipients.clone());
        policy.rate_limit = self.rate_limit;
        policy
    }
}

/// A duration for people: `90s`, `10m`, `1h`, `7d` (a bare number is seconds).
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 90s, 10m, 1h or 7d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    n.checked_mul(scale)
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is not a usable duration"))
}

fn parse_rate(s: &str) -> Result<RateLimit, String> {
    let (n, window) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected N/DURATION, such as 10/1h"))?;
    let payments = n
        .parse::<u32>()
        .map_err(|_| format!("{n:?} is not a number of payments"))?;
    Ok(RateLimit {
        payments,
        window: parse_duration(window)?,
    })
}

/// The ledger file: `--ledger` (or `$X402_LEDGER`), else the user's data directory; `None`
/// when there is none (no `HOME`).
pub(super) fn ledger_path(
    flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    if let Some(path) = flag.map(str::to_owned).or_else(|| env("X402_LEDGER")) {
        return Some(PathBuf::from(path));
    }
    let data = env("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("share"))
        })
        .or_else(|| env("APPDATA").filter(|a| !a.is_empty()).map(PathBuf::from))?;
    Some(data.join("x402").join("ledger.jsonl"))
}

/// `buyer` keeping the ledger at `path`; without one, the limits that are counted from it are
/// refused (they would silently restart with every run).
pub(super) fn with_ledger(
    buyer: Buyer,
    path: Option<PathBuf>,
    err: &mut dyn Write,
) -> Result<Buyer, String> {
    let Some(path) = path else {
        let policy = buyer.policy();
        if !policy.budgets.is_empty() || policy.rate_limit.is_some() {
            return Err(
                "--per-hour, --per-day and --rate-limit are counted from the ledger, \
                        and there is none: pass --ledger PATH or set X402_LEDGER (HOME is not \
                        set); nothing was paid"
                    .to_owned(),
            );
        }
        let _ = writeln!(
            err,
            "no ledger: this payment is not recorded (pass --ledger PATH or set X402_LEDGER)"
        );
        return Ok(buyer);
    };
    let ledger = JsonlLedger::open(&path).map_err(|e| format!("{e}; nothing was paid"))?;
    let _ = writeln!(err, "ledger: {}", path.display());
    buyer
        .with_ledger(Arc::new(ledger))
        .map_err(|e| format!("{e}; nothing was paid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "h", "1w", "0s", "-1h", "1.5h", "99999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let rate = parse_rate("10/1h").unwrap();
        assert_eq!((rate.payments, rate.window.as_secs()), (10, 3600));
        assert!(parse_rate("10").unwrap_err().contains("N/DURATION"));
        assert!(parse_rate("x/1h").is_err());
    }

    #[test]
    fn the_ledger_lives_in_the_data_directory_unless_named() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = |flag, vars| ledger_path(flag, &env(vars)).map(|p| p.display().to_string());
        assert_eq!(
            p(None, &[("HOME", "/home/a")]).as_deref(),
            Some("/home/a/.local/share/x402/ledger.jsonl")
        );
        assert_eq!(
            p(None, &[("HOME", "/home/a"), ("XDG_DATA_HOME", "/d")]).as_deref(),
            Some("/d/x402/ledger.jsonl")
        );
        assert_eq!(
            p(None, &[("HOME", "/home/a"), ("X402_LEDGER", "/l.jsonl")]).as_deref(),
            Some("/l.jsonl")
        );
        assert_eq!(
            p(Some("/flag.jsonl"), &[("X402_LEDGER", "/l.jsonl")]).as_deref(),
            Some("/flag.jsonl")
        );
        assert_eq!(p(None, &[]), None);
    }
}
