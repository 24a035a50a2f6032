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

from sweep_script import REPO, common_arguments, run_overrides, sweep_and_summarise

import fedunlearn as fu

SCENARIO = REPO / "configs" / "heterogeneous-5-sites.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = common_arguments(__doc__, "runs/whatif-prevalence")
    p.add_argument(
        "--methods",
        default="salun-cra",
        help="comma-separated unlearning methods (default salun-cra); control and Retrain are added",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    grid = [f"deletion.method={args.methods}", f"seed={args.seeds}"]
    sweep_and_summarise(SCENARIO, grid, args.out, run_overrides(args))
    print(fu.report([args.out], args.out / "report.html"))
    print(fu.report([args.out], args.out / "report" / "report.md"))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (fu.FedunlearnError, ValueError) as exc:
        print(f"{Path(__file__).name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
