"""Reference arms that a grid key cannot change: each is run once and copied to its twins.

The control arm (``deletion.method: none``) never withdraws nor unlearns a
request, and Federated Retrain removes the forget sets before round 1 and
accepts no request after (:meth:`fedunlearn.federated.plan.FederationPlan.accept`):
neither ever has a deletion round or a reset, so how a method would unlearn
(``deletion.policy``, ``batch_every``, ``integration``, ``unlearn.*``) cannot
change them, and the risk guard is off for both. A grid over such keys (e.g.
``deletion.policy=immediate,batched``) would otherwise run the same reference
run once per value: here the first point of each such family runs, and every
other (its *twin*) gets a copy of the finished run directory with its own
``scenario.yaml`` and a manifest that names the run it copies
(``copied_from``). Measured first: the control arms of what-if 2 under
``immediate`` and ``batched`` were bit-identical in all 5 seeds (metrics but
timings, model).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence

from fedunlearn.federated.rundir import remove_run_dir
from fedunlearn.federated.scenario import scenario_to_yaml
from fedunlearn.io import atomic_write_json, atomic_write_text, is_complete, read_manifest
from fedunlearn.reports.tables import CONTROL, RETRAIN
from fedunlearn.sweep_plan import SweepPlan, SweepPoint

#: Scenario keys (and key prefixes) that neither reference arm reads.
IGNORED_BY_REFERENCES = (
    "deletion.policy",
    "deletion.batch_every",
    "deletion.integration",
    "deletion.unlearn",
    "deletion.guard",
)


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in IGNORED_BY_REFERENCES)


def reference_twins(plan: SweepPlan, points: Sequence[SweepPoint]) -> dict[str, SweepPoint]:
    """Slug of each point of ``points`` that is a reference-arm twin -> the point whose run it copies.

    Twins are control or Retrain points whose grid assignments differ from an
    earlier point's of the same arm only in :data:`IGNORED_BY_REFERENCES`.
    """
    first: dict[tuple, SweepPoint] = {}
    twins: dict[str, SweepPoint] = {}
    for point in plan.points:
        if point.scenario.deletion.method not in (CONTROL, RETRAIN):
            continue
        family = tuple((k, json.dumps(v)) for k, v in point.assignments if not _ignored(k))
        if family in first:
            twins[point.slug] = first[family]
        else:
            first[family] = point
    wanted = {p.slug for p in points}
    return {slug: source for slug, source in twins.items() if slug in wanted}


def _copy_twin(plan: SweepPlan, twin: SweepPoint, source: SweepPoint) -> None:
    """Copy ``source``'s finished run to ``twin``'s directory (whatever unfinished run is there goes).

    The copy is made beside the target and renamed into place, so an
    interruption leaves either no run or the whole copy.
    """
    src, dst = plan.run_dir(source), plan.run_dir(twin)
    partial = dst.with_name(dst.name + ".copying")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(src, partial, symlinks=True)
    atomic_write_text(partial / "scenario.yaml", scenario_to_yaml(twin.scenario))
    manifest = read_manifest(partial) or {}
    manifest["copied_from"] = {"run": source.slug, "why": _why(twin)}
    atomic_write_json(partial / "manifest.json", manifest)
    if dst.exists():
        remove_run_dir(dst)
    partial.rename(dst)


def copy_twins(plan: SweepPlan, twins: dict[str, SweepPoint], progress) -> dict[str, str]:
    """Copy every twin whose source finished; returns slug -> reason for the twins that could not be."""
    by_slug = {p.slug: p for p in plan.points}
    out = {}
    for slug, source in twins.items():
        twin = by_slug[slug]
        if not is_complete(plan.run_dir(source)):  # its run failed, or was stopped
            out[slug] = f"the run it copies ({source.label}) did not finish"
            continue
        _copy_twin(plan, twin, source)
        progress(f"{twin.label}: copied from {source.label} (the same run: {_why(twin)})")
    return out


def _why(twin: SweepPoint) -> str:
    keys = ", ".join(k for k, _ in twin.assignments if _ignored(k))
    return f"{twin.scenario.deletion.method} does not read {keys}"
