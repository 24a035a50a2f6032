"""metrics.csv is append-only: byte for byte the whole table, and a kill between the append and the
checkpoint (or in the middle of an append) resumes to the same file, no row lost or doubled.

Plain unit tests: no Ray, no simulation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from flwr.app import Array, ArrayRecord

from fedunlearn.federated.checkpoint import latest_checkpoint, save_checkpoint
from fedunlearn.federated.ledger import ServerLedger
from fedunlearn.federated.recorder import COLUMNS, MetricsMark, RunRecorder

SITES = ("site-0", "site-1", "site-2")
ARRAYS = ArrayRecord({"w": Array(np.arange(6, dtype=np.float32))})


def _record_round(rec: RunRecorder, r: int) -> None:
    """A round's rows, with the awkward values: NaN, infinities, tiny and huge floats, a request id."""
    for i, site in enumerate(SITES):
        rec.metrics(r, site, "train", {"loss": 1 / (r + i + 3), "num_examples": 120 + i})
        rec.metrics(r, site, "evaluate", {"fnr": math.nan if i == 1 else r / 7, "tiny": 1e-300})
    rec.metrics(r, "global", "test", {"risk_2": -r / 3, "big": 1.5e300, "inf": math.inf})
    if r % 2 == 0:
        rec.metrics(r, SITES[0], "unlearn", {"forget_acc": 0.25}, request=f"r{r}")


def _round_with_checkpoint(rec: RunRecorder, run_dir: Path, ledger: ServerLedger, r: int) -> None:
    _record_round(rec, r)
    rec.flush()
    save_checkpoint(run_dir, r, ARRAYS, None, rec.mark, {}, ledger.path, rec.event_lines)


def _uninterrupted(run_dir: Path, rounds: int) -> bytes:
    rec = RunRecorder(run_dir, "salun-cra")
    ledger = ServerLedger(run_dir / "ledger.sqlite")
    rec.metrics(0, "site-0", "setup", {"train_size": 100})
    rec.flush()
    for r in range(1, rounds + 1):
        _round_with_checkpoint(rec, run_dir, ledger, r)
    return (run_dir / "metrics.csv").read_bytes()


def test_appended_file_equals_the_whole_table_written_at_once(tmp_path: Path) -> None:
    rec = RunRecorder(tmp_path, "rl")
    for r in range(1, 6):
        _record_round(rec, r)
        rec.flush()
    rec.flush()  # nothing new: nothing appended
    data = (tmp_path / "metrics.csv").read_bytes()
    assert data == rec.table().to_csv(index=False).encode("utf-8")
    assert rec.mark == MetricsMark(len(rec.table()), len(data))
    assert data.count(b"\n") == len(rec.table()) + 1


def test_checkpoint_holds_a_mark_not_a_copy_of_the_rows(tmp_path: Path) -> None:
    _uninterrupted(tmp_path, 3)
    cp = latest_checkpoint(tmp_path)
    assert not (cp.path / "metrics.csv").exists()
    whole = pd.read_csv(tmp_path / "metrics.csv", keep_default_na=False, na_values=[""])
    assert cp.metrics == MetricsMark(len(whole), (tmp_path / "metrics.csv").stat().st_size)
    assert list(cp.rows.columns) == list(COLUMNS) and len(cp.rows) == len(whole)


def _resume_and_finish(run_dir: Path, rounds: int) -> bytes:
    cp = latest_checkpoint(run_dir)
    rec = RunRecorder(run_dir, "salun-cra")
    rec.restore(cp.rows, cp.event_lines, cp.metrics)
    ledger = ServerLedger(run_dir / "ledger.sqlite")
    for r in range(cp.server_round + 1, rounds + 1):
        _round_with_checkpoint(rec, run_dir, ledger, r)
    return (run_dir / "metrics.csv").read_bytes()


def test_kill_between_append_and_checkpoint_resumes_to_the_same_file(tmp_path: Path) -> None:
    want = _uninterrupted(tmp_path / "whole", 5)
    run_dir = tmp_path / "killed"
    _uninterrupted(run_dir, 3)
    rec = RunRecorder(run_dir, "salun-cra")  # round 4 appended, then killed before its checkpoint
    rec.restore(latest_checkpoint(run_dir).rows, 0, latest_checkpoint(run_dir).metrics)
    _record_round(rec, 4)
    rec.flush()
    assert b"\n4,site-0,train" in (run_dir / "metrics.csv").read_bytes()
    assert latest_checkpoint(run_dir).server_round == 3
    assert _resume_and_finish(run_dir, 5) == want


def test_kill_in_the_middle_of_an_append_resumes_to_the_same_file(tmp_path: Path) -> None:
    want = _uninterrupted(tmp_path / "whole", 5)
    run_dir = tmp_path / "killed"
    _uninterrupted(run_dir, 4)
    with open(run_dir / "metrics.csv", "ab") as fh:  # half a row of round 5
        fh.write(b"5,site-0,train,salun-cra,lo")
    assert _resume_and_finish(run_dir, 5) == want


def test_resume_twice_from_the_same_checkpoint(tmp_path: Path) -> None:
    want = _uninterrupted(tmp_path / "whole", 4)
    run_dir = tmp_path / "twice"
    _uninterrupted(run_dir, 2)
    cp = latest_checkpoint(run_dir)
    rec = RunRecorder(run_dir, "salun-cra")
    rec.restore(cp.rows, cp.event_lines, cp.metrics)
    _record_round(rec, 3)
    rec.flush()  # killed again before round 3's checkpoint
    assert _resume_and_finish(run_dir, 4) == want


def test_a_checkpoint_with_its_own_rows_rewrites_the_whole_file(tmp_path: Path) -> None:
    """Older checkpoints kept a copy of the rows: resuming from one rewrites metrics.csv from it."""
    want = _uninterrupted(tmp_path / "whole", 4)
    run_dir = tmp_path / "old"
    rec = RunRecorder(run_dir, "salun-cra")
    ledger = ServerLedger(run_dir / "ledger.sqlite")
    rec.metrics(0, "site-0", "setup", {"train_size": 100})
    for r in (1, 2):
        _record_round(rec, r)
    rec.flush()
    save_checkpoint(run_dir, 2, ARRAYS, None, rec.table(), {}, ledger.path, 0)
    _record_round(rec, 3)
    rec.flush()
    (run_dir / "metrics.csv").write_bytes(b"garbage")  # whatever the file holds is replaced
    cp = latest_checkpoint(run_dir)
    assert cp.metrics is None and (cp.path / "metrics.csv").is_file()
    assert _resume_and_finish(run_dir, 4) == want
