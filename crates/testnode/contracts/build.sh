#!/usr/bin/env bash
# Rebuilds out/*.bin from Traffic.sol with solc 0.8.37 (the npm `solc` package, installed in a
# temp dir): optimizer on, EVM cancun.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm install --silent --no-package-lock --no-audit --no-fund solc@0.8.37 >/dev/null)
node build.js "$tmp/node_modules/solc"
