#!/usr/bin/env bash
# GPU check of fedunlearn, in one call on a lent GPU machine:
#   1. ResNet-18 training throughput (images/s) of the engine vs a bare PyTorch loop on the same
#      card, at 28 and 64 px (bf16 autocast, channels_last): python -m fedunlearn.bench.gpu;
#   2. the wall time of configs/paper-dermamnist-20.yaml (5 hospitals, ResNet-18 at 64 px,
#      30 rounds, a SalUn-CRA deletion at round 20) through Flower's simulation on Ray.
# Step 1 needs torch alone; step 2 needs the packages below. Results: $OUT (default
# /tmp/gpu-check): gpu_throughput.csv, paper_metrics.csv, paper_manifest.json,
# paper_events.jsonl, paper_summary.txt.
#
# The GPU image has torch, pandas, matplotlib, scikit-learn, pyyaml, grpcio, protobuf, msgpack,
# rich, typer, click, requests (see /work/.library/device/KINDS.md) but not flwr, ray, medmnist
# or pydantic. Carry those as wheels (Python 3.12 there; versions = this checkout's .venv):
#
#   here, once, in the repo root:
#     echo /.whl2/ >> .git/info/exclude            # /.whl/ is already in .gitignore
#     dl() { python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#              --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#              --platform manylinux2014_x86_64 -d "$@"; }
#     dl /tmp/raywhl ray==2.55.1
#     dl .whl flwr==1.42.0 medmnist==3.0.2 pydantic==2.14.4 pydantic-core==2.50.5 \
#        annotated-types==0.8.0 typing-inspection==0.4.5 cryptography==50.0.2 cffi==2.1.1 \
#        pycparser==3.12 pycryptodome==3.24.1 iterators==0.0.2 tomli==2.5.0 tomli-w==1.2.0 \
#        grpcio-health-checking==1.81.1 sqlalchemy==2.1.9 alembic==1.20.1 mako==1.4.3 \
#        greenlet==3.5.6 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 \
#        referencing==0.37.0 rpds-py==2026.9.1 fastapi==0.138.2 starlette==1.3.1 wcwidth==0.9.4
#     # Ray's wheel (about 74 MB) is over one call's 64 MiB: split it across two calls.
#     mkdir -p .whl2 && (cd /tmp/raywhl && split -b 45M ray-*.whl ray.part-) \
#       && mv /tmp/raywhl/ray.part-aa .whl2/ && mv /tmp/raywhl/ray.part-ab .whl/ \
#       && basename /tmp/raywhl/ray-*.whl > .whl/ray.name
#   call 1 (carry [".whl2"]):  mkdir -p /tmp/carry && cp .whl2/ray.part-aa /tmp/carry/
#   call 2 (carry [".whl"]), at once (a machine stays warm 30 s, and /tmp with it):
#     bash simulations/gpu_check.sh
# The script joins the two halves of Ray's wheel, installs every wheel with
#   pip install --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
# and says which imports still fail (then step 2 is skipped: download those too).
#
# Data: with DATA_ROOT holding dermamnist_64.npz the paper run uses it; else synthetic lesions of
# DermaMNIST's split sizes at 64 px (same shapes, so the same compute; the figures say which).
# Knobs (environment): OUT, DATA_ROOT, PYTHON, SIZES ("28 64"), IMAGES (7007), REPS (3),
# MODEL (resnet18), PAPER_TIMEOUT (seconds, 420), PAPER_EXTRA (more --set options),
# SKIP_PAPER=1, DEVICE (auto).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check}
PY=${PYTHON:-python3}
SIZES=${SIZES:-28 64}
IMAGES=${IMAGES:-7007}
REPS=${REPS:-3}
MODEL=${MODEL:-resnet18}
DEVICE=${DEVICE:-auto}
PAPER_TIMEOUT=${PAPER_TIMEOUT:-420}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

# ------------------------------------------------------------------ wheels
if [ -f .whl/ray.name ] && [ -f /tmp/carry/ray.part-aa ] && [ -f .whl/ray.part-ab ]; then
  cat /tmp/carry/ray.part-aa .whl/ray.part-ab > "/tmp/carry/$(cat .whl/ray.name)"
