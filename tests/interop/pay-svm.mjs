// The official client (@x402/fetch + @x402/svm) pays each URL given on the command line on
// Solana, reading mints and blockhashes from the RPC at $SOLANA_RPC_URL (the local validator).
// Key: $X402_INTEROP_SOLANA_KEY, a solana-keygen JSON array of 64 bytes (never printed).
// Prints one JSON line per URL: {"url", "status", "body", "settlement"}.
//
// The scheme is constructed directly rather than through `registerExactSvmScheme`: in
// @x402/svm 2.27.0 that helper builds `new ExactSvmScheme(config.signer)` without a config, so
// the client would fall back to the public RPC of the requirement's network
// (`createRpcClient(network, customRpcUrl)` in the package's chunk picking
// https://api.devnet.solana.com for solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1).
// `new ExactSvmScheme(signer, { rpcUrl })` takes the local validator instead.
import { wrapFetchWithPaymentFromConfig, decodePaymentResponseHeader } from "@x402/fetch";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { createKeyPairSignerFromBytes } from "@solana/kit";

const signer = await createKeyPairSignerFromBytes(
  Uint8Array.from(JSON.parse(process.env.X402_INTEROP_SOLANA_KEY)),
);
const fetchWithPayment = wrapFetchWithPaymentFromConfig(fetch, {
  schemes: [
    {
      network: "solana:*",
      client: new ExactSvmScheme(signer, { rpcUrl: process.env.SOLANA_RPC_URL }),
    },
  ],
  // The test bed's mints are not among the SDK's default assets.
  spendControls: false,
});

for (const url of process.argv.slice(2)) {
  try {
    const response = await fetchWithPayment(url, { method: "GET" });
    const header = response.headers.get("PAYMENT-RESPONSE");
    console.log(JSON.stringify({
      url,
      payer: signer.address,
      status: response.status,
      body: await response.text(),
      settlement: header ? decodePaymentResponseHeader(header) : null,
    }));
  } catch (error) {
    console.log(JSON.stringify({ url, error: String(error?.stack ?? error) }));
  }
}
