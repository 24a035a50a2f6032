"""``fedunlearn bench``: every benchmark in one run, one table (``OUT/bench.csv``).

Order: (a) local training throughput, (d) memory (first, so that no earlier
run has left its dataset cached in this process), (b) round overhead, each
site count alternating fedunlearn with a minimal Flower app and a no-op one,
(c) cost of erasure, (e) the server's per-round step over 50 rounds, and with
``--sweep`` (f) a whole sweep with and without shared prefixes. ``--quick``
shrinks everything for a smoke test: two small federated runs (SalUn-CRA and
Federated Retrain) then stand in for (b), (c) and (d) together.
"""

from __future__ import annotations

import gc
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fedunlearn.bench.erasure import ErasureSettings, erasure_rows, erasure_scenario
from fedunlearn.bench.fedruns import RunFigures, run_monitored, scenario_of
from fedunlearn.bench.flowerapp import (
    RAY_START_TRIES,
    FlowerRound,
    flower_backend,
    flower_rows,
    ray_start_timed_out,
    run_minimal_flower,
)
from fedunlearn.bench.memory import DERMA, PATH, memory_data, memory_rows, memory_scenario
from fedunlearn.bench.overhead import overhead_rows, overhead_scenario
from fedunlearn.bench.serverstep import server_step_rows
from fedunlearn.bench.sweepwall import require_quickstart_data, sweep_rows
from fedunlearn.bench.table import BenchTable, machine_rows
from fedunlearn.bench.throughput import load_throughput_data, run_throughput
from fedunlearn.errors import FedunlearnError
from fedunlearn.progress import Progress


@dataclass(frozen=True)
class BenchSettings:
    """Sizes and repetitions of every benchmark."""

    quick: bool
    throughput_images: int | None  # None: the whole train split
    throughput_reps: int
    overhead_sites: tuple[int, ...]  # () under --quick: the erasure runs stand in
    overhead_rounds: int
    overhead_reps: int
    overhead_shard: int
    erasure: ErasureSettings
    erasure_pairs: int
    memory_scales: bool  # False under --quick: the erasure runs stand in
    flower_sites: tuple[int, ...]  # the minimal Flower app's sizes (those of (b); 4 under --quick)
    server_step_sites: tuple[int, ...]
    server_step_rounds: int
    sweep: str = "off"  # "off", "small" or "full": (f), minutes to hours

    @classmethod
    def full(cls) -> BenchSettings:
        return cls(
            quick=False,
            throughput_images=None,
            throughput_reps=3,
            overhead_sites=(2, 8, 32),
            overhead_rounds=10,  # 9 measured rounds per run (round 1 pays the actors' first calls)
            overhead_reps=3,  # (b') swung 0.61-1.04 at 8 sites in one-rep 5-round runs
            overhead_shard=64,
            erasure=ErasureSettings(sites=4, rounds=10, local_epochs=2, unlearn_epochs=5),
            erasure_pairs=3,  # the wall ratio swung 10.7-11.4x between two pairs: the median of three
            memory_scales=True,
            flower_sites=(2, 8, 32),
            server_step_sites=(8, 32),
            server_step_rounds=50,
        )

    @classmethod
    def smoke(cls) -> BenchSettings:
        return cls(
            quick=True,
            throughput_images=512,
            throughput_reps=1,
            overhead_sites=(),
            overhead_rounds=3,
            overhead_reps=1,
            overhead_shard=32,
            erasure=ErasureSettings(
                sites=4, rounds=3, local_epochs=1, unlearn_epochs=1, batch_size=32
            ),
            erasure_pairs=1,
            memory_scales=False,
            flower_sites=(4,),
            server_step_sites=(4,),
            server_step_rounds=12,
        )


def _erasure_data(data_root: Path | None, quick: bool) -> tuple[dict[str, Any], str]:
    if quick:
        return {
            "dataset": "synthetic",
            "synthetic": {"n_train": 256, "n_val": 64, "n_test": 64},
        }, "synthetic 256 train"
    if data_root is not None and (Path(data_root) / "dermamnist.npz").is_file():
        return {"dataset": "dermamnist", "size": 28, "root": str(data_root)}, "dermamnist 28px"
    syn = {"n_train": DERMA.n_train, "n_val": DERMA.n_val, "n_test": DERMA.n_test}
    return {"dataset": "synthetic", "synthetic": syn}, "synthetic of dermamnist's size"


class _Runs:
    """Numbered run directories under ``OUT/runs`` and the progress lines."""

    def __init__(self, out: Path, progress: Progress) -> None:
        self.dir, self.progress, self.n = out / "runs", progress, 0

    def __call__(self, raw: dict[str, Any], label: str) -> RunFigures:
        scenario = scenario_of(raw, label)
        for attempt in range(1, RAY_START_TRIES + 1):
            self.n += 1
            self.progress(f"run {self.n}: {label}")
            try:
                fig = run_monitored(scenario, self.dir / f"{self.n:02d}-{scenario.name}", label)
            except FedunlearnError as exc:
                if not ray_start_timed_out(exc) or attempt == RAY_START_TRIES:
                    raise
                self.progress(f"run {self.n}: Ray did not start in time; again in a new folder")
                continue
            self.progress(f"run {self.n}: {fig.wall_s:.1f}s")
            return fig
        raise AssertionError("unreachable")


