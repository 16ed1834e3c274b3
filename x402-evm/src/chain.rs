//! The chain reads verification needs, with reverts told apart from RPC failures, and errors
//! that never carry an RPC URL.
//!
//! Only an answer that reports the call's *execution* failing is a revert: JSON-RPC code 3
//! (`execution reverted` with data), or a message naming a revert or an EVM halt (invalid opcode,
//! out of gas, stack errors — anvil reports those as `-32603 EVM error …`). Every other error
//! answer (rate limits, `internal error`, `header not found`, a node's trouble) is an RPC failure:
//! the caller answers it as a transient error, never as a verdict on the payment.

use alloy::primitives::{Address, Bytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::json_rpc::ErrorPayload;
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

/// What nodes write when a call's execution failed (lower case): a revert, or an EVM halt.
const EXECUTION_FAILURES: &[&str] = &[
    "revert",
    "evm error",
    "invalid opcode",
    "invalid jump",
    "out of gas",
    "stack underflow",
    "stack overflow",
    "write protection",
    "vm execution error",
];

/// Whether an `eth_call` error answer reports the call's execution failing (code 3, or a
/// revert/halt message), as opposed to the node or a gateway failing to answer.
pub fn is_execution_failure(error: &ErrorPayload) -> bool {
    if error.code == 3 {
        return true;
    }
    let message = error.message.to_ascii_lowercase();
    EXECUTION_FAILURES.iter().any(|w| message.contains(w))
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
        Err(RpcError::ErrorResp(e)) if is_execution_failure(&e) => Ok(CallResult::Reverted),
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

/// Contracts seen with code, bounded, EIP-7702 delegations never kept (see [`crate::code`]).
pub use crate::code::CodeCache;

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: i64, message: &str) -> ErrorPayload {
        ErrorPayload {
            code,
            message: message.to_owned().into(),
            data: None,
        }
    }

    #[test]
    fn only_execution_failures_are_reverts() {
        for revert in [
            error(3, "execution reverted: FiatTokenV2: invalid signature"),
            error(-32000, "execution reverted"),
            error(-32603, "EVM error InvalidFEOpcode"),
            error(-32603, "EVM error OutOfGas"),
            error(-32000, "invalid opcode: INVALID"),
            error(-32015, "VM execution error."),
        ] {
            assert!(is_execution_failure(&revert), "{revert:?}");
        }
        for failure in [
            error(-32005, "limit exceeded"),
            error(-32603, "internal error"),
            error(-32000, "header not found"),
            error(
                -32602,
                "BlockOutOfRangeError: block height is 1 but requested was 9",
            ),
            error(-32003, "Insufficient funds for gas * price + value"),
            error(-32601, "the method eth_call does not exist"),
        ] {
            assert!(!is_execution_failure(&failure), "{failure:?}");
        }
    }
}
