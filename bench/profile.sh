#!/usr/bin/env bash
# CPU profile of FastGate under the a32 load, summarised as Markdown.
#
#   bash bench/run.sh --scenarios a32 --targets fastgate-1t,fastgate-1t-noaudit --keep-data
#   bash bench/profile.sh target/fastgate-bench/run-<stamp>/fg-1t.yaml [seconds] > profile.md
#
# Uses a FastGate config the harness generated (fg-1t.yaml: audit on;
# fg-1t-na.yaml: audit off), with a fresh data directory, a fresh mock and a
# fresh bench key. FastGate runs pinned to CPU 1, the mock and oha (32
# connections) to CPU 0, as in the benchmark. `perf record -e cpu-clock`
# samples the FastGate process (all threads); bench/perf_summary.py groups the
# samples. The release binary keeps its symbol table, so functions are named;
# for inlined frames and call graphs build `--profile profiling` and set
# FASTGATE=target/profiling/fastgate. Loopback only; bounded by [seconds].
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CONF=${1:?usage: bench/profile.sh <harness fg-1t.yaml> [seconds]}
SECS=${2:-8}
BIN=${FASTGATE:-$ROOT/target/release/fastgate}
MOCK_BIN=$ROOT/target/release/bench-mock
RUN_DIR=$(cd "$(dirname "$CONF")" && pwd)
BODY=$RUN_DIR/body-small.json
for tool in perf oha taskset python3 curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
WORK=$(mktemp -d /tmp/fastgate-profile.XXXXXX)
MP=$(port); PP=$(port)
OLD_MOCK=$(sed -n 's#.*base_url: "http://127.0.0.1:\([0-9]*\)".*#\1#p' "$CONF" | head -1)
OLD_DATA=$(sed -n 's#^data_dir: "\(.*\)"#\1#p' "$CONF")
sed -e "s#127.0.0.1:$OLD_MOCK#127.0.0.1:$MP#g" \
    -e "s#listen: \"127.0.0.1:[0-9]*\"#listen: \"127.0.0.1:$PP\"#" \
    -e "s#$OLD_DATA#$WORK/data#g" "$CONF" > "$WORK/conf.yaml"
mkdir -p "$WORK/data"
cleanup() { kill "${FG:-}" "${MOCK:-}" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
taskset -c 0 "$MOCK_BIN" --listen "127.0.0.1:$MP" --threads 1 --backlog 16384 >/dev/null 2>&1 &
MOCK=$!
KEY=$("$BIN" --config "$WORK/conf.yaml" keys create --name profile --json |
      python3 -c 'import json,sys;print(json.load(sys.stdin)["key"])')
taskset -c 1 "$BIN" serve --config "$WORK/conf.yaml" >"$WORK/fastgate.log" 2>&1 &
FG=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PP/health" && break; sleep 0.1; done
load() {
    taskset -c 0 oha --no-tui -z "$1" -c 32 -m POST -T application/json -D "$BODY" \
        --worker-threads 1 -H "authorization: Bearer $KEY" \
        "http://127.0.0.1:$PP/v1/chat/completions" "${@:2}"
}
load 1s >/dev/null 2>&1
perf record -q -e cpu-clock -F 2999 -o "$WORK/perf.data" -p "$FG" -- sleep "$((SECS - 1))" \
    >/dev/null 2>&1 &
PERF=$!
load "${SECS}s" --output-format json >"$WORK/oha.json" 2>/dev/null
wait "$PERF" || true
python3 - "$WORK/oha.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"Load: {d['summary']['requestsPerSec']:,.0f} req/s over the run "
      f"(32 connections, FastGate pinned to one core, perf sampling at 2,999 Hz).\n")
PY
perf report -i "$WORK/perf.data" --no-children --sort comm,dso,sym 2>/dev/null >"$WORK/flat.txt"
python3 "$ROOT/bench/perf_summary.py" "$WORK/flat.txt" 25
