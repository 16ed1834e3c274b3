#!/usr/bin/env bash
# The whole benchmark in one command: installs the tools (anvil, solana-test-validator, the
# TypeScript facilitator library) if missing, builds the facilitator and the benchmark in release
# mode, runs every scenario and writes report.json and report.md.
#
#   bench/run.sh [x402-bench run options…]      e.g. bench/run.sh --no-svm --step-secs 5
#
#   X402_CACHE        tool cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs)
#   CARGO_TARGET_DIR  build directory (default $X402_CACHE/target, outside the clone)
#   OUT               where the report goes (default $X402_CACHE/bench-report)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export X402_CACHE="${X402_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$X402_CACHE/target}"
scripts/install-tools.sh
# shellcheck source=/dev/null
source "$X402_CACHE/env.sh"
cargo build --release -p facilitator-bin -p x402-bench
exec "$CARGO_TARGET_DIR/release/x402-bench" run \
  --facilitator-bin "$CARGO_TARGET_DIR/release/x402-facilitator" \
  --out "${OUT:-$X402_CACHE/bench-report}" "$@"
