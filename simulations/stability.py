"""Round-to-round stability of a scenario without erasure, over seeds.

Runs the scenario's counterfactual control arm (``deletion.method=none``: no
erasure) for each seed as a ``fedunlearn sweep`` (so the runs are the control
arm of a later sweep into the same folder, and rerunning resumes), then
prints, per seed, the standard deviation of the global test Risk II (and FNR,
BAC, AUC) over the last ``--last`` rounds, and their mean and maximum over
seeds:

    python simulations/stability.py configs/quickstart.yaml --data-root /tmp/derma \
        --seeds 0 1 2 3 4 --out runs/readme/quickstart

Writes ``OUT/stability.csv`` (one row per seed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd


def last_rounds_spread(run_dir: Path, last: int) -> dict[str, float]:
    """Std over the last ``last`` rounds, and the final value, of global test metrics (0.5 threshold and the
    validation-chosen cost-optimal one)."""
    m = pd.read_csv(run_dir / "metrics.csv")
    g = m[(m["site"] == "global") & (m["round"] > 0)]
    final = int(g["round"].max())
    tail = g[g["round"] > final - last]
    out = {}
    for phase, tag in (("test", ""), ("test@cost-optimal", "costopt_")):
        for metric in ("risk_2", "fnr", "bac", "auc"):
            values = tail.loc[(tail["phase"] == phase) & (tail["metric"] == metric)].sort_values(
                "round"
            )["value"]
            if len(values):
                out[f"{tag}{metric}_std_last{last}"] = float(values.std(ddof=1))
                out[f"{tag}{metric}_final"] = float(values.iloc[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument(
        "--out", type=Path, required=True, help="sweep folder (the control runs go to OUT/runs/)"
    )
    p.add_argument("--data-root", default=None)
    p.add_argument("--last", type=int, default=3, help="rounds at the end whose spread is measured")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    cmd = [
        sys.executable,
        "-m",
        "fedunlearn",
        "sweep",
        args.scenario,
        "--out",
        str(args.out),
        "--no-retrain",
        "--grid",
        "deletion.method=none",
        "--grid",
        "seed=" + ",".join(map(str, args.seeds)),
    ]
    cmd += [a for o in args.overrides for a in ("--set", o)]
    cmd += ["--data-root", args.data_root] if args.data_root else []
    subprocess.run(cmd, check=True)
    rows = [
        {
            "seed": s,
            **last_rounds_spread(args.out / "runs" / f"deletion.method=none,seed={s}", args.last),
        }
        for s in args.seeds
    ]
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "stability.csv", index=False)
    col = f"risk_2_std_last{args.last}"
    print(
        table[
            [
                "seed",
                col,
                "risk_2_final",
                f"fnr_std_last{args.last}",
                "fnr_final",
                "auc_final",
                f"costopt_risk_2_std_last{args.last}",
            ]
        ]
        .round(4)
        .to_string(index=False)
    )
    print(
        f"global test Risk II (threshold 0.5), std over the last {args.last} rounds: mean {table[col].mean():.4f}, "
        f"max {table[col].max():.4f} over {len(table)} seeds"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
