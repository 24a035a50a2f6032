"""Kill -9 a ``fedunlearn run`` subprocess and its Ray processes (the reliability and guard tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def kill_tree(proc: subprocess.Popen, ray_tmp: Path) -> None:
    """SIGKILL the run's process group, then any Ray process of its own Ray temp dir (raylet, GCS, workers)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if str(ray_tmp).encode() in cmdline.read_bytes():
                    left.append(int(cmdline.parent.name))
            except OSError:
                continue
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def start_run(args: list[str], ray_tmp: Path) -> subprocess.Popen:
    """``fedunlearn run ...`` in its own session; its output goes to a file (a pipe nobody reads would fill up)."""
    env = {**os.environ, "FEDUNLEARN_RAY_TMP": str(ray_tmp), "OMP_NUM_THREADS": "1"}
    with open(ray_tmp / "run.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "fedunlearn", "run", *args, "--quiet"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_when(proc: subprocess.Popen, ray_tmp: Path, ready, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(
                f"the run ended before the kill point: {(ray_tmp / 'run.log').read_text()[-2000:]}"
            )
        if time.monotonic() > deadline:
            kill_tree(proc, ray_tmp)
            pytest.fail("the kill point never came")
        time.sleep(0.05)
    kill_tree(proc, ray_tmp)
