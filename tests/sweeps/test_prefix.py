"""Shared prefixes: branched points equal the points run alone, Retrain never branches, a killed prefix resumes.

One real sweep (tests/sweeps/tiny.py: 2 sites, 4 rounds, one request in round 4, so
the shared prefix is rounds 1-3) of the control arm and SalUn-CRA is killed with SIGKILL
right after the prefix's first checkpoint, then run again (``engine="shared"``,
the default: the resumed prefix and both branches run one after another in one
simulation engine); each point is also run alone from scratch in its own
engine, and the two must match bit for bit but for timings.
Planning, branching and the job order are checked without Ray.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from fedunlearn.cli import build_parser
from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.branch import BRANCH_EVENT, branch_run_dir
from fedunlearn.federated.checkpoint import latest_checkpoint, save_checkpoint
from fedunlearn.federated.ledger import ServerLedger, SiteLedger
from fedunlearn.federated.recorder import COLUMNS
from fedunlearn.federated.transport import to_arrays
from fedunlearn.models import build_model
from fedunlearn.progress import Progress
from fedunlearn.sweep_jobs import Job, run_jobs
from fedunlearn.sweep_prefix import prefix_of
from fedunlearn.sweeps import SweepOutcome, SweepPlan, plan_sweep, run_sweep, shared_prefixes
from tests.federated.conftest import Run
from tests.federated.test_reliability import _kill_when
from tests.sweeps.tiny import ARMS, ARMS_YAML, PREFIX_ROUND


@dataclass(frozen=True)
class Branched:
    plan: SweepPlan
    outcome: SweepOutcome
    killed_after: int  # the prefix's newest checkpoint when the first sweep was killed
    lines: list[str]
    alone: dict[
        str, Path
    ]  # slug -> the same point run alone from scratch (shared with test_control)


@pytest.fixture(scope="module")
def branched(tmp_path_factory: pytest.TempPathFactory, run_scenario_dir) -> Branched:
    root = tmp_path_factory.mktemp("prefix")
    (root / "tiny.yaml").write_text(ARMS_YAML)
    out = root / "sweep"
    ray_tmp = Path(tempfile.mkdtemp(prefix="fu", dir="/tmp"))  # short: Ray's socket paths
    env = {**os.environ, "FEDUNLEARN_RAY_TMP": str(ray_tmp), "OMP_NUM_THREADS": "1"}
    argv = ["sweep", str(root / "tiny.yaml"), "--grid", ARMS, "--no-retrain", "--out", str(out)]
    with open(ray_tmp / "run.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fedunlearn", *argv, "--quiet"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _kill_when(proc, ray_tmp, lambda: any(out.glob("prefixes/*/checkpoints/round-0001")))
    (prefix_dir,) = (p for p in (out / "prefixes").iterdir() if p.is_dir())
    killed_after = latest_checkpoint(prefix_dir).server_round
    if killed_after >= PREFIX_ROUND:
        pytest.fail(f"the kill came after the prefix had ended (round {killed_after})")
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())
    shutil.rmtree(ray_tmp, ignore_errors=True)  # the killed sweep's Ray session

    plan = plan_sweep(root / "tiny.yaml", [ARMS], out, retrain=False)
    lines: list[str] = []
    outcome = run_sweep(plan, progress=lines.append, timeout_s=600)  # type: ignore[arg-type]
    alone = {}
    for point in plan.points:
        run: Run = run_scenario_dir(point.scenario, point.scenario.deletion.method)
        alone[point.slug] = run.path
    return Branched(plan, outcome, killed_after, lines, alone)


def _rows(path: Path) -> list[list[str]]:
    """A metrics table as text, less its wall-clock rows, in a fixed order (a round's rows come in the order
    the sites answered, which varies from run to run)."""
    with open(path, newline="") as fh:
        header, *rows = list(csv.reader(fh))
    col = header.index("metric")
    return [header, *sorted(r for r in rows if "seconds" not in r[col])]


def _ledger(run_dir: Path) -> list[dict]:
    con = sqlite3.connect(run_dir / "ledger.sqlite")
    con.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in con.execute("SELECT * FROM requests ORDER BY id")]
    finally:
        con.close()
    return [{k: v for k, v in r.items() if not k.endswith("_at")} for r in rows]


@pytest.mark.parametrize("slug", ["deletion.method=none", "deletion.method=salun-cra"])
def test_a_branched_point_equals_the_point_run_alone(branched: Branched, slug: str) -> None:
    mine, alone = branched.plan.out / "runs" / slug, branched.alone[slug]
    assert branched.outcome.ran == ("deletion.method=none", "deletion.method=salun-cra")
    rows = _rows(mine / "metrics.csv")
    assert rows == _rows(alone / "metrics.csv")
    assert {int(r[0]) for r in rows[1:]} == {0, 1, 2, 3, 4}
    assert _ledger(mine) == _ledger(alone) and _ledger(mine)
    wa, wb = load_file(str(mine / "model.safetensors")), load_file(str(alone / "model.safetensors"))
    assert list(wa) == list(wb) and all(torch.equal(wa[k], wb[k]) for k in wa)
    for site in ("site-0", "site-1"):
        assert SiteLedger(mine / "sites" / site / "ledger.sqlite").withdrawn().keys() == (
            SiteLedger(alone / "sites" / site / "ledger.sqlite").withdrawn().keys()
        )
    assert sorted(p.name for p in (mine / "checkpoints").iterdir()) == sorted(
        p.name for p in (alone / "checkpoints").iterdir()
    )


def test_a_branched_run_says_where_it_branched_from(branched: Branched) -> None:
    (name,) = {prefix_of(p.scenario).name for p in branched.plan.points}
    for point in branched.plan.points:
        run_dir = branched.plan.run_dir(point)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["complete"] is True and manifest["method"] == point.scenario.deletion.method
        assert manifest["branched_from"] == {"prefix": name, "round": PREFIX_ROUND}
        events = [json.loads(ln) for ln in (run_dir / "events.jsonl").read_text().splitlines()]
        assert [e["round"] for e in events if e["event"] == BRANCH_EVENT] == [PREFIX_ROUND]
    alone = json.loads((next(iter(branched.alone.values())) / "manifest.json").read_text())
    assert "branched_from" not in alone
    # one engine ran the prefix and both points; the sweep still says each point's fate
    assert (
        sum(
            ln.startswith("started engine 1: 2 point(s) and 1 shared prefix")
            for ln in branched.lines
        )
        == 1
    )
    for point in branched.plan.points:
        assert any(
            ln.startswith("[")
            and point.slug in ln
            and "branched from" in ln
            and ln.endswith(": done")
            for ln in branched.lines
        ), branched.lines


def test_the_killed_prefix_resumes_without_redoing_finished_rounds(branched: Branched) -> None:
    k = branched.killed_after
    (prefix_dir,) = (p for p in (branched.plan.out / "prefixes").iterdir() if p.is_dir())
    events = [json.loads(ln) for ln in (prefix_dir / "events.jsonl").read_text().splitlines()]
    assert [e["round"] for e in events if e["event"] == "run-resumed"] == [k]
    assert json.loads((prefix_dir / "manifest.json").read_text())["paused_after_round"] == 3
    for site in ("site-0", "site-1"):
        audit = (prefix_dir / "sites" / site / "audit.jsonl").read_text().splitlines()
        trained = [json.loads(ln)["round"] for ln in audit]
        done = [r for r in trained if r <= k]
        assert done == sorted(set(done)) and max(trained) == PREFIX_ROUND  # no finished round again
    assert not branched.outcome.failed


# ------------------------------------------------------------------------------------ without Ray
def _plan(tmp_path: Path, grids: list[str], overrides: tuple[str, ...] = ()) -> SweepPlan:
    (tmp_path / "tiny.yaml").write_text(ARMS_YAML)
    return plan_sweep(tmp_path / "tiny.yaml", grids, tmp_path / "out", list(overrides))


def test_points_differing_in_deletion_handling_share_and_retrain_does_not(tmp_path: Path) -> None:
    plan = _plan(
        tmp_path,
        [
            "deletion.method=salun-cra,rl",
            "deletion.policy=immediate,batched",
            "deletion.unlearn.epochs=1,2",
            "seed=0,1",
        ],
    )
    shared = shared_prefixes(plan, list(plan.points))
    retrain = {p.slug for p in plan.points if p.scenario.retrain}
    assert retrain and not retrain & set(shared)
    assert set(shared) == {p.slug for p in plan.points} - retrain
    by_seed = {p.scenario.seed: set() for p in plan.points}
    for p in plan.points:
        if p.slug in shared:
            by_seed[p.scenario.seed].add(shared[p.slug].name)
            assert shared[p.slug].round == PREFIX_ROUND
    assert (
        all(len(names) == 1 for names in by_seed.values())
        and len(set().union(*by_seed.values())) == 2
    )


def test_other_training_or_other_request_rounds_get_other_prefixes(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["training.lr=0.05,0.1"], ("deletion.method=none",))
    assert len({prefix_of(p.scenario).name for p in plan.points if not p.scenario.retrain}) == 2
    later = _plan(tmp_path, [], ("deletion.requests=[{round: 3, site: 1, fraction: 0.25}]",))
    assert prefix_of(later.points[0].scenario).round == 2
    assert prefix_of(later.points[0].scenario).name != prefix_of(plan.points[0].scenario).name
    first = _plan(tmp_path, [], ("deletion.requests=[{round: 1, site: 0, fraction: 0.25}]",))
    assert all(prefix_of(p.scenario) is None for p in first.points)  # nothing before round 1
    drawn = _plan(
        tmp_path,
        [],
        ("deletion.requests=[]", "deletion.stochastic={rate: 1.0, fraction: 0.1, start_round: 3}"),
    )
    assert {prefix_of(p.scenario).round for p in drawn.points if not p.scenario.retrain} == {2}


def test_a_lone_point_or_a_started_run_does_not_branch(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["seed=0,1"], ("deletion.method=none",))  # + Retrain: nothing shared
    assert shared_prefixes(plan, list(plan.points)) == {}
    plan = _plan(tmp_path, [ARMS])
    (plan.run_dir(plan.points[0])).mkdir(parents=True)
    assert (
        shared_prefixes(plan, list(plan.points)) == {}
    )  # the other point alone: runs from round 1


def test_no_share_prefix_is_the_flag_and_sharing_is_the_default() -> None:
    base = ["sweep", "s.yaml", "--out", "o"]
    assert build_parser().parse_args(base).share_prefix is True
    assert build_parser().parse_args([*base, "--no-share-prefix"]).share_prefix is False


def _prefix_dir(tmp_path: Path, plan: SweepPlan) -> Path:
    """A prefix paused after round 3: its checkpoint (method `none` rows), events and a site folder."""
    prefix = prefix_of(plan.points[0].scenario)
    run_dir = tmp_path / "prefix"
    run_dir.mkdir()
    (run_dir / "events.jsonl").write_text("".join(f'{{"event": "e{i}"}}\n' for i in range(4)))
    (run_dir / "sites" / "site-0").mkdir(parents=True)
    (run_dir / "sites" / "site-0" / "audit.jsonl").write_text('{"round": 1}\n')
    rows = pd.DataFrame(
        [(r, "global", "test", "none", "bac", 0.1 + r / 3, "") for r in range(4)],
        columns=list(COLUMNS),
    )
    ledger = ServerLedger(run_dir / "ledger.sqlite")
    plan_state = {"accepted": [], "pending": {}, "withdrawing": {}}
    model = to_arrays(build_model(prefix.scenario.model))
    save_checkpoint(run_dir, 3, model, object(), rows, plan_state, ledger.path, 3)
    return run_dir


def test_branching_copies_the_checkpoint_under_the_points_method(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [ARMS])
    point = next(p for p in plan.points if p.scenario.deletion.method == "salun-cra")
    prefix_dir = _prefix_dir(tmp_path, plan)
    run_dir = tmp_path / "runs" / point.slug
    branch_run_dir(prefix_dir, 3, run_dir, point.scenario, "P")
    source = (prefix_dir / "checkpoints" / "round-0003" / "metrics.csv").read_text()
    assert (run_dir / "metrics.csv").read_text() == source.replace(",none,", ",salun-cra,")
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint.server_round == 3 and set(checkpoint.rows["method"]) == {"salun-cra"}
    events = (run_dir / "events.jsonl").read_text().splitlines()
    assert checkpoint.event_lines == len(events) == 4  # three of the prefix's, then the branch's
    assert json.loads(events[-1])["event"] == BRANCH_EVENT
    assert (run_dir / "sites" / "site-0" / "audit.jsonl").is_file()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["branched_from"] == {
        "prefix": "P",
        "round": 3,
    }
    with pytest.raises(FedunlearnError, match="not empty"):
        branch_run_dir(prefix_dir, 3, run_dir, point.scenario, "P")
    with pytest.raises(FedunlearnError, match="no checkpoint of round 2") as err:
        branch_run_dir(prefix_dir, 2, tmp_path / "other", point.scenario, "P")
    assert "\n" not in str(err.value) and not (tmp_path / "other").exists()


def test_a_job_waiting_for_a_failed_prefix_fails_without_starting(tmp_path: Path) -> None:
    marker = tmp_path / "started"

    def job(name: str, code: str, after: str | None = None) -> Job:
        return Job(
            name,
            name,
            tmp_path / f"{name}.log",
            lambda: [sys.executable, "-c", code],
            lambda: True,
            after=after,
        )

    failed = run_jobs(
        [
            job("prefix", "import sys; sys.exit('fedunlearn: error: no prefix')"),
            job("point", f"open({str(marker)!r}, 'w')", after="prefix"),
            job("free", "pass"),
        ],
        2,
        Progress(quiet=True),
    )
    assert failed == {
        "prefix": "fedunlearn: error: no prefix",
        "point": "prefix failed (fedunlearn: error: no prefix)",
    }
    assert not marker.exists()
