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
    call_result(provider.call(tx).await)
}

/// An `eth_call` answer as a [`CallResult`]: data, a revert (an execution failure), or an RPC
/// failure.
fn call_result(
    answer: Result<Bytes, RpcError<TransportErrorKind>>,
) -> Result<CallResult, SchemeError> {
    match answer {
        Ok(out) => Ok(CallResult::Ok(out)),
        Err(RpcError::ErrorResp(e)) if is_execution_failure(&e) => Ok(CallResult::Reverted),
        Err(e) => Err(rpc_error(e)),
    }
}

/// The fee fields of a simulated transaction (as [`crate::signers::SignerPool::current_fees`]
/// quotes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFees {
    /// No fee field (the market could not be read).
    None,
    /// `gasPrice`.
    Legacy {
        /// Wei per gas.
        gas_price: u128,
    },
    /// `maxFeePerGas` and `maxPriorityFeePerGas`.
    Eip1559 {
        /// Wei per gas at most.
        max_fee_per_gas: u128,
        /// Tip, wei per gas at most.
        max_priority_fee_per_gas: u128,
    },
}

/// The transaction a verify simulates: what settle will send.
#[derive(Debug, Clone, Copy)]
pub struct SimulatedCall<'a> {
    /// The sender.
    pub from: Address,
    /// The contract called.
    pub to: Address,
    /// The call data.
    pub input: &'a Bytes,
    /// The gas limit.
    pub gas: u64,
    /// The fee fields.
    pub fees: CallFees,
}

impl SimulatedCall<'_> {
    /// The `eth_call` params `[transaction, "pending"]`, byte for byte as alloy writes them for
    /// `provider.call(tx)` of the `TransactionRequest` with these fields (field order `from`,
    /// `to`, `gasPrice` or `maxFeePerGas` and `maxPriorityFeePerGas`, `gas`, `input`; addresses
    /// and data in lower-case hex, quantities as minimal `0x` hex) — without building one.
    pub fn params(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(2 * self.input.len() + 256);
        out.push_str("[{\"from\":\"");
        push_hex(&mut out, self.from.as_slice());
        out.push_str("\",\"to\":\"");
        push_hex(&mut out, self.to.as_slice());
        out.push('"');
        // `write!` into a String does not fail.
        let _ = match self.fees {
            CallFees::None => Ok(()),
            CallFees::Legacy { gas_price } => write!(out, ",\"gasPrice\":\"{gas_price:#x}\""),
            CallFees::Eip1559 {
                max_fee_per_gas,
                max_priority_fee_per_gas,
            } => write!(
                out,
                ",\"maxFeePerGas\":\"{max_fee_per_gas:#x}\",\"maxPriorityFeePerGas\":\"{max_priority_fee_per_gas:#x}\""
            ),
        };
        let _ = write!(out, ",\"gas\":\"{:#x}\",\"input\":\"", self.gas);
        push_hex(&mut out, self.input);
        out.push_str("\"},\"pending\"]");
        out
    }
}

/// Appends `0x` and `bytes` in lower-case hex.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push_str("0x");
    out.reserve(2 * bytes.len());
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

/// The simulation of what settle will send: `eth_call` at `pending` of `call`, answered exactly
/// as [`call_request`] answers for the same transaction (revert, RPC failure, returned data).
/// The request goes through the provider's transport with the provider's next request id, so
/// its bytes are what `provider.call` sends; only alloy's `TransactionRequest`, its serializer
/// and its call future are skipped (a verify's hot path).
pub async fn simulate_call(
    provider: &DynProvider,
    call: &SimulatedCall<'_>,
) -> Result<CallResult, SchemeError> {
    call_result(eth_call_raw(provider, call.params()).await)
}

