// The official facilitator library as an oracle for exact on Solana (v1 and v2): a long-lived
// process answering one JSON line on stdout for each JSON line read on stdin.
//
//   {"id", "cmd": "verify", "x402Version", "paymentPayload", "paymentRequirements"}
//     -> {"id", "result": {isValid, invalidReason, invalidMessage, payer}} from x402Facilitator.verify, with
//        @x402/svm's exact scheme registered for v2 ($NETWORK) and v1 (its v1 names), as
//        registerExactSvmScheme does.
//   {"id", "cmd": "sign", "x402Version", "paymentRequirements", "resource"?}
//     -> {"id", "result": paymentPayload} signed by the official client (ExactSvmScheme for v2,
//        ExactSvmSchemeV1 for v1) for the buyer key.
//   A command that throws -> {"id", "error": message}.
//
// Env: $SOLANA_RPC_URL (the local validator, used for everything: no public endpoint is ever
// contacted), $NETWORK (the v2 CAIP-2 id served), $X402_ORACLE_FEE_PAYERS (a JSON array of
// solana-keygen 64-byte arrays: the fee payers the facilitator manages), $X402_ORACLE_BUYER_KEY
// (one such array). Keys are never printed. Prints "ready" once set up.
import { createInterface } from "node:readline";
import { createKeyPairSignerFromBytes } from "@solana/kit";
import { x402Facilitator } from "@x402/core/facilitator";
import { toFacilitatorSvmSigner } from "@x402/svm";
import { ExactSvmScheme } from "@x402/svm/exact/client";
import { registerExactSvmScheme } from "@x402/svm/exact/facilitator";
import { ExactSvmSchemeV1 } from "@x402/svm/exact/v1/client";

// Only this script writes to stdout: anything the libraries log goes to stderr.
const answer = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
console.log = console.error;
console.info = console.error;

const { SOLANA_RPC_URL, NETWORK, X402_ORACLE_FEE_PAYERS, X402_ORACLE_BUYER_KEY } = process.env;
const keypair = (bytes) => createKeyPairSignerFromBytes(Uint8Array.from(bytes));

// toFacilitatorSvmSigner manages one key; the facilitator here manages several (as ours does),
// each signing for itself, all reading the chain at $SOLANA_RPC_URL. (Its RPC argument is given
// as `defaultRpcUrl`: a kit RPC object passed directly fails its `"getBalance" in rpc` test, is
// taken for a per-network map, and every call then goes nowhere.)
const feePayers = await Promise.all(JSON.parse(X402_ORACLE_FEE_PAYERS).map(keypair));
const perKey = new Map(
  feePayers.map((k) => [k.address, toFacilitatorSvmSigner(k, { defaultRpcUrl: SOLANA_RPC_URL })]),
);
const signerFor = (feePayer) => {
  const signer = perKey.get(feePayer);
  if (!signer) throw new Error(`no signer for fee payer ${feePayer}`);
  return signer;
};
const first = perKey.get(feePayers[0].address);
const facilitatorSigner = {
  ...first,
  getAddresses: () => feePayers.map((k) => k.address),
  getSigner: (feePayer) => signerFor(feePayer).getSigner(feePayer),
  signTransaction: (tx, feePayer, network) => signerFor(feePayer).signTransaction(tx, feePayer, network),
};
const facilitator = registerExactSvmScheme(new x402Facilitator(), {
  signer: facilitatorSigner,
  networks: NETWORK,
});

const buyer = await keypair(JSON.parse(X402_ORACLE_BUYER_KEY));
const clients = {
  1: new ExactSvmSchemeV1(buyer, { rpcUrl: SOLANA_RPC_URL }),
  2: new ExactSvmScheme(buyer, { rpcUrl: SOLANA_RPC_URL }),
};

async function sign({ x402Version, paymentRequirements, resource }) {
  const client = clients[x402Version];
  if (!client) throw new Error(`no client for x402Version ${x402Version}`);
  const partial = await client.createPaymentPayload(x402Version, paymentRequirements);
  // As x402Client completes a v2 payload: the accepted requirements (and resource) beside it.
  return x402Version === 1
    ? partial
    : { ...partial, ...(resource ? { resource } : {}), accepted: paymentRequirements };
}

async function verify({ paymentPayload, paymentRequirements }) {
  const { isValid, invalidReason, invalidMessage, payer } = await facilitator.verify(
    paymentPayload,
    paymentRequirements,
  );
  return {
    isValid,
    invalidReason: invalidReason ?? null,
    invalidMessage: invalidMessage ?? null,
    payer: payer ?? null,
  };
}

const commands = { sign, verify };
answer("ready");
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let id = null;
  try {
    const request = JSON.parse(line);
    id = request.id ?? null;
    const command = commands[request.cmd];
    if (!command) throw new Error(`unknown command ${request.cmd}`);
    answer({ id, result: await command(request) });
  } catch (error) {
    answer({ id, error: String(error?.stack ?? error) });
  }
}
