//! `x402-facilitator`: prints the schemes this build links (`--list-schemes`).
//!
//! Serving HTTP (config file, `/verify`, `/settle`, `/supported`, health and metrics) is the
//! facilitator-bin issue; this entry point only reports the composition chosen by Cargo features.

use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let catalogue = match facilitator_bin::catalogue() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "x402-facilitator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--list-schemes") => {
            let _ = write!(
                std::io::stdout(),
                "{}",
                facilitator_bin::scheme_table(catalogue)
            );
            ExitCode::SUCCESS
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "usage: x402-facilitator --list-schemes\n(the HTTP server is not part of this build yet)"
            );
            ExitCode::from(2)
        }
    }
}
