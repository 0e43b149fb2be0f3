#!/usr/bin/env bash
# Runs the console's browser tests in Debian's headless Chromium against the running stack.
# Usage: tests/browser/run.sh [--drill-kill]
#   (no flag)     page, drain and launch-panel tests
#   --drill-kill  only the kill drills: ./dev kill eu-kafka (root cause named, incident closed after
#                 heal), then ./dev region kill eu; each heals with ./dev region heal eu
# ORDERS_BIN_DIR: where the orders-console binary is (default target/debug, relative to the repo root).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WEB="$ROOT/services/console/web"
BIN_DIR=${ORDERS_BIN_DIR:-target/debug}
[[ $BIN_DIR == /* ]] || BIN_DIR="$ROOT/$BIN_DIR"

fail() { printf '\033[31mbrowser tests failed:\033[0m %s\n' "$*" >&2; exit 1; }

[[ -x "$BIN_DIR/orders-console" ]] || fail "no console binary at $BIN_DIR/orders-console (cargo build -p orders-console)"
if [[ ! -x /usr/bin/chromium ]]; then
  [[ $(id -u) == 0 ]] || fail "/usr/bin/chromium is missing: apt-get install -y chromium"
  echo "==> installing Debian's chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || fail "apt-get install chromium failed"
fi
if [[ ! -d "$WEB/node_modules" ]]; then
  (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in services/console/web failed"
fi
(cd "$WEB" && npm run --silent build) || fail "building the console page failed"
if [[ ! -d "$HERE/node_modules" ]]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in tests/browser failed"
fi
ORDERS_BIN_DIR="$BIN_DIR" node "$HERE/console.test.mjs" "$@" \
  || fail "see the output above; screenshots and the console log are in tests/browser/artifacts/"
