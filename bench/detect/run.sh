#!/usr/bin/env bash
# Reproduces the "## detect" figures of bench/RESULTS.md: NAB scores of the default
# detector on the shared corpus (and NAB's results layout under bench/out/detect/nab),
# then the streaming detector's speed and memory per series (criterion).
#
# Usage: bench/detect/run.sh [NAB_DIR]   (default: ../shared/data/nab beside the repo)
set -euo pipefail
cd "$(dirname "$0")/../.."
NAB="${1:-${STEWARD_SHARED_DATA:-$PWD/../shared/data}/nab}"
cargo build --release -p steward
echo "== NAB ($NAB)"
time ./target/release/steward detect nab --data "$NAB" --out bench/out/detect/nab
./target/release/steward --json detect nab --data "$NAB"
echo "== speed and memory"
cargo bench -p steward-detect --bench detector
