//! What a run prints: payment options, settlements, transaction links and the `pay --json`
//! report.

use std::io::Write;

use serde::Serialize;
use x402_core::wire::{PaymentRequired, PaymentRequirements, SettleResponse};

use super::Exit;
use crate::Buyer;

pub(super) fn describe(buyer: &Buyer, r: &PaymentRequirements) -> String {
    let (asset, pay_to) = match r {
        PaymentRequirements::V1(r) => (&r.asset, &r.pay_to),
        PaymentRequirements::V2(r) => (&r.asset, &r.pay_to),
    };
    format!(
        "{} on {}: {} to {pay_to} (asset {asset})",
        r.scheme(),
        r.network_text(),
        buyer.display(r)
    )
}

/// The link to transaction `tx` on `network`: `prefix` + `tx` when the user gave a prefix;
/// otherwise only on the networks whose id names one public chain (Solana mainnet and devnet,
/// by genesis hash). An EVM chain id does not: a local test chain uses 84532 too.
pub(super) fn explorer(network: &str, tx: &str, prefix: Option<&str>) -> Option<String> {
    if tx.is_empty() {
        return None;
    }
    if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
        return Some(format!("{prefix}{tx}"));
    }
    match network {
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp" | "solana" => {
            Some(format!("https://explorer.solana.com/tx/{tx}"))
        }
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" | "solana-devnet" => Some(format!(
            "https://explorer.solana.com/tx/{tx}?cluster=devnet"
        )),
        _ => None,
    }
}

pub(super) fn print_settlement(
    out: &mut dyn Write,
    s: &SettleResponse,
    explorer_prefix: Option<&str>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "settlement: {}",
        if s.success { "success" } else { "failed" }
    )?;
    writeln!(out, "  network:     {}", s.network)?;
    let tx = if s.transaction.is_empty() {
        "(none)"
    } else {
        &s.transaction
    };
    writeln!(out, "  transaction: {tx}")?;
    if let Some(p) = &s.payer {
        writeln!(out, "  payer:       {p}")?;
    }
    if let Some(a) = &s.amount {
        writeln!(out, "  amount:      {a}")?;
    }
    if let Some(url) = explorer(&s.network, &s.transaction, explorer_prefix) {
        writeln!(out, "  explorer:    {url}")?;
    }
    Ok(())
}

pub(super) fn accepts(required: &PaymentRequired) -> (u8, Vec<PaymentRequirements>) {
    match required {
        PaymentRequired::V1(d) => (
            1,
            d.accepts
                .iter()
                .cloned()
                .map(PaymentRequirements::V1)
                .collect(),
        ),
        PaymentRequired::V2(d) => (
            2,
            d.accepts
                .iter()
                .cloned()
                .map(PaymentRequirements::V2)
                .collect(),
        ),
    }
}

/// What `x402 pay --json` prints: one object, whatever the outcome once the arguments parsed.
#[derive(Debug, Clone, Serialize)]
pub struct PayReport {
    /// The URL requested.
    pub url: String,
    /// The HTTP status of the final answer (the paid retry's, or the only answer's when no
    /// payment was asked); `null` when no answer came.
    pub status: Option<u16>,
    /// A payment was sent, the seller granted the request (2xx), and its settlement is not
    /// pending.
    pub paid: bool,
    /// The payment was sent and the seller reported its settlement as `settlement_pending`
    /// with a transaction (exit status 3), whatever the status it answered with (402 from some
    /// sellers, 504 from x402-seller): check the transaction before paying again.
    pub pending: bool,
    /// The seller's settlement (`PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`, decoded; camelCase
    /// as on the wire), when it sent one.
    pub settlement: Option<SettleResponse>,
    /// The settlement's transaction link (see `--explorer`), when one is known.
    pub explorer: Option<String>,
    /// The final answer's body; `null` when it is not UTF-8 or was not received (a refusal).
    pub body: Option<String>,
    /// Why the run failed (also printed on stderr); `null` on success.
    pub error: Option<String>,
}

impl PayReport {
    pub(super) fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            status: None,
            paid: false,
            pending: false,
            settlement: None,
            explorer: None,
            body: None,
            error: None,
        }
    }

    /// The exit status this outcome is reported with.
    pub fn exit(&self) -> Exit {
        if self.pending {
            Exit::Pending
        } else if self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s)) {
            Exit::Success
        } else {
            Exit::Failure
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}
