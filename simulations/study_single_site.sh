#!/usr/bin/env bash
# The single-site study of the README: DermaMNIST 28 px, small CNN, forget 20 % and 50 %, seeds 0 1 2
# (the two ratios run at once, one thread each; about 45 minutes on 2 cores).
#   bash simulations/study_single_site.sh DATA_ROOT [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:?usage: study_single_site.sh DATA_ROOT [OUT]}
OUT=${2:-runs/readme}
FU=${FEDUNLEARN:-.venv/bin/fedunlearn}
for r in 20 50; do
  OMP_NUM_THREADS=1 "$FU" centralized --dataset dermamnist --size 28 --model small-cnn --forget-ratio "0.$r" \
      --seeds 0 1 2 --data-root "$ROOT" --out "$OUT/centralized-$r" --quiet &
done
wait
cat "$OUT/centralized-20/summary.md" "$OUT/centralized-50/summary.md"
