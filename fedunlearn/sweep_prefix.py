"""Shared prefixes of a sweep: the rounds before the first deletion request, run once for several points.

Grid points whose scenarios differ only in how deletions are handled
(:data:`AFTER_PREFIX`: ``deletion.method``, the control arm ``none`` included,
``integration``, ``policy``, ``batch_every``, ``unlearn``, ``guard``) run the
very same rounds up to the one before their first deletion request (explicit
or drawn): site sampling, local shuffles, failures and the model all derive
from the rest of the scenario. :func:`prefix_of` names that prefix by the
point's scenario with those settings reset (the control arm's), so two points
share a prefix exactly when everything else, the requests and their first
round included, is equal. The sweep runs each prefix shared by at least two
unfinished points once, paused after that round (``run --until-round``, in
``DIR/prefixes/<name>/``), and branches each point from its checkpoint
(:func:`fedunlearn.federated.branch.branch_run_dir`). Federated Retrain arms
withdraw their forget rows before round 1, so they share nothing; a point whose
first request comes in round 1 has no prefix.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.checkpoint import latest_checkpoint
from fedunlearn.federated.rundir import paused_after, remove_run_dir
from fedunlearn.federated.scenario import (
    CONTROL,
    Scenario,
    ScenarioError,
    read_scenario_yaml,
    scenario_from_mapping,
    scenario_to_yaml,
)
from fedunlearn.io import atomic_write_text
from fedunlearn.sweep_plan import SweepError, SweepPlan, SweepPoint

#: Deletion settings that act only from the first request on; ``guard`` counts once the schema has it.
AFTER_PREFIX = ("method", "integration", "policy", "batch_every", "unlearn", "guard")
FOLDER = "prefixes"


def comparable(scenario: dict[str, Any]) -> dict[str, Any]:
    """A scenario dump without what may differ between two runs of one scenario (where its data sits)."""
    data = dict(scenario.get("data") or {})
    data.pop("root", None)  # the same file may sit elsewhere; the manifest keeps its md5
    return {**scenario, "data": data}


def resumable_after(run_dir: Path, scenario: Scenario) -> int | None:
    """The round of the newest checkpoint of an unfinished run of ``scenario`` in ``run_dir``.

    None when the run is of another scenario (or its ``scenario.yaml`` is
    missing or invalid) or has no checkpoint yet.

    Raises
    ------
    SweepError
        When the checkpoint cannot be read (an I/O error, perhaps transient, or
        a damaged checkpoint): the run is never removed on such an error.
    """
    try:
        done = scenario_from_mapping(read_scenario_yaml(run_dir / "scenario.yaml"))
    except ScenarioError:
        return None
    if comparable(done.model_dump(mode="json")) != comparable(scenario.model_dump(mode="json")):
        return None
    try:
        checkpoint = latest_checkpoint(run_dir)
    except OSError as exc:
        raise SweepError(
            f"{run_dir}: cannot read its checkpoints ({exc.strerror or exc}); the run is kept: "
            "fix the folder's permissions or storage and rerun the sweep"
        ) from None
    except FedunlearnError as exc:
        raise SweepError(f"{run_dir}: {exc}; the sweep keeps the run until you decide") from None
    return None if checkpoint is None else checkpoint.server_round


def prefix_round(scenario: Scenario) -> int:
    """The last round that points differing only in :data:`AFTER_PREFIX` share; 0 when none is shared
    (Federated Retrain, no requests, or a first request in round 1)."""
    requests = scenario.effective_requests
    if scenario.retrain or not requests:
        return 0
    return min(r.round for r in requests) - 1


@dataclass(frozen=True)
class SharedPrefix:
    """The rounds ``1..round`` that several points share, run as the paused run ``scenario``."""

    name: str
    scenario: Scenario
    round: int

    def run_dir(self, plan: SweepPlan) -> Path:
        return plan.out / FOLDER / self.name

    def scenario_file(self, plan: SweepPlan) -> Path:
        return plan.out / FOLDER / f"{self.name}.yaml"

    def log_file(self, plan: SweepPlan) -> Path:
        return plan.out / "logs" / f"prefix-{self.name}.log"

    def label(self) -> str:
        return f"shared prefix {self.name} (rounds 1-{self.round})"


def prefix_of(scenario: Scenario) -> SharedPrefix | None:
    """The prefix ``scenario`` shares with every scenario equal to it but in :data:`AFTER_PREFIX`; None without one.

    Its scenario is the control arm's (``deletion.method: none``, the other
    settings at their defaults); its name holds the seed, the last round and a
    digest of that scenario (its data folder left out).
    """
    last = prefix_round(scenario)
    if last < 1:
        return None
    raw = scenario.model_dump(mode="json")
    deletion = {k: v for k, v in raw["deletion"].items() if k not in AFTER_PREFIX}
    deletion["method"] = CONTROL
    canonical = scenario_from_mapping({**raw, "deletion": deletion}, "the shared prefix")
    text = json.dumps(comparable(canonical.model_dump(mode="json")), sort_keys=True)
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    return SharedPrefix(f"seed={scenario.seed},rounds-1-{last}-{digest}", canonical, last)


def prefix_ready(plan: SweepPlan, prefix: SharedPrefix) -> bool:
    """Whether the prefix's run was paused after its last round (its checkpoint is there to branch from)."""
    run_dir = prefix.run_dir(plan)
    return (
        paused_after(run_dir) == prefix.round
        and resumable_after(run_dir, prefix.scenario) == prefix.round
    )


def prepare_prefix(plan: SweepPlan, prefix: SharedPrefix) -> None:
    """Just before a prefix runs: write its scenario file, and remove a folder of it that cannot resume."""
    atomic_write_text(prefix.scenario_file(plan), scenario_to_yaml(prefix.scenario))
    run_dir = prefix.run_dir(plan)
    if run_dir.exists() and resumable_after(run_dir, prefix.scenario) is None:
        remove_run_dir(run_dir)


def shared_prefixes(plan: SweepPlan, todo: list[SweepPoint]) -> dict[str, SharedPrefix]:
    """Point slug -> the prefix it branches from, for the points of ``todo`` that start anew.

    A prefix is used when at least two such points share it, or when its
    folder exists already (an earlier sweep began it). A point whose run
    directory exists resumes its own run instead.
    """
    groups: dict[str, list[SweepPoint]] = {}
    found: dict[str, SharedPrefix] = {}
    for point in todo:
        if plan.run_dir(point).exists() or (prefix := prefix_of(point.scenario)) is None:
            continue
        found[prefix.name] = prefix
        groups.setdefault(prefix.name, []).append(point)
    return {
        point.slug: found[name]
        for name, members in groups.items()
        if len(members) > 1 or found[name].run_dir(plan).exists()
        for point in members
    }


def prefix_command(plan: SweepPlan, prefix: SharedPrefix) -> list[str]:
    """``run --until-round``: anew, or ``--resume`` where an interrupted prefix left a checkpoint."""
    run_dir, pause = prefix.run_dir(plan), ["--until-round", str(prefix.round), "--quiet"]
    if run_dir.exists() and resumable_after(run_dir, prefix.scenario) is not None:
        root = prefix.scenario.data.root
        resume = [*pause, *(["--data-root", root] if root else [])]
        return [sys.executable, "-m", "fedunlearn", "run", "--resume", str(run_dir), *resume]
    args = ["run", str(prefix.scenario_file(plan)), "--out", str(run_dir), *pause]
    return [sys.executable, "-m", "fedunlearn", *args]
