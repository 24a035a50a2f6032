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

import fedunlearn as fu

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "configs" / "quickstart.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_root", metavar="DATA_ROOT", help="folder holding dermamnist.npz")
    p.add_argument(
        "out",
        metavar="OUT",
        nargs="?",
        type=Path,
        default=REPO / "runs/readme/quickstart",
        help="sweep folder (default: runs/readme/quickstart of the repository)",
    )
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0,1,2,3,4)")
    p.add_argument(
        "--report",
        type=Path,
        default=REPO / "simulations/results/quickstart/report.md",
        help="the report (.md: PNGs beside it; .html: one file)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key of every run, e.g. --set training.rounds=6 (repeatable)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per Ray worker on a small machine
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = [*args.overrides, f"data.root={Path(args.data_root).resolve()}"]

    # 1. The control arm alone, seed by seed: how much do the risk curves move with nothing erased?
    print_table(stability(SCENARIO, seeds, args.out, overrides), last=3)

    # 2. The erasing methods; the sweep adds Federated Retrain and reuses the control runs of step 1.
    grid = ["deletion.method=salun-cra,rl", f"seed={args.seeds}"]
    outcome = fu.sweep(SCENARIO, grid, args.out, overrides=overrides)
    if outcome.failed:
        raise fu.FedunlearnError(
            f"{len(outcome.failed)} run(s) failed: {'; '.join(outcome.failed)}; "
            f"logs in {args.out / 'logs'}; rerun to retry only those"
        )
    if outcome.summary is not None:
        print((args.out / "summary.md").read_text())

    # 3. The report: paired effects, risk over rounds, per-site heatmap, provenance.
    print(fu.report([args.out], args.report))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except fu.FedunlearnError as exc:
        print(f"{Path(__file__).name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
