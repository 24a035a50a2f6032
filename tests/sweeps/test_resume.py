"""A real two-point sweep resumed after a simulated interruption, and the job runner on stand-in commands."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pandas as pd
import pytest

from fedunlearn.progress import Progress
from fedunlearn.reports.contrasts import SUMMARY_COLUMNS
from fedunlearn.sweeps import is_complete, pending_points, plan_sweep, run_points, run_sweep
from tests.sweeps.tiny import RETRAIN, SALUN, ResumedSweep, write_tiny


def test_the_finished_run_is_kept_untouched(tiny_sweep: ResumedSweep) -> None:
    assert tiny_sweep.outcome.skipped == (SALUN,)
    assert tiny_sweep.finished_after == tiny_sweep.finished_before


def test_the_half_written_run_is_redone(tiny_sweep: ResumedSweep) -> None:
    redone = tiny_sweep.run_dir(RETRAIN)
    assert tiny_sweep.outcome.ran == (RETRAIN,) and not tiny_sweep.outcome.failed
    assert is_complete(redone) and not (redone / "leftover.txt").exists()
    assert set(pd.read_csv(redone / "metrics.csv")["method"]) == {"retrain"}
    assert (redone / "scenario.yaml").read_text() == (
        tiny_sweep.out / "scenarios" / f"{RETRAIN}.yaml"
    ).read_text()


def _final_risk(run_dir: Path) -> float:
    m = pd.read_csv(run_dir / "metrics.csv")
    g = m[(m["site"] == "global") & (m["phase"] == "test") & (m["metric"] == "risk_2")]
    return float(g.loc[g["round"].idxmax(), "value"])


def test_summary_and_plan_files(tiny_sweep: ResumedSweep) -> None:
    paired = pd.read_csv(tiny_sweep.out / "summary.csv")
    assert list(paired.columns) == list(SUMMARY_COLUMNS)  # no other grid key than the method
    risk = paired[(paired["metric"] == "risk_2") & (paired["at"] == "final")].set_index("method")
    assert list(risk.index) == ["salun-cra", "retrain"] and set(risk["round"]) == {2}
    assert risk.loc["salun-cra", "delta_vs_retrain"] == pytest.approx(
        _final_risk(tiny_sweep.run_dir(SALUN)) - _final_risk(tiny_sweep.run_dir(RETRAIN))
    )
    assert risk.loc["salun-cra", "verdict_vs_retrain"] == "one seed: no conclusion"
    assert (
        risk.loc["salun-cra", "verdict_vs_control"] == "no control arm"
    )  # opted out in this sweep
    assert set(paired["at"]) == {"final", "erasure"}  # the request is in round 2, the last one
    summary = pd.read_csv(tiny_sweep.out / "summary-variants.csv").set_index("deletion.method")
    assert list(summary.index) == ["salun-cra", "retrain"]
    assert summary.loc["salun-cra", "risk_2_mean"] == pytest.approx(
        _final_risk(tiny_sweep.run_dir(SALUN))
    )
    gap = _final_risk(tiny_sweep.run_dir(SALUN)) - _final_risk(tiny_sweep.run_dir(RETRAIN))
    assert summary.loc["salun-cra", "risk_2_gap"] == pytest.approx(gap)
    assert summary.loc["retrain", "mia_efficacy_gap"] == 0.0
    assert summary.loc["salun-cra", "erasure_images_mean"] > 0
    md = (tiny_sweep.out / "summary.md").read_text()
    assert "| deletion.method | runs | Risk II |" in md and "ΔRisk II" in md
    assert "| at | metric | method | seeds | mean ± std | Δ vs control [95% CI] |" in md
    plan = json.loads((tiny_sweep.out / "sweep.json").read_text())
    assert [p["slug"] for p in plan["points"]] == [SALUN, RETRAIN]
    assert plan["grid"] == [{"key": "deletion.method", "values": ["salun-cra", "retrain"]}]


# A stand-in for `fedunlearn run`: copies the scenario, waits `delay` seconds, then marks the run complete.
# A negative delay fails. `meet=DIR,N`: first wait (up to 60 s) until N stand-ins have started, which only
# happens when they run at the same time. `kill-parent`: once complete, SIGTERM the sweep (as `kill` would).
_STAND_IN = """
import json, os, pathlib, shutil, signal, sys, time
scenario, out, delay, opts = sys.argv[1], pathlib.Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
out.mkdir(parents=True)
shutil.copy(scenario, out / "scenario.yaml")
(out / "manifest.json").write_text(json.dumps({"complete": False}))
for opt in opts:
    if opt.startswith("meet="):
        meet, n = opt[5:].rsplit(",", 1)
        (pathlib.Path(meet) / out.name).touch()
        deadline = time.monotonic() + 60
        while len(list(pathlib.Path(meet).iterdir())) < int(n):
            if time.monotonic() > deadline:
                sys.exit("fedunlearn: error: the other jobs never started")
            time.sleep(0.05)
time.sleep(max(delay, 0))
if delay < 0:
    sys.exit("fedunlearn: error: stand-in failure")
(out / "manifest.json").write_text(json.dumps({"complete": True}))
if "kill-parent" in opts:
    os.kill(os.getppid(), signal.SIGTERM)
