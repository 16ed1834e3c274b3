#!/usr/bin/env bash
# Sets up everything on a fresh machine and runs the demo: anvil with real USDC, Permit2 and the
# x402 proxies, solana-test-validator with SPL Token and Token-2022 mints, the facilitator binary
# on them, and one payment over HTTP (requirements -> signed -> verified -> settled).
# Ctrl-C stops everything it started (X402_DEMO_EXIT=1 exits after the payment).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export X402_CACHE="${X402_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$X402_CACHE/target}"
scripts/install-tools.sh
# shellcheck source=/dev/null
source "$X402_CACHE/env.sh"
cargo build -q -p facilitator-bin -p x402-tests --bins
cargo build -q -p x402-buyer --features cli --bins
exec "$CARGO_TARGET_DIR/debug/x402-demo"
