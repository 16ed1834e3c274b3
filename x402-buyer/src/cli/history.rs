//! `x402 history`: the payments in the ledger, as a table or as JSON.

use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;
use x402_core::{Network, NetworkPattern, UnixTime};

use super::Exit;
use super::governance::{ledger_path, parse_duration};
use crate::format_units;
use crate::ledger::{PaymentRecord, Record, SettlementRecord, parse_records, rfc3339};

pub(super) const HISTORY_AFTER_HELP: &str = "\
Exit status:
  0  success: the payments listed (or none recorded)
  1  failure: the ledger cannot be read (a damaged line is named)
  2  usage error";

/// `x402 history`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct HistoryArgs {
    /// Only payments since WHEN: a time (2026-12-04T10:00:00Z, 2026-12-04) or a duration ago
    /// (90s, 10m, 1h, 7d).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only payments on networks matching PATTERN (eip155:8453, eip155:*); repeatable.
    #[arg(long = "network", value_name = "PATTERN", value_parser = parse_network)]
    networks: Vec<NetworkPattern>,
    /// The ledger file [default: as for `x402 pay`].
    #[arg(long, value_name = "PATH", env = "X402_LEDGER")]
    ledger: Option<String>,
    /// Print one JSON array on stdout: each payment's ledger record, with its `settlement`
    /// (or `null`).
    #[arg(long)]
    json: bool,
}

fn parse_network(s: &str) -> Result<NetworkPattern, String> {
    NetworkPattern::parse(s).map_err(|e| e.to_string())
}

/// A payment and the settlement reported for it (the latest, when several were).
#[derive(Debug, Serialize)]
struct Entry<'a> {
    #[serde(flatten)]
    payment: &'a PaymentRecord,
    settlement: Option<&'a SettlementRecord>,
}

/// The start of `--since`: a time, or a duration before `now`.
fn since(text: &str, now: UnixTime) -> Result<UnixTime, String> {
    if let Some(t) = rfc3339::parse(text) {
        return Ok(t);
    }
    let ago = parse_duration(text).map_err(|_| {
        format!("--since {text:?}: expected a time (2026-12-04T10:00:00Z, 2026-12-04) or a duration (1h, 7d)")
    })?;
    Ok(UnixTime(now.0.saturating_sub(ago.as_secs())))
}

pub(super) fn history(
    args: &HistoryArgs,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Exit, String> {
    let io = |e: std::io::Error| e.to_string();
    let start = args
        .since
        .as_deref()
        .map(|s| since(s, UnixTime::now()))
        .transpose()?;
    let Some(path) = ledger_path(args.ledger.as_deref(), env) else {
        return Err("no ledger: pass --ledger PATH or set X402_LEDGER (HOME is not set)".into());
    };
    let text = match std::fs::read(&path) {
        Ok(bytes) => {
            String::from_utf8(bytes).map_err(|_| format!("ledger {}: not UTF-8", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("ledger {}: {e}", path.display())),
    };
    let records = parse_records(&text, &path.display().to_string()).map_err(|e| e.to_string())?;
    let mut settlements: HashMap<&str, &SettlementRecord> = HashMap::new();
    for record in &records {
        if let Record::Settlement(s) = record {
            settlements.insert(&s.id, s);
        }
    }
    let entries: Vec<Entry<'_>> = records
        .iter()
        .filter_map(|r| match r {
            Record::Payment(p) => Some(p),
            Record::Settlement(_) => None,
        })
        .filter(|p| start.is_none_or(|t| p.time >= t))
        .filter(|p| {
            args.networks.is_empty()
                || Network::parse(&p.network)
                    .is_ok_and(|n| args.networks.iter().any(|pattern| pattern.matches(&n)))
        })
        .map(|payment| Entry {
            payment,
            settlement: settlements.get(payment.id.as_str()).copied(),
        })
        .collect();
    writeln!(err, "ledger: {}", path.display()).map_err(io)?;
    if args.json {
        let json = serde_json::to_string(&entries).map_err(|e| e.to_string())?;
        writeln!(out, "{json}").map_err(io)?;
        return Ok(Exit::Success);
    }
    if entries.is_empty() {
        writeln!(err, "no payments recorded").map_err(io)?;
        return Ok(Exit::Success);
    }
    table(&entries, out).map_err(io)?;
    Ok(Exit::Success)
}

fn table(entries: &[Entry<'_>], out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            let p = e.payment;
            let status = match e.settlement {
                None => "unreported".to_owned(),
                Some(s) if s.success => {
                    format!("settled {}", s.transaction.as_deref().unwrap_or(""))
                }
                Some(s) => format!(
                    "{} {}",
                    s.error.as_deref().unwrap_or("failed"),
                    s.transaction.as_deref().unwrap_or("")
                ),
            };
            [
                rfc3339::format(p.time),
                p.network.clone(),
                format!("{} {}", format_units(p.amount, p.decimals), p.symbol),
                p.pay_to.clone(),
                p.scheme.clone(),
                p.url.clone(),
                status.trim_end().to_owned(),
            ]
        })
        .collect();
    let header = [
        "TIME",
        "NETWORK",
        "AMOUNT",
        "PAY TO",
        "SCHEME",
        "URL",
        "SETTLEMENT",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str], out: &mut dyn Write| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&header, out)?;
    for row in &rows {
        line(&row.each_ref().map(String::as_str), out)?;
    }
    // Totals per asset.
    let mut totals: Vec<(String, u8, String, x402_core::Amount)> = Vec::new();
    for e in entries {
        let p = e.payment;
        match totals
            .iter_mut()
            .find(|(n, _, a, _)| *n == p.network && a.eq_ignore_ascii_case(&p.asset))
        {
            Some(t) => t.3 = x402_core::Amount::new(t.3.get().saturating_add(p.amount.get())),
            None => totals.push((p.network.clone(), p.decimals, p.asset.clone(), p.amount)),
        }
    }
    writeln!(out, "{} payment(s)", entries.len())?;
    for (network, decimals, asset, amount) in totals {
        let symbol = entries
            .iter()
            .find(|e| e.payment.network == network && e.payment.asset == asset)
            .map_or("", |e| e.payment.symbol.as_str());
        writeln!(
            out,
            "total {} {symbol} on {network} ({asset})",
            format_units(amount, decimals)
        )?;
    }
    Ok(())
}
