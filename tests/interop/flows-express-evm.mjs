// A seller built with the official Express middleware (@x402/express) offering every EVM
// mechanism @x402/evm has a server for, settling through the facilitator at $FACILITATOR_URL.
// Prices name a custom asset ($ASSET, with its EIP-712 name/version), so no default-asset table
// is involved. Prints "listening on http://…".
//
//   GET /eip3009   exact, EIP-3009 ($AMOUNT)
//   GET /permit2   exact, Permit2 (`extra.assetTransferMethod: "permit2"`, $AMOUNT)
//   GET /metered   upto (@x402/evm/upto/server, Permit2) with a maximum of $UPTO_MAX; the handler
//                  charges $UPTO_CHARGE the way the reference does, with `setSettlementOverrides`
//                  (the `Settlement-Overrides` response header the middleware reads and removes)
//
// @x402/express 2.27 serves x402 v2 only: its requirements are built for the core's
// `x402Version` (2), its 402 is always a v2 document, and it reads the payment from
// PAYMENT-SIGNATURE alone (never X-PAYMENT).
import express from "express";
import { paymentMiddleware, setSettlementOverrides, x402ResourceServer } from "@x402/express";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { UptoEvmScheme } from "@x402/evm/upto/server";
import { HTTPFacilitatorClient } from "@x402/core/server";

const { FACILITATOR_URL, NETWORK, ASSET, PAY_TO, AMOUNT, UPTO_MAX, UPTO_CHARGE } = process.env;
const domain = { name: process.env.TOKEN_NAME, version: process.env.TOKEN_VERSION };
const server = new x402ResourceServer(new HTTPFacilitatorClient({ url: FACILITATOR_URL }))
  .register(NETWORK, new ExactEvmScheme())
  .register(NETWORK, new UptoEvmScheme());

const accepts = (scheme, amount, extra) => ({
  scheme,
  network: NETWORK,
  payTo: PAY_TO,
  price: { amount, asset: ASSET, extra: { ...domain, ...extra } },
  maxTimeoutSeconds: 120,
});
const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /eip3009": { accepts: accepts("exact", AMOUNT, {}), description: "exact, EIP-3009" },
      "GET /permit2": {
        accepts: accepts("exact", AMOUNT, { assetTransferMethod: "permit2" }),
        description: "exact, Permit2",
      },
      "GET /metered": { accepts: accepts("upto", UPTO_MAX, {}), description: "upto, metered" },
    },
    server,
  ),
);
app.get("/eip3009", (_req, res) => res.json({ paid: "eip3009", from: "express" }));
app.get("/permit2", (_req, res) => res.json({ paid: "permit2", from: "express" }));
app.get("/metered", (_req, res) => {
  setSettlementOverrides(res, { amount: UPTO_CHARGE });
  res.json({ paid: "upto", from: "express" });
});

const listener = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${listener.address().port}`);
});
