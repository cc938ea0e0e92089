#!/usr/bin/env bash
# The metric anchors of issue 10, side by side under the same remote-write load.
#
# Installs Debian's prometheus (2.42) and victoria-metrics (1.79) if they are missing,
# starts each on a free loopback port with a fresh data directory, drives
# bench/metrics/loadgen at it (8 connections, 1,000 series x 10 samples per request,
# 96,000 active series, 10 s warm-up, 30 s measured), reads the server's resident
# memory from /proc (VmRSS at the end of the run, VmHWM = peak) and stops it.
#
#   bench/metrics/run-anchors.sh                      # both anchors, all cores
#   PIN=0 bench/metrics/run-anchors.sh                # servers pinned to core 0 (taskset)
#   TARGETS="prometheus steward" bench/metrics/run-anchors.sh
#   STEWARD_BIN=target/release/steward TARGETS="steward steward-nodetect" bench/metrics/run-anchors.sh
#   WARMUP=10 DURATION=30 bench/metrics/run-anchors.sh
#
# Targets: prometheus, victoria-metrics, steward (`steward up`, a detector on every
# series) and steward-nodetect (`steward up` with STEWARD_DETECT_ENABLED=false: stored
# and served only). For the steward targets the load generator reads one series per
# request group back through the API afterwards (verify_lost must be 0), and the
# script reads steward's /metrics at the end (detector latency p50/p99, refusals,
# dropped). Results: one JSON line per target on stdout and in
# bench/out/metrics/<UTC time>/.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGETS="${TARGETS:-prometheus victoria-metrics}"
WARMUP="${WARMUP:-10}"
DURATION="${DURATION:-30}"
PIN="${PIN:-}"
STEWARD_BIN="${STEWARD_BIN:-$ROOT/target/release/steward}"
OUT="$ROOT/bench/out/metrics/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