fi
wheels=$(ls .whl/*.whl /tmp/carry/*.whl 2>/dev/null || true)
if [ -n "$wheels" ]; then
  # shellcheck disable=SC2086
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $wheels \
    || echo "gpu_check: installing the carried wheels failed (see above)"
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"  # Ray's workers import fedunlearn from here too

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
nproc

# ------------------------------------------------------------------ 1. throughput
# shellcheck disable=SC2086
$PY -m fedunlearn.bench.gpu --model "$MODEL" --sizes $SIZES --images "$IMAGES" --reps "$REPS" \
  --device "$DEVICE" --out "$OUT" || echo "gpu_check: the throughput check failed"

[ "${SKIP_PAPER:-0}" = 1 ] && exit 0

# ------------------------------------------------------------------ 2. the paper scenario
missing=$($PY - <<'EOF'
import importlib, importlib.util
missing = []
for mod in ("flwr", "ray", "pydantic", "yaml", "pandas", "sklearn", "matplotlib", "safetensors", "cryptography",
            "sqlalchemy", "jsonschema"):
    try:
        importlib.import_module(mod)
    except Exception as exc:  # noqa: BLE001 - report every failing import, whatever its error
        missing.append(f"{mod} ({type(exc).__name__}: {exc})")
if importlib.util.find_spec("medmnist") is None:
    missing.append("medmnist (not installed)")
try:
    import fedunlearn.federated.simulation, fedunlearn.federated.client_app  # noqa: E401,F401
except Exception as exc:  # noqa: BLE001
    missing.append(f"fedunlearn.federated ({type(exc).__name__}: {exc})")
print("; ".join(missing))
EOF
)
if [ -n "$missing" ]; then
  echo "gpu_check: the paper run needs: $missing"
  echo "gpu_check: carry them as wheels (see the top of $0); step 2 skipped"
  exit 3
fi

sets=()
if [ -n "${DATA_ROOT:-}" ] && [ -f "$DATA_ROOT/dermamnist_64.npz" ]; then
  sets+=(--set "data.root=$DATA_ROOT"); data="dermamnist 64 px from $DATA_ROOT"
else
  sets+=(--set data.dataset=synthetic --set data.synthetic.n_train=7007 --set data.synthetic.n_val=1003
         --set data.synthetic.n_test=2005 --set data.synthetic.prevalence=0.195)
  data="synthetic lesions at 64 px with DermaMNIST's split sizes (no dermamnist_64.npz under DATA_ROOT)"
fi
run=/tmp/gpu-check-run-$$
echo "paper-dermamnist-20: $data; run directory $run; limit ${PAPER_TIMEOUT}s"
t0=$(date +%s.%N)
# shellcheck disable=SC2086
timeout "$PAPER_TIMEOUT" $PY -m fedunlearn run configs/paper-dermamnist-20.yaml --out "$run" --quiet \
  "${sets[@]}" ${PAPER_EXTRA:-}
rc=$?
t1=$(date +%s.%N)
wall=$($PY -c "print(f'{$t1 - $t0:.1f}')")
echo "paper-dermamnist-20: exit $rc, wall ${wall}s (command, Ray start and shutdown included)"
for f in metrics.csv manifest.json events.jsonl; do [ -f "$run/$f" ] && cp "$run/$f" "$OUT/paper_$f"; done
[ -f "$run/metrics.csv" ] && $PY - "$run" "$wall" "$data" <<'EOF' | tee "$OUT/paper_summary.txt"
import json, sys
from pathlib import Path
import pandas as pd
run, wall, data = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
m = pd.read_csv(run / "metrics.csv")
man = json.loads((run / "manifest.json").read_text()) if (run / "manifest.json").is_file() else {}
t = m[(m.site == "global") & (m.phase == "timing")].pivot_table(index="round", columns="metric", values="value")
train = m[(m.phase == "train") & (m.metric.isin(["seconds", "images"]))].pivot_table(
    index="round", columns="metric", values="value", aggfunc="sum")
u = m[m.phase == "unlearn"].pivot_table(index="round", columns="metric", values="value", aggfunc="sum")
print(f"paper-dermamnist-20 on {man.get('device_name', '?')} ({data})")
print(f"  complete: {man.get('complete')}, command wall {wall:.1f}s, run (manifest) {man.get('seconds', float('nan')):.1f}s, "
      f"rounds done {int(t.index.max()) if len(t) else 0}")
if len(t):
    print("  per round (median s): " + ", ".join(f"{c} {t[c].median():.2f}" for c in t.columns))
    print(f"  sum over rounds (s): " + ", ".join(f"{c} {t[c].sum():.1f}" for c in t.columns))
if len(train):
    print(f"  images trained on: {train['images'].sum():.0f}; sites' engine seconds summed {train['seconds'].sum():.1f}"
          f" -> {train['images'].sum() / max(train['seconds'].sum(), 1e-9):.0f} images/s per site-second")
if len(u):
    print("  unlearning: " + "; ".join(f"round {r}: {row.get('seconds', float('nan')):.2f}s, {row.get('images', 0):.0f} images"
                                        for r, row in u.iterrows()))
EOF
exit $rc
