"""The federated quickstart study of the README, on the Python API.

``configs/quickstart.yaml`` without erasure (the control arm, whose
round-to-round stability is measured first), then with SalUn-CRA, RL and
Federated Retrain over 5 seeds, then the paired summary and the report with
its figures (about 1 hour on 2 cores; rerun the same command to resume):

    OMP_NUM_THREADS=1 python simulations/study_federated.py /tmp/derma runs/readme/quickstart

Writes ``OUT/stability.csv``, ``OUT/summary.csv`` / ``summary.md`` (paired
differences against the control arm and Retrain) and
``simulations/results/quickstart/report.md`` with its PNGs (``--report``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stability import print_table, stability  # simulations/stability.py, beside this script
from sweep_script import REPO, common_arguments, run_overrides, sweep_and_summarise

import fedunlearn as fu

SCENARIO = REPO / "configs" / "quickstart.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = common_arguments(__doc__, "runs/readme/quickstart")
    p.add_argument(
        "--report",
        type=Path,
        default=REPO / "simulations/results/quickstart/report.md",
        help="the report (.md: PNGs beside it; .html: one file)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per Ray worker on a small machine
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = run_overrides(args)

    # 1. The control arm alone, seed by seed: how much do the risk curves move with nothing erased?
    print_table(stability(SCENARIO, seeds, args.out, overrides), last=3)

    # 2. The erasing methods; the sweep adds Federated Retrain and reuses the control runs of step 1.
    grid = ["deletion.method=salun-cra,rl", f"seed={args.seeds}"]
    sweep_and_summarise(SCENARIO, grid, args.out, overrides)

    # 3. The report: paired effects, risk over rounds, per-site heatmap, provenance.
    print(fu.report([args.out], args.report))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except fu.FedunlearnError as exc:
        print(f"{Path(__file__).name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