need_install=()
command -v prometheus >/dev/null || need_install+=(prometheus)
command -v victoria-metrics >/dev/null || need_install+=(victoria-metrics)
[[ -x /usr/bin/time ]] || need_install+=(time)
command -v curl >/dev/null || need_install+=(curl)
command -v taskset >/dev/null || need_install+=(util-linux)
if ((${#need_install[@]})); then
    echo "installing ${need_install[*]} from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_install[@]}" >&2
    # The packages' init scripts may start a system-wide instance; it would take the
    # default ports and a core, so stop it.
    for svc in prometheus victoria-metrics; do
        (service "$svc" stop || true) >/dev/null 2>&1
    done
fi

LOADGEN="${LOADGEN:-$ROOT/target/release/metrics-loadgen}"
# Build only when needed: in a shared checkout cargo may wait long on others' builds.
if [[ ! -x "$LOADGEN" || -n "$(find "$ROOT/bench/metrics/loadgen" -newer "$LOADGEN" -type f)" ]]; then
    echo "building the load generator" >&2
    cargo build --quiet --release -p metrics-loadgen --manifest-path "$ROOT/Cargo.toml"
fi

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}

wait_ready() { # url seconds
    local i
    for i in $(seq 1 "$(($2 * 10))"); do
        if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "not ready: $1" >&2
    return 1
}

SERVER_PID=""
TMP=""
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    [[ -n "$TMP" ]] && rm -rf "$TMP"
    SERVER_PID=""
    TMP=""
}
trap cleanup EXIT

run_target() { # name
    local name="$1" port url ready pin=() verify=()
    TMP="$(mktemp -d)"
    port="$(free_port)"
    [[ -n "$PIN" ]] && pin=(taskset -c "$PIN")
    case "$name" in
    prometheus)
        cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1m
scrape_configs: []
EOF
        "${pin[@]}" prometheus --config.file="$TMP/prometheus.yml" \
            --storage.tsdb.path="$TMP/data" --web.listen-address="127.0.0.1:$port" \
            --web.enable-remote-write-receiver >"$OUT/$name.log" 2>&1 &
        SERVER_PID=$!
        ready="http://127.0.0.1:$port/-/ready"
        ;;
    victoria-metrics)
        "${pin[@]}" victoria-metrics -storageDataPath="$TMP/data" \
            -httpListenAddr="127.0.0.1:$port" >"$OUT/$name.log" 2>&1 &
        SERVER_PID=$!
        ready="http://127.0.0.1:$port/health"
        ;;
    steward | steward-nodetect)
        [[ -x "$STEWARD_BIN" ]] || {
            echo "no steward binary at $STEWARD_BIN (cargo build --release -p steward)" >&2
            cleanup
            return 0
        }
        local otlp
        otlp="$(free_port)"
        local detect=true
        [[ "$name" == steward-nodetect ]] && detect=false
        STEWARD_DETECT_ENABLED="$detect" "${pin[@]}" "$STEWARD_BIN" up --data-dir "$TMP/data" \
            --listen "127.0.0.1:$port" --otlp "127.0.0.1:$otlp" >"$OUT/$name.log" 2>&1 &
        verify=(--verify-url "http://127.0.0.1:$port")
        SERVER_PID=$!
        ready="http://127.0.0.1:$port/healthz"
        ;;
    *)
        echo "unknown target $name" >&2
        cleanup
        return 1
        ;;
    esac
    url="http://127.0.0.1:$port/api/v1/write"
    wait_ready "$ready" 60
    local load_before
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "== $name on $url (pid $SERVER_PID${PIN:+, pinned to core $PIN}; load average $load_before)" >&2
    local cpu_before cpu_after
    cpu_before="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")"
    /usr/bin/time -f '%U %S %M' -o "$OUT/$name.loadgen-time" \
        "$LOADGEN" --url "$url" --warmup "$WARMUP" --duration "$DURATION" "${verify[@]}" >"$OUT/$name.loadgen.json" 2>"$OUT/$name.loadgen.txt" || true
    cat "$OUT/$name.loadgen.txt" >&2
    cpu_after="$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")"
    local rss hwm ticks
    rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status")"
    hwm="$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")"
    ticks="$(getconf CLK_TCK)"
    local server_cpu loadgen_cpu
    server_cpu="$(awk -v a="$cpu_before" -v b="$cpu_after" -v t="$ticks" 'BEGIN {printf "%.1f", (b - a) / t}')"
    loadgen_cpu="$(awk '{printf "%.1f", $1 + $2}' "$OUT/$name.loadgen-time")"
    # Samples per CPU-second the server used (warm-up included): on a machine shared
    # with other work, this is the figure that the others' load disturbs least.
    local total per_cpu
    total="$(sed -n 's/.*"total_samples":\([0-9]*\).*/\1/p' "$OUT/$name.loadgen.json")"
    per_cpu="$(awk -v n="${total:-0}" -v c="$server_cpu" 'BEGIN {if (c > 0) printf "%.0f", n / c; else print 0}')"
    local extra=""
    if [[ "$name" == steward* ]]; then
        curl -fsS "http://127.0.0.1:$port/metrics" >"$OUT/$name.metrics.txt" 2>/dev/null || true
        local p50 p99 refused dropped
        p50="$(sed -n 's/^steward_detector_latency_quantile_seconds{quantile="0.5"} //p' "$OUT/$name.metrics.txt")"
        p99="$(sed -n 's/^steward_detector_latency_quantile_seconds{quantile="0.99"} //p' "$OUT/$name.metrics.txt")"
        refused="$(sed -n 's/^steward_refused_total //p' "$OUT/$name.metrics.txt")"
        dropped="$(sed -n 's/^steward_records_dropped_total //p' "$OUT/$name.metrics.txt")"
        extra=",\"detector_latency_p50_s\":\"${p50:-none}\",\"detector_latency_p99_s\":\"${p99:-none}\",\"refused_503\":${refused:-0},\"dropped\":${dropped:-0}"
    fi
    local line
    line="$(sed -e 's/}$//' "$OUT/$name.loadgen.json")$extra,\"target\":\"$name\",\"pinned_core\":\"${PIN}\",\"rss_end_kib\":$rss,\"rss_peak_kib\":$hwm,\"server_cpu_s\":$server_cpu,\"samples_per_server_cpu_s\":$per_cpu,\"loadgen_cpu_s\":$loadgen_cpu,\"load_average_before\":\"$load_before\",\"nproc\":$(nproc)}"
    echo "$line" | tee "$OUT/$name.json"
    echo "   RSS at end $((rss / 1024)) MiB, peak $((hwm / 1024)) MiB; server CPU ${server_cpu} s (${per_cpu} samples per CPU-second), load generator CPU ${loadgen_cpu} s over the whole run" >&2
    cleanup
}

for t in $TARGETS; do
    run_target "$t"
done
echo "results in $OUT" >&2
