#!/usr/bin/env bash
# The ingredient ablation at the study's scale: CIFAR-style ResNet-18 at 64 px on DermaMNIST, every method
# (retrain ft ga rl salun salun-cra), forget 20 % and 50 %, seeds 0-4, presets paper and study-code plus every
# one-ingredient toggle of each preset (README, "Does the study's claim reproduce?"). For a GPU: CPUs cannot run
# it at this scale. Resumable: rerun the same command after an interruption.
#
#   bash simulations/study_paper_scale.sh DATA_ROOT [OUT]            # DATA_ROOT/dermamnist_64.npz
#   bash simulations/study_paper_scale.sh --dry-run DATA_ROOT [OUT]  # print the plan and the command, run nothing
#
# Environment: FEDUNLEARN (the fedunlearn executable, default .venv/bin/fedunlearn), EPOCHS (original model and
# Retrain, default 15), DEVICE (default cuda), SEEDS (default "0 1 2 3 4").
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
ROOT=${1:?usage: study_paper_scale.sh [--dry-run] DATA_ROOT [OUT]}
OUT=${2:-runs/paper-scale/ablation}
FU=${FEDUNLEARN:-.venv/bin/fedunlearn}
PY=${PYTHON:-.venv/bin/python}
EPOCHS=${EPOCHS:-15}
DEVICE=${DEVICE:-cuda}
SEEDS=${SEEDS:-0 1 2 3 4}
METHODS="retrain ft ga rl salun salun-cra"
read -r -a SEED_ARR <<< "$SEEDS"

# Units of work and expected wall time. Rates for a CIFAR-style ResNet-18 at 64 px, bf16, channels-last, on one
# H100/H200-class GPU (about 8000 training images/s; evaluation and the SVC attack about 2 s per unit; tables
# rewritten after every unit about 3 s); an A100 is about 1.5x slower, a V100 about 3x.
UNITS=$("$PY" - "$METHODS" "${#SEED_ARR[@]}" <<'EOF'
import sys
from fedunlearn.study.plan import plan_entries
methods = sys.argv[1].split()
print(len({e.key for e in plan_entries(methods, ("paper", "study-code"))}) * int(sys.argv[2]) * 2)
EOF
)
"$PY" - "$UNITS" "$EPOCHS" "${#SEED_ARR[@]}" <<'EOF'
import sys
units, epochs, seeds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rate, n_train = 8000.0, 7007                      # training images/s; DermaMNIST training split
unlearn = 10 * n_train / rate + 5.0               # 10 epochs (retain + forget rows) + evaluation + tables
retrain = epochs * 0.65 * n_train / rate + 5.0    # Retrain on the retain set (80 % or 50 %)
original = epochs * n_train / rate + epochs * 1003 / (3 * rate)
total = seeds * original + units * max(unlearn, retrain)
print(f"{units} units (+ {seeds} original models); expected wall time on one H100/H200-class GPU: "
      f"about {total / 3600:.1f} h (A100 about {1.5 * total / 3600:.1f} h, V100 about {3 * total / 3600:.1f} h)")
EOF

CMD=("$FU" ablation --dataset dermamnist --size 64 --model resnet18 --device "$DEVICE"
     --methods $METHODS --presets paper study-code --seeds "${SEED_ARR[@]}" --ratios 0.2 0.5
     --epochs "$EPOCHS" --data-root "$ROOT" --out "$OUT")
echo "${CMD[*]}"
if [[ $DRY == 1 ]]; then exit 0; fi
[[ -f "$ROOT/dermamnist_64.npz" ]] || { echo "study_paper_scale.sh: $ROOT/dermamnist_64.npz not found; fetch it with: $FU data fetch --dataset dermamnist --size 64 --data-root $ROOT" >&2; exit 2; }
"${CMD[@]}"
