//! The chain reads verification needs, with reverts told apart from transport failures, and
//! errors that never carry an RPC URL.

use alloy::primitives::{Address, Bytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use alloy::transports::{RpcError, TransportErrorKind};
use x402_core::SchemeError;

use crate::error::describe_rpc_error;

/// The result of an `eth_call`: returned data, or a revert.
#[derive(Debug, Clone)]
pub enum CallResult {
    /// The call succeeded.
    Ok(Bytes),
    /// The call reverted.
    Reverted,
}

/// An RPC failure as a scheme error, described by [`describe_rpc_error`] (no URL, no payload).
pub fn rpc_error(e: RpcError<TransportErrorKind>) -> SchemeError {
    SchemeError::Rpc(describe_rpc_error(&e))
}

/// `eth_call` of `data` on `to`, sent as `from`.
pub async fn call(
    provider: &DynProvider,
    from: Address,
    to: Address,
    data: Bytes,
) -> Result<CallResult, SchemeError> {
    let tx = TransactionRequest::default()
        .from(from)
        .to(to)
        .input(data.into());
    call_request(provider, tx).await
}

/// `eth_call` of a complete request (gas limit and fee fields as a send would carry them).
pub async fn call_request(
    provider: &DynProvider,
    tx: TransactionRequest,
) -> Result<CallResult, SchemeError> {
    match provider.call(tx).await {
        Ok(out) => Ok(CallResult::Ok(out)),
        Err(RpcError::ErrorResp(_)) => Ok(CallResult::Reverted),
        Err(e) => Err(rpc_error(e)),
    }
}

/// A typed view call; `None` when it reverted or returned something undecodable.
pub async fn view<C: SolCall>(
    provider: &DynProvider,
    from: Address,
    to: Address,
    call_data: C,
) -> Result<Option<C::Return>, SchemeError> {
    match call(provider, from, to, call_data.abi_encode().into()).await? {
        CallResult::Ok(out) => Ok(C::abi_decode_returns(&out).ok()),
        CallResult::Reverted => Ok(None),
    }
}

/// The code at `address`.
pub async fn code(provider: &DynProvider, address: Address) -> Result<Bytes, SchemeError> {
    provider.get_code_at(address).await.map_err(rpc_error)
}

/// Remembers contracts seen with code. A call to an address without code "succeeds" and proves
/// nothing (threat-model S32), so verification checks for code first; positive answers are
/// cached (code does not disappear), so the check costs one RPC per asset, not per payment.
#[derive(Debug, Default)]
pub struct CodeCache {
    seen: std::sync::Mutex<std::collections::HashSet<Address>>,
}

impl CodeCache {
    /// Whether `address` holds code (one `eth_getCode` until it is seen with code).
    pub async fn has_code(
        &self,
        provider: &DynProvider,
        address: Address,
    ) -> Result<bool, SchemeError> {
        let lock = || self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if lock().contains(&address) {
            return Ok(true);
        }
        let has = !code(provider, address).await?.is_empty();
        if has {
            lock().insert(address);
        }
        Ok(has)
    }
}
