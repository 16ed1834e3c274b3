#!/usr/bin/env bash
# Runs every test of the workspace on real local chains. Installs what is missing first
# (scripts/install-tools.sh), so it works on a fresh machine; later runs reuse the cache.
#
#   X402_CACHE        tool cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs)
#   CARGO_TARGET_DIR  build directory (default $X402_CACHE/target, outside the clone)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export X402_CACHE="${X402_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$X402_CACHE/target}"
step() { printf '\n==> %s\n' "$*" >&2; }
t0=$SECONDS

step "formatting"
cargo fmt --all -- --check

step "tools (anvil, solc, contracts, solana-test-validator)"
scripts/install-tools.sh
# shellcheck source=/dev/null
source "$X402_CACHE/env.sh"

step "workspace tests"
cargo test --workspace --all-targets

step "facilitator-bin composition, one feature set at a time"
cargo test -p facilitator-bin --no-default-features
cargo test -p facilitator-bin --no-default-features --features evm
cargo test -p facilitator-bin --no-default-features --features svm

step "clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "done in $((SECONDS - t0)) s"