"""


def _stand_in(delays: dict[int, float], **opts: str):
    def command(plan, point):
        seed = point.scenario.seed
        extra = [f"meet={opts['meet']},{len(delays)}"] if "meet" in opts else []
        extra += ["kill-parent"] if opts.get("kill_parent") == str(seed) else []
        return [
            sys.executable,
            "-c",
            _STAND_IN,
            str(plan.scenario_file(point)),
            str(plan.run_dir(point)),
            str(delays[seed]),
            *extra,
        ]

    return command


def _write_scenarios(plan) -> None:
    from fedunlearn.federated.scenario import scenario_to_yaml

    for p in plan.points:
        plan.scenario_file(p).parent.mkdir(parents=True, exist_ok=True)
        plan.scenario_file(p).write_text(scenario_to_yaml(p.scenario))


def test_jobs_run_at_the_same_time_and_failures_are_named(tmp_path: Path) -> None:
    plan = plan_sweep(
        write_tiny(tmp_path), ["seed=0,1,2"], tmp_path / "out", control=False, retrain=False
    )
    _write_scenarios(plan)
    meet = tmp_path / "meet"
    meet.mkdir()
    failed = run_points(
        plan, plan.points, 3, Progress(quiet=True), _stand_in({0: 0, 1: 0, 2: -1}, meet=str(meet))
    )
    assert failed == {"seed=2": "fedunlearn: error: stand-in failure"}
    assert is_complete(plan.run_dir(plan.points[0])) and is_complete(plan.run_dir(plan.points[1]))


def test_a_kill_keeps_finished_runs_and_the_rest_resumes(tmp_path: Path) -> None:
    plan = plan_sweep(
        write_tiny(tmp_path), ["seed=0,1"], tmp_path / "out", control=False, retrain=False
    )
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(
        KeyboardInterrupt
    ):  # seed 0 finishes, then kills the sweep while seed 1 still runs
        run_sweep(plan, jobs=2, command=_stand_in({0: 0, 1: 120.0}, kill_parent="0"))
    assert signal.getsignal(signal.SIGTERM) == handler  # the sweep's handler is gone again
    assert is_complete(plan.run_dir(plan.points[0])) and not is_complete(
        plan.run_dir(plan.points[1])
    )
    todo = pending_points(plan, Progress(quiet=True))
    assert [p.slug for p in todo] == ["seed=1"] and not plan.run_dir(plan.points[1]).exists()


def test_a_run_past_the_timeout_is_stopped_and_counts_as_failed(tmp_path: Path) -> None:
    plan = plan_sweep(
        write_tiny(tmp_path), ["seed=0"], tmp_path / "out", control=False, retrain=False
    )
    _write_scenarios(plan)
    failed = run_points(
        plan, plan.points, 1, Progress(quiet=True), _stand_in({0: 120.0}), timeout_s=1.0
    )
    assert failed == {"seed=0": "stopped after the run timeout of 1s"}
    assert not is_complete(plan.run_dir(plan.points[0]))


def _half_finished_with_checkpoint(plan, point, scenario) -> Path:
    """A run killed after its first round: scenario, incomplete manifest, one checkpoint."""
    from fedunlearn.federated.checkpoint import save_checkpoint
    from fedunlearn.federated.ledger import ServerLedger
    from fedunlearn.federated.recorder import COLUMNS
    from fedunlearn.federated.scenario import scenario_to_yaml
    from fedunlearn.federated.transport import to_arrays
    from fedunlearn.models import build_model

    run_dir = plan.run_dir(point)
    run_dir.mkdir(parents=True)
    (run_dir / "scenario.yaml").write_text(scenario_to_yaml(scenario))
    (run_dir / "manifest.json").write_text(json.dumps({"complete": False}))
    ledger = ServerLedger(run_dir / "ledger.sqlite")
    save_checkpoint(
        run_dir,
        1,
        to_arrays(build_model(scenario.model)),
        object(),
        pd.DataFrame(columns=list(COLUMNS)),
        {"accepted": [], "pending": {}, "withdrawing": {}},
        ledger.path,
        1,
    )
    return run_dir


def test_a_half_finished_run_with_a_checkpoint_is_resumed_not_redone(tmp_path: Path) -> None:
    from fedunlearn.sweeps import run_command

    plan = plan_sweep(
        write_tiny(tmp_path), ["seed=0,1"], tmp_path / "out", control=False, retrain=False
    )
    kept = _half_finished_with_checkpoint(plan, plan.points[0], plan.points[0].scenario)
    other = _half_finished_with_checkpoint(
        plan, plan.points[1], plan.points[0].scenario
    )  # seed 0's run in seed 1's place
    lines: list[str] = []
    todo = pending_points(plan, lines.append)  # type: ignore[arg-type]
    assert [p.slug for p in todo] == ["seed=0", "seed=1"]
    assert kept.is_dir() and not other.exists()
    assert lines == [
        f"{plan.points[0].label}: resuming the unfinished run in {kept} after round 1",
        f"{plan.points[1].label}: removing the unfinished run in {other} (it is redone)",
    ]
    assert run_command(plan, plan.points[0])[3:6] == ["run", "--resume", str(kept)]
    assert run_command(plan, plan.points[1])[3:5] == [
        "run",
        str(plan.scenario_file(plan.points[1])),
    ]
