"""Reference arms that a grid key cannot change run once and are copied to their twins.

Planning is checked on real plans; the copying through ``run_sweep`` with a
stand-in for ``fedunlearn run`` that counts its starts (no Ray). That the
copies are right, i.e. that the control arm really is the same run under
another policy, was measured on real runs (what-if 2, 5 seeds: bit-identical)
and follows from ``FederationPlan.accept``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from fedunlearn.progress import Progress
from fedunlearn.sweep_twins import reference_twins
from fedunlearn.sweeps import is_complete, plan_sweep, run_sweep
from tests.sweeps.tiny import write_tiny

POLICY = "deletion.policy=immediate,batched"

# A stand-in for `fedunlearn run`: notes its start, copies the scenario, writes a one-row metrics table
# and a complete manifest.
_STAND_IN = """
import json, pathlib, shutil, sys
scenario, out, started = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
(started / out.name).touch()
out.mkdir(parents=True)
shutil.copy(scenario, out / "scenario.yaml")
(out / "metrics.csv").write_text("round,site,phase,method,metric,value,request\\n2,global,test,x,fnr,0.1,\\n")
(out / "manifest.json").write_text(json.dumps({"complete": True}))
"""


def _plan(tmp_path: Path, grids: list[str]):
    return plan_sweep(write_tiny(tmp_path), grids, tmp_path / "out")


def test_reference_arms_differing_only_in_keys_they_ignore_are_twins(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [POLICY, "deletion.unlearn.epochs=1,2", "seed=0,1"])
    twins = reference_twins(plan, plan.points)
    by_method: dict[str, list[str]] = {}
    for slug, source in twins.items():
        twin = next(p for p in plan.points if p.slug == slug)
        assert twin.scenario.deletion.method == source.scenario.deletion.method
        assert twin.scenario.seed == source.scenario.seed  # never across seeds
        assert source.slug not in twins  # the source itself runs
        by_method.setdefault(twin.scenario.deletion.method, []).append(slug)
    # per arm and seed, 4 points (2 policies x 2 epochs): one runs, three are copies
    assert {m: len(s) for m, s in by_method.items()} == {"none": 6, "retrain": 6}
    assert not any(
        p.scenario.deletion.method == "salun-cra" for p in plan.points if p.slug in twins
    )


def test_keys_a_reference_arm_reads_make_no_twins(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ["training.lr=0.05,0.1", "seed=0,1"])
    assert reference_twins(plan, plan.points) == {}
    # a twin already finished or not asked for is not copied again
    plan = _plan(tmp_path, [POLICY])
    assert reference_twins(plan, []) == {}


def test_a_sweep_runs_each_reference_run_once_and_copies_it(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [POLICY])
    started = tmp_path / "started"
    started.mkdir()

    def command(plan, point):
        return [
            sys.executable,
            "-c",
            _STAND_IN,
            str(plan.scenario_file(point)),
            str(plan.run_dir(point)),
            str(started),
        ]

    lines: list[str] = []
    outcome = run_sweep(plan, command=command, progress=lines.append, share_prefix=False)  # type: ignore[arg-type]
    assert not outcome.failed and len(outcome.ran) == len(plan.points) == 6
    ran = sorted(p.name for p in started.iterdir())
    assert len(ran) == 4  # salun-cra twice, the control arm and Retrain once each
    for point in plan.points:
        run_dir = plan.run_dir(point)
        assert is_complete(run_dir)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        if point.slug in ran:
            assert "copied_from" not in manifest
            continue
        source = manifest["copied_from"]["run"]
        assert source in ran and source != point.slug
        assert "deletion.policy" in manifest["copied_from"]["why"]
        # the copy carries its own scenario, and the source's results
        assert yaml.safe_load((run_dir / "scenario.yaml").read_text())["deletion"]["policy"] == (
            point.scenario.deletion.policy
        )
        src_dir = plan.out / "runs" / source
        assert (run_dir / "metrics.csv").read_text() == (src_dir / "metrics.csv").read_text()
    assert any("copied from" in line for line in lines)
    # a second sweep finds every point finished
    again = run_sweep(plan, command=command, progress=Progress(quiet=True), share_prefix=False)
    assert again.ran == () and len(again.skipped) == 6 and len(list(started.iterdir())) == 4
