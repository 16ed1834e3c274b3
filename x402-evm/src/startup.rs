//! Start-up checks and readiness probes shared by the EVM schemes: the RPC serves the configured
//! chain, the contracts a scheme needs exist, and the signers hold enough native currency.

use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use x402_core::{Network, SchemeError, SchemeStatus, SignerStatus};

use crate::error::describe_rpc_error;
use crate::signers::SignerPool;

/// Refuses to start on a wrong chain, a missing contract (`(what, address)` pairs) or a signer
/// below `min_balance` (wei, decimal), each with a message naming the cause. Returns the parsed
/// floor.
pub async fn check(
    network: &Network,
    provider: &DynProvider,
    pool: &SignerPool,
    contracts: &[(String, Address)],
    min_balance: Option<&str>,
) -> Result<Option<U256>, SchemeError> {
    let expected =
        crate::parse::chain_id(network).map_err(|e| SchemeError::Config(e.to_string()))?;
    if pool.chain_id() != expected {
        return Err(SchemeError::Config(format!(
            "the RPC for {network} serves chain id {}, not {expected}",
            pool.chain_id()
        )));
    }
    for (what, address) in contracts {
        let code = provider
            .get_code_at(*address)
            .await
            .map_err(|e| SchemeError::Rpc(describe_rpc_error(&e)))?;
        if code.is_empty() {
            return Err(SchemeError::Config(format!(
                "{what} has no contract at {address} on {network}"
            )));
        }
    }
    let floor = min_balance
        .map(|f| crate::parse::uint("min_signer_balance", f))
        .transpose()
        .map_err(|e| SchemeError::Config(e.to_string()))?;
    if let Some(floor) = floor {
        let balances = pool.balances().await;
        if balances.len() != pool.addresses().len() {
            return Err(SchemeError::Rpc(format!(
                "cannot read the signer balances on {network}"
            )));
        }
        for (address, balance) in balances {
            if balance < floor {
                return Err(SchemeError::Config(format!(
                    "signer {address} on {network} holds {balance} wei, below min_signer_balance {floor}"
                )));
            }
        }
    }
    Ok(floor)
}

/// Probes the chain for readiness: the RPC answers, and each signer's balance against `floor`
/// (a signer with nothing is never funded).
pub async fn status(
    provider: &DynProvider,
    pool: &SignerPool,
    floor: Option<U256>,
) -> Result<SchemeStatus, SchemeError> {
    provider
        .get_block_number()
        .await
        .map_err(|e| SchemeError::Rpc(describe_rpc_error(&e)))?;
    let balances = pool.balances().await;
    if balances.len() != pool.addresses().len() {
        return Err(SchemeError::Rpc("cannot read the signer balances".into()));
    }
    let floor = floor.unwrap_or(U256::ZERO);
    Ok(SchemeStatus {
        signers: balances
            .into_iter()
            .map(|(address, balance)| SignerStatus {
                address: address.to_checksum(None),
                balance: balance.into(),
                funded: balance >= floor && !balance.is_zero(),
            })
            .collect(),
    })
}
