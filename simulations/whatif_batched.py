"""What-if 2 of the README, on the Python API: batched vs immediate erasure.

Erasure requests arrive between rounds 2 and 9
(``configs/batched-vs-immediate.yaml``). Unlearn each in its round
(``immediate``) or all pending ones every 4 rounds (``batched``)? Compute
spent against the risk it leaves; add ``retrain`` to ``--policies`` for
reset-and-retrain every 4 rounds. The sweep adds the control arm and
Federated Retrain (CPU: about 5 minutes a run; rerun the same command to
resume):

    python simulations/whatif_batched.py /tmp/derma runs/whatif-batched

Writes the sweep into OUT (``summary.csv`` / ``summary.md``) and its report as
``OUT/report.html`` and ``OUT/report/report.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweep_script import REPO, common_arguments, run_overrides, sweep_and_summarise

import fedunlearn as fu

SCENARIO = REPO / "configs" / "batched-vs-immediate.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = common_arguments(__doc__, "runs/whatif-batched")
    p.add_argument(
        "--policies",
        default="immediate,batched",
        help="comma-separated deletion policies (default immediate,batched; also: retrain)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    grid = [f"deletion.policy={args.policies}", f"seed={args.seeds}"]
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
