"""(b') alone: fedunlearn against the minimal Flower app at some site counts, the bench's settings.

    python simulations/benchmarks/overhead_probe.py [--sites 8 ...] [--out DIR]

Runs only the round-overhead part of ``fedunlearn bench`` (its full settings:
10-round runs, 3 alternated repetitions of fedunlearn, the minimal Flower app
and the no-op app per site count) and prints its rows. A quick look between
full benches; the bench's targets are judged on ``fedunlearn bench`` alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from fedunlearn.bench import run_overhead
from fedunlearn.errors import FedunlearnError


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sites", type=int, nargs="+", default=[8], help="site counts (default 8)")
    p.add_argument(
        "--out", type=Path, help="empty folder for the runs (default: a new temp folder)"
    )
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="overhead-probe-"))
    print(run_overhead(tuple(args.sites), out).frame().to_string(index=False))


if __name__ == "__main__":
    try:
        main()
    except FedunlearnError as exc:
        print(f"{Path(__file__).name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
