# A seller built with the official Python FastAPI middleware (x402 on PyPI), settling through the
# facilitator at $FACILITATOR_URL. The price names a custom asset ($ASSET, with its EIP-712
# name/version), so no default-asset table is involved. GET /weather is paid with EIP-3009,
# GET /weather-permit2 through Permit2. GET /weather-drain is /weather whose handler first calls
# $DRAIN_URL (a test hook that empties the buyer's wallet), so that its settlement fails after a
# valid verify. Prints "listening on http://…" once the middleware has read the facilitator's
# /supported (it does so when it is built) and the socket listens.
import os
import socket

import httpx
import uvicorn
from fastapi import FastAPI
from x402 import x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.middleware.fastapi import payment_middleware
from x402.http.types import PaymentOption, RouteConfig
from x402.mechanisms.evm.exact import ExactEvmServerScheme

env = os.environ
network = env["NETWORK"]
server = x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=env["FACILITATOR_URL"])))
server.register(network, ExactEvmServerScheme())


def route(description: str, extra: dict) -> RouteConfig:
    price = {
        "amount": env["AMOUNT"],
        "asset": env["ASSET"],
        "extra": {"name": env["TOKEN_NAME"], "version": env["TOKEN_VERSION"], **extra},
    }
    option = PaymentOption(scheme="exact", pay_to=env["PAY_TO"], price=price, network=network)
    return RouteConfig(accepts=option, description=description)


app = FastAPI()
app.middleware("http")(
    payment_middleware(
        {
            "GET /weather": route("today's weather", {}),
            "GET /weather-permit2": route(
                "today's weather, through Permit2", {"assetTransferMethod": "permit2"}
            ),
            "GET /weather-drain": route("today's weather, unpaid in the end", {}),
        },
        server,
    )
)


@app.get("/weather")
async def weather() -> dict:
    return {"weather": "sunny", "from": "fastapi"}


@app.get("/weather-permit2")
async def weather_permit2() -> dict:
    return {"weather": "cloudy", "from": "fastapi"}


@app.get("/weather-drain")
async def weather_drain() -> dict:
    async with httpx.AsyncClient() as client:
        (await client.get(env["DRAIN_URL"])).raise_for_status()
    return {"weather": "a secret that must not leak", "from": "fastapi"}


if __name__ == "__main__":
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
