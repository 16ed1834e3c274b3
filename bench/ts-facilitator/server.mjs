// The official x402 TypeScript facilitator library (@x402/core's x402Facilitator with @x402/evm's
// and @x402/svm's exact schemes; viem and @solana/kit underneath) behind a bare node:http server,
// so x402-bench can drive it with the same corpus as our facilitator. The signers are wired the
// way the reference facilitator example does it (EVM: a viem wallet client extended with public
// actions; SVM: a @solana/kit key-pair signer with an RPC client).
//
// EVM, on an anvil bed (all three or none):
//   RPC_URL         JSON-RPC endpoint (loopback)
//   CHAIN_ID        the chain id (served as eip155:CHAIN_ID)
//   SIGNER_KEY      the facilitator's private key (0x…)
// SVM, on solana-test-validator (all three or none):
//   SVM_RPC_URL     JSON-RPC endpoint (loopback)
//   SVM_NETWORK     the CAIP-2 network served (solana:<genesis hash prefix>)
//   SVM_SIGNER_KEY  the fee payer's 64-byte key pair, base58
//
// Prints "listening on http://127.0.0.1:PORT" once ready.
import http from "node:http";
import { x402Facilitator } from "@x402/core/facilitator";

const env = process.env;
const evm = env.RPC_URL && env.CHAIN_ID && env.SIGNER_KEY;
const svm = env.SVM_RPC_URL && env.SVM_NETWORK && env.SVM_SIGNER_KEY;
if (!evm && !svm) {
  console.error("RPC_URL, CHAIN_ID and SIGNER_KEY (EVM) or SVM_RPC_URL, SVM_NETWORK and SVM_SIGNER_KEY (SVM) are required");
  process.exit(2);
}
const facilitator = new x402Facilitator();

if (evm) {
  const { registerExactEvmScheme } = await import("@x402/evm/exact/facilitator");
  const { toFacilitatorEvmSigner } = await import("@x402/evm");
  const { createWalletClient, defineChain, http: rpc, publicActions } = await import("viem");
  const { privateKeyToAccount } = await import("viem/accounts");
  const { RPC_URL, CHAIN_ID, SIGNER_KEY } = env;
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
  registerExactEvmScheme(facilitator, { signer, networks: `eip155:${CHAIN_ID}` });
}

if (svm) {
  const { registerExactSvmScheme } = await import("@x402/svm/exact/facilitator");
  const { toFacilitatorSvmSigner } = await import("@x402/svm");
  const { createKeyPairSignerFromBytes, createSolanaRpc, getBase58Encoder } = await import("@solana/kit");
  const keyPair = await createKeyPairSignerFromBytes(getBase58Encoder().encode(env.SVM_SIGNER_KEY));
  // The RPC client by network (the library's `Record<network, rpc>` form): its own clients know
  // only devnet, testnet and mainnet, and the test validator's network is none of them.
  const signer = toFacilitatorSvmSigner(keyPair, { [env.SVM_NETWORK]: createSolanaRpc(env.SVM_RPC_URL) });
  registerExactSvmScheme(facilitator, { signer, networks: env.SVM_NETWORK });
}

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
