//! `x402-facilitator`: the facilitator server.
//!
//! ```text
//! x402-facilitator --config facilitator.toml                         serve
//! x402-facilitator --config facilitator.toml --check-config [--json]  build everything, print the plan, exit
//! x402-facilitator --list-schemes [--json]                           the schemes this build links
//! ```
//!
//! Arguments are parsed with clap (`--help`, `--version`). `--config` may come from
//! `$X402_FACILITATOR_CONFIG`; the file's `$VAR` references are read from the environment and
//! never printed. Serving prints exactly one line on stdout, `listening on http://ADDR`; logs go
//! to stderr. Exit status: 0 success (served until stopped, config OK, schemes listed), 1 failure
//! (invalid configuration, a start-up check failed, cannot listen), 2 usage error.
//!
//! With `--json`, `--check-config` prints `{"listen":"ADDR","plan":[{"scheme","network",
//! "signers":[…]}]}` and `--list-schemes` prints `{"schemes":[{"id","scheme","namespace",
//! "versions":[1,2],"crate"}]}`, each on one line.
//!
//! `main` parses arguments and calls the library; tests drive the same `server::serve`.

mod memory;

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;
use facilitator_bin::config::Config;
use facilitator_bin::metrics::Metrics;
use facilitator_bin::server::{self, AppState};

const AFTER_HELP: &str = "\
Environment:
  X402_FACILITATOR_CONFIG  the configuration file (--config)
  $VAR references in the configuration file (RPC URLs, signer keys, ...) are read from the
  environment; their values are never printed.

Exit status:
  0  success: served until stopped (SIGINT/SIGTERM), configuration OK, schemes listed
  1  failure: invalid configuration, a start-up check failed, cannot listen
  2  usage error";

/// The x402 facilitator: verifies and settles payments for sellers over HTTP.
///
/// Serving prints one line on stdout, `listening on http://ADDR`; logs go to stderr.
#[derive(Debug, clap::Parser)]
#[command(name = "x402-facilitator", version, after_help = AFTER_HELP)]
#[command(group(
    clap::ArgGroup::new("report")
        .args(["check_config", "list_schemes"])
        .multiple(true)
))]
struct Cli {
    /// The configuration file (TOML; see facilitator.example.toml).
    #[arg(
        long,
        value_name = "FILE",
        env = "X402_FACILITATOR_CONFIG",
        required_unless_present = "list_schemes"
    )]
    config: Option<String>,
    /// Build every configured scheme (running its start-up checks), print the plan
    /// (scheme, network, signer addresses) and exit.
    #[arg(long, conflicts_with = "list_schemes")]
    check_config: bool,
    /// Print the schemes this build links and exit.
    #[arg(long)]
    list_schemes: bool,
    /// With --check-config or --list-schemes: print one JSON object on stdout.
    #[arg(long, requires = "report")]
    json: bool,
}

fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "x402-facilitator: {message}");
    ExitCode::FAILURE
}

/// Prints one line of JSON on stdout.
fn print_json(value: &serde_json::Value) -> ExitCode {
    match writeln!(std::io::stdout(), "{value}") {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn list_schemes(json: bool) -> ExitCode {
    let catalogue = match facilitator_bin::catalogue() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if !json {
        return match write!(
            std::io::stdout(),
            "{}",
            facilitator_bin::scheme_table(catalogue)
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        };
    }
    let schemes: Vec<serde_json::Value> = catalogue
        .iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id,
                "scheme": d.scheme,
                "namespace": d.namespace,
                "versions": d.versions,
                "crate": d.crate_name,
            })
        })
        .collect();
    print_json(&serde_json::json!({ "schemes": schemes }))
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version on stdout (0), usage errors on stderr (2).
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if cli.list_schemes {
        return list_schemes(cli.json);
    }
    let Some(path) = cli.config else {
        // clap requires --config without --list-schemes.
        return fail("--config FILE is required");
    };
    let config = match Config::load(&path, &|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let _telemetry = match facilitator_bin::telemetry::init(&config.log) {
        Ok(guard) => guard,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let mode = match (cli.check_config, cli.json) {
        (false, _) => Mode::Serve,
        (true, false) => Mode::Check,
        (true, true) => Mode::CheckJson,
    };
    runtime.block_on(run(config, mode))
}

/// What to do with a built facilitator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    Check,
    CheckJson,
}

