"""The deletion ledgers (SQLite): the server's counts-only record and each site's withdrawn rows.

Plain unit tests: no Ray, no Flower, a few milliseconds each.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pytest
import torch

import fedunlearn.federated.ledger as ledger_module
from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.ledger import STATUSES, ServerLedger, SiteLedger

SERVER_COLUMNS = {
    "id",
    "site",
    "requested_round",
    "fraction",
    "mode",
    "status",
    "sample_count",
    "attempts",
    "failures",
    "last_failure",
    "method",
    "applied_round",
    "verified_round",
    "requested_at",
    "applied_at",
    "verified_at",
    "applied_metrics",
    "verification_metrics",
    # the risk guard's decision: a status, metric values, rounds and images (aggregates only)
    "guard_status",
    "guard_metric",
    "guard_reference",
    "guard_after_pass",
    "guard_after_recovery",
    "guard_final",
    "guard_rounds",
    "guard_images",
}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every ledger timestamp is distinct (the real clock has one-second resolution); returns those handed out."""
    ticks = (f"2030-01-01T00:00:{i:02d}+00:00" for i in itertools.count())
    handed: list[str] = []

    def fake_now() -> str:
        handed.append(next(ticks))
        return handed[-1]

    monkeypatch.setattr(ledger_module, "now_iso", fake_now)
    return handed


@pytest.fixture
def server(tmp_path: Path, clock: list[str]) -> ServerLedger:
    return ServerLedger(tmp_path / "ledger.sqlite")


def _row(ledger: ServerLedger, rid: int) -> dict:
    return next(r for r in ledger.rows() if r["id"] == rid)


# ------------------------------------------------------------------------------------------ server ledger
def test_request_is_idempotent(server: ServerLedger) -> None:
    server.request(0, "site-1", 2, 0.25, "random")
    first = server.rows()
    server.request(0, "site-9", 5, 0.5, "class")  # the same id again, even with other values
    assert server.rows() == first
    row = first[0]
    assert (row["id"], row["site"], row["requested_round"], row["fraction"], row["mode"]) == (
        0,
        "site-1",
        2,
        0.25,
        "random",
    )
    assert row["status"] == "pending" and row["attempts"] == 0 and row["failures"] == 0
    assert row["requested_at"] == "2030-01-01T00:00:00+00:00"  # not the second call's timestamp
    assert (
        row["sample_count"] is None
        and row["applied_round"] is None
        and row["verified_round"] is None
    )


def test_status_goes_pending_applied_verified_in_order(server: ServerLedger) -> None:
    assert STATUSES == ("pending", "applied", "verified", "not-erased")
    assert server.status(7) is None
    server.request(7, "site-0", 1, 0.2, "random")
    assert server.status(7) == "pending"

    assert server.verified(7, 3, {"ubac": 0.5}) is False  # not applied yet
    assert server.status(7) == "pending"
    row = _row(server, 7)
    assert (
        row["verified_round"] is None
        and row["verified_at"] is None
        and row["verification_metrics"] is None
    )

    server.applied(7, 3, "salun-cra", {"ubac": 0.4})
    assert server.status(7) == "applied"
    applied = _row(server, 7)
    assert (
        applied["applied_round"] == 3 and applied["method"] == "salun-cra" and applied["applied_at"]
    )

    server.applied(7, 5, "rl", {"ubac": 0.9}, sample_count=99)  # applying again changes nothing
    assert _row(server, 7) == applied

    assert (
        server.verified(7, 2, {"ubac": 0.1}) is False
    )  # a report from before the round it was applied
    assert _row(server, 7) == applied

    assert server.verified(7, 3, {"ubac": 0.45, "mia_efficacy": 0.6}) is True
    verified = _row(server, 7)
    assert (
        verified["status"] == "verified"
        and verified["verified_round"] == 3
        and verified["verified_at"]
    )
    assert server.verified(7, 4, {"ubac": 0.0}) is False  # once verified, stays as first verified
    assert _row(server, 7) == verified


def test_verify_or_apply_an_unknown_request_changes_nothing(server: ServerLedger) -> None:
    server.applied(42, 1, "rl", {})
    assert server.verified(42, 1, {}) is False
    server.counted(42, 3)
    server.attempted(42)
    server.failed(42, "boom")
    assert server.rows() == []


