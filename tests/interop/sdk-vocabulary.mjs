// Reads the vocabulary of the installed official x402 packages (node_modules/@x402/*, pinned by
// tests/interop/package-lock.json) and prints it as one JSON object, for the drift test in
// tests/tests/interop/vocabulary.rs:
//
//   packages     {name: version} of every @x402 package installed
//   reasons      [{reason, package, how}] — every reason string found, by how it was found:
//                  "export"    a string constant the package exports under an error name
//                              (Err…, ERR_…);
//                  "declared"  the packages do not export most of their reason constants, so
//                              the built files (dist/esm/**/*.mjs) are read for module-level
//                              declarations `var Err… = "…"`, `var ERR_… = "…"`,
//                              `var …_REASON = "…"`;
//                  "literal"   string literals the built files answer with directly:
//                              `invalidReason: "…"`, `errorReason: "…"`, `reason: "…"`, a
//                              fallback `invalidReason ?? "…"`, `new Error("…")` (a check
//                              that throws its reason), and `verifyFailure("…", …)` (the
//                              sign-in-with-x verifier's refusal helper).
//                Only snake_case strings with at least one underscore count as reasons.
//   evmAssets    @x402/evm's exported DEFAULT_ASSETS, flattened
//   svmAssets    @x402/svm's exported DEFAULT_ASSETS, flattened
//   v1Networks   {v1 name: CAIP-2}: @x402/evm/v1's EVM_NETWORK_CHAIN_ID_MAP and @x402/svm's
//                V1_TO_V2_NETWORK_MAP
//
// Exits non-zero when a package it needs is missing: a missing package is an install bug.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const REASON = /^[a-z][a-z0-9]*(_[a-z0-9]+)+$/;
const ERROR_NAME = /^(Err[A-Z0-9]|ERR_)/;

const here = dirname(fileURLToPath(import.meta.url));
const scope = join(here, "node_modules", "@x402");

function files(dir) {
  const out = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...files(path));
    else if (entry.endsWith(".mjs")) out.push(path);
  }
  return out;
}

const packages = {};
const found = new Map(); // reason -> {reason, package, how}
function add(reason, pkg, how) {
  if (typeof reason !== "string" || !REASON.test(reason)) return;
  const seen = found.get(reason);
  // Prefer the strongest evidence: export, then declared, then literal.
  const rank = { export: 0, declared: 1, literal: 2 };
  if (!seen || rank[how] < rank[seen.how]) found.set(reason, { reason, package: pkg, how });
}

const DECLARED = /\bvar\s+(Err[A-Za-z0-9]*|ERR_[A-Z0-9_]*|[A-Z0-9_]*_REASON)\s*=\s*"([^"]+)"/g;
const LITERALS = [
  /\b(?:invalidReason|errorReason|reason)\s*:\s*"([^"]+)"/g,
  /\b(?:invalidReason|errorReason)\s*\?\?\s*"([^"]+)"/g,
  /\bnew Error\(\s*"([^"]+)"\s*\)/g,
  /\bverifyFailure\(\s*"([^"]+)"/g,
];

for (const dir of readdirSync(scope).sort()) {
  const name = `@x402/${dir}`;
  const root = join(scope, dir);
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  packages[name] = manifest.version;
  // What the package exports, from every entry point it declares.
  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    if (typeof target !== "object" || !target.import) continue;
    const specifier = subpath === "." ? name : `${name}/${subpath.slice(2)}`;
    let mod;
    try {
      mod = await import(specifier);
    } catch {
      continue; // an entry point needing an optional peer dependency (a storage backend, say)
    }
    for (const [key, value] of Object.entries(mod)) {
      if (ERROR_NAME.test(key)) add(value, name, "export");
    }
  }
  // What its built files declare or answer with.
  const dist = join(root, "dist", "esm");
  for (const file of files(dist)) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(DECLARED)) add(m[2], name, "declared");
    for (const re of LITERALS) for (const m of text.matchAll(re)) add(m[1], name, "literal");
  }
}

for (const needed of ["@x402/core", "@x402/evm", "@x402/svm"]) {
  if (!packages[needed]) {
    console.error(`${needed} is not installed under ${scope}: run scripts/install-tools.sh`);
    process.exit(1);
  }
}

const evm = await import("@x402/evm");
const evmV1 = await import("@x402/evm/v1");
const svm = await import("@x402/svm");

const evmAssets = [];
for (const [network, list] of Object.entries(evm.DEFAULT_ASSETS)) {
  for (const a of list) {
    evmAssets.push({
      network,
      asset: a.asset,
      name: a.name,
      version: a.version,
      decimals: a.decimals,
      symbol: a.symbol,
      method: a.assetTransferMethod ?? "eip3009",
    });
  }
}
const svmAssets = [];
for (const [network, list] of Object.entries(svm.DEFAULT_ASSETS)) {
  for (const a of list) {
    svmAssets.push({
      network,
      asset: a.asset,
      decimals: a.decimals,
      symbol: a.symbol,
      tokenProgram: a.tokenProgram,
    });
  }
}
const v1Networks = {};
for (const [name, chainId] of Object.entries(evmV1.EVM_NETWORK_CHAIN_ID_MAP)) {
  v1Networks[name] = `eip155:${chainId}`;
}
Object.assign(v1Networks, svm.V1_TO_V2_NETWORK_MAP);

const reasons = [...found.values()].sort((a, b) => (a.reason < b.reason ? -1 : 1));
console.log(JSON.stringify({ packages, reasons, evmAssets, svmAssets, v1Networks }));