/// `eth_call` with `params` (JSON text) through the provider's transport, its answer read as
/// alloy's call future reads it (an error answer, data, or why neither).
async fn eth_call_raw(
    provider: &DynProvider,
    params: String,
) -> Result<Bytes, RpcError<TransportErrorKind>> {
    use alloy::rpc::json_rpc::{Request, RequestPacket, ResponsePacket, ResponsePayload};
    use tower::Service as _;
    let client = provider.client();
    let params = serde_json::value::RawValue::from_string(params).map_err(RpcError::ser_err)?;
    let request = Request::new("eth_call", client.next_id(), params)
        .serialize()
        .map_err(RpcError::ser_err)?;
    let mut transport = client.transport().clone();
    std::future::poll_fn(|cx| transport.poll_ready(cx)).await?;
    match transport.call(RequestPacket::Single(request)).await? {
        ResponsePacket::Single(response) => match response.payload {
            ResponsePayload::Failure(e) => Err(RpcError::ErrorResp(e)),
            ResponsePayload::Success(raw) => serde_json::from_str::<Bytes>(raw.get())
                .map_err(|e| RpcError::deser_err(e, raw.get())),
        },
        ResponsePacket::Batch(_) => Err(TransportErrorKind::custom_str(
            "received batch response from single request",
        )),
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

    /// A transport answering every request with one canned answer, keeping the request bodies.
    #[derive(Clone)]
    struct Canned {
        answer: Option<&'static str>,
        seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl tower::Service<alloy::rpc::json_rpc::RequestPacket> for Canned {
        type Response = alloy::rpc::json_rpc::ResponsePacket;
        type Error = alloy::transports::TransportError;
        type Future = alloy::transports::TransportFut<'static>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: alloy::rpc::json_rpc::RequestPacket) -> Self::Future {
            let body = serde_json::to_string(&request).unwrap();
            self.seen.lock().unwrap().push(body);
            let answer = self.answer;
            Box::pin(async move {
                match answer {
                    Some(text) => Ok(serde_json::from_str(text).unwrap()),
                    None => Err(TransportErrorKind::custom_str("connection reset")),
                }
            })
        }
    }

    fn canned(answer: Option<&'static str>) -> (DynProvider, Canned) {
        let transport = Canned {
            answer,
            seen: std::sync::Arc::default(),
        };
        let client = alloy::rpc::client::RpcClient::new(transport.clone(), true);
        let provider =
            alloy::providers::RootProvider::<alloy::network::Ethereum>::new(client).erased();
        (provider, transport)
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        fn u128(&mut self) -> u128 {
            // Mostly small values, sometimes zero or the largest.
            match self.next() % 5 {
                0 => 0,
                1 => u128::MAX,
                2 => u128::from(self.next() % 1000),
                _ => {
                    (u128::from(self.next()) << 64 | u128::from(self.next())) >> (self.next() % 128)
                }
            }
        }
    }

    fn alloy_request(call: &SimulatedCall<'_>) -> TransactionRequest {
        let tx = TransactionRequest::default()
            .from(call.from)
            .to(call.to)
            .input(call.input.clone().into())
            .gas_limit(call.gas);
        match call.fees {
            CallFees::None => tx,
            CallFees::Legacy { gas_price } => tx.gas_price(gas_price),
            CallFees::Eip1559 {
                max_fee_per_gas,
                max_priority_fee_per_gas,
            } => tx
                .max_fee_per_gas(max_fee_per_gas)
                .max_priority_fee_per_gas(max_priority_fee_per_gas),
        }
    }

    #[test]
    fn simulation_params_are_the_bytes_alloy_writes() {
        use alloy::eips::BlockId;
        use alloy::providers::EthCallParams;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..2_000 {
            let len = match round % 4 {
                0 => 0,
                1 => 4,
                2 => 228,
                _ => (rng.next() % 600) as usize,
            };
            let input = Bytes::from(rng.bytes(len));
            let fees = match rng.next() % 3 {
                0 => CallFees::None,
                1 => CallFees::Legacy {
                    gas_price: rng.u128(),
                },
                _ => CallFees::Eip1559 {
                    max_fee_per_gas: rng.u128(),
                    max_priority_fee_per_gas: rng.u128(),
                },
            };
            let call = SimulatedCall {
                from: Address::from_slice(&rng.bytes(20)),
                to: Address::from_slice(&rng.bytes(20)),
                input: &input,
                gas: match rng.next() % 3 {
                    0 => 0,
                    1 => u64::MAX,
                    _ => rng.next() >> (rng.next() % 64),
                },
                fees,
            };
            let theirs = EthCallParams::<alloy::network::Ethereum>::new(alloy_request(&call))
                .with_block(BlockId::pending());
            assert_eq!(
                call.params(),
                serde_json::to_string(&theirs).unwrap(),
                "{call:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_simulation_is_sent_and_answered_as_alloys_call() {
        let input = Bytes::from(vec![0xe3, 0xee, 0x16, 0x0e, 0, 1, 0xff]);
        let call = SimulatedCall {
            from: Address::repeat_byte(0x11),
            to: Address::repeat_byte(0xab),
            input: &input,
            gas: 150_000,
            fees: CallFees::Eip1559 {
                max_fee_per_gas: 2_000_000_000,
                max_priority_fee_per_gas: 1,
            },
        };
        let answers = [
            Some(r#"{"jsonrpc":"2.0","id":0,"result":"0x"}"#),
            Some(
                r#"{"jsonrpc":"2.0","id":0,"result":"0x0000000000000000000000000000000000000000000000000000000000000001"}"#,
            ),
            Some(r#"{"jsonrpc":"2.0","id":0,"result":"0xzz"}"#),
            Some(r#"{"jsonrpc":"2.0","id":0,"result":null}"#),
            Some(r#"{"jsonrpc":"2.0","id":0,"result":{"code":3,"message":"execution reverted"}}"#),
            Some(
                r#"{"jsonrpc":"2.0","id":0,"error":{"code":3,"message":"execution reverted: FiatTokenV2: invalid signature","data":"0x08c379a0"}}"#,
            ),
            Some(
                r#"{"jsonrpc":"2.0","id":0,"error":{"code":-32603,"message":"EVM error OutOfGas"}}"#,
            ),
            Some(
                r#"{"jsonrpc":"2.0","id":0,"error":{"code":-32000,"message":"header not found"}}"#,
            ),
            Some(r#"{"jsonrpc":"2.0","id":0,"error":{"code":-32005,"message":"limit exceeded"}}"#),
            Some(r#"[{"jsonrpc":"2.0","id":0,"result":"0x"}]"#),
            None,
        ];
        for answer in answers {
            let (ours, our_transport) = canned(answer);
            let (alloys, alloy_transport) = canned(answer);
            let got = simulate_call(&ours, &call).await;
            let want = call_request(&alloys, alloy_request(&call)).await;
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "{answer:?}");
            let sent = our_transport.seen.lock().unwrap().clone();
            assert_eq!(sent, *alloy_transport.seen.lock().unwrap(), "{answer:?}");
            assert_eq!(sent.len(), 1);
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
