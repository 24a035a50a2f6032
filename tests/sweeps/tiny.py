"""Tiny real sweeps shared by several test files (one xdist worker each: tests/conftest.py).

The arms (:func:`arm_points`): the control and SalUn-CRA points of one tiny
scenario, which tests/sweeps/test_prefix.py branches from a shared prefix and
also runs alone, and tests/federated/test_control.py compares.

The resumed sweep (:func:`resumed_sweep`), made once per test session and
shared by tests/sweeps and tests/reports:

Two grid points (SalUn-CRA and Federated Retrain; 2 sites, 2 rounds, synthetic
data; the control arm is opted out with ``control=False``). The SalUn-CRA
run is finished first; then an interruption is simulated
by leaving a half-written Retrain run directory, and the sweep is run again:
it must keep the finished run and redo the other.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedunlearn.sweeps import SweepOutcome, SweepPlan, SweepPoint, plan_sweep, run_sweep

TINY_YAML = """\
name: tiny
data: {dataset: synthetic, synthetic: {n_train: 360, n_val: 90, n_test: 150}}
sites: {count: 2}
training: {rounds: 2, local_epochs: 1, batch_size: 32}
deletion: {method: salun-cra, unlearn: {epochs: 1}, requests: [{round: 2, site: 1, fraction: 0.25}]}
"""
ARMS_YAML = """\
name: tiny
seed: 3
data: {dataset: synthetic, synthetic: {n_train: 360, n_val: 90, n_test: 150}}
sites: {count: 2}
training: {rounds: 4, local_epochs: 1, batch_size: 32, lr: 0.05, lr_schedule: cosine, warmup_rounds: 1}
deletion: {method: salun-cra, unlearn: {epochs: 1, batch_size: 32},
           requests: [{round: 4, site: 1, fraction: 0.25}]}
"""
ARMS = "deletion.method=none,salun-cra"
REQUEST_ROUND = 4  # so the shared prefix is rounds 1-3
PREFIX_ROUND = REQUEST_ROUND - 1


def arm_points(directory: Path) -> dict[str, SweepPoint]:
    """Method -> the sweep point of the arms (planned in ``directory``, nothing run)."""
    (directory / "tiny.yaml").write_text(ARMS_YAML)
    plan = plan_sweep(directory / "tiny.yaml", [ARMS], directory / "sweep", retrain=False)
    return {p.scenario.deletion.method: p for p in plan.points}


SALUN = "deletion.method=salun-cra"
RETRAIN = "deletion.method=retrain"


def write_tiny(directory: Path) -> Path:
    path = directory / "tiny.yaml"
    path.write_text(TINY_YAML)
    return path


def mtimes(run_dir: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(run_dir.iterdir())}


@dataclass(frozen=True)
class ResumedSweep:
    plan: SweepPlan
    outcome: SweepOutcome
    finished_before: dict[str, int]  # file -> mtime of the finished run, before the resumed sweep
    finished_after: dict[str, int]

    @property
    def out(self) -> Path:
        return self.plan.out

    def run_dir(self, slug: str) -> Path:
        return self.out / "runs" / slug


RUN_TIMEOUT_S = (
    600.0  # a run that hangs (e.g. Ray failing to start on an overloaded machine) fails instead
)
_CACHE: dict[str, ResumedSweep | BaseException] = {}


def resumed_sweep(factory: pytest.TempPathFactory) -> ResumedSweep:
    """Build (once per session, failures included) and return the resumed two-point sweep."""
    if "sweep" not in _CACHE:
        try:
            _CACHE["sweep"] = _build(factory)
        except Exception as exc:
            _CACHE["sweep"] = exc
    if isinstance(_CACHE["sweep"], BaseException):
        raise _CACHE["sweep"]
    return _CACHE["sweep"]


def _build(factory: pytest.TempPathFactory) -> ResumedSweep:
    base = factory.mktemp("tiny-sweep")
    scenario = write_tiny(base)
    out = base / "sweep"
    first = run_sweep(
        plan_sweep(scenario, [SALUN], out, control=False, retrain=False), timeout_s=RUN_TIMEOUT_S
    )
    assert first.ran == (SALUN,) and not first.failed, first

    # An interrupted Retrain run: scenario and part of a metrics table, manifest not complete.
    half = out / "runs" / RETRAIN
    half.mkdir(parents=True)
    (half / "scenario.yaml").write_text("name: tiny\n")
    lines = (out / "runs" / SALUN / "metrics.csv").read_text().splitlines()[:20]
    (half / "metrics.csv").write_text("\n".join(lines) + "\n")
    (half / "manifest.json").write_text(json.dumps({"complete": False, "scenario": "tiny"}))
    (half / "leftover.txt").write_text("from the interrupted run")

    finished = out / "runs" / SALUN
    old = (
        finished.stat().st_mtime_ns - 10**9
    )  # back-date, so a rewrite within the same tick would still show
    for p in [*finished.iterdir(), finished]:
        os.utime(p, ns=(old, old))
    before = mtimes(finished)
    plan = plan_sweep(scenario, ["deletion.method=salun-cra,retrain"], out, control=False)
    outcome = run_sweep(plan, timeout_s=RUN_TIMEOUT_S)
    return ResumedSweep(plan, outcome, before, mtimes(finished))
