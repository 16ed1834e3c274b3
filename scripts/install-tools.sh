#!/usr/bin/env bash
# Installs every tool the tests and the demo need, into a cache outside the clone, at pinned
# versions. Idempotent: a second run with everything present finishes in seconds.
#
#   X402_CACHE   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs)
#
# Prints nothing secret. Writes $X402_CACHE/env.sh, which exports the tool paths.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${X402_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs}"
mkdir -p "$cache/logs"
SOLANA_VERSION="3.1.12"
say() { printf '[install-tools] %s\n' "$*" >&2; }

# --- Debian packages (build dependencies of the validator, node for anvil/solc, PostgreSQL) --
need_apt=()
for pkg in libudev-dev protobuf-compiler clang libclang-dev pkg-config libssl-dev cmake; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
# PostgreSQL server binaries (initdb, postgres, pg_ctl) for the settlement-store tests, which run
# a throw-away cluster of their own (tests/src/postgres.rs); the package's own service is unused.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
# python3 with a working `venv` (Debian ships its ensurepip separately, in python3-venv) for the
# official Python SDK's virtual environment.
if ! command -v python3 >/dev/null 2>&1; then
  need_apt+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
# headless Chromium for the browser-paywall tests (tests/tests/paywall), driven over DevTools
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ "${#need_apt[@]}" -gt 0 ]; then
  say "apt-get install ${need_apt[*]}"
  apt-get update -qq >"$cache/logs/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >>"$cache/logs/apt.log" 2>&1
fi

# --- npm packages: anvil, solc-js, contract sources -----------------------------------------
node_dir="$cache/node"
mkdir -p "$node_dir"
if ! cmp -s "$here/node/package.json" "$node_dir/package.json" || [ ! -d "$node_dir/node_modules" ]; then
  say "npm install (anvil, solc, contract packages)"
  cp "$here/node/package.json" "$node_dir/package.json"
  (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error >"$cache/logs/npm.log" 2>&1) \
    || { cat "$cache/logs/npm.log" >&2; exit 1; }
fi
anvil="$node_dir/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
chmod +x "$anvil" 2>/dev/null || true
"$anvil" --version >/dev/null

# --- the official x402 TypeScript SDKs for the interop tests (tests/interop), pinned by lock --
interop_dir="$cache/interop"
interop_src="$here/../tests/interop"
mkdir -p "$interop_dir"
if ! cmp -s "$interop_src/package-lock.json" "$interop_dir/package-lock.json" \
   || [ ! -d "$interop_dir/node_modules/@x402/fetch" ]; then
  say "npm ci (official x402 SDKs for interop tests)"
  cp "$interop_src/package.json" "$interop_src/package-lock.json" "$interop_dir/"
  (cd "$interop_dir" && npm ci --no-audit --no-fund --loglevel=error >"$cache/logs/npm-interop.log" 2>&1) \
    || { cat "$cache/logs/npm-interop.log" >&2; exit 1; }
fi

# --- the official x402 Python SDK for the interop tests (tests/interop/python), pinned ---------
# A virtual environment in the cache, rebuilt from scratch whenever the requirements file changes
# (its hash is the stamp: a machine whose environment predates a new requirement, such as the
# `mcp` and `svm` extras, rebuilds it), or when the modules the tests import no longer load
# (a broken or half-removed environment with a current stamp).
python_dir="$cache/python"
python_req="$here/../tests/interop/python/requirements.txt"
python_hash="$(sha256sum "$python_req" | cut -d' ' -f1)"
# What tests/interop/python/*.py import: the SDK's HTTP client and FastAPI middleware, its EVM and
# Solana mechanisms, its MCP client and server helpers on the MCP SDK's FastMCP, and uvicorn.
python_imports='import x402.http.clients.httpx, x402.http.middleware.fastapi, x402.mechanisms.evm.exact, x402.mechanisms.svm.exact, x402.mcp.client, x402.mcp.server, mcp.server.fastmcp, mcp.client.streamable_http, uvicorn'
if [ "$(cat "$python_dir/requirements.sha256" 2>/dev/null)" != "$python_hash" ] \
   || ! "$python_dir/bin/python" -c "$python_imports" >/dev/null 2>&1; then
  say "pip install (official x402 Python SDK and its MCP and Solana extras, for interop tests)"
  rm -rf "$python_dir"
  { python3 -m venv "$python_dir" \
    && "$python_dir/bin/pip" install --no-input --disable-pip-version-check -r "$python_req" \
    && "$python_dir/bin/python" -c "$python_imports"; } \
    >"$cache/logs/pip-interop.log" 2>&1 \
    || { cat "$cache/logs/pip-interop.log" >&2; exit 1; }
  echo "$python_hash" >"$python_dir/requirements.sha256"
