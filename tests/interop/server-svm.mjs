// A seller built with the official Express middleware (@x402/express) offering an exact-SVM
// requirement, settling through the facilitator at $FACILITATOR_URL (which fills `feePayer`
// from its /supported). The price names the test bed's mint ($ASSET) in atomic units, so no
// default-asset table is involved; with $SOLANA_RPC_URL the server embeds a recent blockhash of
// the local validator in the challenge. Prints "listening on http://…".
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { ExactSvmScheme } from "@x402/svm/exact/server";
import { HTTPFacilitatorClient } from "@x402/core/server";

const { FACILITATOR_URL, NETWORK, ASSET, PAY_TO, AMOUNT, SOLANA_RPC_URL } = process.env;
const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: FACILITATOR_URL }))
  .register(NETWORK, new ExactSvmScheme({ rpcUrl: SOLANA_RPC_URL }));

const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /forecast": {
        accepts: {
          scheme: "exact",
          network: NETWORK,
          payTo: PAY_TO,
          price: { amount: AMOUNT, asset: ASSET },
          maxTimeoutSeconds: 120,
        },
        description: "tomorrow's forecast",
      },
    },
    server,
  ),
);
app.get("/forecast", (_req, res) => res.json({ forecast: "clear skies", from: "express" }));

const listener = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${listener.address().port}`);
});
