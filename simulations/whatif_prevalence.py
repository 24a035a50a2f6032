"""What-if 1 of the README, on the Python API: prevalence heterogeneity and the FNR after deletion.

In a network of hospitals whose malignancy prevalence runs from 5 % to 40 %
(``configs/heterogeneous-5-sites.yaml``), the oncology centre (40 %) forgets
half of its patients at round 6. Which unlearning method keeps the global and
per-site risk nearest to Federated Retrain? The sweep adds the control arm
(no erasure) and Federated Retrain to the methods asked for (CPU: about 4
minutes a run, 15 runs; rerun the same command to resume):

    python simulations/whatif_prevalence.py /tmp/derma runs/whatif-prevalence

Writes the sweep into OUT (``summary.csv`` / ``summary.md``: paired
differences against the control arm and Retrain) and its report as
``OUT/report.html`` and ``OUT/report/report.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import fedunlearn as fu

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "configs" / "heterogeneous-5-sites.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_root", metavar="DATA_ROOT", help="folder holding dermamnist.npz")
    p.add_argument(
        "out",
        metavar="OUT",
        nargs="?",
        type=Path,
        default=REPO / "runs/whatif-prevalence",
        help="sweep folder (default: runs/whatif-prevalence of the repository)",
    )
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0,1,2,3,4)")
    p.add_argument(
        "--methods",
        default="salun-cra",
        help="comma-separated unlearning methods (default salun-cra); control and Retrain are added",
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
    grid = [f"deletion.method={args.methods}", f"seed={args.seeds}"]
    overrides = [*args.overrides, f"data.root={Path(args.data_root).resolve()}"]
    outcome = fu.sweep(SCENARIO, grid, args.out, overrides=overrides)
    if outcome.failed:
        raise fu.FedunlearnError(
            f"{len(outcome.failed)} run(s) failed: {'; '.join(outcome.failed)}; "
            f"logs in {args.out / 'logs'}; rerun to retry only those"
        )
    if outcome.summary is not None:
        print((args.out / "summary.md").read_text())
    print(fu.report([args.out], args.out / "report.html"))
    print(fu.report([args.out], args.out / "report" / "report.md"))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (fu.FedunlearnError, ValueError) as exc:
        print(f"{Path(__file__).name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
