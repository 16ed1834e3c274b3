// A seller built with the official Express middleware (@x402/express), settling through the
// facilitator at $FACILITATOR_URL. The price names a custom asset ($ASSET, with its EIP-712
// name/version), so no default-asset table is involved. Prints "listening on http://…".
// GET /weather-drain is the same route whose handler first calls $DRAIN_URL (a test hook that
// empties the buyer's wallet), so that its settlement fails after a valid verify.
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { HTTPFacilitatorClient } from "@x402/core/server";

const { FACILITATOR_URL, NETWORK, ASSET, PAY_TO, AMOUNT, TOKEN_NAME, TOKEN_VERSION } = process.env;
const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: FACILITATOR_URL }))
  .register(NETWORK, new ExactEvmScheme());

const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /weather": {
        accepts: {
          scheme: "exact",
          network: NETWORK,
          payTo: PAY_TO,
          price: { amount: AMOUNT, asset: ASSET, extra: { name: TOKEN_NAME, version: TOKEN_VERSION } },
        },
        description: "today's weather",
      },
      "GET /weather-drain": {
        accepts: {
          scheme: "exact",
          network: NETWORK,
          payTo: PAY_TO,
          price: { amount: AMOUNT, asset: ASSET, extra: { name: TOKEN_NAME, version: TOKEN_VERSION } },
        },
        description: "today's weather, unpaid in the end",
      },
    },
    server,
  ),
);
app.get("/weather", (_req, res) => res.json({ weather: "sunny", from: "express" }));
app.get("/weather-drain", async (_req, res) => {
  if (process.env.DRAIN_URL) await fetch(process.env.DRAIN_URL);
  res.json({ weather: "a secret that must not leak", from: "express" });
});

const listener = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${listener.address().port}`);
});
