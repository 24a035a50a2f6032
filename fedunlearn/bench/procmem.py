"""Process memory from ``/proc`` (Linux): high-water marks, and Ray actors watched while a run goes.

No psutil: the figures are read straight from ``/proc/PID/status`` (``VmHWM``,
the peak resident set, and ``VmRSS``) and ``/proc/PID/smaps_rollup`` (``Pss``
and private pages, which say whether memory is shared with other processes).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")
ACTOR_MARK = "ClientAppActor"
"""Ray names the process of a Flower client actor ``ray::ClientAppActor...``."""


def _kb_fields(path: Path, names: tuple[str, ...]) -> dict[str, float]:
    """``Name: <n> kB`` lines of a /proc file, in MiB; missing names are absent."""
    out: dict[str, float] = {}
    try:
        text = path.read_text()
    except (OSError, ValueError):  # the process is gone, or the file is unreadable
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in names:
            parts = rest.split()
            if parts:
                out[key] = int(parts[0]) / 1024.0
    return out


def status_mb(pid: int | str = "self") -> dict[str, float]:
    """``VmHWM`` (peak RSS) and ``VmRSS`` of a process, in MiB (empty when it is gone)."""
    return _kb_fields(_PROC / str(pid) / "status", ("VmHWM", "VmRSS"))


def sharing_mb(pid: int | str = "self") -> dict[str, float]:
    """``Rss``, ``Pss`` and private (``Private_Clean`` + ``Private_Dirty``) memory, in MiB."""
    f = _kb_fields(
        _PROC / str(pid) / "smaps_rollup", ("Rss", "Pss", "Private_Clean", "Private_Dirty")
    )
    if not f:
        return {}
    return {
        "rss": f.get("Rss", 0.0),
        "pss": f.get("Pss", 0.0),
        "private": f.get("Private_Clean", 0.0) + f.get("Private_Dirty", 0.0),
    }


def reset_peak(pid: int | str = "self") -> bool:
    """Reset the process's ``VmHWM`` to its current RSS (``echo 5 > clear_refs``); False if refused."""
    try:
        (_PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` in the process tree (one scan of ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent id; the command name (field 2) may hold spaces, so split after ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def cmdline(pid: int) -> str:
    try:
        return (
            (_PROC / str(pid) / "cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
        )
    except OSError:
        return ""


@dataclass
class ActorPeak:
    """The largest figures seen for one actor process."""

    hwm_mb: float = 0.0
    pss_mb: float = 0.0
    private_mb: float = 0.0


@dataclass
class ActorMonitor:
    """Samples the Flower client actors below this process every ``period`` seconds.

    Use as a context manager around a simulation. Only this process's own
    descendants are watched, so other Ray clusters on the machine are ignored.
    ``VmHWM`` only grows, so the last sample of an actor is its peak, short
    of whatever it allocates in its last ``period`` seconds.
    """

    period: float = 0.5
    peaks: dict[int, ActorPeak] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ActorMonitor:
        self._thread = threading.Thread(target=self._loop, name="bench-actor-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            self.sample(me)
            self._stop.wait(self.period)

    def sample(self, root: int) -> None:
        for pid in descendants(root):
            if pid not in self.peaks and ACTOR_MARK not in cmdline(pid):
                continue
            status = status_mb(pid)
            if not status:
                continue
            peak = self.peaks.setdefault(pid, ActorPeak())
            if status.get("VmHWM", 0.0) >= peak.hwm_mb:
                share = sharing_mb(pid)
                peak.hwm_mb = status.get("VmHWM", 0.0)
                peak.pss_mb = max(peak.pss_mb, share.get("pss", 0.0))
                peak.private_mb = max(peak.private_mb, share.get("private", 0.0))

    def largest(self) -> ActorPeak | None:
        """The actor with the highest peak RSS, or None when no actor was seen."""
        return max(self.peaks.values(), key=lambda p: p.hwm_mb, default=None)
