#!/usr/bin/env bash
# Starts the debug FastGate binary in demo form (the built-in mock upstream) on a
# loopback port with a fresh data dir and a new gateway key, runs the command
# given as arguments with FASTGATE_URL and FASTGATE_KEY set, and stops the
# gateway. Used by the SDK checks .ci/run calls. Bounded: every step has a timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${CARGO_TARGET_DIR:-target}/debug/fastgate"
[ -x "$bin" ] || cargo build -q -p fastgate
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat > "$work/fastgate.yaml" <<YAML
server: { listen: "127.0.0.1:${port}" }
data_dir: "${work}/data"
admin: { token: "sdk-check-admin-token-0123456789" }
YAML
key="$(timeout 60 "$bin" --config "$work/fastgate.yaml" keys create --name sdk --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
timeout 120 "$bin" serve --demo --config "$work/fastgate.yaml" > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${port}/health" >/dev/null 2>&1 && break
  sleep 0.1
done
FASTGATE_URL="http://127.0.0.1:${port}" FASTGATE_KEY="$key" timeout 120 "$@"
