"""Memory figures read from /proc: this process's peak, and processes found below it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fedunlearn.bench.procmem import cmdline, descendants, reset_peak, sharing_mb, status_mb

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_status_reports_a_peak_at_least_the_current_rss() -> None:
    s = status_mb()
    assert s["VmHWM"] >= s["VmRSS"] > 0


def test_reset_brings_the_peak_down_to_the_current_rss() -> None:
    blob = bytearray(
        64 * 2**20
    )  # 64 MiB touched: the peak rises at least that far above what remains
    blob[::4096] = b"x" * len(blob[::4096])
    del blob
    high = status_mb()["VmHWM"]
    if not reset_peak():
        pytest.skip("clear_refs refused here")
    after = status_mb()
    assert after["VmHWM"] < high and after["VmHWM"] == pytest.approx(after["VmRSS"], abs=8)


def test_a_child_process_is_a_descendant_and_its_command_line_is_read() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "bench-marker"])
    try:
        assert child.pid in descendants(__import__("os").getpid())
        assert "bench-marker" in cmdline(child.pid)
        assert sharing_mb(child.pid)["rss"] > 0
    finally:
        child.kill()
        child.wait()
