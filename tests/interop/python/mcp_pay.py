# The official Python x402 MCP client (x402.mcp.x402MCPSession of the PyPI `x402` package, over
# the official MCP Python SDK's ClientSession) calls tools of an x402 MCP server, as the x402 MCP
# transport specifies (specs/transports-v2/mcp.md).
#
# Usage: python mcp_pay.py TRANSPORT STEPS
#   TRANSPORT  `http URL` (streamable HTTP) or `stdio COMMAND [ARG...]` (the server spawned as a
#              child process, with the environment in $MCP_SERVER_ENV, a JSON object)
#   STEPS      a JSON list of {"tool", "arguments"?, "mode"}, run in order in one session:
#     pay      x402MCPSession.call_tool with auto_payment: the call without payment, the payment
#              request read by the session, a payment created by x402Client and the call again
#              with it in _meta["x402/payment"]
#     probe    the same session with auto_payment=False: the unpaid answer, and the payment
#              request as the session reads it
#     tamper   a payment created by x402Client for the session's reading of the payment request,
#              its signature broken, sent in _meta["x402/payment"]; the answer read by the session
#
# Payer: exact on EVM with $X402_INTEROP_KEY, or on Solana with $X402_INTEROP_SOLANA_KEY (a
# solana-keygen JSON array of 64 bytes) and the RPC at $SOLANA_RPC_URL (never printed). The
# test beds' tokens are no default asset of the SDK: $X402_INTEROP_ALLOWED is the JSON list of
# spend-control entries ({"network", "asset", "max_amount_per_payment"}) that allows them.
#
# Prints one JSON line per step: {"tool", "mode", "is_error", "texts", "payment_made",
# "payment_response", "payment_required", "structured_content", "meta"}: the session's result
# (`payment_response` is the settlement as the session read it from the result's _meta), the
# payment request of the final answer as the session parses one (when it is an error), and the
# raw result's structuredContent and _meta.
import asyncio
import json
import os
import sys
from contextlib import asynccontextmanager

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from x402 import x402Client
from x402.mcp import MCP_PAYMENT_META_KEY, x402MCPSession


def payer() -> x402Client:
    client = x402Client()
    if "X402_INTEROP_SOLANA_KEY" in os.environ:
        from solders.keypair import Keypair
        from x402.mechanisms.svm.exact import register_exact_svm_client
        from x402.mechanisms.svm.signers import KeypairSigner

        key = bytes(json.loads(os.environ["X402_INTEROP_SOLANA_KEY"]))
        signer = KeypairSigner(Keypair.from_bytes(key))
        register_exact_svm_client(client, signer, rpc_url=os.environ["SOLANA_RPC_URL"])
    else:
        from eth_account import Account
        from x402.mechanisms.evm.exact import register_exact_evm_client
        from x402.mechanisms.evm.signers import EthAccountSigner

        signer = EthAccountSigner(Account.from_key(os.environ["X402_INTEROP_KEY"]))
        register_exact_evm_client(client, signer)
    client.set_spend_controls({"allowed_assets": json.loads(os.environ["X402_INTEROP_ALLOWED"])})
    return client


@asynccontextmanager
async def connect(transport: list[str]):
    kind, rest = transport[0], transport[1:]
    if kind == "http":
        async with streamable_http_client(rest[0]) as (read, write, _):
            async with ClientSession(read, write) as session:
                yield session
    elif kind == "stdio":
        env = {"PATH": os.environ.get("PATH", ""), **json.loads(os.environ["MCP_SERVER_ENV"])}
        server = StdioServerParameters(command=rest[0], args=rest[1:], env=env)
        async with stdio_client(server) as (read, write):
            async with ClientSession(read, write) as session:
                yield session
    else:
        raise SystemExit(f"unknown transport {kind}")


def dump(value):
    if value is None:
        return None
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return value


def broken(payload: dict) -> dict:
    """The payment with its signature broken: the EVM authorization's signature, or the Solana
    transaction's client signature (its second one: the first is the fee payer's placeholder)."""
    inner = payload["payload"]
    if "signature" in inner:
        signature = inner["signature"]
        inner["signature"] = signature[:10] + "0" * (len(signature) - 10)
    else:
        import base64

        raw = bytearray(base64.b64decode(inner["transaction"]))
        # 1 byte of signature count, then 64 bytes per signature: flip a byte of the second.
        raw[1 + 64 + 7] ^= 0xFF
        inner["transaction"] = base64.b64encode(bytes(raw)).decode()
    return payload


async def step(session: ClientSession, client: x402Client, step: dict) -> dict:
    tool, arguments, mode = step["tool"], step.get("arguments", {}), step["mode"]
    mcp = x402MCPSession(session, client, auto_payment=mode == "pay")
    if mode in ("pay", "probe"):
        result = await mcp.call_tool(tool, arguments)
    elif mode == "tamper":
        unpaid = await mcp.call_tool(tool, arguments)
        required = mcp._extract_payment_required(unpaid.raw_result)
        payload = await client.create_payment_payload(required)
        document = broken(payload.model_dump(by_alias=True))
        raw = await session.call_tool(tool, arguments, meta={MCP_PAYMENT_META_KEY: document})
        result = mcp._build_result(raw, payment_made=True)
    else:
        raise SystemExit(f"unknown mode {mode}")
    raw = result.raw_result
    # The payment request of the final answer, as the session reads one.
    required = mcp._extract_payment_required(raw) if result.is_error else None
    return {
        "tool": tool,
        "mode": mode,
        "is_error": bool(result.is_error),
        "texts": [item.text for item in result.content if hasattr(item, "text")],
        "payment_made": result.payment_made,
        "payment_response": dump(result.payment_response),
        "payment_required": dump(required),
        "structured_content": raw.structuredContent,
        "meta": raw.meta,
    }


async def main(transport: list[str], steps: list[dict]) -> None:
    client = payer()
    async with connect(transport) as session:
        await session.initialize()
        for s in steps:
            print(json.dumps(await step(session, client, s)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:-1], json.loads(sys.argv[-1])))
