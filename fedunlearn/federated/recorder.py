"""Everything a run records: one long metrics table and an event log.

Rows are ``round, site, phase, method, metric, value, request``; ``site`` is
``global`` for server-side figures and ``pooled`` for the sum of the sites'
confusion counts. Events (deletions, failures) are appended to
``events.jsonl`` as they happen; the table is written atomically on flush.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from fedunlearn.errors import FedunlearnError
from fedunlearn.io import atomic_write_csv, atomic_write_text, now_iso
from fedunlearn.progress import Progress

COLUMNS = ("round", "site", "phase", "method", "metric", "value", "request")
_ANNOUNCED = (
    "site-failure",
    "deletion-failed",
    "run-stopped",
    "run-resumed",
)  # also shown as progress lines


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

    def restore(self, rows: pd.DataFrame, event_lines: int) -> None:
        """Continue from a checkpoint: its metric rows, and the first ``event_lines`` events only
        (the rounds after the checkpoint are run again and log their events again)."""
        self._rows = [tuple(r) for r in rows[list(COLUMNS)].itertuples(index=False, name=None)]
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

    def flush(self) -> None:
        atomic_write_csv(self.run_dir / "metrics.csv", self.table())


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
