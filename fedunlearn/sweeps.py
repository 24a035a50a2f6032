"""``fedunlearn sweep``: a grid of scenarios, run resumably, summarised against the control arm and Retrain.

The grid is parsed once into a frozen :class:`SweepPlan`; every point is
validated before anything runs (:mod:`fedunlearn.sweep_plan`, whose names this
module exports too). A grid that compares erasure methods (it
varies ``deletion.method``, or its base scenario sets a method or deletion
requests) gets two reference arms on its ``deletion.method`` axis unless told
otherwise: the control arm ``none`` (requests recorded, nothing erased) and
Federated Retrain, so that every method is paired by seed and every other grid
key with both. Each point runs into ``DIR/runs/<slug>/``: by default in a
batch of points that one subprocess runs in one warm Flower simulation engine
(:mod:`fedunlearn.sweep_engine`), with ``engine="per-point"`` as its own
``python -m fedunlearn run`` subprocess (its own Ray); both are jobs of
:mod:`fedunlearn.sweep_jobs`. Points that differ only
in deletion handling share the rounds before their first request, run once in
``DIR/prefixes/`` and branched from (:mod:`fedunlearn.sweep_prefix`, unless
``share_prefix=False``); a reference arm that the grid varies only in keys it
never reads (``deletion.policy``, ``unlearn.*``, ...) runs once and is copied
to its twins (:mod:`fedunlearn.sweep_twins`); a run whose ``manifest.json`` says ``complete`` is never
redone, a half-finished one resumes from its newest checkpoint
(``run --resume``), or is removed and redone when it has none. The summary
(``summary.csv``: paired differences with bootstrap intervals and verdicts;
``summary-variants.csv``: the per-variant figures; ``summary.md``) is computed
from the runs' ``metrics.csv`` only, by :mod:`fedunlearn.reports.contrasts` and
:mod:`fedunlearn.reports.tables`.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fedunlearn.federated.branch import branch_run_dir
from fedunlearn.federated.rundir import looks_like_run_dir, remove_run_dir
from fedunlearn.federated.scenario import (
    Scenario,
    ScenarioError,
    read_scenario_yaml,
    scenario_from_mapping,
    scenario_to_yaml,
)
from fedunlearn.io import atomic_write_csv, atomic_write_json, atomic_write_text, is_complete
from fedunlearn.progress import Progress
from fedunlearn.reports.contrasts import paired_markdown, paired_summary, run_figures
from fedunlearn.reports.tables import summarize, summary_markdown
from fedunlearn.study.summary import to_markdown
from fedunlearn.sweep_engine import batch_failures, batch_job, plan_batches
from fedunlearn.sweep_jobs import Job, run_jobs
from fedunlearn.sweep_plan import (
    METHOD_KEY,
    SEED_KEY,
    GridAxis,
    SweepError,
    SweepPlan,
    SweepPoint,
    format_value,
    parse_grid,
    parse_value,
    plan_sweep,
    slugify,
    split_values,
    with_reference_arms,
)
from fedunlearn.sweep_prefix import (
    SharedPrefix,
    comparable,
    prefix_command,
    prefix_ready,
    prepare_prefix,
    resumable_after,
    shared_prefixes,
)
from fedunlearn.sweep_twins import copy_twins, reference_twins


# ------------------------------------------------------------------ state of run dirs
def resumable_round(run_dir: Path, point: SweepPoint) -> int | None:
    """The round after which a half-finished run of ``point`` can resume: its newest checkpoint's.

    None (the run is redone) only when the run is of another scenario (or its
    ``scenario.yaml`` is missing or invalid) or has no checkpoint yet.

    Raises
    ------
    SweepError
        When the checkpoint cannot be read (an I/O error, perhaps transient, or
        a damaged checkpoint): the run is never removed on such an error.
    """
    return resumable_after(run_dir, point.scenario)


def pending_points(plan: SweepPlan, progress: Progress) -> list[SweepPoint]:
    """Points still to run; a half-finished run resumes from its newest checkpoint, or is removed and redone.

    Raises
    ------
    SweepError
        When a finished run of a *different* scenario sits where a point would
        run, or a directory there is not a fedunlearn run.
    """
    todo = []
    for point in plan.points:
        run_dir = plan.run_dir(point)
        if is_complete(run_dir):
            try:  # through today's schema, so that a default added since does not count as a difference
                done = scenario_from_mapping(
                    read_scenario_yaml(run_dir / "scenario.yaml")
                ).model_dump(mode="json")
            except ScenarioError:
                done = {}
            if comparable(done) != comparable(point.scenario.model_dump(mode="json")):
                raise SweepError(
                    f"{run_dir} holds a finished run of another scenario than grid point "
                    f"{point.label}; pass another --out or remove that directory"
                )
            continue
        if run_dir.exists():
            if not looks_like_run_dir(run_dir):
                raise SweepError(
                    f"{run_dir} exists but is not a fedunlearn run directory; remove it or pass another --out"
                )
            if (after := resumable_round(run_dir, point)) is not None:
                progress(
                    f"{point.label}: resuming the unfinished run in {run_dir} after round {after}"
                )
            else:
                progress(f"{point.label}: removing the unfinished run in {run_dir} (it is redone)")
                remove_run_dir(run_dir)
        todo.append(point)
    return todo


# ------------------------------------------------------------------ running
ENGINES = ("shared", "per-point")


def run_command(plan: SweepPlan, point: SweepPoint) -> list[str]:
    """The subprocess that runs one point (its own Ray): ``run --resume`` where a checkpoint was kept."""
    run_dir = plan.run_dir(point)
    if run_dir.exists() and resumable_round(run_dir, point) is not None:
        root = point.scenario.data.root  # the data may have moved since the run began
        return [
            sys.executable,
            "-m",
            "fedunlearn",
            "run",
            "--resume",
            str(run_dir),
            "--quiet",
            *(["--data-root", root] if root else []),
        ]
    return [
        sys.executable,
        "-m",
        "fedunlearn",
        "run",
        str(plan.scenario_file(point)),
        "--out",
        str(run_dir),
        "--quiet",
    ]


def _point_job(
    plan: SweepPlan,
    point: SweepPoint,
    command: Callable[[SweepPlan, SweepPoint], list[str]],
    prefix: SharedPrefix | None,
    waits: bool,
) -> Job:
    """A point's job; one that branches from ``prefix`` copies its checkpoint first (after it ran, if
    ``waits``), then resumes from it."""
    run_dir = plan.run_dir(point)

    def branch() -> None:
        if prefix is not None and not run_dir.exists():
            branch_run_dir(prefix.run_dir(plan), prefix.round, run_dir, point.scenario, prefix.name)

    return Job(
        point.slug,
        point.label + (f" (branched from {prefix.label()})" if prefix is not None else ""),
        plan.log_file(point),
        lambda: command(plan, point),
        lambda: is_complete(run_dir),
        branch if prefix is not None else None,
        f"prefix:{prefix.name}" if waits and prefix is not None else None,
    )


def _prefix_job(plan: SweepPlan, prefix: SharedPrefix) -> Job:
    """The job that runs a shared prefix, paused after its last round (resumed if it was interrupted)."""
    return Job(
        f"prefix:{prefix.name}",
        prefix.label(),
        prefix.log_file(plan),
        lambda: prefix_command(plan, prefix),
        lambda: prefix_ready(plan, prefix),
        lambda: prepare_prefix(plan, prefix),
    )


def run_points(
    plan: SweepPlan,
    points: Sequence[SweepPoint],
    jobs: int,
    progress: Progress,
    command: Callable[[SweepPlan, SweepPoint], list[str]] = run_command,
    timeout_s: float | None = None,
    stop: threading.Event | None = None,
    prefixes: Mapping[str, SharedPrefix] | None = None,
    engine: str = "per-point",
) -> dict[str, str]:
    """Run ``points``, ``jobs`` at a time; returns slug -> reason for each point that failed.

    ``prefixes`` (slug -> :class:`SharedPrefix`, from :func:`shared_prefixes`):
    each prefix not yet run is run first, once, and those points branch from
    its checkpoint; a point whose prefix failed fails too. A run still going
    after ``timeout_s`` seconds is stopped and counts as failed (its directory
    stays unfinished, so the next sweep resumes it). On an interruption
    (Ctrl-C, or ``stop`` set, as the sweep's SIGTERM handler does) the running
    subprocesses are stopped, finished runs stay, and KeyboardInterrupt
    propagates.

    ``engine="shared"`` runs the points (and prefixes) in at most ``jobs``
    batches, each one subprocess with one simulation engine for all its runs
    (:mod:`fedunlearn.sweep_engine`; ``command`` is not used); ``timeout_s``
    then bounds each run on average (a batch of n runs gets n x ``timeout_s``).
    """
    prefixes = dict(prefixes or {})
    if engine == "shared":
        return _run_batches(plan, points, jobs, progress, timeout_s, stop, prefixes)
    unique = {p.name: p for p in prefixes.values()}
    pending = {name for name, p in unique.items() if not prefix_ready(plan, p)}
    work = [_prefix_job(plan, unique[name]) for name in sorted(pending)]
    for point in points:
        prefix = prefixes.get(point.slug)
        waits = prefix is not None and prefix.name in pending
        work.append(_point_job(plan, point, command, prefix, waits))
    failed = run_jobs(work, jobs, progress, timeout_s, stop)
    return {p.slug: failed[p.slug] for p in points if p.slug in failed}


def _run_batches(
    plan: SweepPlan,
    points: Sequence[SweepPoint],
    jobs: int,
    progress: Progress,
    timeout_s: float | None,
    stop: threading.Event | None,
    prefixes: Mapping[str, SharedPrefix],
) -> dict[str, str]:
    batches = plan_batches(plan, points, jobs, prefixes)
    work = [batch_job(plan, i, runs, prefixes) for i, runs in enumerate(batches)]
    longest = max((len(runs) for runs in batches), default=1)
    failed_jobs = run_jobs(work, jobs, progress, timeout_s and timeout_s * longest, stop)
    failed: dict[str, str] = {}
    for i, runs in enumerate(batches):
        if f"batch:{i}" in failed_jobs:
            failed |= batch_failures(plan, i, runs, failed_jobs[f"batch:{i}"])
    labels = {r.key: r.label for runs in batches for r in runs}
    for n, point in enumerate(points, 1):  # each point's fate, as a process per point reports it
        why = failed.get(point.slug)
        progress(
            f"[{n}/{len(points)}] {labels.get(point.slug, point.label)}: "
            + ("done" if why is None else f"FAILED ({why})")
        )
    return {p.slug: failed[p.slug] for p in points if p.slug in failed}


# ------------------------------------------------------------------ summary
def sweep_long_table(plan: SweepPlan) -> pd.DataFrame:
    """The finished runs' ``metrics.csv`` stacked, with ``run``, ``seed`` and one column per grid key
    (``method`` from each point's scenario)."""
    frames = []
    for point in plan.points:
        run_dir = plan.run_dir(point)
        if not is_complete(run_dir):
            continue
        m = pd.read_csv(run_dir / "metrics.csv")
        m["method"] = point.scenario.deletion.method
        m.insert(0, "run", point.slug)
        m.insert(1, "seed", point.scenario.seed)
        for i, (k, v) in enumerate(point.assignments):
            if k != SEED_KEY:
                m.insert(2 + i, k, format_value(v))
        frames.append(m)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def first_request_round(scenario: Scenario) -> int | None:
    """Round of the scenario's first deletion request (explicit or drawn), None without one."""
    requests = scenario.effective_requests
    return min(r.round for r in requests) if requests else None


def write_summary(plan: SweepPlan) -> pd.DataFrame | None:
    """``summary.csv`` (paired long table), ``summary-variants.csv`` (per variant) and ``summary.md``.

    ``summary.csv`` has one row per (other grid keys, method, metric, at) with
    the columns of :data:`fedunlearn.reports.contrasts.SUMMARY_COLUMNS`; it is
    returned. Arms are paired by seed and every grid key but the method.
    """
    long = sweep_long_table(plan)
    if long.empty:
        return None
    keys = list(plan.group_keys)
    others = [k for k in keys if k != METHOD_KEY]
    firsts = {p.slug: first_request_round(p.scenario) for p in plan.points}
    paired = paired_summary(run_figures(long, others, firsts), others)
    atomic_write_csv(plan.out / "summary.csv", paired)
    runs, agg = summarize(long, keys, METHOD_KEY if METHOD_KEY in keys else None)
    atomic_write_csv(plan.out / "summary-variants.csv", agg)
    base = plan.points[0].scenario
    head = (
        f"# Sweep: {base.name} ({plan.scenario_path})\n\n"
        f"{len(runs)} of {len(plan.points)} runs finished. Each method against the control arm (`none`: requests "
        "recorded, nothing erased) and against Federated Retrain, paired by seed and every other grid key: Δ = "
        "mean over seeds of (method minus reference) with its 95 % percentile bootstrap interval; a verdict names "
        "a rise or a fall only when the interval excludes 0. `final`: each run's last round; `erasure`: the first "
        "global evaluation at or after the first deletion request. Global test Risk II (C_FP = "
        f"{base.evaluation.c_fp:g}, C_FN = {base.evaluation.c_fn:g}), FNR, BAC, AUC; UBAC and MIA efficacy of the "
        "deleting sites' forget sets pooled over sites and requests (MIA: closer to Retrain is better, not lower); "
        "costs at the final round (seconds / images: all site training and unlearning; erasure: the unlearning "
        "passes, for Retrain the whole retraining). Numbers in summary.csv.\n\n"
    )
    variants = (
        "\n\n## Per variant (final round)\n\nMean ± std over seeds; Δ = method minus Federated Retrain (means). "
        "Numbers in summary-variants.csv.\n\n" + to_markdown(summary_markdown(runs, agg, keys))
    )
    atomic_write_text(
        plan.out / "summary.md",
        head + to_markdown(paired_markdown(paired, others)) + variants + "\n",
    )
    return paired


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep call did."""

    skipped: tuple[str, ...]
    ran: tuple[str, ...]
    failed: dict[str, str]
    summary: pd.DataFrame | None


def run_sweep(
    plan: SweepPlan,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    timeout_s: float | None = None,
    command: Callable[[SweepPlan, SweepPoint], list[str]] | None = None,
    share_prefix: bool = True,
    engine: str = "shared",
) -> SweepOutcome:
    """Run the plan's unfinished points, then write the summary.

    Parameters
    ----------
    plan : SweepPlan
        From :func:`plan_sweep`.
    jobs : int
        Points run at once, each as its own subprocess with its own Ray.
    progress : Progress, optional
        Progress lines (quiet by default).
    timeout_s : float, optional
        Stop a run still going after this many seconds (it counts as failed).
    share_prefix : bool
        Run the rounds before the first deletion request once for the points
        that share them, and branch those points from its checkpoint
        (:mod:`fedunlearn.sweep_prefix`); False (``--no-share-prefix``) runs
        every point from round 1.
    engine : str
        ``shared`` (default): each of the ``jobs`` slots runs a batch of points
        in one subprocess and one simulation engine, kept warm from run to run
        (:mod:`fedunlearn.sweep_engine`); ``per-point`` (``--engine
        per-point``): each point is its own ``python -m fedunlearn run``
        subprocess with its own Ray. ``command`` (a stand-in for that
        subprocess, for tests) implies ``per-point``.
    """
    if engine not in ENGINES:
        raise SweepError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if command is not None:
        engine = "per-point"
    if jobs < 1:
        raise SweepError(f"--jobs must be at least 1, got {jobs}")
    if timeout_s is not None and timeout_s <= 0:
        raise SweepError(f"--run-timeout must be a positive number of seconds, got {timeout_s:g}")
    progress = progress or Progress(quiet=True)
    plan.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(plan.out / "sweep.json", plan.describe())
    for point in plan.points:
        atomic_write_text(plan.scenario_file(point), scenario_to_yaml(point.scenario))
    todo = pending_points(plan, progress)
    todo_slugs = {p.slug for p in todo}
    skipped = tuple(p.slug for p in plan.points if p.slug not in todo_slugs)
    twins = reference_twins(plan, todo)
    to_run = [p for p in todo if p.slug not in twins]
    progress(
        f"{len(plan.points)} grid point(s): {len(skipped)} already finished, {len(to_run)} to run, "
        f"{jobs} at a time"
        + (f", {len(twins)} to copy from a reference arm run" if twins else "")
        + (" (one simulation engine per batch of points)" if engine == "shared" else "")
    )
    prefixes = shared_prefixes(plan, to_run) if share_prefix else {}
    if prefixes:
        shared = {p.name: p for p in prefixes.values()}
        progress(
            f"{len(prefixes)} point(s) branch from {len(shared)} shared prefix(es) (the rounds before their "
            f"first deletion request): {', '.join(p.label() for p in shared.values())}"
        )
    # SIGTERM only sets a flag that the job loop checks: an exception raised inside the handler can land in
    # code that swallows it (an at-fork hook of `logging` while a job is being started) and be lost.
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    except ValueError:  # not the main thread: leave SIGTERM alone
        previous = None
    try:
        failed = run_points(
            plan, to_run, jobs, progress, command or run_command, timeout_s, stop, prefixes, engine
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    failed |= copy_twins(plan, twins, progress)
    summary = write_summary(plan)
    return SweepOutcome(
        skipped, tuple(p.slug for p in todo if p.slug not in failed), failed, summary
    )


__all__ = [
    "GridAxis",
    "SharedPrefix",
    "SweepError",
    "SweepOutcome",
    "SweepPlan",
    "SweepPoint",
    "format_value",
    "is_complete",
    "parse_grid",
    "parse_value",
    "pending_points",
    "plan_sweep",
    "run_points",
    "run_sweep",
    "shared_prefixes",
    "slugify",
    "split_values",
    "sweep_long_table",
    "with_reference_arms",
    "write_summary",
]
