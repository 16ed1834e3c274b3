#!/usr/bin/env bash
# The whole benchmark in one command: installs the tools (anvil, solana-test-validator, the
# TypeScript facilitator library) if missing, builds our facilitator, x402-rs/x402-rs's
# (bench/peer-x402rs, its own package and lock file) and the benchmark in release mode, runs every
# scenario against the three and writes report.json and report.md.
#
#   bench/run.sh [x402-bench run options…]      e.g. bench/run.sh --no-svm --step-secs 5
#   bench/run.sh --no-peer …                    without x402-rs (nothing of it is built)
#
#   X402_CACHE            tool cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs)
#   CARGO_TARGET_DIR      build directory (default $X402_CACHE/target, outside the clone)
#   X402_PEER_TARGET_DIR  x402-rs's build directory (default $X402_CACHE/target-peer: its own
#                         lock file resolves other alloy/Solana versions, kept apart from ours)
#   OUT                   where the report goes (default $X402_CACHE/bench-report)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export X402_CACHE="${X402_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$X402_CACHE/target}"
peer_target="${X402_PEER_TARGET_DIR:-$X402_CACHE/target-peer}"
build_peer=1
prev=""
for arg in "$@"; do
  case "$arg" in --no-peer | --peer-bin) build_peer=0 ;; esac
  # `--only` without a scenario the peer runs in (the invalid flood, the store comparison)
  if [ "$prev" = "--only" ] && ! [[ ",$arg," =~ ,(verify|settle-automine|settle-blocks|svm), ]]; then
    build_peer=0
  fi
  prev="$arg"
done
scripts/install-tools.sh
# shellcheck source=/dev/null
source "$X402_CACHE/env.sh"
cargo build --release -p facilitator-bin -p x402-bench
peer_args=()
if [ "$build_peer" = 1 ]; then
  # The first build compiles x402-rs's alloy and Solana stacks: 20-40 minutes on 2 cores.
  echo "[run.sh] building x402-rs's facilitator (bench/peer-x402rs) into $peer_target" >&2
  CARGO_TARGET_DIR="$peer_target" cargo build --release --locked \
    --manifest-path bench/peer-x402rs/Cargo.toml
  peer_args=(--peer-bin "$peer_target/release/x402-bench-peer-x402rs")
fi
exec "$CARGO_TARGET_DIR/release/x402-bench" run \
  --facilitator-bin "$CARGO_TARGET_DIR/release/x402-facilitator" \
  "${peer_args[@]}" \
  --out "${OUT:-$X402_CACHE/bench-report}" "$@"
