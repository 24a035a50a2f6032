#!/usr/bin/env bash
# What-if 1: in a network of hospitals whose malignancy prevalence runs from 5 % to 40 %,
# the oncology centre (40 %) forgets half of its patients at round 6. Which unlearning
# method keeps the global and per-site risk nearest to Federated Retrain?
#   bash simulations/whatif_prevalence.sh DATA_ROOT [OUT]   (CPU: about 4 minutes a run, 15 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:?usage: whatif_prevalence.sh DATA_ROOT [OUT]}
OUT=${2:-runs/whatif-prevalence}
FU=${FEDUNLEARN:-.venv/bin/fedunlearn}
SEEDS=${SEEDS:-0,1,2,3,4}
METHODS=${METHODS:-salun-cra}   # the sweep adds the control arm (no erasure) and Federated Retrain
"$FU" sweep configs/heterogeneous-5-sites.yaml --data-root "$ROOT" --quiet \
    --grid "deletion.method=${METHODS}" --grid "seed=${SEEDS}" --out "$OUT"
"$FU" report "$OUT" --out "$OUT/report.html"
"$FU" report "$OUT" --out "$OUT/report/report.md"
