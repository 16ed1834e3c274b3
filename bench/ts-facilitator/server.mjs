// The official TypeScript facilitator library (@x402/core's x402Facilitator with @x402/evm's
// exact scheme, viem underneath) behind a bare node:http server, so x402-bench can drive it with
// the same corpus as our facilitator. The signer is wired the way the reference facilitator
// example does it (a viem wallet client extended with public actions).
//
//   RPC_URL     JSON-RPC endpoint (loopback)
//   CHAIN_ID    the chain id (served as eip155:CHAIN_ID)
//   SIGNER_KEY  the facilitator's private key (0x…)
//
// Prints "listening on http://127.0.0.1:PORT" once ready.
import http from "node:http";
import { x402Facilitator } from "@x402/core/facilitator";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { createWalletClient, defineChain, http as rpc, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const { RPC_URL, CHAIN_ID, SIGNER_KEY } = process.env;
if (!RPC_URL || !CHAIN_ID || !SIGNER_KEY) {
  console.error("RPC_URL, CHAIN_ID and SIGNER_KEY are required");
  process.exit(2);
}
const chain = defineChain({
  id: Number(CHAIN_ID),
  name: "anvil",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [RPC_URL] } },
});
const account = privateKeyToAccount(SIGNER_KEY);
const client = createWalletClient({ account, chain, transport: rpc(RPC_URL) }).extend(publicActions);
const signer = toFacilitatorEvmSigner({
  address: account.address,
  getCode: (args) => client.getCode(args),
  readContract: (args) => client.readContract({ ...args, args: args.args || [] }),
  verifyTypedData: (args) => client.verifyTypedData(args),
  writeContract: (args) => client.writeContract({ ...args, args: args.args || [] }),
  sendTransaction: (args) => client.sendTransaction(args),
  waitForTransactionReceipt: (args) => client.waitForTransactionReceipt(args),
});
const facilitator = new x402Facilitator();
registerExactEvmScheme(facilitator, { signer, networks: `eip155:${CHAIN_ID}` });

const MAX_BODY = 64 * 1024;

function reply(res, status, value) {
  const body = JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  res.writeHead(status, { "content-type": "application/json" });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/supported") {
    return reply(res, 200, facilitator.getSupported());
  }
  const route = req.method === "POST" ? req.url : null;
  if (route !== "/verify" && route !== "/settle") {
    return reply(res, 404, { error: "not found" });
  }
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size > MAX_BODY) req.destroy();
    else chunks.push(c);
  });
  req.on("end", async () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch (e) {
      return reply(res, 400, { error: `invalid JSON: ${e.message}` });
    }
    try {
      const { paymentPayload, paymentRequirements } = body;
      const result =
        route === "/verify"
          ? await facilitator.verify(paymentPayload, paymentRequirements)
          : await facilitator.settle(paymentPayload, paymentRequirements);
      reply(res, 200, result);
    } catch (e) {
      reply(res, 500, { error: String(e?.message ?? e).slice(0, 500) });
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
