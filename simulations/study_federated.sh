#!/usr/bin/env bash
# The federated quickstart comparison of the README: configs/quickstart.yaml with SalUn-CRA, RL and
# Federated Retrain, then the table and the combined figure (about 10 minutes on 2 cores).
#   bash simulations/study_federated.sh DATA_ROOT [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:?usage: study_federated.sh DATA_ROOT [OUT]}
OUT=${2:-runs/readme}
FU=${FEDUNLEARN:-.venv/bin/fedunlearn}
PY=${PYTHON:-.venv/bin/python}
for m in salun-cra rl retrain; do
  OMP_NUM_THREADS=1 "$FU" run configs/quickstart.yaml --data-root "$ROOT" --set deletion.method=$m \
      --out "$OUT/quickstart-$m" --quiet
done
"$PY" simulations/quickstart_table.py "$OUT/quickstart-salun-cra" "$OUT/quickstart-rl" "$OUT/quickstart-retrain" \
    --png simulations/results/quickstart-risk.png
