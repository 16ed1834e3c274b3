//! The `x402` command line: `x402 requirements <url>`, `x402 pay <url> [options]`.
//!
//! [`run`] is the whole program with its inputs and outputs passed in, so tests drive it in
//! process; `main` only hands it the real ones.

use std::io::Write;
use std::str::FromStr as _;
use std::sync::Arc;

use alloy::signers::local::PrivateKeySigner;
use scheme_exact_evm::ExactEvm;
use scheme_upto_evm::UptoEvm;
use x402_core::wire::{PaymentRequired, PaymentRequirements, SettleResponse};
use x402_core::{Network, NetworkPattern, Registry, X402Version};

use crate::{Buyer, KnownAsset, Policy};

/// The usage text.
pub const USAGE: &str = "\
usage: x402 requirements <url>
       x402 pay <url> [--max AMOUNT] [--total AMOUNT] [--network PATTERN]...
                      [--asset NETWORK:ADDRESS:DECIMALS[:SYMBOL]]... [--prefer-scheme SCHEME]...
                      [--key-file PATH]
The key is read from $X402_PRIVATE_KEY, or from the file named by --key-file or
$X402_PRIVATE_KEY_FILE (hex, 0x optional). It is never printed.";

/// What the command line asked for.
#[derive(Debug, Default)]
struct Args {
    command: String,
    url: String,
    policy: Policy,
    key_file: Option<String>,
}

fn parse_asset(s: &str) -> Result<KnownAsset, String> {
    // NETWORK is CAIP-2 and itself contains one ':'.
    let parts: Vec<&str> = s.split(':').collect();
    let (network, rest) = match parts.as_slice() {
        [ns, reference, rest @ ..] if rest.len() >= 2 => (format!("{ns}:{reference}"), rest),
        _ => {
            return Err(format!(
                "--asset {s:?}: expected NETWORK:ADDRESS:DECIMALS[:SYMBOL]"
            ));
        }
    };
    let network = Network::parse(&network).map_err(|e| format!("--asset {s:?}: {e}"))?;
    let decimals = rest[1]
        .parse::<u8>()
        .map_err(|e| format!("--asset {s:?}: decimals: {e}"))?;
    Ok(KnownAsset {
        network,
        address: rest[0].to_owned(),
        decimals,
        symbol: rest.get(2).copied().unwrap_or("tokens").to_owned(),
    })
}

/// The built-in known assets: the default stablecoin of each EVM network (x402-spec §4).
fn builtin_assets() -> Vec<KnownAsset> {
    x402_evm::assets::DEFAULT_ASSETS
        .iter()
        .map(|&(chain, address, name, _, decimals, _)| KnownAsset {
            network: Network::eip155(chain),
            address: address.to_checksum(None),
            decimals,
            symbol: if name.contains("USD Coin") || name == "USDC" {
                "USDC".to_owned()
            } else {
                name.to_owned()
            },
        })
        .collect()
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut it = args.iter();
    let command = it.next().ok_or("missing command")?.clone();
    if command != "pay" && command != "requirements" {
        return Err(format!("unknown command {command:?}"));
    }
    let mut parsed = Args {
        command,
        ..Args::default()
    };
    parsed.policy.assets = builtin_assets();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--max" => parsed.policy.max_per_request = Some(value("--max")?),
            "--total" => parsed.policy.max_total = Some(value("--total")?),
            "--network" => {
                let v = value("--network")?;
                let pattern = NetworkPattern::parse(&v).map_err(|e| e.to_string())?;
                parsed.policy.networks.push(pattern.clone());
                parsed.policy.prefer_networks.push(pattern);
            }
            "--asset" => parsed
                .policy
                .assets
                .insert(0, parse_asset(&value("--asset")?)?),
            "--prefer-scheme" => parsed.policy.prefer_schemes.push(value("--prefer-scheme")?),
            "--key-file" => parsed.key_file = Some(value("--key-file")?),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            url if parsed.url.is_empty() => parsed.url = url.to_owned(),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    if parsed.url.is_empty() {
        return Err("missing <url>".into());
    }
    Ok(parsed)
}

