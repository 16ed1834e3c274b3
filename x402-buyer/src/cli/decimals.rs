//! `x402 pay` checks each `--asset`'s decimals against the token's own before anything is paid.
//!
//! `--max` and `--total` are amounts in the asset's units, turned into atomic units with the
//! decimals the `--asset` entry states. A wrong entry moves the cap by powers of ten: USDC (6
//! decimals) entered with 18 lets `--max 0.10` pay 10¹¹ USDC. So every `--asset` is checked before
//! the cap applies — EVM tokens by their `decimals()` on the `--evm-rpc` serving the asset's
//! chain (checked by `eth_chainId`), Solana mints by the mint account's decimals on the
//! `--solana-rpc` (the endpoint the payment itself is built with). A mismatch, a token that is
//! not there, or an EVM `--asset` without an RPC of its chain is a usage error (exit 2); an RPC
//! that cannot be reached is a failure (exit 1). Either way nothing is paid. The built-in assets
//! (each EVM network's default stablecoin) are not checked: their decimals are the table's.

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider as _, ProviderBuilder};
use x402_evm::abi::eip3009::IEip3009Token;

use crate::KnownAsset;

/// How long one RPC request may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the check refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The command line is wrong (exit 2): a mismatch, no token there, no RPC for a chain.
    Usage(String),
    /// An RPC could not be asked (exit 1).
    Failure(String),
}

/// The `--asset` entry as written (its symbol left out).
fn entry(a: &KnownAsset) -> String {
    format!("--asset {}:{}:{}", a.network, a.address, a.decimals)
}

fn mismatch(a: &KnownAsset, actual: u8) -> Refusal {
    Refusal::Usage(format!(
        "{}: the token has {actual} decimals, not {}; nothing was paid (--max and --total are \
         read with the --asset's decimals: fix the entry)",
        entry(a),
        a.decimals
    ))
}

/// Checks every asset of `assets` (the `--asset` entries) on eip155 or solana against the chain.
pub(super) async fn check(
    assets: &[KnownAsset],
    evm_rpcs: &[String],
    solana_rpc: &str,
) -> Result<(), Refusal> {
    let evm: Vec<&KnownAsset> = assets
        .iter()
        .filter(|a| a.network.namespace() == "eip155")
        .collect();
    let solana: Vec<&KnownAsset> = assets
        .iter()
        .filter(|a| a.network.namespace() == "solana")
        .collect();
    if !evm.is_empty() {
        check_evm(&evm, evm_rpcs).await?;
    }
    if !solana.is_empty() {
        check_solana(&solana, solana_rpc).await?;
    }
    Ok(())
}

/// The RPCs by the chain id they answer. An endpoint's URL may carry an API key: no message
/// repeats it, only its position.
pub(super) async fn evm_chains(urls: &[String]) -> Result<BTreeMap<u64, DynProvider>, Refusal> {
    let mut chains = BTreeMap::new();
    for (i, url) in urls.iter().enumerate() {
        let which = format!("--evm-rpc #{}", i + 1);
        let url = url
            .parse()
            .map_err(|_| Refusal::Usage(format!("{which} is not a URL")))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let chain = tokio::time::timeout(RPC_TIMEOUT, provider.get_chain_id())
            .await
            .map_err(|_| Refusal::Failure(format!("{which}: eth_chainId timed out")))?
            .map_err(|e| Refusal::Failure(format!("{which}: eth_chainId failed: {}", kind(&e))))?;
        chains.insert(chain, provider);
    }
    Ok(chains)
}

/// A transport error's kind, without the endpoint (its URL may carry an API key).
fn kind(e: &alloy::transports::TransportError) -> String {
    use alloy::transports::RpcError;
    match e {
        RpcError::ErrorResp(p) => format!("the endpoint answered error {}: {}", p.code, p.message),
        RpcError::Transport(_) => {
            "the endpoint could not be reached, or refused the request".to_owned()
        }
        RpcError::DeserError { .. } => "the endpoint's answer is not JSON-RPC".to_owned(),
        _ => "the request failed".to_owned(),
    }
}

async fn check_evm(assets: &[&KnownAsset], urls: &[String]) -> Result<(), Refusal> {
    if urls.is_empty() {
        let networks: Vec<String> = assets.iter().map(|a| a.network.to_string()).collect();
        return Err(Refusal::Usage(format!(
            "{} needs --evm-rpc URL (or $X402_EVM_RPC) for {}: an EVM --asset's decimals are \
             checked against the token's decimals() before --max applies, and are never trusted \
             unchecked; nothing was paid",
            entry(assets[0]),
            networks.join(", ")
        )));
    }
    let chains = evm_chains(urls).await?;
    for a in assets {
        let Some(provider) = a.network.eip155_chain_id().and_then(|c| chains.get(&c)) else {
            let served: Vec<String> = chains.keys().map(|c| format!("eip155:{c}")).collect();
            return Err(Refusal::Usage(format!(
                "{}: no --evm-rpc serves {} (they serve {}); nothing was paid",
                entry(a),
                a.network,
                served.join(", ")
            )));
        };
        let address: Address = a
            .address
            .parse()
            .map_err(|_| Refusal::Usage(format!("{}: not an EVM address", entry(a))))?;
        let code = tokio::time::timeout(RPC_TIMEOUT, provider.get_code_at(address))
            .await
            .map_err(|_| Refusal::Failure(format!("{}: eth_getCode timed out", entry(a))))?
            .map_err(|e| Refusal::Failure(format!("{}: eth_getCode: {}", entry(a), kind(&e))))?;
        if code.is_empty() {
            return Err(Refusal::Usage(format!(
                "{}: there is no contract at {} on {}; nothing was paid",
                entry(a),
                a.address,
                a.network
            )));
        }
        let token = IEip3009Token::new(address, provider.clone());
        let decimals = tokio::time::timeout(RPC_TIMEOUT, token.decimals().call())
            .await
            .map_err(|_| Refusal::Failure(format!("{}: decimals() timed out", entry(a))))?
            .map_err(|e| match e {
                alloy::contract::Error::TransportError(t)
                    if !matches!(t, alloy::transports::RpcError::ErrorResp(_)) =>
                {
                    Refusal::Failure(format!("{}: decimals(): {}", entry(a), kind(&t)))
                }
                _ => Refusal::Usage(format!(
                    "{}: the contract has no decimals() (is it a token?); nothing was paid",
                    entry(a)
                )),
            })?;
        if decimals != a.decimals {
            return Err(mismatch(a, decimals));
        }
    }
    Ok(())
}

async fn check_solana(assets: &[&KnownAsset], url: &str) -> Result<(), Refusal> {
    // The URL may carry an API key: the error does not repeat it.
    let rpc = scheme_exact_svm::rpc::Rpc::new(&[url.to_owned()], RPC_TIMEOUT)
        .map_err(|e| Refusal::Usage(format!("--solana-rpc: {e}")))?;
    for a in assets {
        let mint = a
            .address
            .parse::<solana_pubkey::Pubkey>()
            .map_err(|_| Refusal::Usage(format!("{}: not a base58 mint address", entry(a))))?;
        let info = scheme_exact_svm::token::fetch_mint(&rpc, &mint)
            .await
            .map_err(|e| match e {
                x402_core::SchemeError::Unusable(m) => Refusal::Usage(format!(
                    "{}: {m} on --solana-rpc; nothing was paid",
                    entry(a)
                )),
                other => Refusal::Failure(format!("{}: --solana-rpc: {other}", entry(a))),
            })?;
        if info.decimals != a.decimals {
            return Err(mismatch(a, info.decimals));
        }
    }
    Ok(())
}
