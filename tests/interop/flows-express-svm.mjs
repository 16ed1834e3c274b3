// A seller built with the official Express middleware (@x402/express) offering `exact` on Solana
// in both token programs, settling through the facilitator at $FACILITATOR_URL (which fills
// `feePayer` from its /supported). Prices name the test bed's mints in atomic units ($AMOUNT),
// so no default-asset table is involved; $SOLANA_RPC_URL is the local validator. Prints
// "listening on http://…".
//
//   GET /spl   $ASSET_SPL, an SPL Token mint
//   GET /t22   $ASSET_T22, a Token-2022 mint
//
// v2 only, as every @x402/express 2.27 seller (see flows-express-evm.mjs).
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { ExactSvmScheme } from "@x402/svm/exact/server";
import { HTTPFacilitatorClient } from "@x402/core/server";

const { FACILITATOR_URL, NETWORK, ASSET_SPL, ASSET_T22, PAY_TO, AMOUNT, SOLANA_RPC_URL } =
  process.env;
const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: FACILITATOR_URL }))
  .register(NETWORK, new ExactSvmScheme({ rpcUrl: SOLANA_RPC_URL }));

const accepts = (asset) => ({
  scheme: "exact",
  network: NETWORK,
  payTo: PAY_TO,
  price: { amount: AMOUNT, asset },
  maxTimeoutSeconds: 120,
});
const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /spl": { accepts: accepts(ASSET_SPL), description: "paid with SPL Token" },
      "GET /t22": { accepts: accepts(ASSET_T22), description: "paid with Token-2022" },
    },
    server,
  ),
);
app.get("/spl", (_req, res) => res.json({ paid: "spl", from: "express" }));
app.get("/t22", (_req, res) => res.json({ paid: "t22", from: "express" }));

const listener = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${listener.address().port}`);
});
