"""Everything a run records: one long metrics table and an event log.

Rows are ``round, site, phase, method, metric, value, request``; ``site`` is
``global`` for server-side figures and ``pooled`` for the sum of the sites'
confusion counts. Events (deletions, failures) are appended to
``events.jsonl`` as they happen; the table's new rows are appended to
``metrics.csv`` on flush, so a round's recording costs the same at round 50 as
at round 5. A checkpoint remembers how many rows and bytes of ``metrics.csv``
belong to it (:class:`MetricsMark`); a resumed run cuts the file back to that
length, so rows appended after the checkpoint (a kill between the append and
the checkpoint, or in the middle of an append) are neither lost nor doubled.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fedunlearn.errors import FedunlearnError
from fedunlearn.io import atomic_write_text, now_iso
from fedunlearn.progress import Progress

COLUMNS = ("round", "site", "phase", "method", "metric", "value", "request")
_ANNOUNCED = (
    "site-failure",
    "deletion-failed",
    "run-stopped",
    "run-resumed",
)  # also shown as progress lines


@dataclass(frozen=True)
class MetricsMark:
    """How much of ``RUN_DIR/metrics.csv`` belongs to a checkpoint: ``rows`` rows, ``size`` bytes
    (header included)."""

    rows: int
    size: int


class RunRecorder:
    """Collects metric rows and events of one federated run."""

    def __init__(self, run_dir: Path, method: str, progress: Progress | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.method = method
        self.progress = progress or Progress(quiet=True)
        self._rows: list[tuple] = []
        self._events_path = self.run_dir / "events.jsonl"
        self.event_lines = (
            0  # lines written to events.jsonl (a checkpoint remembers how many belong to it)
        )
        self._metrics_path = self.run_dir / "metrics.csv"
        self._written = (
            0  # rows of self._rows already in metrics.csv (0: the next flush rewrites it)
        )
        self._size = 0  # bytes of metrics.csv after the last flush

    def metrics(
        self,
        server_round: int,
        site: str,
        phase: str,
        values: Mapping[str, float],
        request: str = "",
    ) -> None:
        for metric, value in values.items():
            v = float(value)
            self._rows.append((server_round, site, phase, self.method, metric, v, request))

    def event(self, kind: str, server_round: int, **fields: Any) -> None:
        record = {"time": now_iso(), "event": kind, "round": server_round, **fields}
        with open(self._events_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=_jsonable) + "\n")
        self.event_lines += 1
        if kind in _ANNOUNCED:
            details = ", ".join(f"{k} {v}" for k, v in fields.items() if k != "retry")
            self.progress(f"round {server_round}: {kind}: {details}")

    def restore(
        self, rows: pd.DataFrame, event_lines: int, metrics: MetricsMark | None = None
    ) -> None:
        """Continue from a checkpoint: its metric rows, and the first ``event_lines`` events only
        (the rounds after the checkpoint are run again and log their events again).

        ``metrics``: where the checkpoint's rows end in ``metrics.csv``; the file is cut back to
        that length. Without it (an older checkpoint that held its own copy of the rows, or a file
        shorter than the mark) the next flush writes the whole table again.
        """
        self._rows = [tuple(r) for r in rows[list(COLUMNS)].itertuples(index=False, name=None)]
        self._written = self._size = 0
        if (
            metrics is not None
            and metrics.rows == len(self._rows)
            and self._metrics_path.is_file()
            and self._metrics_path.stat().st_size >= metrics.size
        ):
            os.truncate(self._metrics_path, metrics.size)
            self._written, self._size = metrics.rows, metrics.size
        lines = (
            self._events_path.read_text(encoding="utf-8").splitlines(keepends=True)
            if self._events_path.exists()
            else []
        )
        if len(lines) < event_lines:
            raise FedunlearnError(
                f"{self._events_path} has {len(lines)} events, fewer than the {event_lines} its "
                "checkpoint recorded; the run directory was altered, start the run again"
            )
        atomic_write_text(self._events_path, "".join(lines[:event_lines]))
        self.event_lines = event_lines

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self._rows, columns=list(COLUMNS))

    def value(self, server_round: int, site: str, phase: str, metric: str) -> float:
        for r in reversed(self._rows):
            if r[0] == server_round and r[1] == site and r[2] == phase and r[4] == metric:
                return r[5]
        return math.nan

    @property
    def mark(self) -> MetricsMark:
        """Rows and bytes of ``metrics.csv`` as of the last :meth:`flush` (what a checkpoint records)."""
        return MetricsMark(self._written, self._size)

    def flush(self) -> None:
        """Append the rows recorded since the last flush to ``metrics.csv``.

        The first flush (and one after a restore without a usable mark) writes the
        whole table atomically; later ones append only the new rows, formatted by
        the same ``DataFrame.to_csv``, so the file is byte for byte what writing the
        whole table would give.
        """
        if self._written == 0 or not self._metrics_path.is_file():
            text = self.table().to_csv(index=False)
            atomic_write_text(self._metrics_path, text)
            self._size = len(text.encode("utf-8"))
        else:
            new = self._rows[self._written :]
            if not new:
                return
            data = pd.DataFrame(new, columns=list(COLUMNS)).to_csv(index=False, header=False)
            data_bytes = data.encode("utf-8")
            with open(self._metrics_path, "ab") as fh:
                fh.write(data_bytes)
            self._size += len(data_bytes)
        self._written = len(self._rows)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
