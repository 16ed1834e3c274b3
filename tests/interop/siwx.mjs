// Sign-in-with-x both ways against the official @x402/extensions package: signs our sellers'
// challenges with its own client (createSIWxPayload, encodeSIWxHeader) using the keys given in
// $SIWX_INPUT, judges our buyer's headers with its own server-side checks (parseSIWxHeader,
// validateSIWxMessage, verifySIWxSignature), and prints its own seller declaration for the same
// origin and networks. Prints one JSON line.
import nacl from "tweetnacl";
import { privateKeyToAccount } from "viem/accounts";
import {
  createSIWxPayload,
  createSIWxResourceServerExtension,
  encodeBase58,
  encodeSIWxHeader,
  InMemorySIWxStorage,
  parseSIWxHeader,
  validateSIWxMessage,
  verifySIWxSignature,
} from "@x402/extensions/sign-in-with-x";

const input = JSON.parse(process.env.SIWX_INPUT);
const evm = privateKeyToAccount(input.evmKey);
const pair = nacl.sign.keyPair.fromSeed(Uint8Array.from(Buffer.from(input.solanaSeed, "hex")));
const svm = {
  publicKey: encodeBase58(pair.publicKey),
  signMessage: async (bytes) => nacl.sign.detached(bytes, pair.secretKey),
};

// Their client signs our challenges: declaration i with the first supported chain of `family`.
const theirs = [];
for (const { declaration, family } of input.toSign) {
  const chain = declaration.supportedChains.find((c) => c.chainId.startsWith(family));
  const info = { ...declaration.info, chainId: chain.chainId, type: chain.type };
  const payload = await createSIWxPayload(info, family === "solana:" ? svm : evm, input.url);
  theirs.push(encodeSIWxHeader(payload));
}

// Their server judges our headers.
const judged = [];
for (const header of input.toJudge) {
  try {
    const payload = parseSIWxHeader(header);
    const validation = await validateSIWxMessage(payload, new URL(input.url));
    const verification = await verifySIWxSignature(payload);
    judged.push({
      valid: validation.isValid && verification.isValid,
      reason: validation.invalidReason ?? verification.invalidReason ?? null,
      payer: verification.payer ?? null,
    });
  } catch (e) {
    judged.push({ valid: false, reason: String(e.message), payer: null });
  }
}

// Their seller's declaration for the same origin and networks.
const extension = createSIWxResourceServerExtension({ origin: input.origin, storage: new InMemorySIWxStorage() });
const declared = await extension.enrichPaymentRequiredResponse(
  {},
  { resourceInfo: { url: input.url }, requirements: input.networks.map((network) => ({ network })) },
);

console.log(JSON.stringify({ theirs, judged, declared, evm: evm.address, svm: svm.publicKey }));
