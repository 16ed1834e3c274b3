//! The `x402` command line: `x402 requirements <url>`, `x402 pay <url> [options]`.
//!
//! [`run`] is the whole program with its inputs and outputs passed in, so tests drive it in
//! process; `main` only hands it the real ones.

use std::io::Write;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use scheme_exact_evm::ExactEvm;
use scheme_exact_svm::{BuyerOptions, ExactSvm};
use scheme_upto_evm::UptoEvm;
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_core::wire::{PaymentRequired, PaymentRequirements, SettleResponse};
use x402_core::{Network, NetworkPattern, Registry, X402Version};

use crate::{Buyer, KnownAsset, Policy};

/// The usage text.
pub const USAGE: &str = "\
usage: x402 requirements <url>
       x402 pay <url> [--max AMOUNT] [--total AMOUNT] [--network PATTERN]...
                      [--asset NETWORK:ADDRESS:DECIMALS[:SYMBOL]]... [--prefer-scheme SCHEME]...
                      [--key-file PATH] [--solana-key-file PATH] [--solana-rpc URL]
The EVM key is read from $X402_PRIVATE_KEY, or from the file named by --key-file or
$X402_PRIVATE_KEY_FILE (hex, 0x optional). The Solana key is read from $X402_SOLANA_KEY, or
from the file named by --solana-key-file or $X402_SOLANA_KEY_FILE (base58 of the 64-byte
keypair, or a JSON array as written by solana-keygen); it pays `exact` on solana:* through
--solana-rpc or $X402_SOLANA_RPC (default: the public mainnet-beta endpoint). At least one key
is needed to pay. Keys are never printed.";

/// The Solana RPC used when neither `--solana-rpc` nor `$X402_SOLANA_RPC` is given.
pub const DEFAULT_SOLANA_RPC: &str = "https://api.mainnet-beta.solana.com";

