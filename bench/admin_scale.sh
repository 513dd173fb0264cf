#!/usr/bin/env bash
# The admin API and UI at scale (issue: "dashboard, logs list and a key's page answer
# in under 200 ms with 1,000,000 audit rows in SQLite and in PostgreSQL").
#
#   bash bench/admin_scale.sh [ROWS]            # SQLite, default 1,000,000 rows
#   PG_URL=postgres://postgres@127.0.0.1:5432/postgres bash bench/admin_scale.sh [ROWS]
#                                               # also PostgreSQL: a scratch database
#                                               # `fastgate_scale` is dropped and created
#
# For each backend: a fresh database, `fastgate dev seed-logs ROWS` (synthetic rows over
# the last 7 days through the audit writer's batch insert, so rollups are maintained),
# then the release binary serves and every request a page makes is timed with curl
# (7 runs each after one warm-up; median and max in ms). Output: a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
cargo build --release -q -p fastgate
bin="${CARGO_TARGET_DIR:-target}/release/fastgate"
token="scale-admin-token-0123456789abcdef"

# name url... : time each URL path, print "| name | path | median | max |" rows.
time_paths() {
  local base="$1"; shift
  for p in "$@"; do
    curl -fsS -o /dev/null -H "Authorization: Bearer ${token}" "${base}${p}"
    local times=()
    for _ in 1 2 3 4 5 6 7; do
      times+=("$(curl -fsS -o /dev/null -w '%{time_total}' -H "Authorization: Bearer ${token}" "${base}${p}")")
    done
    python3 - "$p" "${times[@]}" <<'PY'
import statistics, sys
p, ts = sys.argv[1], [float(t) * 1000 for t in sys.argv[2:]]
print(f"| `{p}` | {statistics.median(ts):.1f} | {max(ts):.1f} |")
PY
  done
}

run_backend() {
  local label="$1" db_url="$2"
  local work port key_id
  work="$(mktemp -d)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  cat > "$work/fastgate.yaml" <<YAML
server: { listen: "127.0.0.1:${port}" }
data_dir: "${work}/data"
admin: { token: "${token}" }
database: { url: "${db_url}" }
YAML
  echo "### ${label}: seeding ${rows} rows" >&2
  "$bin" --config "$work/fastgate.yaml" dev seed-logs "$rows" >&2
  "$bin" serve --config "$work/fastgate.yaml" > "$work/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:${port}/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  local base="http://127.0.0.1:${port}/admin/api"
  key_id="$(curl -fsS -H "Authorization: Bearer ${token}" "${base}/keys" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d.get("data",d) if isinstance(d,dict) else d; print(next(k["id"] for k in d if k["name"]=="seed-key-00"))')"
  local last_id
  last_id="$(curl -fsS -H "Authorization: Bearer ${token}" "${base}/logs?limit=50" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][-1]["request_id"])')"
  echo ""
  echo "#### ${label}, ${rows} audit rows"
  echo ""
  echo "| request | median ms | max ms |"
  echo "| --- | ---: | ---: |"
  echo "| **Dashboard** | | |"
  time_paths "$base" \
    "/stats/summary" "/stats/timeseries?bucket=hour" "/stats/top?by=model&limit=5" \
    "/stats/top?by=key&limit=5" "/stats/top?by=status&limit=5" "/stats/top?by=route&limit=5" \
    "/logs?limit=10"
  echo "| **Logs list** | | |"
  time_paths "$base" \
    "/logs?limit=50" "/logs?limit=50&offset=50" "/logs?limit=50&status_min=500" \
    "/logs?limit=50&model=claude-sonnet-4" "/logs?limit=50&key_id=${key_id}" \
    "/logs?limit=50&path=/v1/embeddings" "/logs/${last_id}"
  echo "| **A key's page** | | |"
  time_paths "$base" \
    "/keys/${key_id}" "/keys/${key_id}/usage" \
    "/stats/timeseries?bucket=hour&key=${key_id}" "/stats/summary?key=${key_id}" \
    "/logs?limit=50&key_id=${key_id}" "/keys"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}

echo "Command: \`bash bench/admin_scale.sh ${rows}\` on $(nproc) cores, $(date -u +%F)"
run_backend "SQLite" ""
if [ -n "${PG_URL:-}" ]; then
  psql "$PG_URL" -qc "DROP DATABASE IF EXISTS fastgate_scale" -c "CREATE DATABASE fastgate_scale" >&2
  run_backend "PostgreSQL" "${PG_URL%/*}/fastgate_scale"
  psql "$PG_URL" -qc "DROP DATABASE IF EXISTS fastgate_scale" >&2
fi
