"""Terminal progress: one line per step, silenced by ``--quiet``."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    quiet: bool = False
    _t0: float = field(default_factory=time.perf_counter)

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(
                f"[{time.perf_counter() - self._t0:7.1f}s] {message}", file=sys.stderr, flush=True
            )
