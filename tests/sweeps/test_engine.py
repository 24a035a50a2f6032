"""Shared engines: how a sweep's points are batched, and the batch's own checks, without Ray.

That the runs of one engine equal the same runs alone is checked with real runs
in tests/sweeps/test_prefix.py: its resumed sweep runs the prefix and both of
its branches in one engine (``engine="shared"`` is the default), and each
branch is compared bit for bit (timings aside) with the point run in its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedunlearn.cli import build_parser
from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.simulation import RunItem, engine_key, run_scenarios
from fedunlearn.io import atomic_write_json
from fedunlearn.sweep_engine import (
    BatchRun,
    _item,
    _spec_file,
    batch_failures,
    plan_batches,
    result_file,
)
from fedunlearn.sweeps import SweepError, SweepPlan, plan_sweep, run_sweep, shared_prefixes
from tests.sweeps.tiny import ARMS_YAML


def _plan(tmp_path: Path, grids: list[str], overrides: tuple[str, ...] = ()) -> SweepPlan:
    (tmp_path / "tiny.yaml").write_text(ARMS_YAML)
    return plan_sweep(tmp_path / "tiny.yaml", grids, tmp_path / "out", list(overrides))


def _keys(batch: list[BatchRun]) -> list[str]:
    return [r.key for r in batch]


def test_a_prefix_goes_first_in_the_batch_of_its_points_and_every_point_runs_once(
    tmp_path: Path,
) -> None:
    plan = _plan(tmp_path, ["deletion.method=salun-cra,rl", "seed=0,1"])  # + control and Retrain
    points = list(plan.points)
    prefixes = shared_prefixes(plan, points)
    for jobs in (1, 2, 3, 8):
        batches = plan_batches(plan, points, jobs, prefixes)
        assert 1 <= len(batches) <= jobs
        keys = [k for b in batches for k in _keys(b)]
        assert sorted(k for k in keys if not k.startswith("prefix:")) == sorted(
            p.slug for p in points
        )
        assert len([k for k in keys if k.startswith("prefix:")]) == 2  # one per seed, run once
        for batch in batches:
            for i, run in enumerate(batch):
                if run.branch is not None:  # its prefix runs earlier in the same batch
                    assert f"prefix:{run.branch['name']}" in _keys(batch)[:i]
    (one,) = plan_batches(plan, points, 1, prefixes)
    retrain = [r for r in one if "retrain" in r.key]
    assert len(retrain) == 2 and all(r.branch is None for r in retrain)
    prefix_runs = [r for r in one if r.key.startswith("prefix:")]
    assert {r.until_round for r in prefix_runs} == {3}
    # two slots: the two seeds' prefixes (with their 3 points each) are not put in the same one
    two = plan_batches(plan, points, 2, prefixes)
    assert [sum(k.startswith("prefix:") for k in _keys(b)) for b in two] == [1, 1]


def test_runs_that_cannot_share_an_engine_get_their_own_batch(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["sites.count=2,3"], ("deletion.method=none",))
    points = list(plan.points)
    assert len({engine_key(p.scenario) for p in points}) == 2
    batches = plan_batches(plan, points, 1, shared_prefixes(plan, points))
    assert len(batches) == 2
    for batch in batches:
        counts = {p.scenario.sites.count for p in points if p.slug in _keys(batch)}
        assert len(counts) == 1
    items = [RunItem(p.scenario, tmp_path / p.slug) for p in points]
    with pytest.raises(FedunlearnError, match="engine_key"):
        run_scenarios(items)


def test_a_branch_whose_prefix_did_not_pause_fails_in_one_line(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["deletion.method=salun-cra"], ())
    point = next(p for p in plan.points if p.scenario.deletion.method == "salun-cra")
    plan.scenario_file(point).parent.mkdir(parents=True, exist_ok=True)
    plan.scenario_file(point).write_text((tmp_path / "tiny.yaml").read_text())
    prefix_dir = tmp_path / "prefix"
    prefix_dir.mkdir()
    atomic_write_json(prefix_dir / "manifest.json", {"complete": False, "stopped": "crashed"})
    run = BatchRun(
        "x",
        str(tmp_path / "runs" / "x"),
        str(plan.scenario_file(point)),
        branch={"prefix_dir": str(prefix_dir), "round": 3, "name": "P"},
        key="x",
    )
    item = _item(run)
    assert item.resume and item.prepare is not None
    with pytest.raises(FedunlearnError, match="shared prefix P did not pause after round 3") as err:
        item.prepare()
    assert "\n" not in str(err.value) and not (tmp_path / "runs" / "x").exists()


def test_a_failed_batch_names_each_unfinished_point_with_its_own_reason(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["deletion.method=salun-cra"], ())
    runs = [
        BatchRun("p", str(tmp_path / "p"), "", until_round=3, key="prefix:P"),
        BatchRun("a", str(tmp_path / "a"), "", key="a"),
        BatchRun("b", str(tmp_path / "b"), "", key="b"),
        BatchRun("c", str(tmp_path / "c"), "", key="c"),
    ]
    atomic_write_json(tmp_path / "c" / "manifest.json", {"complete": True})
    spec = _spec_file(plan, 0)
    spec.parent.mkdir(parents=True)
    result_file(spec).write_text(json.dumps({"a": "the site crashed", "b": None, "c": None}))
    failed = batch_failures(plan, 0, runs, "exit code 1")
    assert failed == {
        "a": "the site crashed",
        "b": "exit code 1",
    }  # c finished; prefixes are not points


def test_shared_is_the_default_engine_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    base = ["sweep", "s.yaml", "--out", "o"]
    assert build_parser().parse_args(base).engine == "shared"
    assert build_parser().parse_args([*base, "--engine", "per-point"]).engine == "per-point"
    plan = _plan(tmp_path, [], ("deletion.method=none",))
    with pytest.raises(SweepError, match="--engine must be one of shared, per-point"):
        run_sweep(plan, engine="warm")


def test_one_failed_run_does_not_stop_the_next_but_a_dead_engine_stops_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch loop of run_scenarios with the engine and the federation stood in (no Ray)."""
    import threading

    from fedunlearn.federated import server_app, simulation
    from fedunlearn.federated.rundir import mark_complete

    plan = _plan(tmp_path, ["seed=0,1,2,3"], ("deletion.method=none",))
    points = [p for p in plan.points if not p.scenario.retrain]
    ran: list[str] = []

    def federation(grid, scenario, run_dir, progress, resume, abort, until_round) -> None:
        ran.append(run_dir.name)
        if scenario.seed == 1:
            raise FedunlearnError("site-1 never answered")
        if scenario.seed == 2:
            abort.set()  # the engine died during this run
            raise FedunlearnError("the simulation engine stopped")
        mark_complete(run_dir, scenario=scenario.name)

    def engine(scenario, main, verbose) -> str | None:
        main(None, threading.Event())
        return None

    monkeypatch.setattr(server_app, "run_federation", federation)
    monkeypatch.setattr(simulation, "_engine", engine)
    monkeypatch.setattr(simulation, "check_inputs", lambda scenario: None)
    items = [RunItem(p.scenario, tmp_path / "runs" / f"s{p.scenario.seed}") for p in points]
    outcomes = run_scenarios(items, quiet=True)
    assert ran == ["s0", "s1", "s2"]  # s3 never began: the engine was gone
    assert outcomes[0] is None
    assert outcomes[1] == "site-1 never answered"
    assert outcomes[2] == "the simulation engine stopped"
    assert outcomes[3] == "the simulation engine stopped before this run began"
    assert not (tmp_path / "runs" / "s3").exists()
