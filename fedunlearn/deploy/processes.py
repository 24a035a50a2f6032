"""Processes the launcher starts, and everything they spawn, stopped by PID whatever happens.

A SuperLink spawns a SuperExec and a ServerApp process, a SuperNode a SuperExec
and a ClientApp process per message; some of them detach into their own
session. :class:`ProcessGroup` starts each command in a new session, records
the process tree under it while it runs (pid with start time, so that a reused
pid is never signalled) and, in :meth:`ProcessGroup.stop`, sends SIGTERM, then
SIGKILL, to exactly the processes it recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_PROC = Path("/proc")


def _identity(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, from /proc; None once it is gone or a zombie."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] == "Z":
        return None
    return int(fields[1]), fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every live descendant of ``root``: pid -> start time."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if entry.name.isdigit() and (ident := _identity(int(entry.name))):
            children.setdefault(ident[0], []).append(int(entry.name))
            started[int(entry.name)] = ident[1]
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = started[child]
                todo.append(child)
    return found


def _alive(pids: Mapping[int, str]) -> dict[int, str]:
    return {pid: t for pid, t in pids.items() if (ident := _identity(pid)) and ident[1] == t}


def _signal(pids: Mapping[int, str], sig: int) -> None:
    for pid in _alive(pids):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids: Mapping[int, str], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while (left := _alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


class ProcessGroup:
    """The processes of one deployment: started with :meth:`start`, all stopped by :meth:`stop`."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.procs: dict[str, subprocess.Popen] = {}
        self.known: dict[int, str] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, command: Sequence[str], log: Path, cwd: Path) -> subprocess.Popen:
        """Start ``command`` in its own session, its output in ``log``."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs[name], self.logs[name] = proc, log
        if ident := _identity(proc.pid):
            self.known[proc.pid] = ident[1]
        return proc

    def remember(self) -> None:
        """Record the current process trees (call it while they run: children may detach later)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                self.known.update(descendants(proc.pid))

    def exited(self) -> dict[str, int]:
        """Name -> exit code of the started processes that are gone."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def alive(self) -> list[int]:
        """The recorded processes still running (the same pid and start time)."""
        return sorted(_alive(self.known))

    def stop(self, grace_s: float = 15.0) -> list[int]:
        """SIGTERM every recorded process, SIGKILL what is left after ``grace_s``; returns pids that survived."""
        self.remember()
        for proc in reversed(list(self.procs.values())):  # nodes first, the SuperLink last
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if left := _wait_gone(self.known, grace_s):
            _signal(left, signal.SIGTERM)
            if left := _wait_gone(left, grace_s):
                _signal(left, signal.SIGKILL)
                left = _wait_gone(left, 5)
        return sorted(left)

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
