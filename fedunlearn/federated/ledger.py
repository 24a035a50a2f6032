"""Durable deletion ledgers (SQLite, standard library).

Two ledgers, as in a real deployment:

- the **server ledger** (``RUN_DIR/ledger.sqlite``) holds, per request, its id,
  site, requested round, sample count, status ``pending -> applied ->
  verified`` with timestamps, failed attempts and the verification metrics:
  counts and aggregates only, never a row (a counterfactual control arm,
  ``deletion.method: none``, records its requests as ``not-erased``), and the
  risk guard's decision on each erasure (``guard_status`` and the ``guard_*``
  columns; null when the guard is off);
- each **site ledger** (``RUN_DIR/sites/<site>/ledger.sqlite``) holds the rows a
  request withdrew. It is committed before the site trains or unlearns again,
  so a withdrawn row is never trained on again, even if the process dies the
  next instant.

Every write is its own committed transaction (WAL journal, ``synchronous=FULL``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from fedunlearn.errors import FedunlearnError
from fedunlearn.io import now_iso

STATUSES = ("pending", "applied", "verified", "not-erased")
GUARD_STATUSES = ("passed", "retried", "recovered", "escalated", "failed")
GUARD_COLUMNS = (
    ("guard_status", "TEXT"),
    ("guard_metric", "TEXT"),
    ("guard_reference", "REAL"),
    ("guard_after_pass", "REAL"),
    ("guard_after_recovery", "REAL"),
    ("guard_final", "REAL"),
    ("guard_rounds", "INTEGER"),
    ("guard_images", "INTEGER"),
)
SERVER_LEDGER = "ledger.sqlite"


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(path, timeout=60, isolation_level=None)
    except sqlite3.Error as exc:
        raise FedunlearnError(
            f"cannot open the ledger {path} ({exc}); check that the run directory is writable"
        ) from None
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        yield con
    except sqlite3.DatabaseError as exc:
        raise FedunlearnError(
            f"the ledger {path} is unreadable ({exc}); the run directory is damaged, "
            "start a new run"
        ) from None
    finally:
        con.close()


def _metrics_json(metrics: Mapping[str, float]) -> str:
    return json.dumps({k: float(v) for k, v in metrics.items()}, sort_keys=True)


def remove_ledger_files(path: Path) -> None:
    """Delete an SQLite database with its WAL and shared-memory files."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


def copy_database(src: Path, dest: Path) -> None:
    """A consistent copy of an SQLite database (the backup API, so a WAL file is folded in)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_ledger_files(dest)
    with _connect(src) as con_src:
        target = sqlite3.connect(dest)
        try:
            con_src.backup(target)
        finally:
            target.close()


class ServerLedger:
    """The server's record of every erasure request: counts and aggregates, never rows."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with _connect(self.path) as con:
            con.execute(
                """CREATE TABLE IF NOT EXISTS requests (
                    id INTEGER PRIMARY KEY, site TEXT NOT NULL, requested_round INTEGER NOT NULL,
                    fraction REAL NOT NULL, mode TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'verified', 'not-erased')),
                    sample_count INTEGER, attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
                    last_failure TEXT, method TEXT, applied_round INTEGER, verified_round INTEGER,
                    requested_at TEXT NOT NULL, applied_at TEXT, verified_at TEXT,
                    applied_metrics TEXT, verification_metrics TEXT)"""
            )
            have = {row[1] for row in con.execute("PRAGMA table_info(requests)")}
            for name, kind in GUARD_COLUMNS:  # a ledger written before the risk guard existed
                if name not in have:
                    con.execute(f"ALTER TABLE requests ADD COLUMN {name} {kind}")

    def request(self, rid: int, site: str, server_round: int, fraction: float, mode: str) -> None:
        """Record a request as pending; recording it again changes nothing."""
        with _connect(self.path) as con:
            con.execute(
                "INSERT OR IGNORE INTO requests (id, site, requested_round, fraction, mode, status, requested_at)"
                " VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                (rid, site, server_round, fraction, mode, now_iso()),
            )

    def counted(self, rid: int, sample_count: int) -> None:
        """The site reported how many of its rows the request withdrew."""
        with _connect(self.path) as con:
            con.execute("UPDATE requests SET sample_count=? WHERE id=?", (int(sample_count), rid))

    def attempted(self, rid: int) -> None:
        """An unlearning pass for the request was sent."""
        with _connect(self.path) as con:
            con.execute("UPDATE requests SET attempts = attempts + 1 WHERE id=?", (rid,))

    def failed(self, rid: int, reason: str) -> None:
        """The pass failed: the request stays pending, to be retried."""
        with _connect(self.path) as con:
            con.execute(
                "UPDATE requests SET failures = failures + 1, last_failure=? WHERE id=?",
                (reason[:500], rid),
            )

    def applied(
        self,
        rid: int,
        server_round: int,
        method: str,
        metrics: Mapping[str, float],
        sample_count: int | None = None,
    ) -> None:
        """The model was made to forget the request (an unlearning pass, or a reset of the global model)."""
        with _connect(self.path) as con:
            con.execute(
                "UPDATE requests SET status='applied', applied_round=?, method=?, applied_at=?, applied_metrics=?,"
                " sample_count=COALESCE(?, sample_count) WHERE id=? AND status='pending'",
                (server_round, method, now_iso(), _metrics_json(metrics), sample_count, rid),
            )

    def not_erased(self, rid: int, server_round: int) -> None:
        """The control arm recorded the request and erases nothing (its forget set is only tracked)."""
        with _connect(self.path) as con:
            con.execute(
                "UPDATE requests SET status='not-erased', method='none', applied_round=? "
                "WHERE id=? AND status='pending'",
                (server_round, rid),
            )

    def verified(self, rid: int, server_round: int, metrics: Mapping[str, float]) -> bool:
        """The site's first forget-set report after the request was applied; True if the status changed."""
        with _connect(self.path) as con:
            cur = con.execute(
                "UPDATE requests SET status='verified', verified_round=?, verified_at=?, verification_metrics=?"
                " WHERE id=? AND status='applied' AND applied_round <= ?",
                (server_round, now_iso(), _metrics_json(metrics), rid, server_round),
            )
            return cur.rowcount > 0

    def guarded(self, rid: int, decision: Mapping[str, Any]) -> None:
        """The risk guard's decision on the request's erasure (keys: the ``guard_*`` columns without the prefix):
        its status, the guarded metric of the reference, after the pass, after recovery and as adopted, and the
        recovery rounds and images (retried passes and recovery rounds) it spent."""
        names = [name for name, _ in GUARD_COLUMNS]
        values = [decision.get(name.removeprefix("guard_")) for name in names]
        with _connect(self.path) as con:
            con.execute(
                f"UPDATE requests SET {', '.join(f'{n}=?' for n in names)} WHERE id=?",
                (*values, rid),
            )

    def rows(self) -> list[dict[str, Any]]:
        with _connect(self.path) as con:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute("SELECT * FROM requests ORDER BY id")]

    def status(self, rid: int) -> str | None:
        with _connect(self.path) as con:
            row = con.execute("SELECT status FROM requests WHERE id=?", (rid,)).fetchone()
            return row[0] if row else None

    def snapshot(self, dest: Path) -> None:
        copy_database(self.path, dest)

    def restore(self, src: Path) -> None:
        """Put back the ledger saved with a checkpoint (rounds after it are run again)."""
        copy_database(src, self.path)


