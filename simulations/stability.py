"""Round-to-round stability of a scenario without erasure, over seeds.

Runs the scenario's counterfactual control arm (``deletion.method=none``: no
erasure) for each seed as a sweep (``fu.sweep``, so the runs are the control
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
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

import fedunlearn as fu


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


def stability(
    scenario: str | Path,
    seeds: Sequence[int],
    out: Path,
    overrides: Sequence[str] = (),
    last: int = 3,
    quiet: bool = False,
) -> pd.DataFrame:
    """Run (or resume) the control arm of every seed into the sweep folder ``out``; one row per seed.

    Also writes the table to ``out/stability.csv``.
    """
    grid = ["deletion.method=none", "seed=" + ",".join(map(str, seeds))]
    outcome = fu.sweep(scenario, grid, out, overrides=overrides, retrain=False, quiet=quiet)
    if outcome.failed:
        raise fu.FedunlearnError(
            f"{len(outcome.failed)} control run(s) failed: {'; '.join(outcome.failed)}; "
            f"logs in {Path(out) / 'logs'}; rerun to retry only those"
        )
    rows = [
        {
            "seed": s,
            **last_rounds_spread(Path(out) / "runs" / f"deletion.method=none,seed={s}", last),
        }
        for s in seeds
    ]
    table = pd.DataFrame(rows)
    table.to_csv(Path(out) / "stability.csv", index=False)
    return table


def print_table(table: pd.DataFrame, last: int) -> None:
    """The per-seed spreads and final values, then their mean and maximum over seeds."""
    col = f"risk_2_std_last{last}"
    shown = [
        "seed",
        col,
        "risk_2_final",
        f"fnr_std_last{last}",
        "fnr_final",
        "auc_final",
        f"costopt_risk_2_std_last{last}",
    ]
    print(table[shown].round(4).to_string(index=False))
    print(
        f"global test Risk II (threshold 0.5), std over the last {last} rounds: mean {table[col].mean():.4f}, "
        f"max {table[col].max():.4f} over {len(table)} seeds"
    )


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
    overrides = args.overrides + ([f"data.root={args.data_root}"] if args.data_root else [])
    try:
        table = stability(args.scenario, args.seeds, args.out, overrides, args.last)
    except fu.FedunlearnError as exc:
        print(f"stability.py: {exc}", file=sys.stderr)
        return 2
    print_table(table, args.last)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
