#!/usr/bin/env bash
# Browser checks of the admin UI (.ci/ui/ui_check.js) in Debian's Chromium, driven by
# playwright-core from npm (no browser is downloaded), against the debug binary in demo
# form on a loopback port. Installs Chromium (apt) and playwright-core (npm, pinned in
# package.json) when missing. SHOTS=docs/ui refreshes the README's screenshots.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/chromium ]; then
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q chromium >/dev/null
fi
# A CJK font, so the Chinese pages' screenshots show characters (the checks read text
# and do not need it).
if [ -n "${SHOTS:-}" ] && ! fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk"; then
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -q fonts-wqy-zenhei >/dev/null
fi
if [ ! -d .ci/ui/node_modules/playwright-core ]; then
  (cd .ci/ui && timeout 300 npm install --silent --no-audit --no-fund)
fi
bin="${CARGO_TARGET_DIR:-target}/debug/fastgate"
[ -x "$bin" ] || cargo build -q -p fastgate
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
admin_token="ui-check-admin-token-0123456789"
cat > "$work/fastgate.yaml" <<YAML
server: { listen: "127.0.0.1:${port}" }
data_dir: "${work}/data"
admin: { token: "${admin_token}" }
timezone: "Asia/Shanghai"
llm: { audit: { headers: true, bodies: true } }
YAML
key="$(timeout 60 "$bin" --config "$work/fastgate.yaml" keys create --name ui-check --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
timeout 300 "$bin" serve --demo --config "$work/fastgate.yaml" > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${port}/health" >/dev/null 2>&1 && break
  sleep 0.1
done
shots="${SHOTS:-$work/shots}"
mkdir -p "$shots"
FASTGATE_URL="http://127.0.0.1:${port}" FASTGATE_KEY="$key" FASTGATE_ADMIN_TOKEN="$admin_token" \
  SHOTS="$shots" timeout 240 node .ci/ui/ui_check.js
FASTGATE_URL="http://127.0.0.1:${port}" FASTGATE_KEY="$key" FASTGATE_ADMIN_TOKEN="$admin_token" \
  SHOTS="$shots" timeout 240 node .ci/ui/ui_manage_check.js
