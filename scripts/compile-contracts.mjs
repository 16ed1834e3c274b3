#!/usr/bin/env node
// Compiles the EVM test bed's contracts with solc-js and caches the result by the hash of its
// inputs.
//
//   node scripts/compile-contracts.mjs --node-modules DIR --cache DIR
//
// Inputs: Permit2 (`lib/permit2/src/Permit2.sol` inside @uniswap/v4-periphery, solmate from
// `lib/permit2/lib/solmate/`) and every `.sol` file under `contracts/` at the repository root
// (absent until our own contracts land). Our contracts may import `@openzeppelin/...` and any
// other npm package by its node_modules path, `permit2/...` (Permit2's repository root) and
// `solmate/...`.
//
// Output: `$cache/contracts-<sha256>/`, one `<ContractName>.json` per contract defined in an input
// file, each `{abi, bytecode, deployedBytecode}` (plus `linkReferences` when the bytecode has
// library placeholders). The hash covers this script's text, the solc version and every source
// text that takes part in the build, so a change to any of them yields a new directory; an
// existing complete directory is reused without loading solc. The directory is written under a
// temporary name and renamed into place, so readers never see half of it.
//
// Prints only the output directory on stdout; progress goes to stderr.

import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT_PATH = fileURLToPath(import.meta.url);
const REPO_CONTRACTS = path.resolve(path.dirname(SCRIPT_PATH), "..", "contracts");
const PERMIT2_ROOT = "@uniswap/v4-periphery/lib/permit2/";
const PERMIT2_ENTRY = `${PERMIT2_ROOT}src/Permit2.sol`;
/** Import prefixes rewritten before lookup (the same table is handed to solc). */
const REMAPPINGS = [
  ["permit2/", PERMIT2_ROOT],
  ["solmate/", `${PERMIT2_ROOT}lib/solmate/`],
];
/** Unit names below this prefix are our own sources; all others live in node_modules. */
const OWN_PREFIX = "contracts/";
/** Permit2's production settings (via-IR, 1,000,000 runs, no metadata hash): runtime 9,152 bytes. */
const SETTINGS = {
  viaIR: true,
  optimizer: { enabled: true, runs: 1_000_000 },
  metadata: { bytecodeHash: "none" },
  evmVersion: "london",
  remappings: REMAPPINGS.map(([from, to]) => `${from}=${to}`),
};
const MANIFEST = "manifest.json";

const log = (msg) => process.stderr.write(`[compile-contracts] ${msg}\n`);
const fail = (msg) => {
  log(`error: ${msg}`);
  process.exit(1);
};

function parseArgs(argv) {
  const args = {
    nodeModules: process.env.X402_NODE_MODULES,
    cache: process.env.X402_CACHE,
  };
  for (let i = 0; i < argv.length; i++) {
    const take = () => {
      if (i + 1 >= argv.length) fail(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case "--node-modules":
        args.nodeModules = take();
        break;
      case "--cache":
        args.cache = take();
        break;
      default:
        fail(`unknown argument ${argv[i]} (usage: --node-modules DIR --cache DIR)`);
    }
  }
  if (!args.nodeModules) fail("--node-modules DIR is required");
  if (!args.cache) fail("--cache DIR is required");
  args.nodeModules = path.resolve(args.nodeModules);
  args.cache = path.resolve(args.cache);
  return args;
}

/** Every `.sol` file below `dir`, as sorted unit names `contracts/…`. */
function ownSources(dir) {
  if (!fs.existsSync(dir)) return [];
  const found = [];
  const walk = (abs, rel) => {
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      const childAbs = path.join(abs, entry.name);
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(childAbs, childRel);
      else if (entry.isFile() && entry.name.endsWith(".sol")) found.push(OWN_PREFIX + childRel);
    }
  };
  walk(dir, "");
  return found.sort();
}

/** The file behind a unit name. */
function fileOf(unit, nodeModules) {
  return unit.startsWith(OWN_PREFIX)
    ? path.join(REPO_CONTRACTS, unit.slice(OWN_PREFIX.length))
    : path.join(nodeModules, unit);
}

/** Collapses `.` and `..` segments of a `/`-separated path. */
function normalize(p) {
  const out = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length === 0) throw new Error(`import ${p} climbs above the source root`);
      out.pop();
    } else out.push(seg);
  }
  return out.join("/");
}

/** The unit name solc gives to `importPath` written inside `importer`. */
function resolveImport(importer, importPath) {
  if (importPath.startsWith("./") || importPath.startsWith("../")) {
    const dir = importer.includes("/") ? importer.slice(0, importer.lastIndexOf("/")) : "";
    return normalize(`${dir}/${importPath}`);
  }
  let best = null;
  for (const [from, to] of REMAPPINGS) {
    if (importPath.startsWith(from) && (!best || from.length > best[0].length)) best = [from, to];
  }
  return best ? best[1] + importPath.slice(best[0].length) : importPath;
}