fn load_key(
    key_file: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PrivateKeySigner, String> {
    let text = match (
        env("X402_PRIVATE_KEY"),
        key_file
            .map(str::to_owned)
            .or_else(|| env("X402_PRIVATE_KEY_FILE")),
    ) {
        (_, Some(path)) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the key file {path}: {e}"))?,
        (Some(key), None) => key,
        (None, None) => {
            return Err(
                "no key: set X402_PRIVATE_KEY or X402_PRIVATE_KEY_FILE, or pass --key-file".into(),
            );
        }
    };
    // Never echo the text: the parser's message could include it.
    PrivateKeySigner::from_str(text.trim())
        .map_err(|_| "the private key is not a 32-byte hex secret".to_owned())
}

fn describe(buyer: &Buyer, r: &PaymentRequirements) -> String {
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

fn explorer(network: &str, tx: &str) -> Option<String> {
    let base = match network {
        "eip155:8453" | "base" => "https://basescan.org/tx/",
        "eip155:84532" | "base-sepolia" => "https://sepolia.basescan.org/tx/",
        "eip155:137" | "polygon" => "https://polygonscan.com/tx/",
        "eip155:42161" => "https://arbiscan.io/tx/",
        _ => return None,
    };
    Some(format!("{base}{tx}"))
}

fn print_settlement(out: &mut dyn Write, s: &SettleResponse) -> std::io::Result<()> {
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
    if let Some(url) = explorer(&s.network, &s.transaction).filter(|_| !s.transaction.is_empty()) {
        writeln!(out, "  explorer:    {url}")?;
    }
    Ok(())
}

fn accepts(required: &PaymentRequired) -> (u8, Vec<PaymentRequirements>) {
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

/// Runs the program; returns the process exit code. Progress goes to `err`, results to `out`.
pub async fn run(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match run_inner(args, env, out, err).await {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(err, "x402: {message}");
            if message.starts_with("usage")
                || message.contains("missing")
                || message.contains("unknown")
            {
                let _ = writeln!(err, "{USAGE}");
            }
            2
        }
    }
}

async fn run_inner(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, String> {
    let args = parse(args)?;
    let io = |e: std::io::Error| e.to_string();
    let mut schemes = Registry::new();
    if args.command == "pay" {
        let signer = Arc::new(load_key(args.key_file.as_deref(), env)?);
        writeln!(err, "paying as {}", signer.address()).map_err(io)?;
        schemes
            .register(
                "eip155:*",
                &[X402Version::V1, X402Version::V2],
                Arc::new(ExactEvm::buyer(signer.clone())),
            )
            .map_err(|e| e.to_string())?;
        schemes
            .register(
                "eip155:*",
                &[X402Version::V2],
                Arc::new(UptoEvm::buyer(signer)),
            )
            .map_err(|e| e.to_string())?;
    }
    let buyer = Buyer::new(reqwest::Client::new(), schemes, args.policy);
    writeln!(err, "GET {}", args.url).map_err(io)?;
    let Some(required) = buyer
        .requirements(&args.url)
        .await
        .map_err(|e| e.to_string())?
    else {
        writeln!(err, "no payment required").map_err(io)?;
        if args.command == "pay" {
            let paid = buyer.get(&args.url).await.map_err(|e| e.to_string())?;
            let body = paid.response.text().await.map_err(|e| e.to_string())?;
            writeln!(out, "{body}").map_err(io)?;
        }
        return Ok(0);
    };
    let (version, options) = accepts(&required);
    writeln!(
        err,
        "402 Payment Required (x402 v{version}), {} option(s):",
        options.len()
    )
    .map_err(io)?;
    for (i, r) in options.iter().enumerate() {
        let line = format!("  {}. {}", i + 1, describe(&buyer, r));
        if args.command == "pay" {
            writeln!(err, "{line}").map_err(io)?;
        } else {
            writeln!(out, "{line}").map_err(io)?;
        }
    }
    if args.command == "requirements" {
        return Ok(0);
    }
    let paid = match buyer.get(&args.url).await {
        Ok(p) => p,
        Err(e) => {
            if let crate::Error::Refused {
                settlement: Some(s),
                ..
            } = &e
            {
                print_settlement(err, s).map_err(io)?;
            }
            return Err(e.to_string());
        }
    };
    let status = paid.response.status();
    if let Some(p) = &paid.payment {
        writeln!(
            err,
            "signed and sent {} ({} on {})",
            buyer.display(&p.requirements),
            p.requirements.scheme(),
            p.requirements.network_text()
        )
        .map_err(io)?;
    }
    writeln!(err, "{status}").map_err(io)?;
    let settlement = paid.payment.as_ref().and_then(|p| p.settlement.clone());
    let body = paid.response.text().await.map_err(|e| e.to_string())?;
    writeln!(out, "{body}").map_err(io)?;
    if let Some(s) = &settlement {
        print_settlement(out, s).map_err(io)?;
    }
    Ok(if status.is_success() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_and_flags() {
        let a =
            parse_asset("eip155:84532:0x036CbD53842c5426634e7929541eC2318f3dCF7e:6:USDC").unwrap();
        assert_eq!(a.network.as_str(), "eip155:84532");
        assert_eq!(a.decimals, 6);
        assert_eq!(a.symbol, "USDC");
        assert!(parse_asset("eip155:1:0xabc").is_err());
        let args: Vec<String> = ["pay", "http://x/y", "--max", "0.5", "--network", "eip155:*"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let parsed = parse(&args).unwrap();
        assert_eq!(parsed.policy.max_per_request.as_deref(), Some("0.5"));
        assert_eq!(parsed.policy.networks.len(), 1);
        assert!(parse(&["pay".to_owned()]).is_err());
        assert!(parse(&["nope".to_owned(), "u".to_owned()]).is_err());
    }

    #[test]
    fn key_errors_never_echo_the_key() {
        let env = |k: &str| (k == "X402_PRIVATE_KEY").then(|| "not-a-key-SECRET".to_owned());
        let e = load_key(None, &env).unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        let none = |_: &str| None;
        assert!(
            load_key(None, &none)
                .unwrap_err()
                .contains("X402_PRIVATE_KEY")
        );
    }
}
