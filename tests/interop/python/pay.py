# The official Python client (x402 on PyPI: x402Client + x402HttpxClient, exact on EVM) pays each
# URL given on the command line, v2 or v1 as the seller offers. Key: $X402_INTEROP_KEY (never
# printed). The test bed's USDC is no default asset of the SDK: $X402_INTEROP_ALLOWED is the JSON
# list of spend-control entries ({"network", "asset", "max_amount_per_payment"}) that allows it.
# Prints one JSON line per URL: {"url", "status", "body", "header", "settlement"} (`header` names
# the settlement header read: PAYMENT-RESPONSE for v2, X-PAYMENT-RESPONSE for v1) or
# {"url", "error"}.
import asyncio
import json
import os
import sys

from eth_account import Account
from x402 import x402Client
from x402.http import decode_payment_response_header
from x402.http.clients.httpx import x402HttpxClient
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner


def client() -> x402Client:
    signer = EthAccountSigner(Account.from_key(os.environ["X402_INTEROP_KEY"]))
    payer = register_exact_evm_client(x402Client(), signer)
    payer.set_spend_controls({"allowed_assets": json.loads(os.environ["X402_INTEROP_ALLOWED"])})
    return payer


async def main(urls: list[str]) -> None:
    async with x402HttpxClient(client(), timeout=120) as http:
        for url in urls:
            try:
                response = await http.get(url)
                v2 = "PAYMENT-RESPONSE" in response.headers
                name = "PAYMENT-RESPONSE" if v2 else "X-PAYMENT-RESPONSE"
                header = response.headers.get(name)
                settlement = decode_payment_response_header(header) if header else None
                line = {
                    "url": url,
                    "status": response.status_code,
                    "body": response.text,
                    "header": name if header else None,
                    "settlement": settlement.model_dump(exclude_none=True) if settlement else None,
                }
            except Exception as error:  # reported to the test, which fails on it
                line = {"url": url, "error": repr(error)}
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
