//! `x402-facilitator`: the facilitator server.
//!
//! ```text
//! x402-facilitator --config facilitator.toml            serve
//! x402-facilitator --config facilitator.toml --check-config   build everything, print the plan, exit
//! x402-facilitator --list-schemes                       the schemes this build links
//! ```
//!
//! `main` parses arguments and calls the library; tests drive the same `server::serve`.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use facilitator_bin::config::Config;
use facilitator_bin::metrics::Metrics;
use facilitator_bin::server::{self, AppState};

const USAGE: &str = "usage: x402-facilitator --config FILE [--check-config] | --list-schemes";

fn fail(message: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "x402-facilitator: {message}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config_path = None;
    let mut check_only = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--list-schemes" => {
                return match facilitator_bin::catalogue() {
                    Ok(c) => {
                        let _ = write!(std::io::stdout(), "{}", facilitator_bin::scheme_table(c));
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                };
            }
            "--check-config" => check_only = true,
            "--config" => config_path = it.next().cloned(),
            "-h" | "--help" => {
                let _ = writeln!(std::io::stdout(), "{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return fail(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let Some(path) = config_path else {
        return fail(USAGE);
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
    runtime.block_on(run(config, check_only))
}

async fn run(config: Config, check_only: bool) -> ExitCode {
    let metrics = Arc::new(Metrics::default());
    #[cfg(feature = "evm")]
    x402_evm::provider::set_observer(Arc::new(facilitator_bin::metrics::RpcMetrics(
        metrics.clone(),
    )));
    let (facilitator, plan) = match facilitator_bin::build(&config).await {
        Ok(built) => built,
        Err(e) => return fail(e),
    };
    let table = facilitator_bin::plan_table(&plan);
    if check_only {
        let _ = write!(std::io::stdout(), "{table}");
        return ExitCode::SUCCESS;
    }
    for line in &plan {
        tracing::info!(scheme = %line.scheme, network = %line.network, signers = ?line.signers, "serving");
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
    let state = AppState {
        facilitator: Arc::new(facilitator),
        metrics,
        limits: config.limits.clone(),
    };
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
