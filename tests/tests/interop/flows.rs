//! Every scheme and version we support, both ways against the official TypeScript packages
//! (`@x402/*` 2.27, pinned in tests/interop/package-lock.json), always settled by our facilitator
//! on the local chains. With the tests in `main.rs`, the matrix (official client → our seller;
//! our buyer → an Express seller; our `x402` CLI → an Express seller) is:
//!
//! | combination                    | official → ours | ours → Express | CLI → Express |
//! |--------------------------------|-----------------|----------------|---------------|
//! | EVM exact v2, EIP-3009         | main.rs         | main.rs        | evm           |
//! | EVM exact v2, Permit2          | main.rs         | evm            | evm           |
//! | EVM upto v2 (Permit2)          | evm             | evm            | evm           |
//! | EVM exact v1, EIP-3009         | evm             | impossible     | impossible    |
//! | Solana exact v2, SPL Token     | main.rs         | main.rs        | svm           |
//! | Solana exact v2, Token-2022    | main.rs         | svm            | svm           |
//! | Solana exact v1, both programs | svm             | impossible     | impossible    |
//!
//! The official client is `@x402/fetch` with the scheme clients `@x402/evm/exact/client`,
//! `@x402/evm/upto/client`, `@x402/evm/exact/v1/client`, `@x402/svm/exact/client` and
//! `@x402/svm/exact/v1/client` (flows-pay-evm.mjs, flows-pay-svm.mjs). The Express sellers
//! (flows-express-evm.mjs, flows-express-svm.mjs) use `@x402/express` with
//! `@x402/evm/exact/server`, `@x402/evm/upto/server` and `@x402/svm/exact/server`; the upto seller
//! names its charge as the reference does, with `setSettlementOverrides` (the
//! `Settlement-Overrides` response header), below the maximum, and the tests assert that the
//! charge moved, not the maximum. Every test asserts the status, the settlement header and the
//! exact balance changes of buyer and seller.
//!
//! **v1 against Express is impossible with the 2.27 packages**: `@x402/express` serves x402 v2
//! only. Its resource server builds requirements for the core's `x402Version` constant (2) and
//! looks the facilitator's kinds up under version 2 only, its 402 is always a v2 document (a
//! `PAYMENT-REQUIRED` header, `x402Version: 2`), and `x402HTTPResourceServer.extractPayment`
//! reads the payment from `PAYMENT-SIGNATURE` alone, never `X-PAYMENT`. A v1 buyer is never asked
//! for a v1 payment, and a v1 payment sent anyway is never read. The v1 rows are covered in the
//! other direction (the official v1 scheme clients pay our v1-only routes).
//!
//! The CLI runs in process through `x402_buyer::cli::run`, the whole program the `x402` binary's
//! `main` hands its arguments, environment and streams to (as tests/tests/seller_buyer does), so
//! the interop binary needs no separately built executable; its [`Exit`] is the exit status.

mod evm;
mod svm;

use x402_buyer::cli::Exit;
use x402_tests::e2e::NodeScript;

/// Runs `script` on one URL and returns its JSON line, asserting that the script raised nothing.
async fn pay_one(script: &NodeScript, url: &str, env: &[(&str, String)]) -> serde_json::Value {
    let lines = script.run(&[url], env).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let result: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert!(result.get("error").is_none(), "{result}");
    result
}

/// Asserts a paid 200 whose settlement came in `header` on `network`; returns the settlement.
fn settled<'a>(
    result: &'a serde_json::Value,
    header: &str,
    network: &str,
) -> &'a serde_json::Value {
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["header"], header, "{result}");
    let settlement = &result["settlement"];
    assert_eq!(settlement["success"], true, "{result}");
    assert_eq!(settlement["network"], network, "{result}");
    assert!(
        !settlement["transaction"].as_str().unwrap().is_empty(),
        "{result}"
    );
    settlement
}

/// Runs the `x402` command line on `args` with `env` as its environment; returns how it ended,
/// its stdout and its stderr.
async fn x402(args: &[&str], env: &[(&str, String)]) -> (Exit, String, String) {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let env = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = x402_buyer::cli::run(&args, &env, &mut out, &mut err).await;
    (
        exit,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}
