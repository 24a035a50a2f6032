"""(f) A whole sweep's wall time with shared run prefixes against the same sweep without them.

``fedunlearn sweep configs/quickstart.yaml`` over deletion methods and seeds,
run four times as separate ``python -m fedunlearn sweep`` processes: as built
(grid points that differ only in deletion settings share the rounds before the
first request, and each batch of points runs in one warm simulation engine),
with ``--engine per-point`` (a process and a Ray per run), with
``--no-share-prefix``, and with both (the sweep before either saving).
``sweep_wall_ratio`` is as built / both off (target <= 0.7);
``sweep_prefix_ratio`` and ``sweep_engine_ratio`` part the two savings. A build
whose ``sweep`` lacks either flag cannot run the comparison: the row says so,
with no value. It costs minutes (``small``) to about an hour (``full``, the grid of
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
from fedunlearn.errors import FedunlearnError
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
    """Whether this build's ``fedunlearn sweep`` takes ``--no-share-prefix`` and ``--engine`` (read from its
    --help)."""
    done = subprocess.run(
        [sys.executable, "-m", "fedunlearn", "sweep", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    return FLAG in done.stdout and "--engine" in done.stdout


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


#: (variant, extra sweep arguments, what it is); the first is the sweep as built, the last the baseline
VARIANTS = (
    ("shared", [], "one warm engine per batch of points, prefixes shared (as built)"),
    ("prefix_only", ["--engine", "per-point"], "prefixes shared, each run its own process and Ray"),
    ("engine_only", [FLAG], "one warm engine, every point from round 1"),
    (
        "unshared",
        [FLAG, "--engine", "per-point"],
        "every point from round 1 in its own process and Ray",
    ),
)


def _has_quickstart_data(data_root: Path | None) -> bool:
    return data_root is not None and (Path(data_root) / "dermamnist.npz").is_file()


def require_quickstart_data(data_root: Path | None, mode: str, *, or_off: bool = True) -> None:
    """Raise, before anything runs, when ``--sweep MODE`` would find no ``dermamnist.npz``: the sweep
    times the quickstart on the real data and would otherwise report itself "not measured" at the end.
    ``or_off``: the message offers ``--sweep off`` (``fedunlearn bench``; not ``sweep_wall.py``)."""
    if mode == "off" or _has_quickstart_data(data_root):
        return
    where = f"under --data-root {data_root}" if data_root is not None else "(no --data-root)"
    raise FedunlearnError(
        f"--sweep {mode} times the quickstart, which needs dermamnist.npz, and there is none {where}; "
        "pass --data-root DIR holding it (`fedunlearn data fetch --dataset dermamnist --data-root DIR`)"
        + (" or --sweep off" if or_off else "")
    )


def sweep_rows(
    table: BenchTable, mode: str, out: Path, data_root: Path | None, progress: Progress
) -> None:
    """``sweep_wall_ratio`` (or the reason it was not measured), the walls of all four variants, and the
    ratios that part the two savings."""
    if mode == "off":
        _not_measured(table, "pass --sweep small or --sweep full")
        return
    if not has_no_share_prefix():
        _not_measured(table, f"this build has no {FLAG} or no --engine")
        return
    # reached only by callers that did not call require_quickstart_data first
    if not _has_quickstart_data(data_root):
        _not_measured(table, "the quickstart needs --data-root with dermamnist.npz")
        return
    args = [str(QUICKSTART), *GRIDS[mode], "--data-root", str(data_root)]
    progress(f"(f) sweep wall time, {mode} grid, with and without shared prefixes and engines")
    wall: dict[str, float] = {}
    for name, extra, what in VARIANTS:
        wall[name] = _timed_sweep([*args, *extra], out / f"sweep-{name}")
        progress(f"sweep, {what}: {wall[name]:.0f}s")
        flags = " ".join(extra) or "as built"
        table.add("sweep", mode, f"sweep_{name}_wall_s", wall[name], f"s ({what}; {flags})")
    add = table.add
    add(
        "sweep",
        mode,
        "sweep_wall_ratio",
        wall["shared"] / wall["unshared"],
        "as built / every point from round 1 in its own process (target <= 0.7)",
    )
    add(
        "sweep",
        mode,
        "sweep_prefix_ratio",
        wall["shared"] / wall["engine_only"],
        "shared prefixes / none, both in warm engines (the prefixes' own saving)",
    )
    add(
        "sweep",
        mode,
        "sweep_engine_ratio",
        wall["engine_only"] / wall["unshared"],
        "warm engines / a process per point, no prefixes (the engines' own saving)",
    )
    table.note(
        f"sweep ({mode}): fedunlearn sweep configs/quickstart.yaml {' '.join(GRIDS[mode])}, as built, "
        f"with --engine per-point, with {FLAG}, and with both, one after the other, each its own process."
    )