class SiteLedger:
    """A hospital's private record of the rows each request withdrew. It never leaves the site."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with _connect(self.path) as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS requests (request INTEGER PRIMARY KEY, accepted_round INTEGER NOT NULL,"
                " accepted_at TEXT NOT NULL, unlearned_round INTEGER, unlearned_at TEXT)"
            )
            con.execute(
                "CREATE TABLE IF NOT EXISTS withdrawn (request INTEGER NOT NULL, row INTEGER NOT NULL,"
                " PRIMARY KEY (request, row))"
            )

    def withdraw(self, rid: int, rows: torch.Tensor, server_round: int) -> torch.Tensor:
        """Record, in one transaction, that request ``rid`` withdrew ``rows``.

        A request recorded before keeps its first rows (a retried or replayed
        request never changes which patients it covers); those are returned.
        """
        with _connect(self.path) as con:
            con.execute("BEGIN IMMEDIATE")
            if con.execute("SELECT 1 FROM requests WHERE request=?", (rid,)).fetchone():
                con.execute("ROLLBACK")
                return self.withdrawn()[rid]
            con.execute(
                "INSERT INTO requests (request, accepted_round, accepted_at) VALUES (?, ?, ?)",
                (rid, server_round, now_iso()),
            )
            con.executemany(
                "INSERT INTO withdrawn (request, row) VALUES (?, ?)",
                [(rid, int(r)) for r in rows.tolist()],
            )
            con.execute("COMMIT")
        return rows

    def unlearned(self, rid: int, server_round: int) -> None:
        with _connect(self.path) as con:
            con.execute(
                "UPDATE requests SET unlearned_round=?, unlearned_at=? WHERE request=?",
                (server_round, now_iso(), rid),
            )

    def withdrawn(self) -> dict[int, torch.Tensor]:
        """Request id -> its withdrawn rows (sorted), for every recorded request (empty ones included)."""
        with _connect(self.path) as con:
            out: dict[int, list[int]] = {
                rid: [] for (rid,) in con.execute("SELECT request FROM requests ORDER BY request")
            }
            for rid, row in con.execute("SELECT request, row FROM withdrawn ORDER BY request, row"):
                out[rid].append(row)
        return {rid: torch.tensor(rows, dtype=torch.long) for rid, rows in out.items()}


__all__ = [
    "GUARD_COLUMNS",
    "GUARD_STATUSES",
    "SERVER_LEDGER",
    "STATUSES",
    "ServerLedger",
    "SiteLedger",
    "copy_database",
    "remove_ledger_files",
]
