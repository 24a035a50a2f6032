"""``fedunlearn sweep``: a grid of scenarios, run resumably, summarised against the control arm and Retrain.

The grid is parsed once into a frozen :class:`SweepPlan`; every point is
validated before anything runs. A grid that compares erasure methods (it
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

import hashlib
import itertools
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.checkpoint import latest_checkpoint
from fedunlearn.federated.rundir import looks_like_run_dir, remove_run_dir
from fedunlearn.federated.scenario import (
    DeletionSection, Scenario, ScenarioError, apply_overrides, key_path_problem, read_scenario_yaml,
    scenario_from_mapping, scenario_to_yaml,
)
from fedunlearn.io import atomic_write_csv, atomic_write_json, atomic_write_text, is_complete, now_iso
from fedunlearn.progress import Progress
from fedunlearn.reports.contrasts import paired_markdown, paired_summary, run_figures
from fedunlearn.reports.tables import CONTROL, RETRAIN, summarize, summary_markdown
from fedunlearn.study.summary import to_markdown

SEED_KEY = "seed"
METHOD_KEY = "deletion.method"
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")  # YAML 1.1 reads 1e-3 as a string
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")
_SLUG_MAX = 180


class SweepError(FedunlearnError):
    """A bad grid or sweep directory; one line per problem."""


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid key=v1,v2``: a scenario key path and its values (parsed YAML scalars)."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SweepPoint:
    """One grid point: its assignments, directory name and validated scenario."""

    assignments: tuple[tuple[str, Any], ...]
    slug: str
    scenario: Scenario = field(compare=False)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.assignments) or "(base scenario)"


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep will do, decided before anything runs."""

    scenario_path: Path
    overrides: tuple[str, ...]
    axes: tuple[GridAxis, ...]
    points: tuple[SweepPoint, ...]
    out: Path
    added_arms: tuple[str, ...] = ()  # deletion.method values the sweep added (control, Retrain)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.axes)

    @property
    def group_keys(self) -> tuple[str, ...]:
        """The keys of a variant: the grid keys less the seed (summaries average over seeds)."""
        return tuple(k for k in self.keys if k != SEED_KEY)

    def run_dir(self, point: SweepPoint) -> Path:
        return self.out / "runs" / point.slug

    def scenario_file(self, point: SweepPoint) -> Path:
        return self.out / "scenarios" / f"{point.slug}.yaml"

    def log_file(self, point: SweepPoint) -> Path:
        return self.out / "logs" / f"{point.slug}.log"

    def describe(self) -> dict[str, Any]:
        """The content of ``sweep.json``."""
        return {
            "kind": "fedunlearn-sweep", "created": now_iso(), "scenario": str(self.scenario_path),
            "overrides": list(self.overrides),
            "grid": [{"key": a.key, "values": list(a.values)} for a in self.axes],
            "added_arms": list(self.added_arms),
            "points": [{"slug": p.slug, "assignments": dict(p.assignments), "run_dir": f"runs/{p.slug}",
                        "scenario": f"scenarios/{p.slug}.yaml"} for p in self.points],
        }


# ------------------------------------------------------------------ parsing
def format_value(value: Any) -> str:
    """A grid value as text: strings as they are, anything else as JSON (``0.5``, ``true``, ``[1, 2]``)."""
    return value if isinstance(value, str) else json.dumps(value)


def parse_value(text: str) -> Any:
    """A YAML scalar (``0.1`` -> float, ``rl`` -> str, ``true`` -> bool); ``1e-3`` is a float too."""
    text = text.strip()
    value = yaml.safe_load(text)
    if isinstance(value, str) and _NUMBER.match(text):
        return float(text)
    return value


