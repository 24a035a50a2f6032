"""The sweep's job runner: subprocesses run N at a time, some waiting for another to succeed first.

Each :class:`Job` is one ``python -m fedunlearn run`` subprocess (its own Ray)
with its log file, a check of success read from what it wrote, an optional
step run just before it starts (a grid point branching from its shared prefix,
:mod:`fedunlearn.sweep_prefix`) and optionally the job it waits for (that
prefix). :func:`run_jobs` starts, times out and stops them; a job whose
prerequisite failed fails without starting. :mod:`fedunlearn.sweeps` builds the
jobs of a sweep.
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

from fedunlearn.errors import FedunlearnError
from fedunlearn.progress import Progress


@dataclass(frozen=True)
class Job:
    """One subprocess of a sweep.

    ``command`` and ``prepare`` are called when the job starts (after ``after``
    succeeded), so the command may depend on what ``prepare`` wrote.
    """

    name: str
    label: str
    log: Path
    command: Callable[[], list[str]]
    succeeded: Callable[[], bool]
    prepare: Callable[[], None] | None = None
    after: str | None = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM if the sweep itself is killed, so no run goes on orphaned."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def last_error(log: Path) -> str:
    """The last ``fedunlearn: error:`` line of a log (else its last line), at most 300 characters."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errors = [ln for ln in lines if ln.startswith("fedunlearn: error:")]
    return (errors or lines or [""])[-1][:300]


def stop_processes(procs: Sequence[subprocess.Popen], grace_s: float = 20.0) -> None:
    """SIGINT (each run shuts its Ray down), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in procs if p.poll() is None]
        for p in alive:
            p.send_signal(sig)
        deadline = time.monotonic() + wait
        while any(p.poll() is None for p in alive) and time.monotonic() < deadline:
            time.sleep(0.1)


def _start(job: Job) -> subprocess.Popen:
    if job.prepare is not None:
        job.prepare()
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log, "w", encoding="utf-8") as fh:
        return subprocess.Popen(
            job.command(),
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )


def _next_ready(queue: list[Job], done: set[str], failed: dict[str, str]) -> Job | None:
    """Pop the first job whose prerequisite succeeded; jobs whose prerequisite failed fail here."""
    for job in list(queue):
        if job.after is not None and job.after in failed:
            queue.remove(job)
            failed[job.name] = f"{job.after} failed ({failed[job.after]})"
        elif job.after is None or job.after in done:
            queue.remove(job)
            return job
    return None


def run_jobs(
    jobs: Sequence[Job],
    limit: int,
    progress: Progress,
    timeout_s: float | None = None,
    stop: threading.Event | None = None,
) -> dict[str, str]:
    """Run ``jobs``, ``limit`` at a time; returns name -> reason for each job that failed.

    A job still going after ``timeout_s`` seconds is stopped and counts as
    failed. On an interruption (Ctrl-C, or ``stop`` set) the running
    subprocesses are stopped and KeyboardInterrupt propagates.
    """
    queue, running, failed, done = list(jobs), {}, {}, set()
    total, finished = len(jobs), 0
    try:
        while queue or running:
            while len(running) < limit and (job := _next_ready(queue, done, failed)) is not None:
                try:
                    running[_start(job)] = (job, time.monotonic())
                except (FedunlearnError, OSError) as exc:
                    failed[job.name] = str(exc)
                    progress(f"{job.label}: FAILED before it started ({exc})")
                    continue
                progress(f"started {job.label}")
            if not running:  # what is left waits for a job that is not in the list
                failed |= {j.name: f"waits for {j.after}, which is not run" for j in queue}
                queue.clear()
            time.sleep(0.2)
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt("stopped by a signal")
            now = time.monotonic()
            late = {p for p, (_, t0) in running.items() if timeout_s and now - t0 > timeout_s}
            stop_processes(list(late))
            for proc in [p for p in running if p.poll() is not None]:
                job, t0 = running.pop(proc)
                finished += 1
                secs = time.monotonic() - t0
                if proc.returncode == 0 and job.succeeded():
                    done.add(job.name)
                    progress(f"[{finished}/{total}] {job.label}: done in {secs:.0f}s")
                    continue
                failed[job.name] = (
                    f"stopped after the run timeout of {timeout_s:g}s"
                    if proc in late
                    else last_error(job.log) or f"exit code {proc.returncode}"
                )
                progress(
                    f"[{finished}/{total}] {job.label}: FAILED ({failed[job.name]}); log {job.log}"
                )
    except BaseException:
        stop_processes(list(running))
        raise
    return failed
