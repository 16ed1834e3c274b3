// The official sign-in-with-x fetch wrapper (wrapFetchWithSIWx, @x402/extensions 2.27) with the
// viem account of $SIWX_KEY requests $SIWX_URL twice: it reads the 402's challenge, signs it and
// retries with SIGN-IN-WITH-X. Prints one JSON line: the final statuses and the first body.
import { privateKeyToAccount } from "viem/accounts";
import { wrapFetchWithSIWx } from "@x402/extensions/sign-in-with-x";

const account = privateKeyToAccount(process.env.SIWX_KEY);
const fetchWithSIWx = wrapFetchWithSIWx(fetch, account);
const first = await fetchWithSIWx(process.env.SIWX_URL);
const body = await first.text();
const second = await fetchWithSIWx(process.env.SIWX_URL);
await second.text();
console.log(JSON.stringify({ address: account.address, statuses: [first.status, second.status], body }));
