// The official client (@x402/fetch, @x402/core's x402Client, @x402/evm exact) paying a seller
// with a payment identifier: a client extension appends the id with @x402/extensions'
// appendPaymentIdentifierToExtensions, then the exact PAYMENT-SIGNATURE the client sent is sent
// again with plain fetch (a replay). Key: $X402_INTEROP_KEY (never printed); id: $PAYID_ID.
// Prints one JSON line: {"status","body","sent","replayStatus","replayBody","replayed"}.
import { wrapFetchWithPayment, x402Client } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { appendPaymentIdentifierToExtensions } from "@x402/extensions/payment-identifier";
import { privateKeyToAccount } from "viem/accounts";

const account = privateKeyToAccount(process.env.X402_INTEROP_KEY);
const id = process.env.PAYID_ID;
const client = x402Client
  .fromConfig({
    schemes: [{ network: "eip155:*", client: new ExactEvmScheme(account) }],
    spendControls: false,
  })
  .registerExtension({
    key: "payment-identifier",
    enrichPaymentPayload: async (payload, required) => {
      const extensions = structuredClone(payload.extensions ?? required.extensions ?? {});
      appendPaymentIdentifierToExtensions(extensions, id);
      return { ...payload, extensions };
    },
  });
let sent = null;
const recording = async (input, init) => {
  const request = new Request(input, init);
  sent = request.headers.get("PAYMENT-SIGNATURE") ?? sent;
  return fetch(request);
};
const url = process.argv[2];
try {
  const response = await wrapFetchWithPayment(recording, client)(url, { method: "GET" });
  const body = await response.text();
  const replay = await fetch(url, { headers: { "PAYMENT-SIGNATURE": sent } });
  console.log(JSON.stringify({
    status: response.status,
    body,
    sent: sent ? JSON.parse(Buffer.from(sent, "base64").toString()) : null,
    replayStatus: replay.status,
    replayBody: await replay.text(),
    replayed: replay.headers.get("x402-idempotent-replay"),
  }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.stack ?? error) }));
}
