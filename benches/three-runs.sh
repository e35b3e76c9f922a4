#!/usr/bin/env bash
# Three full runs of the IPC benchmark, one after the other, then the
# tables and the plot of BENCHMARKS.md from their medians (`--aggregate`).
#
#   bash benches/three-runs.sh            # full runs (a few minutes each)
#   bash benches/three-runs.sh --quick    # smoke check of the procedure
#
# Each run's files are kept in <target>/ipc-bench/run-N/; the aggregate is
# <target>/ipc-bench/aggregate.md and benches/ratio.svg. Respects
# CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target/ipc-bench"
mkdir -p "$out"
cargo bench --bench ipc --no-run
for n in 1 2 3; do
    echo "== run $n of 3"
    cargo bench --bench ipc -- "$@" | tee "$out/run-$n.txt"
    mkdir -p "$out/run-$n"
    cp "$out/summary.json" "$out/memory.json" "$out/ratio.svg" "$out/run-$n/"
done
cargo bench --bench ipc -- --aggregate \
    "$out/run-1/summary.json" "$out/run-2/summary.json" "$out/run-3/summary.json" \
    --svg benches/ratio.svg | tee "$out/aggregate.md"
