#!/usr/bin/env bash
# The federated quickstart study of the README: configs/quickstart.yaml without erasure (the control arm,
# whose round-to-round stability is measured first), with SalUn-CRA, RL and Federated Retrain, 5 seeds,
# then the paired summary and the report with its figures (about 1 hour on 2 cores; rerun to resume).
#   bash simulations/study_federated.sh DATA_ROOT [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:?usage: study_federated.sh DATA_ROOT [OUT]}
OUT=${2:-runs/readme/quickstart}
FU=${FEDUNLEARN:-.venv/bin/fedunlearn}
PY=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-0,1,2,3,4}
export OMP_NUM_THREADS=1
"$PY" simulations/stability.py configs/quickstart.yaml --data-root "$ROOT" --seeds ${SEEDS//,/ } --out "$OUT"
"$FU" sweep configs/quickstart.yaml --data-root "$ROOT" --quiet \
    --grid deletion.method=salun-cra,rl --grid "seed=${SEEDS}" --out "$OUT"
"$FU" report "$OUT" --out simulations/results/quickstart/report.md