async fn run(config: Config, mode: Mode) -> ExitCode {
    let metrics = Arc::new(Metrics::default());
    #[cfg(feature = "evm")]
    x402_evm::provider::set_observer(Arc::new(facilitator_bin::metrics::RpcMetrics(
        metrics.clone(),
    )));
    let (facilitator, plan) = match facilitator_bin::build(&config).await {
        Ok(built) => built,
        Err(e) => return fail(e),
    };
    match mode {
        Mode::Serve => {}
        Mode::Check => {
            return match write!(std::io::stdout(), "{}", facilitator_bin::plan_table(&plan)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            };
        }
        Mode::CheckJson => {
            return print_json(&serde_json::json!({
                "listen": config.listen.to_string(),
                "plan": facilitator_bin::plan_json(&plan),
            }));
        }
    }
    for line in &plan {
        tracing::info!(scheme = %line.scheme, network = %line.network, signers = ?line.signers, "serving");
    }
    // Gives the memory of a finished load burst back to the OS (glibc; see memory.rs).
    if let Err(e) = memory::spawn_trimmer() {
        tracing::warn!(error = %e, "the memory trimmer thread did not start");
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {}: {e}", config.listen)),
    };
    match listener.local_addr() {
        // The one line on stdout: tests and scripts read the bound address from it.
        Ok(addr) => {
            let _ = writeln!(std::io::stdout(), "listening on http://{addr}");
            let _ = std::io::stdout().flush();
        }
        Err(e) => return fail(e),
    }
    let access = facilitator_bin::auth::Access::new(&config.auth);
    if access.is_open() {
        tracing::warn!(
            "auth = \"none\": /verify and /settle serve anyone, who can spend this \
             facilitator's gas and fees; configure [[auth.keys]] unless a gateway in front \
             authenticates callers"
        );
    } else {
        tracing::info!(keys = ?access.key_ids(), "/verify and /settle need an API key");
    }
    let state = AppState::new(facilitator, metrics, config.limits.clone()).with_access(access);
    // Start-up pass first (records a crash left behind), then on the timer.
    let reconciler = facilitator_bin::spawn_reconciler(
        state.facilitator.clone(),
        state.metrics.clone(),
        config.store.reconcile_interval,
    );
    let grace = Duration::from_millis(config.limits.shutdown_grace_ms);
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stopped_tx.send(());
    };
    let served = server::serve(listener, state, shutdown);
    tokio::pin!(served);
    let result = tokio::select! {
        r = &mut served => r,
        () = async {
            let _ = stopped_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("shutdown grace period over; exiting with requests in flight");
            Ok(())
        }
    };
    reconciler.abort();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    fn kind(args: &[&str]) -> ErrorKind {
        parse(std::iter::once("x402-facilitator").chain(args.iter().copied()))
            .unwrap_err()
            .kind()
    }

    #[test]
    fn help_and_version() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
        assert_eq!(kind(&["--help"]), ErrorKind::DisplayHelp);
        assert_eq!(kind(&["-h"]), ErrorKind::DisplayHelp);
        assert_eq!(kind(&["--version"]), ErrorKind::DisplayVersion);
        assert_eq!(kind(&["-V"]), ErrorKind::DisplayVersion);
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "--config <FILE>",
            "[env: X402_FACILITATOR_CONFIG",
            "--check-config",
            "--list-schemes",
            "--json",
            "$VAR references",
            "Exit status:",
            "2  usage error",
        ] {
            assert!(help.contains(needle), "{needle:?} not in {help}");
        }
    }

    #[test]
    fn usage_errors_exit_2() {
        for (args, expected) in [
            (&["--bogus"][..], ErrorKind::UnknownArgument),
            (&["--config"], ErrorKind::InvalidValue),
            (&["--config", "f.toml", "extra"], ErrorKind::UnknownArgument),
            (
                &["--config", "f.toml", "--check-config", "--list-schemes"],
                ErrorKind::ArgumentConflict,
            ),
            (
                &["--config", "f.toml", "--json"],
                ErrorKind::MissingRequiredArgument,
            ),
        ] {
            let e =
                parse(std::iter::once("x402-facilitator").chain(args.iter().copied())).unwrap_err();
            assert_eq!(e.kind(), expected, "{args:?}");
            assert_eq!(e.exit_code(), 2, "{args:?}");
            // clap's message, with the usage (for a missing value, where to find it).
            let text = e.render().to_string();
            assert!(text.starts_with("error: "), "{args:?}: {text}");
            assert!(
                text.contains("Usage: x402-facilitator") || expected == ErrorKind::InvalidValue,
                "{args:?}: {text}"
            );
            assert!(text.contains("--help"), "{args:?}: {text}");
        }
        // Without --config (and without $X402_FACILITATOR_CONFIG), serving is a usage error.
        if std::env::var_os("X402_FACILITATOR_CONFIG").is_none() {
            assert_eq!(kind(&[]), ErrorKind::MissingRequiredArgument);
            assert_eq!(
                kind(&["--check-config"]),
                ErrorKind::MissingRequiredArgument
            );
        }
    }

    #[test]
    fn the_accepted_forms() {
        let cli = |args: &[&str]| {
            parse(std::iter::once("x402-facilitator").chain(args.iter().copied())).unwrap()
        };
        let c = cli(&["--config", "f.toml"]);
        assert_eq!(c.config.as_deref(), Some("f.toml"));
        assert!(!c.check_config && !c.list_schemes && !c.json);
        let c = cli(&["--config=f.toml", "--check-config", "--json"]);
        assert!(c.check_config && c.json);
        let c = cli(&["--list-schemes"]);
        assert!(c.list_schemes && !c.json);
        assert!(cli(&["--list-schemes", "--json"]).json);
    }

    #[test]
    fn the_plan_as_json() {
        let plan = [facilitator_bin::PlanLine {
            scheme: "exact".into(),
            network: "eip155:84532".into(),
            signers: vec!["0xabc".into(), "0xdef".into()],
        }];
        assert_eq!(
            facilitator_bin::plan_json(&plan),
            serde_json::json!([
                {"scheme": "exact", "network": "eip155:84532", "signers": ["0xabc", "0xdef"]}
            ])
        );
    }
}
