#!/usr/bin/env bash
# Moves the pinned official x402 TypeScript packages (@x402/*) to another version and shows what
# changed for us: rewrites the pins (tests/interop, bench/ts-facilitator: package.json and its
# lock), installs them into the cache (scripts/install-tools.sh), then runs the vocabulary test
# (our reason codes, default assets and v1 network names against the packages', each difference
# named) and the whole interop suite.
#
#   scripts/bump-sdk.sh 2.28.0
#
#   X402_CACHE        tool cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs)
#   CARGO_TARGET_DIR  build directory (default $X402_CACHE/target, outside the clone)
#
# Exits non-zero when the packages differ from our vocabulary or an interop test fails; the pins
# stay rewritten either way, for the commit that adopts the new version.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version="${1:-}"
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "usage: scripts/bump-sdk.sh <version>   (an exact version such as 2.28.0)" >&2
  exit 2
fi
export X402_CACHE="${X402_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/x402-rs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$X402_CACHE/target}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
say() { printf '\n==> %s\n' "$*" >&2; }

# Every package.json the install script installs from that pins @x402 packages.
manifests=()
for dir in tests/interop bench/ts-facilitator; do
  grep -q '"@x402/' "$dir/package.json" && manifests+=("$dir")
done

say "pinning @x402/* $version in ${manifests[*]}"
for dir in "${manifests[@]}"; do
  # Rewrites only the @x402 entries of "dependencies", keeping the file's layout (two spaces,
  # trailing newline) and printing what moved.
  node - "$dir/package.json" "$version" <<'JS'
const fs = require("node:fs");
const [file, version] = process.argv.slice(2);
const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
for (const [name, old] of Object.entries(manifest.dependencies ?? {})) {
  if (!name.startsWith("@x402/")) continue;
  if (old !== version) console.error(`  ${file}: ${name} ${old} -> ${version}`);
  manifest.dependencies[name] = version;
}
fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
JS
  # The lock follows the manifest; nothing is installed into the clone.
  (cd "$dir" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund --loglevel=error)
done
git --no-pager diff --stat -- "${manifests[@]/%//package.json}" "${manifests[@]/%//package-lock.json}" >&2 || true

say "installing into $X402_CACHE"
scripts/install-tools.sh
# shellcheck source=/dev/null
source "$X402_CACHE/env.sh"

status=0
log="$X402_CACHE/logs/bump-sdk-vocabulary.log"
say "vocabulary: our reason codes, default assets and v1 network names against @x402/* $version"
cargo test -p x402-tests --test interop vocabulary >"$log" 2>&1 || status=1
# The test names each difference on a line of its own: print those and the verdicts.
grep -E '^(test |test result|[a-z0-9 ]+ differ from the official packages|`|EVM default|Solana default|v1 name|@x402/)' "$log" >&2 || true
grep -q 'test result: ok' "$log" || status=1
[ "$status" -eq 0 ] || echo "the vocabulary differs (full log: $log)" >&2

say "the rest of the interop suite against @x402/* $version"
cargo test -p x402-tests --test interop -- --skip vocabulary || status=1

if [ "$status" -eq 0 ]; then
  say "@x402/* $version: no differences; commit the pins (git add ${manifests[*]})"
else
  say "@x402/* $version: differences above; adopt them (docs/reasons.md says how) or keep the old pins (git checkout ${manifests[*]})"
fi
exit "$status"