def test_attempt_and_failure_counters(server: ServerLedger) -> None:
    server.request(1, "site-2", 1, 0.1, "random")
    server.attempted(1)
    server.failed(1, "site-2 crashed")
    server.attempted(1)
    server.failed(1, "x" * 2000)
    server.attempted(1)
    row = _row(server, 1)
    assert row["attempts"] == 3 and row["failures"] == 2
    assert row["last_failure"] == "x" * 500  # the newest reason, capped
    assert row["status"] == "pending"  # a failure leaves the request to be retried
    server.applied(1, 4, "salun-cra", {})
    row = _row(server, 1)
    assert row["status"] == "applied" and row["attempts"] == 3 and row["failures"] == 2


def test_counted_sets_sample_count_and_applied_without_count_keeps_it(server: ServerLedger) -> None:
    server.request(0, "a", 1, 0.2, "random")
    server.request(1, "b", 1, 0.2, "random")
    server.counted(0, 17)
    assert _row(server, 0)["sample_count"] == 17
    server.applied(0, 2, "rl", {})  # sample_count=None: keep the counted value
    assert _row(server, 0)["sample_count"] == 17
    server.applied(1, 2, "rl", {}, sample_count=11)
    assert _row(server, 1)["sample_count"] == 11
    server.counted(1, 0)
    assert _row(server, 1)["sample_count"] == 0


def test_metrics_are_stored_as_json(server: ServerLedger) -> None:
    import numpy as np

    server.request(3, "a", 1, 0.2, "random")
    server.applied(3, 2, "salun-cra", {"ubac": np.float32(0.25), "mia_efficacy": 1})
    server.verified(3, 2, {"ubac": 0.125, "forget_count": np.int64(12)})
    row = _row(server, 3)
    assert json.loads(row["applied_metrics"]) == {"mia_efficacy": 1.0, "ubac": 0.25}
    assert json.loads(row["verification_metrics"]) == {"forget_count": 12.0, "ubac": 0.125}
    assert isinstance(json.loads(row["verification_metrics"])["forget_count"], float)


