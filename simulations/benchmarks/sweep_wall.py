"""(f) alone: the quickstart sweep's wall time as built, with --engine per-point, with --no-share-prefix and with both.

The same rows ``fedunlearn bench --sweep small|full`` adds to its table
(:func:`fedunlearn.bench.sweepwall.sweep_rows`), without benchmarks (a)-(e),
for when only the sweep's cost is in question. Writes OUT/bench.csv and
OUT/bench.txt; prints the table.

    python simulations/benchmarks/sweep_wall.py --data-root /tmp/derma --out runs/readme/sweep-wall --sweep full
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from fedunlearn.bench.sweepwall import require_quickstart_data, sweep_rows
from fedunlearn.bench.table import BenchTable, machine_rows
from fedunlearn.errors import FedunlearnError
from fedunlearn.progress import Progress


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="folder with dermamnist.npz")
    parser.add_argument("--out", type=Path, required=True, help="new or empty output directory")
    parser.add_argument("--sweep", choices=("small", "full"), default="small")
    args = parser.parse_args()
    try:
        require_quickstart_data(args.data_root, args.sweep, or_off=False)
    except FedunlearnError as exc:
        raise SystemExit(f"sweep_wall: error: {exc}") from None
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(
            f"sweep_wall: error: {args.out} is not empty; pass another --out or remove it"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    table = BenchTable()
    machine_rows(table, "start")
    t0 = time.perf_counter()
    try:
        sweep_rows(table, args.sweep, args.out, args.data_root, Progress())
    except (FedunlearnError, RuntimeError) as exc:
        raise SystemExit(f"sweep_wall: error: {exc}") from None
    machine_rows(table, "end")
    table.add("machine", "", "bench_wall_s", time.perf_counter() - t0, "s")
    table.write(args.out)
    print(table.render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
