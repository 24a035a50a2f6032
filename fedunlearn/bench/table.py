"""The benchmark's one long table (``benchmark, variant, metric, value, unit``) and its notes."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fedunlearn.io import atomic_write_csv, atomic_write_text

COLUMNS = ("benchmark", "variant", "metric", "value", "unit")


@dataclass
class BenchTable:
    """Rows of figures plus the notes that define them (printed under the table)."""

    rows: list[tuple[str, str, str, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, benchmark: str, variant: str | int, metric: str, value: float, unit: str) -> None:
        self.rows.append((benchmark, str(variant), metric, float(value), unit))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(COLUMNS))

    def render(self) -> str:
        """The table, then the notes, as printed by ``fedunlearn bench``."""
        frame = self.frame()
        shown = frame.assign(value=[_fmt(v) for v in frame["value"]])
        text = shown.to_string(index=False)
        if self.notes:
            text += "\n\n" + "\n".join(f"- {n}" for n in self.notes)
        return text

    def write(self, out: Path) -> Path:
        """``OUT/bench.csv`` (the table) and ``OUT/bench.txt`` (what was printed)."""
        out = Path(out)
        atomic_write_csv(out / "bench.csv", self.frame())
        atomic_write_text(out / "bench.txt", self.render() + "\n")
        return out / "bench.csv"


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def interleaved(
    variants: Sequence[tuple[str, Callable[[], float]]], reps: int
) -> dict[str, list[float]]:
    """Run ``A B C A B C ...`` ``reps`` times; each callable returns one measurement.

    Interleaving spreads any slow spell of a shared machine over every variant,
    so ratios of medians hold better than with back-to-back blocks.
    """
    out: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _ in range(reps):
        for name, fn in variants:
            out[name].append(fn())
    return out


def median(values: Iterable[float]) -> float:
    vals = [v for v in values if math.isfinite(v)]
    return statistics.median(vals) if vals else math.nan


def machine_rows(table: BenchTable, when: str) -> None:
    """CPU count, torch threads and load average (so a reader can judge a noisy machine)."""
    import torch

    if when == "start":
        table.add("machine", "", "cpu_count", os.cpu_count() or 0, "cores")
        table.add("machine", "", "torch_threads", torch.get_num_threads(), "threads")
        table.add("machine", "", "cuda_available", int(torch.cuda.is_available()), "bool")
    table.add("machine", when, "load_avg_1m", os.getloadavg()[0], "runnable processes")
