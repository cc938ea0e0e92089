#!/usr/bin/env bash
# Throughput of `steward up`: OTLP/HTTP log exports (protobuf, 1,000 records a request,
# 8 keep-alive connections) against a release build with template mining and the
# embedded store on, for WARMUP + SECONDS seconds. Writes bench/out/watch/*.json and
# prints the load generator's report, steward's own counters and the store's size.
#
# Usage: bench/watch/run.sh            (env: SECONDS_MEASURED=60 WARMUP=10 CONNECTIONS=8 BATCH=1000;
#        STEWARD_BIN and OTLP_LOAD run copies of the binaries another build cannot replace)
set -euo pipefail
cd "$(dirname "$0")/../.."

measured="${SECONDS_MEASURED:-60}"
warmup="${WARMUP:-10}"
connections="${CONNECTIONS:-8}"
batch="${BATCH:-1000}"

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release -q -p steward --bin steward
    cargo build --release -q -p steward-watch --example otlp_load
fi

out=bench/out/watch
mkdir -p "$out"
data="$(mktemp -d)"
"${STEWARD_BIN:-target/release/steward}" --json up --listen 127.0.0.1:0 --otlp 127.0.0.1:0 --data-dir "$data" \
    >"$out/up.json" 2>"$out/up.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do [ -s "$out/up.json" ] && break; sleep 0.1; done
otlp="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["otlp"][7:])' "$out/up.json")"
api="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"])' "$out/up.json")"

"${OTLP_LOAD:-target/release/examples/otlp_load}" --target "$otlp" --connections "$connections" --batch "$batch" \
    --warmup "$warmup" --seconds "$measured" --pid "$pid" | tee "$out/load.json"

# Let the pipeline drain, then read steward's own account.
for _ in $(seq 300); do
    depth="$(curl -s "$api/metrics" | awk '/^steward_queue_depth/ {s += $2} END {print s + 0}')"
    [ "$depth" = 0 ] && break
    sleep 0.1
done
curl -s "$api/metrics" | grep -E '^steward_(records|requests|queue|store_commits)' | tee "$out/metrics.txt"
curl -s "$api/api/v1/templates?limit=1000" |
    python3 -c 'import json,sys; t=json.load(sys.stdin)["templates"]; print("templates:", len(t), "records mined:", sum(x["count"] for x in t))' |
    tee "$out/templates.txt"
kill -TERM "$pid"
wait "$pid" || true
echo "store: $(du -sh "$data" | cut -f1)" | tee "$out/store.txt"
