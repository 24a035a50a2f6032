"""Sweep points in shared simulation engines: one process, one Ray and one set of warm actors for many runs.

Every ``python -m fedunlearn run`` pays about 20 s on this 2-core machine
besides its rounds (Python and torch imports, Ray, two actors importing torch
and flwr, the sites' setup, the final files; README "Performance benchmark"),
against about 6 s per quickstart round. With ``engine="shared"`` (the default
of ``fedunlearn sweep``) the sweep instead hands each of its ``--jobs`` slots a
*batch*: the runs of several points (and the shared prefixes they branch from),
run one after another by :func:`fedunlearn.federated.simulation.run_scenarios`
inside one Flower simulation engine, in one subprocess
(``python -m fedunlearn.sweep_engine BATCH.json``). Each run still sets its
sites up with its own setup query and writes what it writes alone (tested bit
for bit against the same point run in its own engine).

A batch lists its runs in order: a prefix before the points that branch from
it (a branch is made inside the batch once its prefix has paused where it
should, and fails with the prefix's reason otherwise), then the other points.
Runs that cannot share an engine (:func:`engine_key`: site count, per-site
resources, Ray address) go to different batches. A run that fails does not
stop the rest of its batch; the batch writes each run's outcome to
``BATCH.result.json`` and the sweep reads its points' fates from their run
directories, as with one process per point.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.branch import branch_run_dir
from fedunlearn.federated.rundir import paused_after
from fedunlearn.federated.scenario import load_scenario
from fedunlearn.federated.simulation import RunItem, engine_key, run_scenarios
from fedunlearn.io import atomic_write_json, is_complete
from fedunlearn.sweep_jobs import Job
from fedunlearn.sweep_plan import SweepPlan, SweepPoint
from fedunlearn.sweep_prefix import SharedPrefix, prefix_ready, prepare_prefix

FOLDER = "batches"


@dataclass(frozen=True)
class BatchRun:
    """One run of a batch, as the batch subprocess reads it (JSON)."""

    label: str
    run_dir: str
    scenario_file: str
    until_round: int | None = None
    data_root: str | None = None
    branch: dict | None = None  # {"prefix_dir", "round", "name"}: branch from that prefix first
    key: str = ""  # the point's slug, or "prefix:<name>"

    @property
    def is_prefix(self) -> bool:
        return self.key.startswith("prefix:")


def _prefix_run(plan: SweepPlan, prefix: SharedPrefix) -> BatchRun:
    return BatchRun(
        prefix.label(),
        str(prefix.run_dir(plan)),
        str(prefix.scenario_file(plan)),
        until_round=prefix.round,
        data_root=prefix.scenario.data.root,
        key=f"prefix:{prefix.name}",
    )


def _point_run(plan: SweepPlan, point: SweepPoint, prefix: SharedPrefix | None) -> BatchRun:
    branch = (
        {"prefix_dir": str(prefix.run_dir(plan)), "round": prefix.round, "name": prefix.name}
        if prefix is not None
        else None
    )
    label = point.label + (f" (branched from {prefix.label()})" if prefix is not None else "")
    return BatchRun(
        label,
        str(plan.run_dir(point)),
        str(plan.scenario_file(point)),
        data_root=point.scenario.data.root,
        branch=branch,
        key=point.slug,
    )


@dataclass
class _Group:
    """Runs that go to one batch together, and the rounds they will run (to balance the batches)."""

    key: tuple
    runs: list[BatchRun] = field(default_factory=list)
    rounds: int = 0

    def add(self, run: BatchRun, rounds: int) -> None:
        self.runs.append(run)
        self.rounds += rounds


def plan_batches(
    plan: SweepPlan,
    points: Sequence[SweepPoint],
    jobs: int,
    prefixes: Mapping[str, SharedPrefix],
) -> list[list[BatchRun]]:
    """The batches that run ``points``: at most ``jobs`` per engine key, balanced by rounds to run.

    A prefix not yet run (paused where it should) goes first in the batch of the
    points that branch from it; a prefix and its points are never split.
    """
    pending = {p.name for p in prefixes.values() if not prefix_ready(plan, p)}
    groups: dict[str, _Group] = {}  # a prefix with its points, or a lone point
    for point in points:
        prefix = prefixes.get(point.slug)
        name = f"prefix:{prefix.name}" if prefix is not None else f"point:{point.slug}"
        if name not in groups:
            group = groups[name] = _Group(engine_key(point.scenario))
            if prefix is not None and prefix.name in pending:
                group.add(_prefix_run(plan, prefix), prefix.round)
        skipped = prefix.round if prefix is not None else 0
        groups[name].add(_point_run(plan, point, prefix), point.scenario.training.rounds - skipped)
    by_key: dict[tuple, list[_Group]] = {}
    for group in groups.values():
        by_key.setdefault(group.key, []).append(group)
    batches: list[list[BatchRun]] = []
    for members in by_key.values():
        slots = [_Group(()) for _ in range(min(jobs, len(members)))]
        # the longest group first, each to the slot with the fewest rounds so far
        for group in sorted(members, key=lambda g: -g.rounds):
            slot = min(slots, key=lambda g: g.rounds)
            slot.runs += group.runs
            slot.rounds += group.rounds
        batches.extend(slot.runs for slot in slots)
    return batches


def _spec_file(plan: SweepPlan, index: int) -> Path:
    return plan.out / FOLDER / f"batch-{index}.json"


def result_file(spec: Path) -> Path:
    return spec.with_suffix(".result.json")


def _run_ok(run: BatchRun) -> bool:
    run_dir = Path(run.run_dir)
    if run.until_round is None:
        return is_complete(run_dir)
    return paused_after(run_dir) == run.until_round


def batch_job(
    plan: SweepPlan,
    index: int,
    runs: list[BatchRun],
    prefixes: Mapping[str, SharedPrefix],
) -> Job:
    """The subprocess of one batch; ``prepare`` writes the prefixes' scenarios and the batch's spec."""
    spec = _spec_file(plan, index)
    used = {p.name: p for p in prefixes.values()}

    def prepare() -> None:
        for run in runs:
            if run.is_prefix:
                prepare_prefix(plan, used[run.key.removeprefix("prefix:")])
        result_file(spec).unlink(missing_ok=True)
        atomic_write_json(spec, {"runs": [asdict(r) for r in runs]})

    points = sum(not r.is_prefix for r in runs)
    log = plan.out / "logs" / f"batch-{index}.log"
    return Job(
        f"batch:{index}",
        f"engine {index + 1}: {points} point(s)"
        + (f" and {len(runs) - points} shared prefix(es)" if len(runs) > points else "")
        + f" (progress in {log})",
        log,
        lambda: [sys.executable, "-m", "fedunlearn.sweep_engine", str(spec)],
        lambda: all(_run_ok(r) for r in runs),
        prepare,
    )


def batch_failures(plan: SweepPlan, index: int, runs: list[BatchRun], why: str) -> dict[str, str]:
    """Point slug -> why it did not finish, for a batch that did not end well (``why``: the job's reason)."""
    try:
        result = json.loads(result_file(_spec_file(plan, index)).read_text())
    except (OSError, ValueError):
        result = {}
    return {
        r.key: str(result.get(r.key) or why) for r in runs if not r.is_prefix and not _run_ok(r)
    }


# ------------------------------------------------------------------ the batch subprocess
def _item(run: BatchRun) -> RunItem:
    """The :class:`RunItem` of ``run``: resumed where it left a checkpoint, branched, or new."""
    run_dir = Path(run.run_dir)
    root = [f"data.root={run.data_root}"] if run.data_root else []
    if run_dir.exists():  # the sweep removed what cannot resume: this one continues
        scenario = load_scenario(run_dir / "scenario.yaml", root)
        return RunItem(scenario, run_dir, resume=True, until_round=run.until_round)
    scenario = load_scenario(Path(run.scenario_file), root)
    if run.branch is None:
        return RunItem(scenario, run_dir, until_round=run.until_round)
    prefix_dir, last, name = (
        Path(run.branch["prefix_dir"]),
        int(run.branch["round"]),
        run.branch["name"],
    )

    def branch() -> None:
        if paused_after(prefix_dir) != last:
            raise FedunlearnError(f"its shared prefix {name} did not pause after round {last}")
        branch_run_dir(prefix_dir, last, run_dir, scenario, name)

    return RunItem(scenario, run_dir, resume=True, until_round=run.until_round, prepare=branch)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one batch; exit 0 when every run ended (or paused where asked), else 1."""
    parser = argparse.ArgumentParser(prog="python -m fedunlearn.sweep_engine")
    parser.add_argument("spec", type=Path, help="the batch's JSON, written by the sweep")
    args = parser.parse_args(argv)
    runs = [BatchRun(**r) for r in json.loads(args.spec.read_text())["runs"]]
    try:
        items = [_item(r) for r in runs]
        outcomes = run_scenarios(items, quiet=False)
    except FedunlearnError as exc:
        print(f"fedunlearn: error: {exc}", file=sys.stderr)
        return 1
    atomic_write_json(result_file(args.spec), {r.key: why for r, why in zip(runs, outcomes)})
    for run, why in zip(runs, outcomes):
        print(f"{run.label}: " + ("done" if why is None else f"FAILED ({why})"), flush=True)
    failed = [f"{r.key}: {why}" for r, why in zip(runs, outcomes) if why is not None]
    if failed:
        print(
            f"fedunlearn: error: {len(failed)} run(s) failed: {'; '.join(failed)}", file=sys.stderr
        )
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover - the sweep's subprocess
    sys.exit(main())
