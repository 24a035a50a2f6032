"""Reliability through the real Ray backend: the deletion ledger, failures, kill -9 and resume, and no leaks.

One scenario (3 sites, 5 rounds, FedAvg, ``aggregate``) has a scheduled crash
of site-1 during its unlearning pass in round 2 and a seeded dropout (site-2
misses rounds 2 and 4). It is run once uninterrupted, and once killed
with SIGKILL twice (before its first checkpoint, then right after round 2's)
and resumed each time; both must end with the same metrics, model, ledger and
events.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from fedunlearn.federated import site as S
from fedunlearn.federated.ledger import SiteLedger
from fedunlearn.federated.scenario import scenario_to_yaml
from fedunlearn.federated.simulation import run_scenario
from tests.federated.conftest import Run, small_scenario
from tests.federated.killing import kill_when as _kill_when
from tests.federated.killing import start_run as _start
from tests.federated.leaks import scan_run_dir

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="kills process groups through /proc"
)

SCENARIO = small_scenario(
    seed=242,  # its seeded dropout (the `dropout` stream) misses neither request's site
    training={"rounds": 5, "local_epochs": 2, "lr": 0.1},
    deletion={
        "integration": "aggregate",
        "requests": [
            {"round": 2, "site": 1, "fraction": 0.25},
            {"round": 4, "site": 0, "fraction": 0.2},
        ],
    },
    failures={"dropout": 0.15, "crashes": [{"site": 1, "round": 2, "phase": "unlearn"}]},
)
DROPPED = {(2, 2), (4, 2)}  # (round, site) the seeded dropout draws (checked below)


@pytest.fixture(scope="module")
def full(run_scenario_dir) -> Run:
    return run_scenario_dir(SCENARIO, "uninterrupted")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("resume")
    ray_tmp = Path(
        tempfile.mkdtemp(prefix="fu", dir="/tmp")
    )  # short: Ray's socket paths must fit in 107 bytes
    scenario_file = root / "scenario.yaml"
    scenario_file.write_text(scenario_to_yaml(SCENARIO))
    run_dir = root / "run"
    # 1. killed before its first checkpoint (as soon as the run has begun its event log)
    proc = _start([str(scenario_file), "--out", str(run_dir)], ray_tmp)
    _kill_when(proc, ray_tmp, lambda: (run_dir / "events.jsonl").exists())
    assert not (run_dir / "checkpoints" / "round-0001").exists()
    # 2. resumed from scratch, killed again right after round 2's checkpoint (request 0 withdrawn, still pending)
    proc = _start(["--resume", str(run_dir)], ray_tmp)
    _kill_when(proc, ray_tmp, lambda: (run_dir / "checkpoints" / "round-0002").exists())
    assert json.loads((run_dir / "manifest.json").read_text())["complete"] is False
    # 3. resumed to the end, in this process
    run_scenario(SCENARIO, run_dir, quiet=True, resume=True)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    return Run(run_dir, SCENARIO)


def _ledger(run: Run) -> list[dict]:
    con = sqlite3.connect(run.path / "ledger.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM requests ORDER BY id")]
    finally:
        con.close()


def _comparable_metrics(run: Run) -> pd.DataFrame:
    m = run.metrics.copy()
    m["request"] = m["request"].fillna("")
    m = m[~m["metric"].str.contains("seconds")]
    return m.sort_values(["round", "site", "phase", "request", "metric"]).reset_index(drop=True)


def _comparable_events(run: Run) -> list[dict]:
    drop = {"time", "seconds"}
    return [
        {k: v for k, v in e.items() if k not in drop}
        for e in run.events
        if e["event"] != "run-resumed"
    ]


# ----------------------------------------------------------------------------- the scenario does what it says
def test_the_seeded_dropout_is_the_one_the_tests_expect() -> None:
    drawn = {
        (r, s)
        for r in range(1, 6)
        for s in range(3)
        if S.scheduled_failure(SCENARIO, s, r, "evaluate") and (r, s) != (2, 1)
    }
    assert drawn == DROPPED


def test_dropout_run_finishes_with_every_failure_logged(full: Run) -> None:
    assert full.manifest["complete"] is True
    failures = {
        (e["round"], e["site"], e["phase"]) for e in full.events if e["event"] == "site-failure"
    }
    expected = {(2, "site-1", "unlearn")}
    expected |= {(r, f"site-{s}", phase) for r, s in DROPPED for phase in ("train", "evaluate")}
    assert failures == expected
    # a site that failed its evaluation has no local-test rows that round; the others do
    local = full.metrics[
        (full.metrics["phase"] == "local-test") & (full.metrics["metric"] == "fnr")
    ]
    answered = set(zip(local["round"], local["site"]))
    for r in range(1, 6):
        for s in range(3):
            assert ((r, f"site-{s}") in answered) == ((r, s) not in DROPPED)


def test_crash_during_unlearning_is_retried_and_the_rows_stay_out(full: Run) -> None:
    kinds = [
        (e["event"], e["round"])
        for e in full.events
        if e["event"].startswith("deletion") and e.get("site") == "site-1"
    ]
    assert kinds == [
        ("deletion-sent", 2),
        ("deletion-failed", 2),
        ("deletion-sent", 3),
        ("deletion-applied", 3),
        ("deletion-verified", 3),
    ]
    r0 = _ledger(full)[0]
    assert (
        r0["status"],
        r0["attempts"],
        r0["failures"],
        r0["applied_round"],
        r0["verified_round"],
    ) == ("verified", 2, 1, 3, 3)
    assert "scheduled crash of site-1 in round 2" in r0["last_failure"]
    # the site committed the rows to its ledger in round 2, before it crashed, and never trained on them again
    site = SiteLedger(full.path / "sites" / "site-1" / "ledger.sqlite")
    forget = site.withdrawn()[0]
    assert r0["sample_count"] == len(forget) > 0
    con = sqlite3.connect(site.path)
    try:
        assert con.execute(
            "SELECT accepted_round, unlearned_round FROM requests WHERE request=0"
        ).fetchone() == (2, 3)
    finally:
        con.close()
    trained = [a for a in full.audit("site-1") if a["phase"] in ("train", "unlearn-retain")]
    assert any(
        a["round"] == 1 and torch.isin(forget, torch.tensor(a["rows"])).all() for a in trained
    )  # it could fail
    assert all(
        not torch.isin(forget, torch.tensor(a["rows"])).any() for a in trained if a["round"] >= 2
    )


def test_ledger_tracks_every_request_to_verified(full: Run) -> None:
    rows = _ledger(full)
    assert [(r["id"], r["site"], r["requested_round"], r["status"]) for r in rows] == [
        (0, "site-1", 2, "verified"),
        (1, "site-0", 4, "verified"),
    ]
    for r in rows:
        assert r["requested_at"] <= r["applied_at"] <= r["verified_at"]
        assert {"ubac", "mia_efficacy"} <= set(json.loads(r["verification_metrics"]))
    assert full.manifest["requests"] == {"pending": 0, "applied": 0, "verified": 2, "not-erased": 0}


# ----------------------------------------------------------------------------- kill -9 and resume
def test_resume_after_kill_9_ends_like_the_uninterrupted_run(full: Run, resumed: Run) -> None:
    assert resumed.manifest["complete"] is True and resumed.manifest["resumed"] is True
    a, b = _comparable_metrics(full), _comparable_metrics(resumed)
    assert a[["round", "site", "phase", "method", "metric", "request"]].equals(
        b[["round", "site", "phase", "method", "metric", "request"]]
    )
    np.testing.assert_allclose(a["value"].to_numpy(), b["value"].to_numpy(), rtol=1e-6, atol=1e-9)
    wa, wb = (
        load_file(str(full.path / "model.safetensors")),
        load_file(str(resumed.path / "model.safetensors")),
    )
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-6, atol=1e-7)
    assert _comparable_events(full) == _comparable_events(resumed)
    drop = ("requested_at", "applied_at", "verified_at")
    assert [{k: v for k, v in r.items() if k not in drop} for r in _ledger(full)] == [
        {k: v for k, v in r.items() if k not in drop} for r in _ledger(resumed)
    ]
    resumes = [e for e in resumed.events if e["event"] == "run-resumed"]
    assert [e["round"] for e in resumes] == [0, 2]


def test_resume_keeps_only_the_two_newest_checkpoints(resumed: Run) -> None:
    kept = sorted(p.name for p in (resumed.path / "checkpoints").iterdir())
    assert kept == ["round-0004", "round-0005"]


# ----------------------------------------------------------------------------- no leaks
@pytest.mark.parametrize("which", ["full", "resumed"])
def test_no_forget_id_or_image_outside_the_sites_folders(which: str, request) -> None:
    run: Run = request.getfixturevalue(which)
    leaks = scan_run_dir(run.path, run.scenario)
    assert leaks == []


def test_leak_scan_finds_planted_leaks(full: Run, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(full.path, copy)
    forget = SiteLedger(copy / "sites" / "site-1" / "ledger.sqlite").withdrawn()[0]
    images = S.scenario_dataset(SCENARIO).train.images
    (copy / "a.json").write_text(json.dumps({"rows": [int(r) for r in forget[-5:]]}))
    (copy / "b.csv").write_text("row\n" + "\n".join(str(int(r)) for r in forget.flip(0)))
    (copy / "checkpoints" / "c.bin").write_bytes(
        b"header" + images[int(forget[0])].numpy().tobytes()
    )
    con = sqlite3.connect(copy / "ledger.sqlite")
    with con:
        con.execute(
            "UPDATE requests SET last_failure=? WHERE id=0",
            (",".join(str(int(r)) for r in forget),),
        )
    con.close()
    found = {Path(leak.split(":")[0]).name for leak in scan_run_dir(copy, SCENARIO)}
    assert found == {"a.json", "b.csv", "c.bin", "ledger.sqlite"}


# ----------------------------------------------------------------------------- too few sites
def test_too_few_sites_stop_the_run_incomplete_and_resumable(tmp_path: Path) -> None:
    from fedunlearn.errors import FedunlearnError

    scenario = small_scenario(
        training={"rounds": 2},
        failures={"min_sites": 3, "crashes": [{"site": 0, "round": 2, "phase": "evaluate"}]},
    )
    out = tmp_path / "run"
    with pytest.raises(FedunlearnError) as err:
        run_scenario(scenario, out, quiet=True)
    assert str(err.value) == (
        f"only 2 of 3 sites answered round 2, fewer than failures.min_sites = 3; {out} is "
        f"incomplete, `fedunlearn run --resume {out}` continues it once the cause is fixed"
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["stopped"].startswith("only 2 of 3 sites")
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [
        (e["event"], e["round"]) for e in events if e["event"] in ("site-failure", "run-stopped")
    ] == [("site-failure", 2), ("run-stopped", 2)]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["round-0001"]
    assert not (out / "model.safetensors").exists()


def test_a_run_killed_while_finishing_resumes_to_the_same_files(full: Run, tmp_path: Path) -> None:
    """Killed after its last checkpoint, before the final files: the resume runs no round, only the ending."""
    copy = tmp_path / "run"
    shutil.copytree(full.path, copy)
    (copy / "manifest.json").write_text(json.dumps({"complete": False}))
    (copy / "model.safetensors").unlink()
    with open(copy / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"event": "half-writ')  # a line cut by the kill
    run_scenario(SCENARIO, copy, quiet=True, resume=True)
    resumed = Run(copy, SCENARIO)
    assert resumed.manifest["complete"] is True
    assert _comparable_metrics(resumed).equals(_comparable_metrics(full))
    wa, wb = (
        load_file(str(full.path / "model.safetensors")),
        load_file(str(copy / "model.safetensors")),
    )
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert _comparable_events(resumed) == _comparable_events(full)
    assert [e["round"] for e in resumed.events if e["event"] == "run-resumed"] == [5]
