#!/usr/bin/env bash
# The full `fedunlearn bench` on this machine, niced, on the DermaMNIST copy beside the checkout.
#   bash simulations/benchmarks/run_bench.sh [OUT]        (default runs/bench-TIMESTAMP)
#   QUICK=1 bash simulations/benchmarks/run_bench.sh       (the smoke test, about a minute idle)
# It waits for a quiet machine (1-minute load average < MAX_LOAD, default 1.5; FORCE=1 skips the
# wait): the benchmark's ratios are interleaved, but its absolute figures mean little under load.
# Full size: most of its time is the erasure runs (one SalUn-CRA and one Federated Retrain run of 10 rounds
# on DermaMNIST); it needs about 3 GB of memory (PathMNIST-sized data in 3 processes).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-runs/bench-$(date +%Y%m%d-%H%M%S)}
MAX_LOAD=${MAX_LOAD:-1.5}
PY=${PYTHON:-.venv/bin/python}
SHARED=${SHARED_DATA:-../shared/data}
root=$(mktemp -d /tmp/fu-bench-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
[ -f "$SHARED/dermamnist_28_jpeg.npz" ] && ln -s "$(realpath "$SHARED/dermamnist_28_jpeg.npz")" "$root/dermamnist.npz"
[ -f "$SHARED/pathmnist.npz" ] && ln -s "$(realpath "$SHARED/pathmnist.npz")" "$root/pathmnist.npz"
while [ "${FORCE:-0}" != 1 ] && awk -v max="$MAX_LOAD" '{exit !($1 >= max)}' /proc/loadavg; do
  echo "load $(cut -d' ' -f1 /proc/loadavg) >= $MAX_LOAD: waiting (FORCE=1 to run anyway)"; sleep 60
done
args=(bench --data-root "$root" --out "$OUT")
[ "${QUICK:-0}" = 1 ] && args+=(--quick)
exec nice -n "${NICE:-15}" "$PY" -m fedunlearn "${args[@]}"
