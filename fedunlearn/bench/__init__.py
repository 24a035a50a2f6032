"""Performance benchmark of fedunlearn (``fedunlearn bench``): throughput, round overhead, erasure cost, memory.

Imported lazily, so that ``python -m fedunlearn.bench.gpu`` needs torch alone
(no flwr, ray, pandas or medmnist) on a bare GPU image.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BenchSettings", "BenchTable", "run_bench", "run_overhead"]


def __getattr__(name: str) -> Any:
    if name in ("BenchSettings", "run_bench", "run_overhead"):
        from fedunlearn.bench import runner

        return getattr(runner, name)
    if name == "BenchTable":
        from fedunlearn.bench.table import BenchTable

        return BenchTable
    raise AttributeError(f"module 'fedunlearn.bench' has no attribute {name!r}")
