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

import fedunlearn as fu

REPO = Path(__file__).resolve().parent.parent
SCENARIO = REPO / "configs" / "batched-vs-immediate.yaml"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_root", metavar="DATA_ROOT", help="folder holding dermamnist.npz")
    p.add_argument(
        "out",
        metavar="OUT",
        nargs="?",
        type=Path,
        default=REPO / "runs/whatif-batched",
        help="sweep folder (default: runs/whatif-batched of the repository)",
    )
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0,1,2,3,4)")
    p.add_argument(
        "--policies",
        default="immediate,batched",
        help="comma-separated deletion policies (default immediate,batched; also: retrain)",
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
    grid = [f"deletion.policy={args.policies}", f"seed={args.seeds}"]
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
