#!/usr/bin/env bash
# Contract test of the admin API against its OpenAPI document: Schemathesis (from
# PyPI, pinned in requirements.txt, in a venv under .ci/openapi/.venv) generates
# requests from GET /admin/api/openapi.json and sends them to the FastGate binary
# in demo form (the built-in mock upstream, a fresh data dir, a random loopback
# port). Fails on any 5xx, any status, content type or body the document does
# not list for the operation. Bounded: a number of examples per operation, a
# time budget for the run, and a timeout on every step. Called by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=.ci/openapi
venv="$PWD/$here/.venv"
# Examples per operation and the fuzzer's time budget (seconds); the whole
# script stays under ~4 minutes on 2 cores with a built binary.
max_examples="${OPENAPI_MAX_EXAMPLES:-40}"
max_time="${OPENAPI_MAX_TIME:-150}"

if [ ! -x "$venv/bin/schemathesis" ] \
  || ! "$venv/bin/pip" freeze 2>/dev/null | grep -qxF -f <(grep -v '^#' "$here/requirements.txt"); then
  rm -rf "$venv"
  timeout 60 python3 -m venv "$venv"
  timeout 300 "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
fi

timeout 900 cargo build -q -p fastgate
bin="${CARGO_TARGET_DIR:-target}/debug/fastgate"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
token="openapi-check-admin-token-0123456789"
cat > "$work/fastgate.yaml" <<YAML
server: { listen: "127.0.0.1:${port}" }
data_dir: "${work}/data"
admin: { token: "${token}" }
# One object of each kind for the examples in the document to reach (an
# upstream with a provider key, a route, a rule); the upstream's address is
# closed, so a probe answers with its error.
upstreams:
  - { name: demo-http, kind: http, base_url: "http://127.0.0.1:9", credentials: [ { name: main, key: "sk-openapi-check" } ] }
routes:
  - { name: demo, match: { path: "/demo/**" }, upstream: demo-http }
rules:
  - { name: demo, when: { status: 429 }, actions: [ { disable: 10m } ] }
YAML
timeout $((max_time + 120)) "$bin" serve --demo --config "$work/fastgate.yaml" > "$work/serve.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${port}/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:${port}/health" >/dev/null

# /metrics is Prometheus text, not JSON: nothing for the schema checks to read.
# Run from the temp dir: Schemathesis keeps a cache in its working directory.
status=0
(cd "$work" && timeout $((max_time + 60)) "$venv/bin/schemathesis" run \
  "http://127.0.0.1:${port}/admin/api/openapi.json" \
  --url "http://127.0.0.1:${port}" \
  --header "Authorization: Bearer ${token}" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --exclude-path /metrics \
  --max-examples "$max_examples" \
  --max-time "$max_time" \
  --request-timeout 35 \
  --seed "${OPENAPI_SEED:-1}" \
  --generation-database none \
  --workers 2 \
  --suppress-health-check all \
  --no-color) || status=$?
if [ "$status" -ne 0 ]; then
  echo "== the gateway's log (last 50 lines)" >&2
  tail -n 50 "$work/serve.log" >&2
fi
exit "$status"
