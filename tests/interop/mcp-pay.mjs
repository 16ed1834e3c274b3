// The official MCP TypeScript SDK's client (@modelcontextprotocol/sdk) with the official x402
// client (@x402/core + @x402/evm) calls a tool of an x402 MCP server over streamable HTTP, as the
// x402 MCP transport specifies (transports-v2/mcp.md): the call without payment, the payment
// request read from structuredContent (else content[0].text), the call again with the payment in
// _meta["x402/payment"]. Usage: node mcp-pay.mjs URL TOOL. Key: $X402_INTEROP_KEY (never
// printed). Prints one JSON line: {"unpaid", "paid"} (the two tool results as received).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { privateKeyToAccount } from "viem/accounts";

const [url, tool] = process.argv.slice(2);
const account = privateKeyToAccount(process.env.X402_INTEROP_KEY);
const payments = x402Client.fromConfig({
  schemes: [{ network: "eip155:*", client: new ExactEvmScheme(account) }],
  // The test bed's USDC is not one of the SDK's default assets.
  spendControls: false,
});
const client = new Client({ name: "x402-rs-interop", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const unpaid = await client.callTool({ name: tool, arguments: {} });
const required = unpaid.structuredContent ?? JSON.parse(unpaid.content[0].text);
const payload = await payments.createPaymentPayload(required);
const paid = await client.callTool({
  name: tool,
  arguments: {},
  _meta: { "x402/payment": payload },
});
console.log(JSON.stringify({ unpaid, paid }));
await client.close();
