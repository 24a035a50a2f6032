"""The README's paired tables: selected rows of a sweep's ``summary.csv``, as Markdown.

    python simulations/paired_table.py runs/readme/quickstart/summary.csv \
        --metrics fnr risk_2 bac auc ubac mia_efficacy --at erasure final

One row per (method, moment, metric): the method's mean ± std over seeds, its
paired difference against the control arm and against Federated Retrain with
the 95 % bootstrap interval over seeds, and the verdicts ``fedunlearn sweep``
wrote. Nothing is recomputed: the numbers are those of ``summary.csv``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from fedunlearn.reports.contrasts import SUMMARY_COLUMNS
from fedunlearn.study.summary import to_markdown


def _delta(mean: float, low: float, high: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]" if not math.isnan(low) else f"{mean:+.3f}"


def table(
    summary: pd.DataFrame, metrics: list[str], moments: list[str], methods: list[str] | None
) -> pd.DataFrame:
    rows = summary[summary["metric"].isin(metrics) & summary["at"].isin(moments)]
    if methods:
        rows = rows[rows["method"].isin(methods)]
    order = {m: i for i, m in enumerate(metrics)}
    rows = rows.assign(
        _m=rows["metric"].map(order), _a=rows["at"].map({a: i for i, a in enumerate(moments)})
    )
    rows = rows.sort_values(["_a", "_m"], kind="stable")
    keys = [c for c in summary.columns if c not in SUMMARY_COLUMNS]
    out = pd.DataFrame(
        {
            **{k: rows[k] for k in keys},
            "at (round)": [f"{a} ({int(r)})" for a, r in zip(rows["at"], rows["round"])],
            "metric": rows["metric"],
            "method": rows["method"],
            "mean ± std": [f"{m:.3f} ± {s:.3f}" for m, s in zip(rows["mean"], rows["std"])],
            "Δ vs control [95 % CI]": [
                _delta(*v) for v in zip(rows["delta_vs_control"], rows["ci_low"], rows["ci_high"])
            ],
            "verdict vs control": rows["verdict_vs_control"],
            "Δ vs Retrain [95 % CI]": [
                _delta(*v)
                for v in zip(
                    rows["delta_vs_retrain"], rows["ci_low_retrain"], rows["ci_high_retrain"]
                )
            ],
            "verdict vs Retrain": rows["verdict_vs_retrain"],
            "seeds": rows["n_seeds"].astype(int),
        }
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("summary", type=Path, help="summary.csv of a fedunlearn sweep")
    p.add_argument(
        "--metrics", nargs="+", default=["fnr", "risk_2", "bac", "auc", "ubac", "mia_efficacy"]
    )
    p.add_argument("--at", nargs="+", default=["erasure", "final"], choices=["erasure", "final"])
    p.add_argument("--methods", nargs="+", default=None)
    args = p.parse_args(argv)
    print(to_markdown(table(pd.read_csv(args.summary), args.metrics, args.at, args.methods)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
