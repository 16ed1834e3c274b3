// The official client (@x402/fetch + @x402/svm) paying `exact` on Solana over v1
// (@x402/svm/exact/v1/client, on the v1 network name $X402_INTEROP_V1_NETWORK) and v2, reading
// mints and blockhashes from $SOLANA_RPC_URL (the local validator). Both schemes are constructed
// with the RPC URL (see pay-svm.mjs for why the register helpers are not used).
// Key: $X402_INTEROP_SOLANA_KEY, a solana-keygen JSON array of 64 bytes (never printed).
// Prints one JSON line per URL: {"url", "payer", "status", "body", "header", "settlement"}.
import { wrapFetchWithPaymentFromConfig, decodePaymentResponseHeader } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { ExactSvmSchemeV1 } from "@x402/svm/exact/v1/client";
import { createKeyPairSignerFromBytes } from "@solana/kit";

const signer = await createKeyPairSignerFromBytes(
  Uint8Array.from(JSON.parse(process.env.X402_INTEROP_SOLANA_KEY)),
);
const v1Network = process.env.X402_INTEROP_V1_NETWORK;
if (!v1Network) throw new Error("X402_INTEROP_V1_NETWORK is not set");
const rpcUrl = process.env.SOLANA_RPC_URL;
const fetchWithPayment = wrapFetchWithPaymentFromConfig(fetch, {
  schemes: [
    { network: "solana:*", client: new ExactSvmScheme(signer, { rpcUrl }) },
    { network: v1Network, client: new ExactSvmSchemeV1(signer, { rpcUrl }), x402Version: 1 },
  ],
  // The test bed's mints are not among the SDK's default assets.
  spendControls: false,
});

for (const url of process.argv.slice(2)) {
  try {
    const response = await fetchWithPayment(url, { method: "GET" });
    const header = ["PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE"].find((h) => response.headers.has(h));
    console.log(JSON.stringify({
      url,
      payer: signer.address,
      status: response.status,
      body: await response.text(),
      header: header ?? null,
      settlement: header ? decodePaymentResponseHeader(response.headers.get(header)) : null,
    }));
  } catch (error) {
    console.log(JSON.stringify({ url, error: String(error?.stack ?? error) }));
  }
}
