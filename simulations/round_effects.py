"""Paired effects of a sweep's method arm at one chosen round, against its control and Retrain arms.

    python simulations/round_effects.py runs/readme/unreliable --round 6 --metrics fnr risk_2 bac auc

A sweep's ``summary.csv`` reports the final round and the first evaluation at
or after the first request. When the erasure lands later (a crashed pass
retried, a batched policy), the round it was applied is the one to read: this
script pairs each method run with the control (``deletion.method=none``) and
Retrain runs of the same seed, at ``--round``, on the global test metrics, and
prints mean ± std of the method and the mean paired difference with its 95 %
percentile bootstrap interval (the same ``paired_ci`` the sweep uses).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import fedunlearn as fu
from fedunlearn.reports.paired import format_difference, paired_ci


@functools.cache
def _global_test(run_dir: Path) -> pd.Series:
    """A run's global test metrics, indexed by (round, metric); each run's table is read once."""
    m = fu.RunResult(run_dir).metrics
    rows = m[(m["site"] == "global") & (m["phase"] == "test")]
    return rows.set_index(["round", "metric"])["value"]


def _global(run_dir: Path, server_round: int, metric: str) -> float:
    return float(_global_test(run_dir).get((server_round, metric), float("nan")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", type=Path, help="a finished sweep directory (holds sweep.json)")
    p.add_argument("--round", type=int, required=True, help="the round to compare the arms at")
    p.add_argument("--metrics", nargs="+", default=["fnr", "risk_2", "bac", "auc"])
    p.add_argument(
        "--between",
        metavar="KEY=A,B",
        help="instead: per method, the paired difference B minus A of two values of a grid key "
        "(same seed), e.g. deletion.policy=immediate,batched",
    )
    args = p.parse_args(argv)
    try:
        plan = json.loads((args.sweep / "sweep.json").read_text())
    except (OSError, ValueError) as exc:
        print(
            f"round_effects: cannot read {args.sweep / 'sweep.json'} ({exc}); pass a sweep directory"
        )
        return 2
    if args.between:
        return _between(args.sweep, plan, args.between, args.round, args.metrics)
    arms: dict[str, dict[int, Path]] = {}
    for point in plan["points"]:
        a = point["assignments"]
        method = a.get("deletion.method", "method")
        arms.setdefault(method, {})[int(a["seed"])] = args.sweep / point["run_dir"]
    refs = {"none": "control", "retrain": "Retrain"}
    print("| method | metric | mean ± std | Δ vs control [95% CI] | Δ vs Retrain [95% CI] |")
    print("|---|---|---|---|---|")
    for method, runs in arms.items():
        if method in refs:
            continue
        for metric in args.metrics:
            values = {s: _global(d, args.round, metric) for s, d in runs.items()}
            cells = []
            for ref in refs:
                other = arms.get(ref, {})
                diffs = [
                    values[s] - _global(other[s], args.round, metric) for s in values if s in other
                ]
                cells.append(format_difference(paired_ci(np.array(diffs))) if diffs else "n/a")
            v = np.array(list(values.values()))
            print(
                f"| {method} | {metric} | {v.mean():.3f} ± {v.std(ddof=1):.3f} | {cells[0]} | {cells[1]} |"
            )
    return 0


def _between(sweep: Path, plan: dict, between: str, server_round: int, metrics: list[str]) -> int:
    """Per method, B minus A of a grid key's two values, paired by seed, at ``server_round``."""
    key, _, values = between.partition("=")
    pair = [v.strip().lower() for v in values.split(",")]  # true/false match the grid's booleans
    if len(pair) != 2:
        print(f"round_effects: --between {between}: expected KEY=A,B")
        return 2
    runs: dict[tuple[str, str], dict[int, Path]] = {}
    for point in plan["points"]:
        a = point["assignments"]
        if str(a.get(key)).lower() in pair:
            where = (a.get("deletion.method", "method"), str(a[key]).lower())
            runs.setdefault(where, {})[int(a["seed"])] = sweep / point["run_dir"]
    print(
        f"| method | metric | {pair[0]} (mean ± std) | {pair[1]} (mean ± std) | {pair[1]} - {pair[0]} [95% CI] |"
    )
    print("|---|---|---|---|---|")
    for method in dict.fromkeys(m for m, _ in runs):
        base, other = runs.get((method, pair[0]), {}), runs.get((method, pair[1]), {})
        seeds = sorted(set(base) & set(other))
        if not seeds:
            continue
        for metric in metrics:
            a = np.array([_global(base[s], server_round, metric) for s in seeds])
            b = np.array([_global(other[s], server_round, metric) for s in seeds])
            print(
                f"| {method} | {metric} | {a.mean():.3f} ± {a.std(ddof=1):.3f} | "
                f"{b.mean():.3f} ± {b.std(ddof=1):.3f} | {format_difference(paired_ci(b - a))} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
