#!/usr/bin/env bash
# hsa serve driven by the official `openai` npm client (installed into a cache folder under the build dir).
# Usage: openai_client_test.sh HSA_BINARY SOURCE_DIR CACHE_DIR. Exits 77 (skipped) when node/npm cannot install it.
set -euo pipefail
hsa=$1 src=$2 cache=$3
command -v node >/dev/null && command -v npm >/dev/null || { echo "skip: node/npm not found"; exit 77; }
mkdir -p "$cache"
if [ ! -d "$cache/node_modules/openai" ]; then
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error openai@4 >"$cache/npm.log" 2>&1 ||
    { echo "skip: npm install openai failed:"; tail -5 "$cache/npm.log"; exit 77; }
fi
log=$(mktemp)
"$hsa" serve -m "$src/models/passkey-tiny" --port 0 --api-key sk-test >"$log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -f "$log"' EXIT
port=""
for _ in $(seq 600); do
  port=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  grep -q "ready:" "$log" && [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "server did not start"; cat "$log"; exit 1; }
NODE_PATH="$cache/node_modules" HSA_URL="http://127.0.0.1:$port/v1" node "$src/tests/serve/openai_client_test.js"
kill -TERM $pid
wait $pid
echo "server exited 0 after SIGTERM"