def split_values(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: ``a,[1,2],'x,y'`` -> ``a``, ``[1,2]``, ``'x,y'``."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_grid(text: str) -> GridAxis:
    """Parse one ``--grid KEY=V1,V2,...`` argument.

    Raises
    ------
    SweepError
        One line naming the argument: no ``=``, empty key or value, duplicate
        values, or a key path that the scenario schema does not have.
    """
    where = f"--grid {text}"
    if "=" not in text:
        raise SweepError(f"{where}: expected KEY=V1,V2,... e.g. --grid deletion.method=salun-cra,retrain")
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key or any(not p for p in key.split(".")):
        raise SweepError(f"{where}: empty key path; write e.g. --grid training.rounds=5,10")
    texts = split_values(raw)
    if any(not t.strip() for t in texts):
        raise SweepError(f"{where}: empty value; separate values with single commas, e.g. {key}=a,b")
    try:
        values = tuple(parse_value(t) for t in texts)
    except yaml.YAMLError:
        raise SweepError(f"{where}: a value is not valid YAML; quote it, e.g. {key}='a: b'") from None
    shown = [format_value(v) for v in values]
    dupes = sorted({s for s in shown if shown.count(s) > 1})
    if dupes:
        raise SweepError(f"{where}: value(s) {', '.join(dupes)} given twice; list each value once")
    problem = key_path_problem(key, Scenario)
    if problem:
        raise SweepError(f"{where}: {problem}")
    return GridAxis(key, values)


def slugify(assignments: Sequence[tuple[str, Any]]) -> str:
    """Directory name of a grid point: ``deletion.method=rl,seed=0`` (unsafe characters -> ``-``)."""
    if not assignments:
        return "base"
    slug = ",".join(_SLUG_UNSAFE.sub("-", f"{k}={format_value(v)}") for k, v in assignments)
    if len(slug) > _SLUG_MAX:  # folder names are limited to 255 bytes: keep a readable head and a stable digest
        slug = f"{slug[:_SLUG_MAX]}-{hashlib.sha1(slug.encode()).hexdigest()[:10]}"
    return slug


def _erases(base: dict[str, Any]) -> bool:
    """Whether the base scenario sets a deletion method or asks for deletions (explicit or stochastic)."""
    deletion = base.get("deletion")
    return isinstance(deletion, dict) and any(deletion.get(k) for k in ("method", "requests", "stochastic"))


def with_reference_arms(axes: Sequence[GridAxis], base_method: str, erases: bool, *, control: bool = True,
                        retrain: bool = True) -> tuple[tuple[GridAxis, ...], tuple[str, ...], bool]:
    """The grid with the control arm and Retrain on its ``deletion.method`` axis.

    Parameters
    ----------
    axes : sequence of GridAxis
        The parsed ``--grid`` arguments.
    base_method : str
        ``deletion.method`` of the base scenario.
    erases : bool
        Whether the base scenario sets a method or deletion requests; without
        a ``deletion.method`` axis, arms are added only then.
    control, retrain : bool
        Add the control arm (``none``) / Federated Retrain (``--no-control`` /
        ``--no-retrain`` turn them off).

    Returns
    -------
    tuple
        The axes (the method axis extended at its end, or a new one first,
        holding the base method then the arms), the values added, and whether
        the method axis is new.
    """
    wanted = [m for m, on in ((CONTROL, control), (RETRAIN, retrain)) if on]
    keys = [a.key for a in axes]
    if METHOD_KEY in keys:
        axis = axes[keys.index(METHOD_KEY)]
        added = tuple(m for m in wanted if m not in axis.values)
        new = GridAxis(METHOD_KEY, (*axis.values, *added))
        return tuple(new if a.key == METHOD_KEY else a for a in axes), added, False
    added = tuple(m for m in wanted if m != base_method)
    if not erases or not added:
        return tuple(axes), (), False
    return (GridAxis(METHOD_KEY, (base_method, *added)), *axes), added, True


def plan_sweep(scenario_path: str | Path, grids: Sequence[str], out: str | Path,
               overrides: Sequence[str] = (), *, control: bool = True, retrain: bool = True) -> SweepPlan:
    """Parse the grids and validate every point of their Cartesian product.

    Parameters
    ----------
    scenario_path : str or Path
        The base scenario YAML.
    grids : sequence of str
        ``KEY=V1,V2,...`` items; points are the product in the order given.
    out : str or Path
        The sweep directory.
    overrides : sequence of str
        ``--set key=value`` items applied to the base before the grid.
    control, retrain : bool
        Add the control arm (``deletion.method=none``) and Federated Retrain to
        the ``deletion.method`` axis where they are absent
        (:func:`with_reference_arms`). A method axis the sweep creates leaves
        the base method's points their old directory names, so a sweep made
        before the arms existed resumes.

    Raises
    ------
    SweepError
        With one line per problem: every bad ``--grid`` argument, else every
        grid point whose scenario is invalid (named by its assignments).
    """
    scenario_path = Path(scenario_path)
    problems, axes = [], []
    for text in grids:
        try:
            axes.append(parse_grid(text))
        except SweepError as err:
            problems.append(str(err))
    written = [t.split("=", 1)[0].strip() for t in grids if "=" in t]
    problems += [f"--grid {k}: key given in two --grid arguments; merge their values"
                 for k in dict.fromkeys(written) if written.count(k) > 1]
    keys = [a.key for a in axes]
    if problems:
        raise SweepError("\n".join(problems))
    base = apply_overrides(read_scenario_yaml(scenario_path), overrides)
    deletion = base.get("deletion") if isinstance(base.get("deletion"), dict) else {}
    base_method = deletion.get("method", DeletionSection.model_fields["method"].default)
    axes, added, new_axis = with_reference_arms(axes, base_method, _erases(base), control=control, retrain=retrain)
    keys = [a.key for a in axes]

    points, failures = [], []
    for combo in itertools.product(*(a.values for a in axes)):
        assignments = tuple(zip(keys, combo))
        named = tuple((k, v) for k, v in assignments if not (new_axis and k == METHOD_KEY and v == base_method))
        label = ", ".join(f"{k}={format_value(v)}" for k, v in assignments) or "(base scenario)"
        source = f"grid point {label}"
        try:
            raw = apply_overrides(base, [f"{k}={json.dumps(v)}" for k, v in assignments], source)
            points.append(SweepPoint(assignments, slugify(named), scenario_from_mapping(raw, source)))
        except ScenarioError as err:
            failures.append((source, str(err).removeprefix(source + ": ")))
    if failures:
        reasons = {reason for _, reason in failures}
        if len(failures) > 1 and len(failures) == len(points) + len(failures) and len(reasons) == 1:
            raise SweepError(f"{scenario_path} (every grid point): {reasons.pop()}")
        raise SweepError("\n".join(f"{source}: {reason}" for source, reason in failures))
    slugs = [p.slug for p in points]
    clashes = sorted({s for s in slugs if slugs.count(s) > 1})
    if clashes:
        raise SweepError(f"grid points share the directory name {clashes[0]!r} once unsafe characters are replaced; "
                         "use values that differ in letters or digits")
    return SweepPlan(scenario_path, tuple(overrides), tuple(axes), tuple(points), Path(out), added)


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
        done = scenario_from_mapping(read_scenario_yaml(run_dir / "scenario.yaml")).model_dump(mode="json")
    except ScenarioError:
        return None
    if _comparable(done) != _comparable(point.scenario.model_dump(mode="json")):
        return None
    try:
        checkpoint = latest_checkpoint(run_dir)
    except OSError as exc:
        raise SweepError(f"{run_dir}: cannot read its checkpoints ({exc.strerror or exc}); the run is kept: "
                         "fix the folder's permissions or storage and rerun the sweep") from None
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
                done = scenario_from_mapping(read_scenario_yaml(run_dir / "scenario.yaml")).model_dump(mode="json")
            except ScenarioError:
                done = {}
            if _comparable(done) != _comparable(point.scenario.model_dump(mode="json")):
                raise SweepError(f"{run_dir} holds a finished run of another scenario than grid point "
                                 f"{point.label}; pass another --out or remove that directory")
            continue
        if run_dir.exists():
            if not looks_like_run_dir(run_dir):
                raise SweepError(f"{run_dir} exists but is not a fedunlearn run directory; remove it or pass another --out")
            if (after := resumable_round(run_dir, point)) is not None:
                progress(f"{point.label}: resuming the unfinished run in {run_dir} after round {after}")
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
        return [sys.executable, "-m", "fedunlearn", "run", "--resume", str(run_dir), "--quiet",
                *(["--data-root", root] if root else [])]
    return [sys.executable, "-m", "fedunlearn", "run", str(plan.scenario_file(point)), "--out", str(run_dir), "--quiet"]


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


def run_points(plan: SweepPlan, points: Sequence[SweepPoint], jobs: int, progress: Progress,
               command: Callable[[SweepPlan, SweepPoint], list[str]] = run_command,
               timeout_s: float | None = None, stop: threading.Event | None = None) -> dict[str, str]:
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
                    proc = subprocess.Popen(command(plan, point), stdout=fh, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
                running[proc] = (point, time.monotonic())
                progress(f"started {point.label}")
            time.sleep(0.2)
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt("stopped by a signal")
            late = {p for p, (_, t0) in running.items() if timeout_s and time.monotonic() - t0 > timeout_s}
            _stop(list(late))
            for proc in [p for p in running if p.poll() is not None]:
                point, t0 = running.pop(proc)
                finished += 1
                secs = time.monotonic() - t0
                if proc.returncode == 0 and is_complete(plan.run_dir(point)):
                    progress(f"[{finished}/{total}] {point.label}: done in {secs:.0f}s")
                else:
                    reason = (f"stopped after the run timeout of {timeout_s:g}s" if proc in late else
                              _last_error(plan.log_file(point)) or f"exit code {proc.returncode}")
                    failed[point.slug] = reason
                    progress(f"[{finished}/{total}] {point.label}: FAILED ({reason}); log {plan.log_file(point)}")
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
    atomic_write_text(plan.out / "summary.md", head + to_markdown(paired_markdown(paired, others)) + variants + "\n")
    return paired


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep call did."""

    skipped: tuple[str, ...]
    ran: tuple[str, ...]
    failed: dict[str, str]
    summary: pd.DataFrame | None


def run_sweep(plan: SweepPlan, *, jobs: int = 1, progress: Progress | None = None, timeout_s: float | None = None,
              command: Callable[[SweepPlan, SweepPoint], list[str]] = run_command) -> SweepOutcome:
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
    progress(f"{len(plan.points)} grid point(s): {len(skipped)} already finished, {len(todo)} to run, {jobs} at a time")
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
    return SweepOutcome(skipped, tuple(p.slug for p in todo if p.slug not in failed), failed, summary)


__all__ = [
    "GridAxis", "SweepError", "SweepOutcome", "SweepPlan", "SweepPoint", "format_value",
    "is_complete", "parse_grid", "parse_value", "pending_points", "plan_sweep", "run_points", "run_sweep",
    "slugify", "split_values", "sweep_long_table", "with_reference_arms", "write_summary",
]
