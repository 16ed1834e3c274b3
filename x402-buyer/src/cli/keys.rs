//! The buyer's keys, read through the `env` function given to [`run`](super::run) (never by
//! clap), and the schemes they can pay with. No error repeats a key.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use scheme_exact_svm::BuyerOptions;
use solana_keypair::Keypair;
use x402_core::{BuyerRole as _, Registry};

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
pub(super) fn load_key(
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
pub(super) fn load_solana_key(
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

/// The schemes a buyer with these keys can pay with; the EVM buyers read `evm_rpcs` (chain id →
/// provider) to sign gas-sponsoring permits where a seller offers them.
pub(super) fn buyer_schemes(
    evm: Option<PrivateKeySigner>,
    solana: Option<(Keypair, String)>,
    evm_rpcs: &std::collections::BTreeMap<u64, alloy::providers::DynProvider>,
) -> Result<Registry, String> {
    let mut schemes = Registry::new();
    if let Some(signer) = evm {
        let signer = Arc::new(signer);
        let mut exact = scheme_exact_evm::Buyer::new(signer.clone());
        let mut upto = scheme_upto_evm::Buyer::new(signer);
        for (chain, provider) in evm_rpcs {
            exact = exact.with_rpc(*chain, provider.clone());
            upto = upto.with_rpc(*chain, provider.clone());
        }
        schemes
            .register(
                scheme_exact_evm::ANY_NETWORK,
                scheme_exact_evm::VERSIONS,
                exact.into_scheme(),
            )
            .map_err(|e| e.to_string())?;
        schemes
            .register(
                scheme_upto_evm::ANY_NETWORK,
                scheme_upto_evm::VERSIONS,
                upto.into_scheme(),
            )
            .map_err(|e| e.to_string())?;
    }
    if let Some((keypair, rpc_url)) = solana {
        // The URL may carry an API key: the error does not repeat it.
        let rpc = scheme_exact_svm::rpc::Rpc::new(&[rpc_url], Duration::from_secs(30))
            .map_err(|e| format!("--solana-rpc: {e}"))?;
        schemes
            .register(
                scheme_exact_svm::ANY_NETWORK,
                scheme_exact_svm::VERSIONS,
                scheme_exact_svm::Buyer::new(keypair, rpc, BuyerOptions::default()).into_scheme(),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(schemes)
}
