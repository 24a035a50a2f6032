"""(f) A whole sweep's wall time with shared run prefixes against the same sweep without them.

``fedunlearn sweep configs/quickstart.yaml`` over deletion methods and seeds,
run twice as separate ``python -m fedunlearn sweep`` processes, alternately:
as built (grid points that differ only in deletion settings share the rounds
before the first request) and with ``--no-share-prefix``. ``sweep_wall_ratio``
is shared / unshared (target <= 0.7). A build whose ``sweep`` has no
``--no-share-prefix`` cannot run the comparison: the row says so, with no
value. It costs minutes (``small``) to about an hour (``full``, the grid of
the issue: 3 methods x 3 seeds, plus the Retrain arm the sweep adds), so it
runs only when asked (``fedunlearn bench --sweep small|full``).
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

from fedunlearn.bench.table import BenchTable
from fedunlearn.progress import Progress

FLAG = "--no-share-prefix"
GRIDS = {
    "full": ["--grid", "deletion.method=none,salun-cra,rl", "--grid", "seed=0,1,2"],
    "small": [
        "--grid",
        "deletion.method=none,salun-cra",
        "--grid",
        "seed=0,1",
        "--no-retrain",
        "--set",
        "training.rounds=6",
    ],
}
QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"


def has_no_share_prefix() -> bool:
    """Whether this build's ``fedunlearn sweep`` takes ``--no-share-prefix`` (read from its --help)."""
    done = subprocess.run(
        [sys.executable, "-m", "fedunlearn", "sweep", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return FLAG in done.stdout


def _not_measured(table: BenchTable, why: str) -> None:
    table.add("sweep", "", "sweep_wall_ratio", math.nan, f"not measured ({why})")


def _timed_sweep(args: list[str], out: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "fedunlearn", "sweep", *args, "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"bench: the sweep in {out} failed: {tail[0]}")
    return time.perf_counter() - t0


def sweep_rows(
    table: BenchTable, mode: str, out: Path, data_root: Path | None, progress: Progress
) -> None:
    """``sweep_wall_ratio`` (or the reason it was not measured) and both walls."""
    if mode == "off":
        _not_measured(table, "pass --sweep small or --sweep full")
        return
    if not has_no_share_prefix():
        _not_measured(table, f"this build has no {FLAG}")
        return
    if data_root is None or not (Path(data_root) / "dermamnist.npz").is_file():
        _not_measured(table, "the quickstart needs --data-root with dermamnist.npz")
        return
    args = [str(QUICKSTART), *GRIDS[mode], "--data-root", str(data_root)]
    progress(f"(f) sweep wall time, {mode} grid, with and without shared prefixes")
    shared = _timed_sweep(args, out / "sweep-shared")
    progress(f"sweep with shared prefixes: {shared:.0f}s")
    unshared = _timed_sweep([*args, FLAG], out / "sweep-unshared")
    progress(f"sweep without: {unshared:.0f}s")
    add = table.add
    add("sweep", mode, "sweep_shared_wall_s", shared, "s (fedunlearn sweep, prefixes shared)")
    add("sweep", mode, "sweep_unshared_wall_s", unshared, f"s (the same with {FLAG})")
    add("sweep", mode, "sweep_wall_ratio", shared / unshared, "shared / unshared (target <= 0.7)")
    table.note(
        f"sweep ({mode}): fedunlearn sweep configs/quickstart.yaml {' '.join(GRIDS[mode])}, as built and "
        f"with {FLAG}, one after the other, each its own process."
    )
