"""(b') alone: fedunlearn against the minimal Flower app at some site counts, the bench's settings.

    python simulations/benchmarks/overhead_probe.py [--sites 8 ...] [--out DIR]

Runs only the round-overhead part of ``fedunlearn bench`` (its full settings:
10-round runs, 3 alternated repetitions of fedunlearn, the minimal Flower app
and the no-op app per site count) and prints its rows. A quick look between
full benches; the bench's targets are judged on ``fedunlearn bench`` alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from fedunlearn.bench.flowerapp import flower_rows
from fedunlearn.bench.overhead import overhead_rows
from fedunlearn.bench.runner import BenchSettings, _overhead, _Runs
from fedunlearn.bench.table import BenchTable
from fedunlearn.progress import Progress


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sites", type=int, nargs="+", default=[8], help="site counts (default 8)")
    p.add_argument("--out", type=Path, help="folder for the runs (default: a new temp folder)")
    args = p.parse_args(argv)
    sites = tuple(args.sites)
    settings = dataclasses.replace(BenchSettings.full(), overhead_sites=sites, flower_sites=sites)
    out = args.out or Path(tempfile.mkdtemp(prefix="overhead-probe-"))
    progress = Progress()
    res = _overhead(settings, _Runs(out, progress), progress)
    table = BenchTable()
    overhead_rows(table, res.fedunlearn)
    flower_rows(table, res.fedunlearn, res.minimal, res.noop)
    print(table.frame().to_string(index=False))


if __name__ == "__main__":
    main()
