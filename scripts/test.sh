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
# Incremental data only helps an editing session; in CI it grows the cached target dir by GBs.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# A cache that outgrew the disk is worth less than a rebuild: start over above 40 GB.
if [ -d "$CARGO_TARGET_DIR" ] && [ "$(du -sm "$CARGO_TARGET_DIR" 2>/dev/null | cut -f1)" -gt 40000 ]; then
  echo "target directory above 40 GB: removing it" >&2
  rm -rf "$CARGO_TARGET_DIR"
fi
step() { printf '\n==> %s\n' "$*" >&2; }
t0=$SECONDS

step "formatting"
cargo fmt --all -- --check

step "tools (anvil, solc, contracts, solana-test-validator)"
scripts/install-tools.sh
# shellcheck source=/dev/null
source "$X402_CACHE/env.sh"

step "workspace tests"
# The binaries the tests run as programs (the `x402` CLI among them: a package without
# integration tests of its own gets only its unit-test build from `cargo test`), with the
# workspace's unified features — the same artifacts the tests link, nothing built twice.
cargo build --workspace --bins
cargo test --workspace --all-targets

step "facilitator-bin composition: each feature set links exactly its chain stacks"
tree() { cargo tree -q -p facilitator-bin -e normal --prefix none --no-default-features "$@"; }
if tree --features evm | grep -qE '^(solana|spl-)'; then
  echo "--features evm pulls a Solana crate into the dependency tree" >&2; exit 1
fi
if tree --features svm | grep -qE '^alloy'; then
  echo "--features svm pulls alloy into the dependency tree" >&2; exit 1
fi
tree --features evm | grep -qE '^scheme-exact-evm ' || { echo "--features evm lacks scheme-exact-evm" >&2; exit 1; }
tree --features svm | grep -qE '^scheme-exact-svm ' || { echo "--features svm lacks scheme-exact-svm" >&2; exit 1; }
if tree | grep -qE '^(alloy|solana|spl-|scheme-)'; then
  echo "--no-default-features still links a chain stack" >&2; exit 1
fi
if tree --features template | grep -qE '^(alloy|solana|spl-)'; then
  echo "--features template pulls a chain stack into the dependency tree" >&2; exit 1
fi
# One run per scheme feature of facilitator-bin, read from the manifest (every feature but
# `default` and `otel`), so a new scheme crate's feature is tested without editing this script.
scheme_features=$(cargo metadata -q --format-version 1 --no-deps | python3 -c '
import json, sys
package = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "facilitator-bin")
print(" ".join(sorted(f for f in package["features"] if f not in ("default", "otel"))))')
[ -n "$scheme_features" ] || { echo "facilitator-bin declares no scheme feature" >&2; exit 1; }
cargo test -p facilitator-bin --no-default-features
for feature in $scheme_features; do
  cargo test -p facilitator-bin --no-default-features --features "$feature"
done
step "role features: the buyer CLI links no facilitator code; the facilitator no buyer or seller"
# `cargo tree -e features -i PKG` lists the features of PKG that a build enables.
enabled() { cargo tree -q -e features,normal -i "$2" --prefix none "${@:3}" -p "$1" | grep -oE "^$2 feature \"[a-z]+\"" | sort -u || true; }
for pkg in x402-evm scheme-exact-evm scheme-upto-evm scheme-exact-svm; do
  if enabled x402-buyer "$pkg" --features cli | grep -q '"facilitator"'; then
    echo "x402 CLI (x402-buyer --features cli) enables $pkg's facilitator role" >&2; exit 1
  fi
done
for pkg in scheme-exact-evm scheme-upto-evm scheme-exact-svm; do
  roles=$(enabled facilitator-bin "$pkg" --no-default-features --features evm,svm)
  [ "$roles" = "$pkg feature \"facilitator\"" ] \
    || { echo "facilitator-bin enables these roles of $pkg: ${roles:-none} (expected facilitator only)" >&2; exit 1; }
done
cargo check -q -p scheme-exact-evm -p scheme-upto-evm -p scheme-exact-svm --no-default-features --features seller
cargo check -q -p scheme-exact-evm -p scheme-upto-evm -p scheme-exact-svm --no-default-features --features buyer

step "facilitator-bin with OpenTelemetry export"
cargo test -p facilitator-bin --features otel --test facilitator -- otel::

step "clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "done in $((SECONDS - t0)) s"