def test_server_ledger_has_exactly_the_counts_only_schema(server: ServerLedger) -> None:
    """No column could hold per-sample data (row ids): the schema is exactly this set."""
    server.request(0, "a", 1, 0.2, "random")
    con = sqlite3.connect(server.path)
    try:
        tables = {
            name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        columns = {r[1] for r in con.execute("PRAGMA table_info(requests)")}
    finally:
        con.close()
    assert tables == {"requests"}
    assert columns == SERVER_COLUMNS
    assert set(server.rows()[0]) == SERVER_COLUMNS


def test_snapshot_and_restore_put_back_an_older_state(server: ServerLedger, tmp_path: Path) -> None:
    server.request(0, "a", 1, 0.2, "random")
    server.request(1, "b", 1, 0.3, "class")
    server.counted(0, 5)
    server.attempted(0)
    server.applied(0, 1, "salun-cra", {"ubac": 0.5})
    before = server.rows()
    snap = tmp_path / "checkpoints" / "round-0001" / "ledger.sqlite"
    server.snapshot(snap)
    assert snap.is_file()

    # later rounds: more changes, a new request
    server.verified(0, 2, {"ubac": 0.4})
    server.failed(1, "down")
    server.request(2, "c", 2, 0.1, "random")
    assert server.rows() != before

    server.restore(snap)
    assert server.rows() == before
    assert ServerLedger(server.path).rows() == before  # also as read by a fresh object
    server.request(3, "d", 3, 0.1, "random")  # still writable after the restore
    assert [r["id"] for r in server.rows()] == [0, 1, 3]
    assert [r["id"] for r in ServerLedger(snap).rows()] == [
        0,
        1,
    ]  # the snapshot itself is untouched


def test_server_ledger_survives_reopening(tmp_path: Path, clock: list[str]) -> None:
    path = tmp_path / "run" / "ledger.sqlite"
    first = ServerLedger(path)
    first.request(0, "a", 1, 0.2, "random")
    first.applied(0, 1, "rl", {"ubac": 0.5}, sample_count=4)
    rows = first.rows()
    del first
    again = ServerLedger(path)  # CREATE TABLE IF NOT EXISTS: keeps what is there
    assert again.rows() == rows
    assert again.status(0) == "applied"


def test_corrupt_server_ledger_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"this is not an SQLite database at all\x00\xff" * 64)
    with pytest.raises(FedunlearnError) as info:
        ServerLedger(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message


# -------------------------------------------------------------------------------------------- site ledger
def test_withdraw_returns_the_rows(tmp_path: Path) -> None:
    site = SiteLedger(tmp_path / "sites" / "site-1" / "ledger.sqlite")
    rows = torch.tensor([9, 2, 5])
    assert torch.equal(site.withdraw(0, rows, 2), rows)
    withdrawn = site.withdrawn()
    assert list(withdrawn) == [0]
    assert withdrawn[0].tolist() == [2, 5, 9] and withdrawn[0].dtype == torch.long  # sorted


def test_second_withdraw_keeps_the_first_rows(tmp_path: Path) -> None:
    site = SiteLedger(tmp_path / "ledger.sqlite")
    site.withdraw(4, torch.tensor([1, 3]), 2)
    again = site.withdraw(4, torch.tensor([7, 8, 9]), 3)  # a retried or replayed request
    assert again.tolist() == [1, 3]
    assert site.withdrawn()[4].tolist() == [1, 3]
    con = sqlite3.connect(site.path)
    try:
        assert con.execute("SELECT accepted_round FROM requests WHERE request=4").fetchone() == (2,)
    finally:
        con.close()


def test_empty_withdrawal_is_recorded(tmp_path: Path) -> None:
    site = SiteLedger(tmp_path / "ledger.sqlite")
    out = site.withdraw(2, torch.tensor([], dtype=torch.long), 1)
    assert out.numel() == 0
    withdrawn = site.withdrawn()
    assert 2 in withdrawn and withdrawn[2].numel() == 0 and withdrawn[2].dtype == torch.long
    # recorded means recorded: a later withdraw of the same request keeps the (empty) first rows
    assert site.withdraw(2, torch.tensor([5]), 2).numel() == 0


def test_unlearned_sets_the_round(tmp_path: Path, clock: list[str]) -> None:
    site = SiteLedger(tmp_path / "ledger.sqlite")
    site.withdraw(0, torch.tensor([1]), 2)
    site.unlearned(0, 3)
    con = sqlite3.connect(site.path)
    try:
        row = con.execute(
            "SELECT accepted_round, unlearned_round, unlearned_at FROM requests WHERE request=0"
        ).fetchone()
    finally:
        con.close()
    assert row[0] == 2 and row[1] == 3 and row[2] == clock[-1]


def test_withdrawn_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sites" / "site-0" / "ledger.sqlite"
    site = SiteLedger(path)
    site.withdraw(0, torch.tensor([4, 1]), 1)
    site.withdraw(3, torch.tensor([], dtype=torch.long), 2)
    del site
    reopened = SiteLedger(path).withdrawn()
    assert {k: v.tolist() for k, v in reopened.items()} == {0: [1, 4], 3: []}


def test_two_requests_are_independent(tmp_path: Path) -> None:
    site = SiteLedger(tmp_path / "ledger.sqlite")
    site.withdraw(0, torch.tensor([1, 2]), 1)
    site.withdraw(
        1, torch.tensor([2, 3]), 2
    )  # overlapping rows are fine: each request keeps its own
    site.unlearned(0, 2)
    assert {k: v.tolist() for k, v in site.withdrawn().items()} == {0: [1, 2], 1: [2, 3]}
    con = sqlite3.connect(site.path)
    try:
        rounds = dict(con.execute("SELECT request, unlearned_round FROM requests"))
    finally:
        con.close()
    assert rounds == {0: 2, 1: None}


def test_corrupt_site_ledger_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"\xde\xad\xbe\xef" * 512)
    with pytest.raises(FedunlearnError) as info:
        SiteLedger(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_guard_decision_is_recorded_and_an_old_ledger_gains_the_columns(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    con = sqlite3.connect(old)
    with con:
        con.execute(
            "CREATE TABLE requests (id INTEGER PRIMARY KEY, site TEXT NOT NULL, requested_round INTEGER NOT NULL,"
            " fraction REAL NOT NULL, mode TEXT NOT NULL, status TEXT NOT NULL, sample_count INTEGER,"
            " attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0, last_failure TEXT,"
            " method TEXT, applied_round INTEGER, verified_round INTEGER, requested_at TEXT NOT NULL,"
            " applied_at TEXT, verified_at TEXT, applied_metrics TEXT, verification_metrics TEXT)"
        )
    con.close()
    ledger = ServerLedger(old)  # written before the guard existed: the columns are added, empty
    ledger.request(0, "a", 1, 0.2, "random")
    assert ledger.rows()[0]["guard_status"] is None
    ledger.guarded(
        0,
        {
            "status": "recovered",
            "metric": "fnr",
            "reference": 0.1,
            "after_pass": 0.3,
            "after_recovery": 0.11,
            "final": 0.11,
            "rounds": 2,
            "images": 900,
        },
    )
    row = ledger.rows()[0]
    assert (row["guard_status"], row["guard_rounds"], row["guard_images"]) == ("recovered", 2, 900)
    assert row["guard_after_pass"] == 0.3 and set(row) == SERVER_COLUMNS
