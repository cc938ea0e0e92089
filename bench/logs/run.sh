#!/usr/bin/env bash
# steward's template miner side by side with the Rust crate drain3 0.3.0 and Python
# Drain3, on the same 1M lines of message content, one after the other on this machine.
#
# Usage: bench/logs/run.sh [DATA_DIR] [LINES]
#   DATA_DIR  Loghub-2k layout (default ../shared/data/loghub-2k)
#   LINES     how many lines to generate (default 1000000)
#
# Everything it builds or installs goes to bench/out/ (git-ignored): the input (the
# Loghub data is research-use only and is never committed), the drain3 crate's build,
# and a Python virtual environment with drain3 from PyPI. Peak memory is measured with
# /usr/bin/time -v. Prints one line per run, the header-format speeds of the
# header_throughput example, and the accuracy table of `steward logs bench`.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATA="${1:-../shared/data/loghub-2k}"
LINES="${2:-1000000}"
OUT=bench/out/logs
mkdir -p "$OUT"
INPUT="$OUT/content-$LINES.txt"

[ -s "$INPUT" ] || python3 bench/logs/make_input.py "$DATA" "$INPUT" "$LINES"

cargo build --release -q -p steward-logs --example throughput --example header_throughput
cargo build --release -q -p steward
# Other work on the machine may rebuild the shared target directory mid-run: run copies.
mkdir -p "$OUT/bin"
cp target/release/examples/throughput target/release/examples/header_throughput \
    target/release/steward "$OUT/bin/"
CARGO_TARGET_DIR=bench/out/target cargo build --release -q \
    --manifest-path bench/logs/drain3-anchor/Cargo.toml
if [ ! -x bench/out/venv/bin/python ]; then
    python3 -m venv bench/out/venv
fi
bench/out/venv/bin/python -c 'import drain3' 2>/dev/null || bench/out/venv/bin/pip install -q drain3

ROUNDS="${ROUNDS:-3}"

peak() { grep 'Maximum resident' "$1" | awk '{print $NF}'; }

# One timed run: prints the program's line with its peak memory appended.
run() {
    local name=$1; shift
    /usr/bin/time -v "$@" > "$OUT/$name.out" 2> "$OUT/$name.time"
    echo "$(cat "$OUT/$name.out") peak_kib=$(peak "$OUT/$name.time")"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $INPUT ($(wc -l < "$INPUT") lines)"
# The two Rust runs alternate, ROUNDS times each, so that load from other work on the
# machine falls on both alike; the best round of each is what to compare.
rm -f "$OUT/rounds.txt"
for round in $(seq "$ROUNDS"); do
    run steward "$OUT/bin/throughput" "$INPUT" | tee -a "$OUT/rounds.txt"
    run drain3-crate bench/out/target/release/drain3-anchor "$INPUT" | tee -a "$OUT/rounds.txt"
done
run drain3-crate-nomask bench/out/target/release/drain3-anchor "$INPUT" --no-masks
run drain3-python bench/out/venv/bin/python bench/logs/drain3_py.py "$INPUT" | tee -a "$OUT/rounds.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
best() { grep "^$1 " "$OUT/rounds.txt" | sed 's/.*lines_per_sec=\([0-9]*\).*/\1/' | sort -n | tail -1; }
S=$(best steward); C=$(best drain3-crate); P=$(best drain3-python)
echo "best lines/s: steward $S, drain3 crate $C, Python Drain3 $P"
echo "steward / drain3 crate: $(python3 -c "print(round($S/$C, 2))")x; steward / Python Drain3: $(python3 -c "print(round($S/$P, 1))")x"
rm -f "$OUT/rounds.txt"
echo
echo "header formats: the compiled matcher, the regex it replaced, full records, the miner (lines/s)"
"$OUT/bin/header_throughput" "$DATA"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$OUT/bin/steward" logs bench --data "$DATA"
