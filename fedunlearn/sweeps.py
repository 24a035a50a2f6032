"""``fedunlearn sweep``: a grid of scenarios, run resumably, summarised against the control arm and Retrain.

The grid is parsed once into a frozen :class:`SweepPlan`; every point is
validated before anything runs (:mod:`fedunlearn.sweep_plan`, whose names this
module exports too). A grid that compares erasure methods (it
varies ``deletion.method``, or its base scenario sets a method or deletion
requests) gets two reference arms on its ``deletion.method`` axis unless told
otherwise: the control arm ``none`` (requests recorded, nothing erased) and
Federated Retrain, so that every method is paired by seed and every other grid
key with both. Each point runs as its own
``python -m fedunlearn run`` subprocess (its own Ray) into
``DIR/runs/<slug>/``; a run whose ``manifest.json`` says ``complete`` is never
redone, a half-finished one resumes from its newest checkpoint
(``run --resume``), or is removed and redone when it has none. The summary
(``summary.csv``: paired differences with bootstrap intervals and verdicts;
``summary-variants.csv``: the per-variant figures; ``summary.md``) is computed
from the runs' ``metrics.csv`` only, by :mod:`fedunlearn.reports.contrasts` and
:mod:`fedunlearn.reports.tables`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.checkpoint import latest_checkpoint
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


# ------------------------------------------------------------------ state of run dirs
def _comparable(scenario: dict[str, Any]) -> dict[str, Any]:
    data = dict(scenario.get("data") or {})
    data.pop("root", None)  # the same file may sit elsewhere; the manifest keeps its md5
    return {**scenario, "data": data}


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
    try:
        done = scenario_from_mapping(read_scenario_yaml(run_dir / "scenario.yaml")).model_dump(
            mode="json"
        )
    except ScenarioError:
        return None
    if _comparable(done) != _comparable(point.scenario.model_dump(mode="json")):
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
            if _comparable(done) != _comparable(point.scenario.model_dump(mode="json")):
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


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM if the sweep itself is killed, so no run goes on orphaned."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _last_error(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if ln.startswith("fedunlearn: error:")]
    return (errors or lines or [""])[-1][:300]


def _stop(procs: Sequence[subprocess.Popen], grace_s: float = 20.0) -> None:
    """SIGINT (each run shuts its Ray down), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in procs if p.poll() is None]
        for p in alive:
            p.send_signal(sig)
        deadline = time.monotonic() + wait
        while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
            time.sleep(0.1)


def run_points(
    plan: SweepPlan,
    points: Sequence[SweepPoint],
    jobs: int,
    progress: Progress,
    command: Callable[[SweepPlan, SweepPoint], list[str]] = run_command,
    timeout_s: float | None = None,
    stop: threading.Event | None = None,
) -> dict[str, str]:
    """Run ``points``, ``jobs`` at a time; returns slug -> reason for each point that failed.

    A run still going after ``timeout_s`` seconds is stopped and counts as
    failed (its directory stays unfinished, so the next sweep redoes it). On an
    interruption (Ctrl-C, or ``stop`` set, as the sweep's SIGTERM handler does)
    the running subprocesses are stopped, finished runs stay, and
    KeyboardInterrupt propagates.
    """
    queue, running, failed = list(points), {}, {}
    total, finished = len(points), 0
    try:
        while queue or running:
            while queue and len(running) < jobs:
                point = queue.pop(0)
                log = plan.log_file(point)
                log.parent.mkdir(parents=True, exist_ok=True)
                with open(log, "w", encoding="utf-8") as fh:
                    proc = subprocess.Popen(
                        command(plan, point),
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                    )
                running[proc] = (point, time.monotonic())
                progress(f"started {point.label}")
            time.sleep(0.2)
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt("stopped by a signal")
            late = {
                p
                for p, (_, t0) in running.items()
                if timeout_s and time.monotonic() - t0 > timeout_s
            }
            _stop(list(late))
            for proc in [p for p in running if p.poll() is not None]:
                point, t0 = running.pop(proc)
                finished += 1
                secs = time.monotonic() - t0
                if proc.returncode == 0 and is_complete(plan.run_dir(point)):
                    progress(f"[{finished}/{total}] {point.label}: done in {secs:.0f}s")
                else:
                    reason = (
                        f"stopped after the run timeout of {timeout_s:g}s"
                        if proc in late
                        else _last_error(plan.log_file(point)) or f"exit code {proc.returncode}"
                    )
                    failed[point.slug] = reason
                    progress(
                        f"[{finished}/{total}] {point.label}: FAILED ({reason}); log {plan.log_file(point)}"
                    )
    except BaseException:
        _stop(list(running))
        raise
    return failed


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
    command: Callable[[SweepPlan, SweepPoint], list[str]] = run_command,
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
    """
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
    progress(
        f"{len(plan.points)} grid point(s): {len(skipped)} already finished, {len(todo)} to run, {jobs} at a time"
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
        failed = run_points(plan, todo, jobs, progress, command, timeout_s, stop)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    summary = write_summary(plan)
    return SweepOutcome(
        skipped, tuple(p.slug for p in todo if p.slug not in failed), failed, summary
    )


__all__ = [
    "GridAxis",
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
    "slugify",
    "split_values",
    "sweep_long_table",
    "with_reference_arms",
    "write_summary",
]
