#!/usr/bin/env bash
# What-if 2: erasure requests arrive between rounds 2 and 9. Unlearn each in its round
# (immediate) or all pending ones every 4 rounds (batched)? Compute spent against the
# risk it leaves (add retrain to the policy grid for reset-and-retrain every 4 rounds).
#   bash simulations/whatif_batched.sh DATA_ROOT [OUT]   (CPU: about 5 minutes a run)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:?usage: whatif_batched.sh DATA_ROOT [OUT]}
OUT=${2:-runs/whatif-batched}
FU=${FEDUNLEARN:-.venv/bin/fedunlearn}
SEEDS=${SEEDS:-0,1,2,3,4}   # the sweep adds the control arm and Federated Retrain
"$FU" sweep configs/batched-vs-immediate.yaml --data-root "$ROOT" --quiet \
    --grid deletion.policy=immediate,batched --grid "seed=${SEEDS}" --out "$OUT"
"$FU" report "$OUT" --out "$OUT/report.html"
"$FU" report "$OUT" --out "$OUT/report/report.md"
