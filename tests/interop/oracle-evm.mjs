// The official facilitator and client libraries (@x402/core + @x402/evm) as an oracle on the
// test chain, served over HTTP on a free loopback port (prints "listening on http://…"):
//
//   POST /verify {paymentPayload, paymentRequirements} → the official facilitator's verify
//     result ({isValid, invalidReason, invalidMessage?, payer}), or {error} when it throws;
//   POST /sign {paymentRequired} → the payment payload the official client signs for the first
//     requirement, or {error}.
//
// The facilitator registers `exact` v2 (EIP-3009 and Permit2), `upto` v2 and `exact` v1 on the
// chain; it only verifies here, it never sends a transaction.
// Env: X402_ORACLE_RPC_URL, X402_ORACLE_CHAIN_ID, X402_ORACLE_V1_NETWORK (the chain's v1 name),
// X402_ORACLE_FACILITATOR_KEY, X402_ORACLE_BUYER_KEY (keys are never printed).
import { createServer } from "node:http";
import { createWalletClient, defineChain, http, publicActions } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { x402Facilitator } from "@x402/core/facilitator";
import { x402Client } from "@x402/core/client";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { ExactEvmScheme as ExactFacilitator } from "@x402/evm/exact/facilitator";
import { ExactEvmSchemeV1 as ExactV1Facilitator } from "@x402/evm/exact/v1/facilitator";
import { UptoEvmScheme as UptoFacilitator } from "@x402/evm/upto/facilitator";
import { ExactEvmScheme as ExactClient } from "@x402/evm/exact/client";
import { ExactEvmSchemeV1 as ExactV1Client } from "@x402/evm/exact/v1/client";
import { UptoEvmScheme as UptoClient } from "@x402/evm/upto/client";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const rpc = env("X402_ORACLE_RPC_URL");
const chainId = Number(env("X402_ORACLE_CHAIN_ID"));
const network = `eip155:${chainId}`;
const v1Network = env("X402_ORACLE_V1_NETWORK");
const chain = defineChain({
  id: chainId,
  name: "x402 test bed",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [rpc] } },
});

// The facilitator's signer: a viem wallet client on the bed's RPC.
const account = privateKeyToAccount(env("X402_ORACLE_FACILITATOR_KEY"));
const wallet = createWalletClient({ account, chain, transport: http(rpc) }).extend(publicActions);
const signer = toFacilitatorEvmSigner({
  address: account.address,
  getCode: (args) => wallet.getCode(args),
  readContract: (args) => wallet.readContract({ ...args, args: args.args ?? [] }),
  verifyTypedData: (args) => wallet.verifyTypedData(args),
  writeContract: (args) => wallet.writeContract(args),
  sendTransaction: (args) => wallet.sendTransaction(args),
  waitForTransactionReceipt: (args) => wallet.waitForTransactionReceipt(args),
});
const facilitator = new x402Facilitator()
  .register(network, new ExactFacilitator(signer))
  .register(network, new UptoFacilitator(signer))
  .registerV1(v1Network, new ExactV1Facilitator(signer));

// The buyer: the official client with every EVM scheme, without spend controls (the bed's USDC
// is not one of the SDK's default assets).
const buyer = privateKeyToAccount(env("X402_ORACLE_BUYER_KEY"));
const client = new x402Client()
  .register("eip155:*", new ExactClient(buyer))
  .register("eip155:*", new UptoClient(buyer))
  .registerV1(v1Network, new ExactV1Client(buyer))
  .setSpendControls(false);

const commands = {
  "/verify": (body) => facilitator.verify(body.paymentPayload, body.paymentRequirements),
  "/sign": (body) => client.createPaymentPayload(body.paymentRequired),
};

const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const command = commands[req.url];
  let answer;
  if (req.method !== "POST" || !command) {
    answer = { error: `unknown command ${req.method} ${req.url}` };
  } else {
    try {
      answer = await command(JSON.parse(Buffer.concat(chunks).toString("utf8")));
    } catch (error) {
      answer = { error: String(error?.message ?? error) };
    }
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(answer, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
});
server.listen(0, "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