/// What the command line asked for.
#[derive(Debug, Default)]
struct Args {
    command: String,
    url: String,
    policy: Policy,
    key_file: Option<String>,
    solana_key_file: Option<String>,
    solana_rpc: Option<String>,
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
            "--solana-key-file" => parsed.solana_key_file = Some(value("--solana-key-file")?),
            "--solana-rpc" => parsed.solana_rpc = Some(value("--solana-rpc")?),
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

/// The secret text from the file (`key_file`, else `$<var>_FILE`) or from `$<var>`; `None` when
/// neither is set.
fn key_text(
    var: &str,
    key_file: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, String> {
    match (
        env(var),
        key_file
            .map(str::to_owned)
            .or_else(|| env(&format!("{var}_FILE"))),
    ) {
        (_, Some(path)) => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| format!("cannot read the key file {path}: {e}")),
        (key, None) => Ok(key),
    }
}

/// The EVM key, if one is configured.
fn load_key(
    key_file: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<PrivateKeySigner>, String> {
    let Some(text) = key_text("X402_PRIVATE_KEY", key_file, env)? else {
        return Ok(None);
    };
    // Never echo the text: the parser's message could include it.
    PrivateKeySigner::from_str(text.trim())
        .map(Some)
        .map_err(|_| "the private key is not a 32-byte hex secret".to_owned())
}

/// The Solana keypair, if one is configured.
fn load_solana_key(
    key_file: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Keypair>, String> {
    let Some(text) = key_text("X402_SOLANA_KEY", key_file, env)? else {
        return Ok(None);
    };
    // `parse_keypair`'s errors never repeat the text.
    scheme_exact_svm::parse_keypair(&text)
        .map(Some)
        .map_err(|e| format!("the Solana key is {e}"))
}

/// The schemes a buyer with these keys can pay with.
fn buyer_schemes(
    evm: Option<PrivateKeySigner>,
    solana: Option<(Keypair, String)>,
) -> Result<Registry, String> {
    let mut schemes = Registry::new();
    if let Some(signer) = evm {
        let signer = Arc::new(signer);
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
    if let Some((keypair, rpc_url)) = solana {
        // The URL may carry an API key: the error does not repeat it.
        let rpc = scheme_exact_svm::rpc::Rpc::new(&[rpc_url], Duration::from_secs(30))
            .map_err(|e| format!("--solana-rpc: {e}"))?;
        schemes
            .register(
                "solana:*",
                &[X402Version::V1, X402Version::V2],
                Arc::new(ExactSvm::buyer(keypair, rpc, BuyerOptions::default())),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(schemes)
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
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp" | "solana" => {
            return Some(format!("https://explorer.solana.com/tx/{tx}"));
        }
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1" | "solana-devnet" => {
            return Some(format!(
                "https://explorer.solana.com/tx/{tx}?cluster=devnet"
            ));
        }
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
        let evm = load_key(args.key_file.as_deref(), env)?;
        let solana = load_solana_key(args.solana_key_file.as_deref(), env)?;
        if evm.is_none() && solana.is_none() {
            return Err(
                "no key: set X402_PRIVATE_KEY or X402_PRIVATE_KEY_FILE, or pass \
                 --key-file (EVM); set X402_SOLANA_KEY or X402_SOLANA_KEY_FILE, or pass \
                 --solana-key-file (Solana)"
                    .into(),
            );
        }
        if let Some(signer) = &evm {
            writeln!(err, "paying as {} (EVM)", signer.address()).map_err(io)?;
        }
        if let Some(keypair) = &solana {
            writeln!(err, "paying as {} (Solana)", keypair.pubkey()).map_err(io)?;
        }
        let rpc = args
            .solana_rpc
            .clone()
            .or_else(|| env("X402_SOLANA_RPC"))
            .unwrap_or_else(|| DEFAULT_SOLANA_RPC.to_owned());
        schemes = buyer_schemes(evm, solana.map(|k| (k, rpc)))?;
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
        assert!(load_key(None, &none).unwrap().is_none());
        assert!(load_solana_key(None, &none).unwrap().is_none());
    }

    #[test]
    fn solana_flags() {
        let args: Vec<String> = [
            "pay",
            "http://x/y",
            "--solana-key-file",
            "/k.json",
            "--solana-rpc",
            "http://127.0.0.1:8899",
            "--asset",
            "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1:4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU:6:USDC",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let parsed = parse(&args).unwrap();
        assert_eq!(parsed.solana_key_file.as_deref(), Some("/k.json"));
        assert_eq!(parsed.solana_rpc.as_deref(), Some("http://127.0.0.1:8899"));
        let a = &parsed.policy.assets[0];
        assert_eq!(
            a.network.as_str(),
            "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"
        );
        assert_eq!(a.address, "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU");
        assert_eq!(a.decimals, 6);
        assert!(parse(&["pay".into(), "u".into(), "--solana-rpc".into()]).is_err());
    }

    #[test]
    fn solana_keys_load_from_env_and_file_and_are_never_echoed() {
        let keypair = Keypair::new();
        let base58 = keypair.to_base58_string();
        let env = |k: &str| (k == "X402_SOLANA_KEY").then(|| format!(" {base58}\n"));
        let loaded = load_solana_key(None, &env).unwrap().unwrap();
        assert_eq!(loaded.pubkey(), keypair.pubkey());

        // A solana-keygen JSON array in a file named by the flag (the file wins over the env).
        let dir = std::env::temp_dir().join(format!("x402-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("id.json");
        let other = Keypair::new();
        std::fs::write(&path, format!("{:?}", other.to_bytes().to_vec())).unwrap();
        let loaded = load_solana_key(path.to_str(), &env).unwrap().unwrap();
        assert_eq!(loaded.pubkey(), other.pubkey());
        // ... or by $X402_SOLANA_KEY_FILE.
        let path_text = path.to_str().unwrap().to_owned();
        let env_file = |k: &str| (k == "X402_SOLANA_KEY_FILE").then(|| path_text.clone());
        assert_eq!(
            load_solana_key(None, &env_file).unwrap().unwrap().pubkey(),
            other.pubkey()
        );
        std::fs::remove_dir_all(&dir).unwrap();

        // Garbage (or a truncated key) is refused without repeating it.
        let secret = &base58[..40];
        let bad = |k: &str| (k == "X402_SOLANA_KEY").then(|| format!("{secret}SECRET"));
        let e = load_solana_key(None, &bad).unwrap_err();
        assert!(!e.contains("SECRET") && !e.contains(secret), "{e}");
        let bad_json = |k: &str| (k == "X402_SOLANA_KEY").then(|| "[1, 2, 3]".to_owned());
        let e = load_solana_key(None, &bad_json).unwrap_err();
        assert!(!e.contains("1, 2"), "{e}");
    }
}
