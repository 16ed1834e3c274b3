// The official client (@x402/fetch + @x402/evm) pays each URL given on the command line.
// Key: $X402_INTEROP_KEY (never printed); $X402_INTEROP_HEADERS, optional, a JSON object of
// request headers sent with every request. Prints one JSON line per URL:
// {"url", "status", "body", "settlement"}.
import { wrapFetchWithPaymentFromConfig, decodePaymentResponseHeader } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const account = privateKeyToAccount(process.env.X402_INTEROP_KEY);
const fetchWithPayment = wrapFetchWithPaymentFromConfig(fetch, {
  schemes: [{ network: "eip155:*", client: new ExactEvmScheme(account) }],
  // The test bed's USDC is not one of the SDK's default assets.
  spendControls: false,
});

for (const url of process.argv.slice(2)) {
  try {
    const headers = JSON.parse(process.env.X402_INTEROP_HEADERS ?? "{}");
    const response = await fetchWithPayment(url, { method: "GET", headers });
    const header = response.headers.get("PAYMENT-RESPONSE");
    console.log(JSON.stringify({
      url,
      status: response.status,
      body: await response.text(),
      settlement: header ? decodePaymentResponseHeader(header) : null,
    }));
  } catch (error) {
    console.log(JSON.stringify({ url, error: String(error?.stack ?? error) }));
  }
}
