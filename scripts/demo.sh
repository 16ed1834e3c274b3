#!/usr/bin/env bash
# Sets up everything on a fresh machine and runs the local chain set-up: anvil with real USDC and
# Permit2, solana-test-validator with SPL Token and Token-2022 mints. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export X402_CACHE="${X402_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$X402_CACHE/target}"
scripts/install-tools.sh
# shellcheck source=/dev/null
source "$X402_CACHE/env.sh"
exec cargo run -q -p x402-tests --bin x402-testbed
