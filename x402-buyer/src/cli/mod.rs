//! The `x402` command line: `x402 requirements <url>`, `x402 pay <url> [options]`,
//! `x402 history [options]`, `x402 discover <url>` (what a facilitator's bazaar or an origin's
//! `/.well-known/x402` manifest lists for sale).
//!
//! Arguments are parsed with clap: `x402 --help`, `x402 pay --help` and
//! `x402 requirements --help` list every option, the environment variables read and the exit
//! statuses, and `--version` works on every command. The exit status is an [`Exit`]: 0 success,
//! 1 failure, 2 usage error, 3 when `pay` sent a payment whose settlement is still pending.
//!
//! With `--json`, stdout carries exactly one JSON document and progress goes to stderr:
//! `x402 requirements --json` prints the decoded 402 document (`x402Version`, `accepts`, …), or
//! `null` when the URL asks for no payment; `x402 pay --json` prints one [`PayReport`] object,
//! `{"url","status","paid","pending","settlement","explorer","body","error"}`, whenever the
//! arguments parse (exit 0, 1 or 3, or 2 when an `--asset` is refused).
//!
//! Transaction links are printed on their own for Solana mainnet and devnet only, whose CAIP-2
//! ids name the chain by its genesis hash; an EVM chain id may just as well be a local or forked
//! chain, so other networks get a link only with `--explorer URL_PREFIX` (or `$X402_EXPLORER`),
//! which then applies to every network.
//!
//! `x402 pay` checks each `--asset`'s decimals against the token's own before paying (EVM:
//! `decimals()` on `--evm-rpc`, required with an EVM `--asset`; Solana: the mint on
//! `--solana-rpc`): `--max` and `--total` are read with them, so a wrong entry would move the cap
//! by powers of ten. A mismatch is a usage error (exit 2) and nothing is paid.
//!
//! `x402 pay` appends every payment it signs to a ledger (a JSON lines file: `--ledger`,
//! `$X402_LEDGER`, else `$XDG_DATA_HOME/x402/ledger.jsonl` or `~/.local/share/x402/ledger.jsonl`)
//! and counts `--per-hour`, `--per-day` and `--rate-limit` from it, so they hold across runs;
//! `x402 history` lists it.
//!
//! [`run`] is the whole program with its inputs and outputs passed in, so tests drive it in
//! process; `main` only hands it the real ones. Secret keys are read through the `env` function
//! given to [`run`], never by clap, so no help or error text can show them.

mod args;
mod decimals;
mod discover;
mod governance;
mod history;
mod keys;
mod manifest;
mod report;
#[cfg(test)]
mod tests;

use std::io::Write;

use solana_signer::Signer as _;
use x402_core::Registry;

use self::args::{Action, Args, parse};
use self::keys::{buyer_schemes, load_key, load_solana_key};
use self::report::{accepts, describe, explorer, print_settlement};
use crate::{Buyer, settlement_pending};

pub use self::args::{DEFAULT_SOLANA_RPC, ENVIRONMENT, EXIT_STATUS, Exit};
pub use self::report::PayReport;

/// Runs the program on `args` (without the program name); returns how it ended, whose
/// [`Exit::code`] is the process exit status. Results go to `out`; progress, errors, and clap's
/// usage errors go to `err`; `--help` and `--version` go to `out`. `env` reads the environment
/// (the keys, and fallbacks for the options clap reads from it).
pub async fn run(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            let stream: &mut dyn Write = if e.use_stderr() { err } else { out };
            let _ = write!(stream, "{}", e.render());
            return if e.exit_code() == 0 {
                Exit::Success
            } else {
                Exit::Usage
            };
        }
    };
    let result = match &args.command {
        Action::Requirements => requirements(&args, out, err).await,
        Action::Pay => pay(&args, env, out, err).await,
        Action::Discover => discover::run(&args, out, err).await,
        Action::History(h) => history::history(h, env, out, err),
    };
    match result {
        Ok(exit) => exit,
        Err(message) => {
            let _ = writeln!(err, "x402: {message}");
            Exit::Failure
        }
    }
}

