# A paid MCP server built with the official Python x402 MCP server helpers
# (x402.mcp.create_payment_wrapper of the PyPI `x402` package, on the official MCP Python SDK's
# FastMCP), settling through the facilitator at $FACILITATOR_URL, as their e2e server does
# (e2e/servers/mcp-python) but over stdio or streamable HTTP.
#
# Usage: python mcp_server.py stdio|http
#   stdio  the MCP protocol on stdin/stdout (logs on stderr)
#   http   streamable HTTP at /mcp on a free loopback port; prints "listening on http://…/mcp"
#          once the resource server has read the facilitator's /supported and the socket listens
#
# Tools: `get_weather` (paid, exact), `get_weather_drain` (paid; first calls $DRAIN_URL, a test
# hook that empties the payer's wallet, so that its settlement fails after a valid verify) and
# `ping` (free).
#
# Payment: exact on $NETWORK (eip155:* or solana:*) of $AMOUNT atomic units of $ASSET to
# $PAY_TO; on EVM the asset's EIP-712 domain is $TOKEN_NAME / $TOKEN_VERSION. The price names a
# custom asset, so no default-asset table is involved.
import json
import os
import socket
import sys

import httpx
from mcp.server.fastmcp import FastMCP
from x402 import ResourceConfig, ResourceInfo, x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.mcp import create_payment_wrapper

env = os.environ
network = env["NETWORK"]
server = x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=env["FACILITATOR_URL"])))
price = {"amount": env["AMOUNT"], "asset": env["ASSET"]}
if network.startswith("solana:"):
    from x402.mechanisms.svm.exact import ExactSvmServerScheme

    server.register(network, ExactSvmServerScheme())
else:
    from x402.mechanisms.evm.exact import ExactEvmServerScheme

    server.register(network, ExactEvmServerScheme())
    price["extra"] = {"name": env["TOKEN_NAME"], "version": env["TOKEN_VERSION"]}
# Reads the facilitator's /supported (the Solana fee payer comes from there).
server.initialize()
accepts = server.build_payment_requirements(
    ResourceConfig(
        scheme="exact",
        network=network,
        pay_to=env["PAY_TO"],
        price=price,
        max_timeout_seconds=120,
    )
)


def paid(name: str, description: str):
    return create_payment_wrapper(
        server,
        accepts=accepts,
        resource=ResourceInfo(
            url=f"mcp://tool/{name}", description=description, mime_type="application/json"
        ),
    )


mcp = FastMCP("x402-rs interop (python)", log_level="WARNING")


@mcp.tool(name="get_weather", description="today's weather (paid)")
@paid("get_weather", "today's weather")
async def get_weather(city: str = "Lisbon") -> str:
    return json.dumps({"city": city, "weather": "sunny", "from": "python"})


@mcp.tool(name="get_weather_drain", description="today's weather, unpaid in the end")
@paid("get_weather_drain", "today's weather, unpaid in the end")
async def get_weather_drain(city: str = "Lisbon") -> str:
    async with httpx.AsyncClient() as client:
        (await client.get(env["DRAIN_URL"])).raise_for_status()
    return json.dumps({"city": city, "weather": "a secret that must not leak", "from": "python"})


@mcp.tool(name="ping", description="a free health check")
def ping() -> str:
    return "pong"


def main(transport: str) -> None:
    if transport == "stdio":
        mcp.run("stdio")
        return
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    config = uvicorn.Config(mcp.streamable_http_app(), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1])
