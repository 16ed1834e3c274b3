//! `x402`: pay for an x402-protected URL, or show what it asks for.
//!
//! ```text
//! x402 requirements <URL> [--asset NETWORK:ADDRESS:DECIMALS[:SYMBOL]]... [--json]
//! x402 pay <URL> [--max AMOUNT] [--total AMOUNT] [--network PATTERN]... [--asset ...]...
//!                [--prefer-scheme SCHEME]... [--key-file PATH] [--solana-key-file PATH]
//!                [--solana-rpc URL] [--evm-rpc URL]... [--explorer URL_PREFIX] [--json]
//! ```
//!
//! `x402 --help` (and `--help` on each command) lists the options, the environment variables
//! read and the exit statuses: 0 success, 1 failure, 2 usage error, 3 payment sent but its
//! settlement still pending. See [`x402_buyer::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("x402: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    runtime
        .block_on(x402_buyer::cli::run(
            &args,
            &env,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        ))
        .into()
}