fi

# --- the official TypeScript facilitator library for the benchmark comparison (bench/): --------
# @x402/core with @x402/evm and @x402/svm, pinned by bench/ts-facilitator/package-lock.json
bench_ts_dir="$cache/bench-ts"
bench_ts_src="$here/../bench/ts-facilitator"
mkdir -p "$bench_ts_dir"
if ! cmp -s "$bench_ts_src/package-lock.json" "$bench_ts_dir/package-lock.json" \
   || [ ! -d "$bench_ts_dir/node_modules/@x402/evm" ] || [ ! -d "$bench_ts_dir/node_modules/@x402/svm" ]; then
  say "npm ci (official x402 facilitator library for the benchmarks)"
  cp "$bench_ts_src/package.json" "$bench_ts_src/package-lock.json" "$bench_ts_dir/"
  (cd "$bench_ts_dir" && npm ci --no-audit --no-fund --loglevel=error >"$cache/logs/npm-bench-ts.log" 2>&1) \
    || { cat "$cache/logs/npm-bench-ts.log" >&2; exit 1; }
fi

# --- solana-test-validator: a suitable one on PATH, else built once into the cache ------------
validator=""
if command -v solana-test-validator >/dev/null 2>&1 \
   && solana-test-validator --version 2>/dev/null | grep -qE 'solana-test-validator 3\.'; then
  validator="$(command -v solana-test-validator)"
else
  validator="$cache/solana-$SOLANA_VERSION/bin/solana-test-validator"
  if [ ! -x "$validator" ]; then
    say "building solana-test-validator $SOLANA_VERSION (30-50 minutes on 2 cores, once; log: $cache/logs/validator-build.log)"
    build_log="$cache/logs/validator-build.log"
    # cargo's progress bar ("Building [==>  ] 412/873: ...") goes to the log even though it is no
    # terminal; the loop below reads the last count from it.
    CARGO_TERM_PROGRESS_WHEN=always CARGO_TERM_PROGRESS_WIDTH=100 \
      env -u CARGO_TARGET_DIR cargo +1.95.0 install agave-validator --version "$SOLANA_VERSION" --locked \
      --bin solana-test-validator --root "$cache/solana-$SOLANA_VERSION" >"$build_log" 2>&1 &
    build_pid=$!
    started=$SECONDS
    # A line a minute (every 15 s on a terminal): elapsed time and crates compiled of the total.
    interval=60; [ -t 2 ] && interval=15
    while kill -0 "$build_pid" 2>/dev/null; do
      for _ in $(seq "$interval"); do kill -0 "$build_pid" 2>/dev/null || break; sleep 1; done
      kill -0 "$build_pid" 2>/dev/null || break
      count=$(tr '\r' '\n' <"$build_log" | grep -oE 'Building \[[^]]*\] [0-9]+/[0-9]+' | tail -n 1 | grep -oE '[0-9]+/[0-9]+' || true)
      elapsed=$((SECONDS - started))
      say "  building solana-test-validator: $((elapsed / 60))m$(printf '%02d' $((elapsed % 60)))s elapsed, ${count:-preparing} crates compiled"
    done
    wait "$build_pid" || { tr '\r' '\n' <"$build_log" | grep -v 'Building \[' | tail -50 >&2; exit 1; }
    say "built solana-test-validator in $(((SECONDS - started) / 60)) min"
  fi
fi
"$validator" --version >/dev/null

# --- compiled test contracts (Permit2, our proxies), cached by the hash of their inputs --------
contracts_dir="$(node "$here/compile-contracts.mjs" --node-modules "$node_dir/node_modules" --cache "$cache")"

cat >"$cache/env.sh" <<ENV
export X402_CACHE="$cache"
export X402_ANVIL="$anvil"
export X402_SOLANA_TEST_VALIDATOR="$validator"
export X402_NODE_MODULES="$node_dir/node_modules"
export X402_INTEROP_NODE_MODULES="$interop_dir/node_modules"
export X402_CONTRACTS_DIR="$contracts_dir"
export X402_BENCH_TS_DIR="$bench_ts_dir"
export X402_PYTHON="$python_dir/bin/python"
export X402_CHROMIUM="$(command -v chromium)"
ENV
say "tools ready; source $cache/env.sh"
