"""(d) Peak memory of the server process and of one client actor, and how it grows with the data.

Two short runs (2 sites, 2 rounds, a few hundred training images per site, so
compute is small) load a dataset of DermaMNIST's size and one of PathMNIST's
size: the real 28 px files where ``--data-root`` holds them (PathMNIST only
with its full train split), else synthetic data with the official split
sizes. Every site's process loads the whole dataset, so the footprint follows
the dataset, not the shard.

Server: this process's ``VmHWM`` (reset to the current RSS just before the
run). Client actor: the ``VmHWM`` of the largest ``ClientAppActor`` process,
sampled every 0.5 s while the run goes (its ``Pss`` and private memory from
``smaps_rollup`` say how much of it is shared with other processes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.bench.fedruns import RunFigures
from fedunlearn.bench.table import BenchTable

SHARD = 128
"""Training images per site in the memory runs."""


@dataclass(frozen=True)
class MemoryScale:
    """One dataset size: the official split sizes of a MedMNIST dataset at 28 px."""

    dataset: str
    n_train: int
    n_val: int
    n_test: int


DERMA = MemoryScale("dermamnist", 7007, 1003, 2005)
PATH = MemoryScale("pathmnist", 89996, 10004, 7180)


def _real_file(scale: MemoryScale, root: Path | None) -> Path | None:
    """``root/<dataset>.npz`` when it holds the full official train split."""
    if root is None or not (Path(root) / f"{scale.dataset}.npz").is_file():
        return None
    path = Path(root) / f"{scale.dataset}.npz"
    with np.load(path) as z:
        n = z["train_labels"].shape[0] if "train_labels" in z.files else 0
    return path if n == scale.n_train else None


def memory_data(scale: MemoryScale, root: Path | None) -> tuple[dict[str, Any], str]:
    """The scenario's ``data`` section for ``scale``, and a label saying what it is."""
    if _real_file(scale, root) is not None:
        return {
            "dataset": scale.dataset,
            "size": 28,
            "root": str(root),
        }, f"{scale.dataset} 28px, {scale.n_train} train"
    syn = {"n_train": scale.n_train, "n_val": scale.n_val, "n_test": scale.n_test}
    return {
        "dataset": "synthetic",
        "synthetic": syn,
    }, f"synthetic of {scale.dataset}'s size, {scale.n_train} train"


def memory_scenario(data: dict[str, Any], n_train: int, tag: str) -> dict[str, Any]:
    share = min(0.45, SHARD / n_train)
    return {
        "name": f"bench-memory-{tag}",
        "seed": 0,
        "model": "small-cnn",
        "data": data,
        "sites": {
            "count": 2,
            "partition": "explicit",
            "sizes": [share, share],
            "prevalence": [0.2, 0.2],
        },
        "training": {"rounds": 2, "local_epochs": 1, "batch_size": 64, "lr": 0.05},
        "evaluation": {"server_val": False, "operating_points": [0.5]},
    }


def _add_memory(table: BenchTable, label: str, who: str, metric: str, value, unit: str):
    return table.add("memory", f"{who}, {label}", metric, value, unit)


def memory_rows(table: BenchTable, runs: list[tuple[str, RunFigures]]) -> None:
    """Per run: server and largest-actor peaks; across the first and last run: growth per MiB of data."""
    for label, run in runs:
        _run_rows(table, label, run)
    if not any(run.actors for _, run in runs):
        table.note(
            "memory: no ClientAppActor process was seen below this process (not Linux, or Ray changed "
            "its process names); only the server's peak is reported."
        )
    if len(runs) < 2:
        table.note(
            "memory: one dataset size only, so no growth and no shared-or-copied verdict (the full "
            "benchmark runs DermaMNIST and PathMNIST sizes). Each actor loads the whole dataset itself."
        )
        return
    _growth_rows(table, runs)


def _run_rows(table: BenchTable, label: str, run: RunFigures) -> None:
    """The server's and the largest actor's memory in one run."""
    actor = run.largest_actor()
    add = partial(_add_memory, table, label)
    add("server", "peak_rss_mb", run.server_peak_mb, "MiB (VmHWM of this process during the run)")
    add(
        "server",
        "rss_growth_mb",
        run.server_peak_mb - run.server_rss_before_mb,
        "MiB (peak - RSS before the run)",
    )
    add("data", "data_mb", run.data_mb, "MiB (images + labels, every split)")
    if actor is not None:
        add(
            "client actor", "peak_rss_mb", actor.hwm_mb, "MiB (VmHWM of the largest ClientAppActor)"
        )
        add("client actor", "pss_mb", actor.pss_mb, "MiB (proportional set size)")
        add(
            "client actor",
            "private_mb",
            actor.private_mb,
            "MiB (pages not shared with any process)",
        )
        add("client actor", "actors", len(run.actors), "ClientAppActor processes")


def _growth_rows(table: BenchTable, runs: list[tuple[str, RunFigures]]) -> None:
    """From the first run to the last: how the server's and the actors' memory follow the data."""
    (lo_label, lo), (hi_label, hi) = runs[0], runs[-1]
    d_data = hi.data_mb - lo.data_mb
    a_lo, a_hi = lo.largest_actor(), hi.largest_actor()
    variant = f"{lo_label} -> {hi_label}"
    table.add("memory", variant, "data_growth_mb", d_data, "MiB")
    table.add(
        "memory", variant, "server_peak_growth_mb", hi.server_peak_mb - lo.server_peak_mb, "MiB"
    )
    if a_lo is not None and a_hi is not None and d_data > 0:
        per = (a_hi.private_mb - a_lo.private_mb) / d_data
        table.add("memory", variant, "actor_peak_growth_mb", a_hi.hwm_mb - a_lo.hwm_mb, "MiB")
        table.add(
            "memory",
            variant,
            "actor_private_growth_per_data_mb",
            per,
            "MiB private per MiB of data (1 = a private copy per actor, 0 = shared)",
        )
        verdict = (
            "copied into every actor (each actor's private memory grows by about the dataset's size)"
            if per > 0.5
            else "shared read-only between actors (private memory does not follow the data)"
        )
        table.note(
            f"memory: data are {verdict}: private actor memory grew {per:.2f} MiB per MiB of data from "
            f"{lo_label} to {hi_label}. Each actor (and the server) loads the whole dataset itself "
            "(np.load into process memory below 128 px; memory-mapped, so shared via the page cache, at "
            "128 and 224 px)."
        )
    if not (math.isfinite(hi.server_peak_mb) and hi.server_peak_reset):
        table.note(
            "memory: the server's VmHWM could not be reset before a run; its peak includes earlier work."
        )
