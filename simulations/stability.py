"""Round-to-round stability of a scenario without erasure, over seeds.

Runs the scenario's counterfactual control arm (``deletion.method=none``: no
erasure) for each seed, then prints, per seed, the standard deviation of the
global test Risk II (and FNR) over the last ``--last`` rounds, and their mean
and maximum over seeds. Finished runs are kept: rerunning resumes.

    python simulations/stability.py configs/quickstart.yaml --data-root /tmp/derma \
        --seeds 0 1 2 3 4 --out runs/readme/stability

Writes ``OUT/stability.csv`` (one row per seed) beside the runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from fedunlearn.io import is_complete


def run_seed(scenario: str, seed: int, out: Path, data_root: str | None, overrides: list[str]) -> Path:
    run_dir = out / f"seed-{seed}"
    if not is_complete(run_dir):
        if run_dir.exists():
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        cmd = [sys.executable, "-m", "fedunlearn", "run", scenario, "--out", str(run_dir), "--quiet",
               "--set", "deletion.method=none", "--set", f"seed={seed}"]
        cmd += [a for o in overrides for a in ("--set", o)]
        cmd += ["--data-root", data_root] if data_root else []
        subprocess.run(cmd, check=True)
    return run_dir


def last_rounds_std(run_dir: Path, last: int) -> dict[str, float]:
    m = pd.read_csv(run_dir / "metrics.csv")
    g = m[(m["site"] == "global") & (m["phase"] == "test") & (m["round"] > 0)]
    final = int(g["round"].max())
    tail = g[g["round"] > final - last]
    out = {}
    for metric in ("risk_2", "fnr", "bac", "auc"):
        values = tail.loc[tail["metric"] == metric, "value"]
        out[f"{metric}_std_last{last}"] = float(values.std(ddof=1))
        out[f"{metric}_final"] = float(values.iloc[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-root", default=None)
    p.add_argument("--last", type=int, default=3, help="rounds at the end whose spread is measured")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    rows = []
    for seed in args.seeds:
        run_dir = run_seed(args.scenario, seed, args.out, args.data_root, args.overrides)
        rows.append({"seed": seed, **last_rounds_std(run_dir, args.last)})
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "stability.csv", index=False)
    col = f"risk_2_std_last{args.last}"
    print(table.round(4).to_string(index=False))
    print(f"Risk II std over the last {args.last} rounds: mean {table[col].mean():.4f}, "
          f"max {table[col].max():.4f} over {len(table)} seeds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
