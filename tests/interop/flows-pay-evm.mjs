// The official client (@x402/fetch + @x402/evm) with every EVM mechanism it has registered:
// `exact` v2 (EIP-3009 and Permit2), `upto` v2 (@x402/evm/upto/client, Permit2) and `exact` v1
// (@x402/evm/exact/v1/client, EIP-3009, on the v1 network name $X402_INTEROP_V1_NETWORK). It
// pays each URL given on the command line; the 402 decides the version (a PAYMENT-REQUIRED
// header is v2, a v1 body without one is v1).
// Key: $X402_INTEROP_KEY (never printed). Prints one JSON line per URL:
// {"url", "status", "body", "header", "settlement"}, `header` naming the response header the
// settlement came in (PAYMENT-RESPONSE for v2, X-PAYMENT-RESPONSE for v1).
import { wrapFetchWithPaymentFromConfig, decodePaymentResponseHeader } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmSchemeV1 } from "@x402/evm/exact/v1/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { privateKeyToAccount } from "viem/accounts";

const account = privateKeyToAccount(process.env.X402_INTEROP_KEY);
// With $X402_INTEROP_RPC the scheme clients read the chain and sign gas-sponsoring permits
// (eip2612GasSponsoring) where a seller offers them and the allowance to Permit2 is short.
const rpcOptions = process.env.X402_INTEROP_RPC ? { rpcUrl: process.env.X402_INTEROP_RPC } : undefined;
const v1Network = process.env.X402_INTEROP_V1_NETWORK;
if (!v1Network) throw new Error("X402_INTEROP_V1_NETWORK is not set");
const fetchWithPayment = wrapFetchWithPaymentFromConfig(fetch, {
  schemes: [
    { network: "eip155:*", client: new ExactEvmScheme(account, rpcOptions) },
    { network: "eip155:*", client: new UptoEvmScheme(account, rpcOptions) },
    { network: v1Network, client: new ExactEvmSchemeV1(account), x402Version: 1 },
  ],
  // The test bed's USDC is not one of the SDK's default assets.
  spendControls: false,
});

for (const url of process.argv.slice(2)) {
  try {
    const response = await fetchWithPayment(url, { method: "GET" });
    const header = ["PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE"].find((h) => response.headers.has(h));
    console.log(JSON.stringify({
      url,
      status: response.status,
      body: await response.text(),
      header: header ?? null,
      settlement: header ? decodePaymentResponseHeader(response.headers.get(header)) : null,
    }));
  } catch (error) {
    console.log(JSON.stringify({ url, error: String(error?.stack ?? error) }));
  }
}