/** Import paths named by a Solidity source (comments removed first). */
function importsOf(text) {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
  const re = /\bimport\s+(?:[^;"']*?\s+from\s+)?["']([^"']+)["'][^;]*;/g;
  return [...code.matchAll(re)].map((m) => m[1]);
}

/** Reads the entry units and everything they import, transitively. */
function collectSources(entries, nodeModules) {
  const sources = new Map();
  const pending = [...entries];
  while (pending.length > 0) {
    const unit = pending.pop();
    if (sources.has(unit)) continue;
    const file = fileOf(unit, nodeModules);
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      const hint = unit.startsWith(OWN_PREFIX) ? "" : "; run scripts/install-tools.sh";
      fail(`cannot read ${unit} (${file}): ${e.message}${hint}`);
    }
    sources.set(unit, text);
    for (const imp of importsOf(text)) pending.push(resolveImport(unit, imp));
  }
  return new Map([...sources.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function inputHash(solcVersion, sources) {
  const h = createHash("sha256");
  const field = (s) => {
    const buf = Buffer.from(s, "utf8");
    h.update(`${buf.length}:`);
    h.update(buf);
  };
  field(fs.readFileSync(SCRIPT_PATH, "utf8"));
  field(solcVersion);
  for (const [unit, text] of sources) {
    field(unit);
    field(text);
  }
  return h.digest("hex");
}

function isComplete(dir) {
  try {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), "utf8"));
    return manifest.contracts.every((name) => fs.existsSync(path.join(dir, `${name}.json`)));
  } catch {
    return false;
  }
}

function compile(solc, sources, entries) {
  const input = {
    language: "Solidity",
    sources: Object.fromEntries([...sources].map(([unit, content]) => [unit, { content }])),
    settings: {
      ...SETTINGS,
      outputSelection: Object.fromEntries(
        entries.map((unit) => [
          unit,
          {
            "*": [
              "abi",
              "evm.bytecode.object",
              "evm.bytecode.linkReferences",
              "evm.deployedBytecode.object",
            ],
          },
        ]),
      ),
    },
  };
  // Every source was read up front (and hashed); solc asking for another one is a resolver bug.
  const findImports = (p) => ({ error: `${p} was not collected by compile-contracts.mjs` });
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const problems = output.errors ?? [];
  const errors = problems.filter((e) => e.severity === "error");
  for (const e of errors) process.stderr.write(e.formattedMessage ?? e.message);
  if (errors.length > 0) fail(`solc reported ${errors.length} error(s)`);
  if (problems.length > 0) log(`solc reported ${problems.length} warning(s)/note(s)`);

  const artifacts = new Map();
  for (const unit of entries) {
    for (const [name, c] of Object.entries(output.contracts?.[unit] ?? {})) {
      if (artifacts.has(name)) {
        fail(`contract name ${name} is defined in both ${artifacts.get(name).unit} and ${unit}`);
      }
      const artifact = {
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      };
      const links = c.evm.bytecode.linkReferences ?? {};
      if (Object.keys(links).length > 0) artifact.linkReferences = links;
      artifacts.set(name, { unit, artifact });
    }
  }
  return artifacts;
}

function writeAtomically(outDir, artifacts, meta) {
  const tmp = `${outDir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const names = [...artifacts.keys()].sort();
  for (const name of names) {
    const file = path.join(tmp, `${name}.json`);
    fs.writeFileSync(file, `${JSON.stringify(artifacts.get(name).artifact, null, 2)}\n`);
  }
  const manifest = { ...meta, contracts: names };
  fs.writeFileSync(path.join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  try {
    fs.renameSync(tmp, outDir);
  } catch (e) {
    // Another run finished first with the same inputs: keep its copy.
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!isComplete(outDir)) throw e;
  }
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const require = createRequire(path.join(args.nodeModules, "noop.js"));
  let solcVersion;
  try {
    solcVersion = require("solc/package.json").version;
  } catch (e) {
    fail(`solc-js not found in ${args.nodeModules}: ${e.message}; run scripts/install-tools.sh`);
  }

  const entries = [PERMIT2_ENTRY, ...ownSources(REPO_CONTRACTS)];
  const sources = collectSources(entries, args.nodeModules);
  const hash = inputHash(solcVersion, sources);
  const outDir = path.join(args.cache, `contracts-${hash}`);
  if (isComplete(outDir)) {
    process.stdout.write(`${outDir}\n`);
    return;
  }

  log(`compiling ${entries.length} file(s), ${sources.size} source(s) with solc ${solcVersion} (Permit2 alone takes 10-30 s)`);
  const started = Date.now();
  const solc = require("solc");
  const artifacts = compile(solc, sources, entries);
  if (!artifacts.has("Permit2")) fail("solc produced no Permit2 contract");
  fs.mkdirSync(args.cache, { recursive: true });
  if (fs.existsSync(outDir)) fs.rmSync(outDir, { recursive: true, force: true }); // incomplete leftover
  writeAtomically(outDir, artifacts, {
    solc: solc.version(),
    settings: SETTINGS,
    entries,
  });
  log(`wrote ${artifacts.size} contract(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.stdout.write(`${outDir}\n`);
}

main();