/// The Solana RPC: `--solana-rpc`, else `$X402_SOLANA_RPC`, else [`DEFAULT_SOLANA_RPC`].
fn solana_rpc(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> String {
    args.solana_rpc
        .clone()
        .or_else(|| env("X402_SOLANA_RPC"))
        .unwrap_or_else(|| DEFAULT_SOLANA_RPC.to_owned())
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

async fn requirements(
    args: &Args,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Exit, String> {
    let buyer = Buyer::new(reqwest::Client::new(), Registry::new(), args.policy.clone());
    writeln!(err, "GET {}", args.url).map_err(io)?;
    let Some(required) = buyer
        .requirements(&args.url)
        .await
        .map_err(|e| e.to_string())?
    else {
        writeln!(err, "no payment required").map_err(io)?;
        if args.json {
            writeln!(out, "null").map_err(io)?;
        }
        return Ok(Exit::Success);
    };
    let (version, options) = accepts(&required);
    writeln!(
        err,
        "402 Payment Required (x402 v{version}), {} option(s):",
        options.len()
    )
    .map_err(io)?;
    // The human listing is the result, unless JSON is.
    let listing: &mut dyn Write = if args.json { err } else { out };
    for (i, r) in options.iter().enumerate() {
        writeln!(listing, "  {}. {}", i + 1, describe(&buyer, r)).map_err(io)?;
    }
    if args.json {
        let json = serde_json::to_string(&required).map_err(|e| e.to_string())?;
        writeln!(out, "{json}").map_err(io)?;
    }
    Ok(Exit::Success)
}

/// The outcome of `pay` before it is printed.
#[derive(Debug)]
struct PayOutcome {
    report: PayReport,
    /// The body as text (invalid UTF-8 replaced), for the human output.
    text: Option<String>,
    /// The content was withheld (a refusal, or a settlement still pending): the human output
    /// prints the body and the settlement on stderr.
    withheld: bool,
}

async fn pay(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Exit, String> {
    let mut outcome = PayOutcome {
        report: PayReport::new(&args.url),
        text: None,
        withheld: false,
    };
    // The --asset entries' decimals first: nothing is asked of the seller before they check.
    let mut usage = false;
    let evm_rpcs = if args.evm_rpcs.is_empty() {
        env("X402_EVM_RPC").into_iter().collect()
    } else {
        args.evm_rpcs.clone()
    };
    let checked = decimals::check(&args.assets, &evm_rpcs, &solana_rpc(args, env)).await;
    let result = match checked {
        Ok(()) => pay_inner(args, env, err, &mut outcome).await,
        Err(decimals::Refusal::Usage(m)) => {
            usage = true;
            Err(m)
        }
        Err(decimals::Refusal::Failure(m)) => Err(m),
    };
    if let Err(message) = result {
        outcome.report.error = Some(message);
    }
    let PayOutcome {
        mut report,
        text,
        withheld,
    } = outcome;
    let explorer_prefix = args.explorer.clone().or_else(|| env("X402_EXPLORER"));
    if let Some(s) = &report.settlement {
        report.pending = settlement_pending(s);
        report.explorer = explorer(&s.network, &s.transaction, explorer_prefix.as_deref());
    }
    report.paid = report.paid && !report.pending;
    let exit = if usage { Exit::Usage } else { report.exit() };
    if args.json {
        let json = report.to_json().map_err(|e| e.to_string())?;
        writeln!(out, "{json}").map_err(io)?;
    } else {
        let stream: &mut dyn Write = if withheld { err } else { out };
        if let Some(text) = &text {
            writeln!(stream, "{text}").map_err(io)?;
        }
        if let Some(s) = &report.settlement {
            print_settlement(stream, s, explorer_prefix.as_deref()).map_err(io)?;
        }
    }
    if let Some(message) = &report.error {
        writeln!(err, "x402: {message}").map_err(io)?;
    }
    if let Some(s) = report.settlement.as_ref().filter(|_| report.pending) {
        writeln!(
            err,
            "x402: the payment was sent and its settlement is still pending: check transaction {} \
             on {} before paying again",
            s.transaction, s.network
        )
        .map_err(io)?;
    }
    Ok(exit)
}

/// Pays `args.url`, filling `outcome`; progress goes to `err`.
async fn pay_inner(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
    err: &mut dyn Write,
    outcome: &mut PayOutcome,
) -> Result<(), String> {
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
    let rpc = solana_rpc(args, env);
    // The EVM RPCs let the buyer sign gas-sponsoring permits (an unreachable one: none).
    let evm_rpcs = match &evm {
        Some(_) if !args.evm_rpcs.is_empty() || env("X402_EVM_RPC").is_some() => {
            let urls: Vec<String> = if args.evm_rpcs.is_empty() {
                env("X402_EVM_RPC").into_iter().collect()
            } else {
                args.evm_rpcs.clone()
            };
            decimals::evm_chains(&urls).await.unwrap_or_default()
        }
        _ => Default::default(),
    };
    let schemes = buyer_schemes(evm, solana.map(|k| (k, rpc)), &evm_rpcs)?;
    let buyer = Buyer::new(reqwest::Client::new(), schemes, args.policy.clone());
    let path = governance::ledger_path(args.ledger.as_deref(), env);
    let buyer = governance::with_ledger(buyer, path, err)?;
    writeln!(err, "GET {}", args.url).map_err(io)?;
    let required = buyer
        .requirements(&args.url)
        .await
        .map_err(|e| e.to_string())?;
    match &required {
        None => writeln!(err, "no payment required").map_err(io)?,
        Some(required) => {
            let (version, options) = accepts(required);
            writeln!(
                err,
                "402 Payment Required (x402 v{version}), {} option(s):",
                options.len()
            )
            .map_err(io)?;
            for (i, r) in options.iter().enumerate() {
                writeln!(err, "  {}. {}", i + 1, describe(&buyer, r)).map_err(io)?;
            }
        }
    }
    let sent = if args.retries == 0 {
        buyer.get(&args.url).await
    } else {
        let retry = crate::Retry::attempts(args.retries + 1);
        match buyer.http.get(&args.url).build() {
            Ok(request) => buyer.execute_idempotent(request, &retry).await,
            Err(e) => Err(crate::Error::Http(e)),
        }
    };
    let paid = match sent {
        Ok(p) => p,
        Err(crate::Error::Refused {
            status,
            error,
            settlement,
        }) => {
            outcome.report.status = Some(status);
            outcome.report.settlement = settlement.map(|s| *s);
            outcome.withheld = true;
            let e = crate::Error::Refused {
                status,
                error,
                settlement: None,
            };
            return Err(e.to_string());
        }
        Err(e) => return Err(e.to_string()),
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
    outcome.report.status = Some(status.as_u16());
    outcome.report.paid = paid.payment.is_some() && status.is_success();
    outcome.report.settlement = paid.payment.as_ref().and_then(|p| p.settlement.clone());
    let bytes = paid.response.bytes().await.map_err(|e| e.to_string())?;
    outcome.text = Some(String::from_utf8_lossy(&bytes).into_owned());
    outcome.report.body = String::from_utf8(bytes.to_vec()).ok();
    if status.is_success() {
        return Ok(());
    }
    if paid
        .payment
        .as_ref()
        .is_some_and(crate::Payment::is_pending)
    {
        // x402-seller's 504: the payment was sent; the content is withheld while it settles.
        outcome.withheld = true;
        return Err(format!(
            "the seller answered {status}: the payment was sent and is being settled; the \
             response is withheld"
        ));
    }
    Err(format!("the seller answered {status}"))
}
