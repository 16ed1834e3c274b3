//! The command line's unit tests: parsing, keys, help, usage errors and the report; `pay`
//! drives the whole program against an in-process seller.

use clap::Parser as _;
use solana_keypair::Keypair;
use solana_signer::Signer as _;
use x402_core::wire::SettleResponse;

use super::args::{Cli, parse, parse_asset};
use super::keys::{load_key, load_solana_key};
use super::report::{explorer, print_settlement};
use super::*;

mod history;
mod pay;

#[test]
fn assets_and_flags() {
    let a = parse_asset("eip155:84532:0x036CbD53842c5426634e7929541eC2318f3dCF7e:6:USDC").unwrap();
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
    // Without --max (or $X402_MAX) there is nothing to pay with: a usage error naming the flag.
    let uncapped = parse(&["pay".to_owned(), "http://x/y".to_owned()]).unwrap_err();
    assert_eq!(
        uncapped.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    assert!(uncapped.to_string().contains("--max"), "{uncapped}");
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
        "--max",
        "1",
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

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Runs the program in process with only `vars` in its environment.
async fn run_with(args: &[&str], vars: &[(&str, &str)]) -> (Exit, String, String) {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = run(&strings(args), &env, &mut out, &mut err).await;
    (
        exit,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn help_and_version_on_every_command() {
    use clap::CommandFactory as _;
    Cli::command().debug_assert();
    for argv in [
        &["x402", "--help"][..],
        &["x402", "-h"],
        &["x402", "pay", "--help"],
        &["x402", "requirements", "--help"],
        &["x402", "help", "pay"],
    ] {
        let e = Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp, "{argv:?}");
        assert_eq!(e.exit_code(), 0);
    }
    for argv in [
        &["x402", "--version"][..],
        &["x402", "-V"],
        &["x402", "pay", "--version"],
        &["x402", "requirements", "--version"],
    ] {
        let e = Cli::try_parse_from(argv).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion, "{argv:?}");
        assert_eq!(e.exit_code(), 0);
    }
}

#[tokio::test]
async fn help_names_the_environment_and_the_exit_statuses() {
    let (exit, out, err) = run_with(&["--help"], &[]).await;
    assert_eq!(exit, Exit::Success);
    assert!(err.is_empty(), "{err}");
    for needle in [
        "requirements",
        "pay",
        "Environment:",
        "X402_PRIVATE_KEY ",
        "X402_PRIVATE_KEY_FILE",
        "X402_SOLANA_KEY ",
        "X402_SOLANA_KEY_FILE",
        "X402_SOLANA_RPC",
        "X402_EVM_RPC",
        "X402_EXPLORER",
        "X402_MAX",
        "Exit status:",
        "3  pay: the payment was sent",
    ] {
        assert!(out.contains(needle), "{needle:?} not in {out}");
    }
    let (exit, out, _) = run_with(&["pay", "--help"], &[]).await;
    assert_eq!(exit, Exit::Success);
    for needle in [
        "--max <AMOUNT>",
        "--asset <NETWORK:ADDRESS:DECIMALS[:SYMBOL]>",
        "--json",
        "--explorer <URL_PREFIX>",
        "[env: X402_SOLANA_RPC",
        "[env: X402_EVM_RPC",
        "--evm-rpc <URL>",
        "[env: X402_EXPLORER",
        "[env: X402_PRIVATE_KEY_FILE",
        "X402_PRIVATE_KEY ",
        "Exit status:",
    ] {
        assert!(out.contains(needle), "{needle:?} not in {out}");
    }
    let (exit, out, _) = run_with(&["requirements", "--help"], &[]).await;
    assert_eq!(exit, Exit::Success);
    assert!(
        out.contains("--json") && out.contains("Exit status:"),
        "{out}"
    );
    let (exit, out, _) = run_with(&["--version"], &[]).await;
    assert_eq!(exit, Exit::Success);
    assert_eq!(out.trim(), format!("x402 {}", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn usage_errors_exit_2_with_the_usage() {
    use clap::error::ErrorKind;
    let e = Cli::try_parse_from(["x402", "pay", "http://x/y", "--bogus"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownArgument);
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        Cli::try_parse_from(["x402", "nope"]).unwrap_err().kind(),
        ErrorKind::InvalidSubcommand
    );
    // (arguments, whether clap prints the usage line; for a bad value it says where to look)
    for (args, usage) in [
        (&["pay", "http://x/y", "--bogus"][..], true),
        (&["pay"], true),
        (&["nope", "http://x/y"], true),
        (&["requirements", "http://x/y", "--max", "1"], true),
        (&[], true),
        (
            &[
                "pay",
                "http://x/y",
                "--max",
                "1",
                "--asset",
                "eip155:1:0xabc",
            ],
            false,
        ),
        (
            &[
                "pay",
                "http://x/y",
                "--max",
                "1",
                "--network",
                "not a network",
            ],
            false,
        ),
        // No cap: the CLI never pays without one.
        (&["pay", "http://x/y"], true),
    ] {
        let (exit, out, err) = run_with(args, &[]).await;
        assert_eq!(exit, Exit::Usage, "{args:?}");
        assert_eq!(exit.code(), 2);
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(!usage || err.contains("Usage: x402"), "{args:?}: {err}");
        assert!(err.contains("--help"), "{args:?}: {err}");
    }
    let (_, _, err) = run_with(&["pay", "http://x/y", "--asset", "eip155:1:0xabc"], &[]).await;
    assert!(err.contains("NETWORK:ADDRESS:DECIMALS"), "{err}");
}

#[test]
fn secrets_are_never_given_to_clap() {
    use clap::CommandFactory as _;
    let command = Cli::command();
    let mut seen = Vec::new();
    for sub in command.get_subcommands() {
        for arg in sub.get_arguments() {
            let Some(var) = arg.get_env().and_then(|v| v.to_str()) else {
                continue;
            };
            seen.push(var.to_owned());
            assert!(
                var != "X402_PRIVATE_KEY" && var != "X402_SOLANA_KEY",
                "{var} is bound to an option"
            );
            // Key files and the RPC URL (which may hold an API key): names only; the link prefix,
            // the caps and the ledger's path are no secrets.
            let public = [
                "X402_EXPLORER",
                "X402_MAX",
                "X402_PER_HOUR",
                "X402_PER_DAY",
                "X402_LEDGER",
            ];
            if !public.contains(&var) {
                assert!(arg.is_hide_env_values_set(), "{var} would be shown");
            }
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "X402_EVM_RPC",
            "X402_EXPLORER",
            "X402_LEDGER",
            "X402_MAX",
            "X402_PER_DAY",
            "X402_PER_HOUR",
            "X402_PRIVATE_KEY_FILE",
            "X402_SOLANA_KEY_FILE",
            "X402_SOLANA_RPC"
        ]
    );
}

fn settlement(json: &str) -> SettleResponse {
    serde_json::from_str(json).unwrap()
}

#[test]
fn explorer_links_only_where_the_chain_is_known() {
    let s = settlement(r#"{"success":true,"transaction":"0xabc","network":"eip155:84532"}"#);
    let print = |prefix: Option<&str>| {
        let mut out = Vec::new();
        print_settlement(&mut out, &s, prefix).unwrap();
        String::from_utf8(out).unwrap()
    };
    // A local chain uses 84532 too: no basescan link unless asked for.
    let text = print(None);
    assert!(text.contains("transaction: 0xabc"), "{text}");
    assert!(
        !text.contains("basescan") && !text.contains("explorer:"),
        "{text}"
    );
    let text = print(Some("https://sepolia.basescan.org/tx/"));
    assert!(
        text.contains("  explorer:    https://sepolia.basescan.org/tx/0xabc\n"),
        "{text}"
    );
    assert_eq!(explorer("base-sepolia", "0xabc", None), None);
    assert_eq!(explorer("base", "0xabc", None), None);
    // Solana's ids name the chain by its genesis hash.
    assert_eq!(
        explorer("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "sig", None).as_deref(),
        Some("https://explorer.solana.com/tx/sig")
    );
    assert_eq!(
        explorer("solana-devnet", "sig", None).as_deref(),
        Some("https://explorer.solana.com/tx/sig?cluster=devnet")
    );
    assert_eq!(
        explorer("solana", "sig", Some("http://127.0.0.1:3000/tx/")).as_deref(),
        Some("http://127.0.0.1:3000/tx/sig")
    );
    assert_eq!(explorer("solana", "", None), None);
    // The flag reaches the arguments.
    let parsed = parse(&strings(&[
        "pay",
        "http://x/y",
        "--max",
        "1",
        "--explorer",
        "https://e/tx/",
    ]))
    .unwrap();
    assert_eq!(parsed.explorer.as_deref(), Some("https://e/tx/"));
}

#[test]
fn the_pay_report_is_one_json_object() {
    let mut report = PayReport::new("http://x/y");
    report.status = Some(200);
    report.paid = true;
    report.settlement = Some(settlement(
        r#"{"success":true,"transaction":"0xabc","network":"eip155:84532","payer":"0x1"}"#,
    ));
    report.body = Some("hello\n".into());
    let json = report.to_json().unwrap();
    assert!(!json.contains('\n'), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = vec![
        "url",
        "status",
        "paid",
        "pending",
        "settlement",
        "explorer",
        "body",
        "error",
    ];
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(v["status"], 200);
    assert_eq!(v["paid"], true);
    assert_eq!(v["settlement"]["transaction"], "0xabc");
    assert_eq!(v["explorer"], serde_json::Value::Null);
    assert_eq!(report.exit(), Exit::Success);
    report.status = Some(402);
    assert_eq!(report.exit(), Exit::Failure);
    report.pending = true;
    assert_eq!(report.exit(), Exit::Pending);
    assert_eq!(Exit::Pending.code(), 3);
}
