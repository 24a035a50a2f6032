"""The risk guard (``deletion.guard``) through the real Ray backend.

A scenario that reliably raises FNR: synthetic data, an aggressive RL pass
(site-1 forgets 60 % of its malignant rows in round 4) adopted as the global
model. The guard trips on the validation FNR, one or more recovery rounds on
retain data bring it back within tolerance, the forget rows are never trained
on again, and the ledger reads ``recovered``. The run killed with SIGKILL
during the recovery and resumed ends equal to the uninterrupted one. A guard
that does not trip leaves a run bit-identical to the unguarded run. A retry
that fails too ends in ``escalate``: the global model is reset.
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

from fedunlearn.federated.ledger import SiteLedger
from fedunlearn.federated.policy import fresh_global_arrays
from fedunlearn.federated.scenario import scenario_to_yaml
from fedunlearn.federated.simulation import run_scenario
from fedunlearn.federated.transport import load_arrays
from fedunlearn.models import build_model
from fedunlearn.reports.build import build_sections
from fedunlearn.reports.load import read_run
from tests.federated.conftest import Run, small_scenario
from tests.federated.killing import kill_when, start_run

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="kills process groups through /proc"
)

TOLERANCE = 0.02
TRIPPING = small_scenario(
    data={
        "dataset": "synthetic",
        "synthetic": {"n_train": 360, "n_val": 90, "n_test": 150, "prevalence": 0.4},
    },
    training={"rounds": 4, "local_epochs": 3, "lr": 0.2},
    deletion={
        "method": "rl",
        "unlearn": {"epochs": 3, "batch_size": 32, "lr": 0.1},
        "requests": [{"round": 4, "site": 1, "fraction": 0.6, "mode": "malignant"}],
        "guard": {
            "enabled": True,
            "tolerance": TOLERANCE,
            "actions": ["recover", "escalate"],
            "recover": {"max_rounds": 3, "malignant_weight": 2.0},
        },
    },
)
PLAIN = (
    small_scenario()
)  # the run of tests/federated/test_simulation.py (same worker: tests/conftest.py)
QUIET_GUARD = small_scenario(deletion={"guard": {"enabled": True, "tolerance": 1000}})


@pytest.fixture(scope="module")
def tripped(run_scenario_dir) -> Run:
    return run_scenario_dir(TRIPPING, "guard-tripped")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("guard-resume")
    ray_tmp = Path(tempfile.mkdtemp(prefix="fu", dir="/tmp"))
    scenario_file = root / "scenario.yaml"
    scenario_file.write_text(scenario_to_yaml(TRIPPING))
    run_dir = root / "run"
    proc = start_run([str(scenario_file), "--out", str(run_dir)], ray_tmp)
    events = run_dir / "events.jsonl"
    kill_when(proc, ray_tmp, lambda: events.exists() and "guard-tripped" in events.read_text())
    # killed inside the erasure round, while the guard recovers: that round never reached its checkpoint
    assert not (run_dir / "checkpoints" / "round-0004").exists()
    run_scenario(TRIPPING, run_dir, quiet=True, resume=True)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    return Run(run_dir, TRIPPING)


def _ledger(run: Run) -> list[dict]:
    con = sqlite3.connect(run.path / "ledger.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM requests ORDER BY id")]
    finally:
        con.close()


def _value(run: Run, phase: str, metric: str, round_: int, site: str = "global") -> float:
    m = run.metrics
    sel = m[
        (m["round"] == round_)
        & (m["site"] == site)
        & (m["phase"] == phase)
        & (m["metric"] == metric)
    ]
    assert len(sel) == 1, (phase, metric, round_)
    return float(sel["value"].iloc[0])


def _events(run: Run, kind: str) -> list[dict]:
    return [e for e in run.events if e["event"] == kind]


# ----------------------------------------------------------------------------- the guard trips and recovers
def test_guard_trips_and_recovery_brings_validation_fnr_back(tripped: Run) -> None:
    (trip,) = _events(tripped, "guard-tripped")
    assert trip["round"] == 4 and trip["metric"] == "fnr"
    assert (
        trip["after_pass"] > trip["reference"] + TOLERANCE
    )  # the RL pass made the model miss more cancers
    (decision,) = _events(tripped, "guard-decision")
    assert decision["status"] == "recovered" and 1 <= decision["rounds"] <= 3
    # the adopted model is the round's global model: its validation FNR is back within tolerance
    final_val_fnr = _value(tripped, "val", "fnr", 4)
    assert final_val_fnr == pytest.approx(decision["final"])
    assert final_val_fnr <= decision["reference"] + TOLERANCE
    assert decision["reference"] == pytest.approx(_value(tripped, "val", "fnr", 3))
    assert [e["step"] for e in _events(tripped, "guard-recovery-round")] == list(
        range(1, decision["rounds"] + 1)
    )


def test_ledger_reads_recovered_with_the_rounds_and_images_spent(tripped: Run) -> None:
    (row,) = _ledger(tripped)
    assert row["guard_status"] == "recovered" and row["guard_metric"] == "fnr"
    assert row["guard_after_pass"] > row["guard_reference"] + TOLERANCE
    assert row["guard_after_recovery"] <= row["guard_reference"] + TOLERANCE
    assert row["guard_rounds"] >= 1
    recover_images = tripped.metrics[
        (tripped.metrics["phase"] == "recover") & (tripped.metrics["metric"] == "images")
    ]["value"].sum()
    assert row["guard_images"] == recover_images > 0
    assert row["status"] == "verified"  # the erasure itself stands
    assert tripped.manifest["guard"]["recovered"] == 1


def test_forget_rows_are_never_trained_on_again(tripped: Run) -> None:
    forget = SiteLedger(tripped.path / "sites" / "site-1" / "ledger.sqlite").withdrawn()[0]
    assert len(forget) > 0
    recovery_lines = 0
    for site in ("site-0", "site-1", "site-2"):
        for line in tripped.audit(site):
            if line["phase"] == "train" or line["phase"].startswith("recover"):
                if line["round"] >= 4:
                    assert not torch.isin(forget, torch.tensor(line["rows"])).any(), line["phase"]
                recovery_lines += line["phase"].startswith("recover")
    assert recovery_lines >= 3  # every site trained in every recovery round
    # the site checked its forget set again on the recovered model
    assert not tripped.metrics[tripped.metrics["phase"] == "guard-verify"].empty


def test_report_and_plot_mark_the_guarded_round(tripped: Run) -> None:
    _, _, sections = build_sections([read_run(tripped.path)])
    (guard,) = [s for s in sections if s.anchor == "guard"]
    table = next(p for p in guard.blocks if isinstance(p, pd.DataFrame))
    assert list(table["round"]) == [4] and list(table["status"]) == ["recovered"]
    assert (tripped.path / "risk.png").stat().st_size > 0


# ----------------------------------------------------------------------------- kill -9 during recovery
def _comparable_metrics(run: Run) -> pd.DataFrame:
    m = run.metrics.copy()
    m["request"] = m["request"].fillna("")
    m = m[~m["metric"].str.contains("seconds")]
    return m.sort_values(["round", "site", "phase", "request", "metric"]).reset_index(drop=True)


def _comparable_events(run: Run) -> list[dict]:
    return [
        {k: v for k, v in e.items() if k not in ("time", "seconds")}
        for e in run.events
        if e["event"] != "run-resumed"
    ]


def test_kill_9_during_recovery_then_resume_ends_like_the_uninterrupted_run(
    tripped: Run, resumed: Run
) -> None:
    assert resumed.manifest["complete"] is True and resumed.manifest["resumed"] is True
    a, b = _comparable_metrics(tripped), _comparable_metrics(resumed)
    keys = ["round", "site", "phase", "method", "metric", "request"]
    assert a[keys].equals(b[keys])
    np.testing.assert_allclose(a["value"].to_numpy(), b["value"].to_numpy(), rtol=1e-6, atol=1e-9)
    wa = load_file(str(tripped.path / "model.safetensors"))
    wb = load_file(str(resumed.path / "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-6, atol=1e-7)
    assert _comparable_events(tripped) == _comparable_events(resumed)
    drop = ("requested_at", "applied_at", "verified_at")
    assert [{k: v for k, v in r.items() if k not in drop} for r in _ledger(tripped)] == [
        {k: v for k, v in r.items() if k not in drop} for r in _ledger(resumed)
    ]


# ----------------------------------------------------------------------------- a guard that does not trip
def test_a_guard_that_does_not_trip_leaves_the_run_bit_identical(run_scenario_dir) -> None:
    plain, quiet = (
        run_scenario_dir(PLAIN, "unguarded"),
        run_scenario_dir(QUIET_GUARD, "quiet-guard"),
    )
    (decision,) = _events(quiet, "guard-decision")
    assert decision["status"] == "passed"
    guard_phases = ("guard", "guard-retry", "guard-verify", "recover")
    a = _comparable_metrics(plain)
    b = _comparable_metrics(quiet)
    b = b[~b["phase"].isin(guard_phases)].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    wa, wb = (
        load_file(str(plain.path / "model.safetensors")),
        load_file(str(quiet.path / "model.safetensors")),
    )
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    unguarded = [e for e in _comparable_events(quiet) if not e["event"].startswith("guard-")]
    assert _comparable_events(plain) == unguarded
    assert json.loads((quiet.path / "manifest.json").read_text())["guard"]["passed"] == 1


# ----------------------------------------------------------------------------- retry, then escalate
def test_a_retry_that_fails_too_escalates_to_a_reset(run_scenario_dir) -> None:
    deletion = TRIPPING.deletion.model_dump(mode="json")
    deletion["guard"] |= {
        "actions": ["retry", "escalate"],
        "retry": [{"method": "rl", "unlearn": {"epochs": 3, "batch_size": 32, "lr": 0.1}}],
    }
    scenario = TRIPPING.model_copy(
        update={"deletion": type(TRIPPING.deletion).model_validate(deletion)}
    )
    run = run_scenario_dir(scenario, "guard-escalated")
    (decision,) = _events(run, "guard-decision")
    assert decision["status"] == "escalated" and decision["rounds"] == 0
    # the retry was tried first, from the pre-erasure model, and did not restore the FNR: with these
    # seeds the retried pass diverges (non-finite scores), a site failure of the retry that rules it out
    failures = [e for e in _events(run, "site-failure") if e["phase"] == "guard-retry"]
    retries = _events(run, "guard-retry")
    assert failures or (retries and retries[0]["value"] > decision["reference"] + TOLERANCE)
    assert any(note.startswith("retry 0") for note in decision["notes"]) or retries
    fresh = load_arrays(build_model(scenario.model), fresh_global_arrays(scenario, 4))
    final = load_file(str(run.path / "model.safetensors"))
    assert all(torch.equal(final[k], v) for k, v in fresh.state_dict().items())
    (row,) = _ledger(run)
    assert row["guard_status"] == "escalated" and row["status"] == "verified"