def _empty_out(out: Path) -> Path:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FedunlearnError(
            f"bench output directory {out} is not empty; pass another --out or remove it"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _check_data_root(data_root: Path | None, sweep: str) -> None:
    """Refuse, before anything is written, a ``--data-root`` that is not a folder, and a ``--sweep``
    whose quickstart would find no ``dermamnist.npz`` (it would run for minutes, then report nothing)."""
    if data_root is not None and not Path(data_root).is_dir():
        raise FedunlearnError(
            f"--data-root {data_root} is not a folder; pass the folder that holds dermamnist.npz "
            "(or leave --data-root out: synthetic data of the same size stand in)"
        )
    require_quickstart_data(data_root, sweep)


def run_bench(
    settings: BenchSettings,
    out: Path,
    data_root: Path | None = None,
    progress: Progress | None = None,
) -> BenchTable:
    """Run every benchmark, write ``OUT/bench.csv`` and ``OUT/bench.txt``; returns the table."""
    from fedunlearn.data import UnofficialDataWarning

    progress = progress or Progress()
    _check_data_root(data_root, settings.sweep)
    out = _empty_out(out)
    table = BenchTable()
    machine_rows(table, "start")
    t0 = time.perf_counter()
    runs = _Runs(out, progress)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", UnofficialDataWarning
        )  # the manifest of each run records the MD5
        _throughput(table, settings, data_root, progress)
        if settings.memory_scales:
            _memory(table, runs, data_root, progress)
        overhead = _overhead(settings, runs, progress)
        pairs, data_label = _erasure(table, settings, runs, data_root, progress)
        # --quick: the erasure runs' steady rounds stand in for fedunlearn's (b) runs
        fed = overhead.fedunlearn or [run for pair in pairs for run in pair]
        overhead_rows(table, fed)
        flower_rows(table, fed, overhead.minimal, overhead.noop)
        if not settings.memory_scales:
            memory_rows(table, [(f"erasure run, {data_label}", pairs[0][0])])
        progress(f"(e) server step, rounds 5 and {settings.server_step_rounds}")
        server_step_rows(table, out, settings.server_step_sites, settings.server_step_rounds)
        sweep_rows(table, settings.sweep, out, data_root, progress)
    machine_rows(table, "end")
    table.add("machine", "", "bench_wall_s", time.perf_counter() - t0, "s")
    if settings.quick:
        table.note(
            "--quick: tiny sizes for a smoke test; the figures are not the benchmark's. Round overhead and "
            "memory come from the two erasure runs (4 sites, synthetic)."
        )
    table.write(out)
    return table


def _throughput(
    table: BenchTable, settings: BenchSettings, data_root: Path | None, progress: Progress
) -> None:
    from fedunlearn.data import clear_cache

    progress("(a) local training throughput")
    data = load_throughput_data(data_root, settings.throughput_images)
    run_throughput(table, data, settings.throughput_reps)
    del data
    clear_cache()
    gc.collect()


def _memory(table: BenchTable, runs: _Runs, data_root: Path | None, progress: Progress) -> None:
    progress("(d) memory at DermaMNIST and PathMNIST scale")
    mem = []
    for scale in (DERMA, PATH):
        section, label = memory_data(scale, data_root)
        raw = memory_scenario(section, scale.n_train, scale.dataset)
        mem.append((label, runs(raw, f"memory: {label}")))
    memory_rows(table, mem)


@dataclass
class _Overhead:
    """(b)'s runs: fedunlearn's (none under --quick) and the Flower apps' rounds per site count."""

    fedunlearn: list[RunFigures]
    minimal: dict[int, list[list[FlowerRound]]]
    noop: dict[int, list[list[FlowerRound]]]


def _overhead(settings: BenchSettings, runs: _Runs, progress: Progress) -> _Overhead:
    """(b): fedunlearn, the minimal Flower app and the no-op app, alternately at each site count."""
    res = _Overhead([], {}, {})
    sizes = settings.overhead_sites or settings.flower_sites
    progress(f"(b) round overhead at {', '.join(map(str, sizes))} sites, against Flower itself")
    for _ in range(settings.overhead_reps):
        for sites in sizes:
            raw = overhead_scenario(sites, settings.overhead_rounds, settings.overhead_shard)
            if settings.overhead_sites:
                res.fedunlearn.append(runs(raw, f"overhead: {sites} sites"))
            for store, noop in ((res.minimal, False), (res.noop, True)):
                progress(f"{'no-op' if noop else 'minimal'} Flower app: {sites} sites")
                backend = flower_backend(scenario_of(raw, "flower"))  # the same actors
                store.setdefault(sites, []).append(
                    run_minimal_flower(
                        sites, settings.overhead_rounds, settings.overhead_shard, noop, backend
                    )
                )
    return res


def run_overhead(sites: tuple[int, ...], out: Path, progress: Progress | None = None) -> BenchTable:
    """(b) and (b') alone at ``sites``, with the full bench's settings; its runs go under ``out``."""
    progress = progress or Progress()
    settings = replace(BenchSettings.full(), overhead_sites=sites, flower_sites=sites)
    res = _overhead(settings, _Runs(_empty_out(out), progress), progress)
    table = BenchTable()
    overhead_rows(table, res.fedunlearn)
    flower_rows(table, res.fedunlearn, res.minimal, res.noop)
    return table


def _erasure(
    table: BenchTable,
    settings: BenchSettings,
    runs: _Runs,
    data_root: Path | None,
    progress: Progress,
) -> tuple[list[tuple[RunFigures, RunFigures]], str]:
    """(c): SalUn-CRA and Federated Retrain runs, alternately; returns the pairs and the data's label."""
    progress("(c) cost of erasure: salun-cra vs Federated Retrain")
    section, data_label = _erasure_data(data_root, settings.quick)
    pairs = []
    for _ in range(settings.erasure_pairs):
        s = runs(erasure_scenario("salun-cra", section, settings.erasure), "erasure: salun-cra")
        f = runs(erasure_scenario("retrain", section, settings.erasure), "erasure: retrain")
        pairs.append((s, f))
    erasure_rows(table, pairs, settings.erasure, data_label)
    return pairs, data_label
