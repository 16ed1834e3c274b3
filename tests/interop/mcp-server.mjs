// A paid MCP server built with the official MCP TypeScript SDK (@modelcontextprotocol/sdk,
// streamable HTTP, stateless) and the official x402 resource server (@x402/core + @x402/evm),
// following the x402 MCP transport (transports-v2/mcp.md): its `weather` tool answers a call
// without `_meta["x402/payment"]` with the payment request as a structured tool error, verifies
// and settles a payment through the facilitator at $FACILITATOR_URL, and returns the settlement
// in the result's `_meta["x402/payment-response"]`. The price names a custom asset ($ASSET, with
// its EIP-712 name/version). Prints "listening on http://…" (the endpoint is /mcp).
import express from "express";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { x402ResourceServer, HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";

const { FACILITATOR_URL, NETWORK, ASSET, PAY_TO, AMOUNT, TOKEN_NAME, TOKEN_VERSION } = process.env;
const x402 = new x402ResourceServer(new HTTPFacilitatorClient({ url: FACILITATOR_URL }))
  .register(NETWORK, new ExactEvmScheme());
await x402.initialize();
const requirements = await x402.buildPaymentRequirements({
  scheme: "exact",
  network: NETWORK,
  payTo: PAY_TO,
  price: { amount: AMOUNT, asset: ASSET, extra: { name: TOKEN_NAME, version: TOKEN_VERSION } },
  maxTimeoutSeconds: 120,
});
const resource = { url: "mcp://tool/weather", description: "today's weather", mimeType: "application/json" };
const refuse = async (error) => {
  const document = await x402.createPaymentRequiredResponse(requirements, resource, error);
  return { isError: true, structuredContent: document, content: [{ type: "text", text: JSON.stringify(document) }] };
};

async function weather(extra) {
  const payment = extra?._meta?.["x402/payment"];
  if (!payment) return refuse("Payment required");
  const accepted = x402.findMatchingRequirements(requirements, payment);
  if (!accepted) return refuse("No matching payment requirements");
  const verified = await x402.verifyPayment(payment, accepted);
  if (!verified.isValid) return refuse(verified.invalidReason ?? "invalid payment");
  const result = { content: [{ type: "text", text: "sunny, from node" }] };
  const settlement = await x402.settlePayment(payment, accepted);
  if (!settlement.success) return refuse(settlement.errorReason ?? "Settlement failed");
  return { ...result, _meta: { "x402/payment-response": settlement } };
}

const app = express();
app.use(express.json());
app.post("/mcp", async (req, res) => {
  const server = new McpServer({ name: "x402-interop-weather", version: "1.0.0" });
  server.registerTool("weather", { description: "today's weather (paid)" }, weather);
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on("close", () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
app.get("/mcp", (_req, res) => res.status(405).set("Allow", "POST").end());
app.delete("/mcp", (_req, res) => res.status(405).set("Allow", "POST").end());

const listener = app.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${listener.address().port}`);
});
