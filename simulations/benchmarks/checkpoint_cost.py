"""What a per-round checkpoint costs: save and load time and size, small CNN and ResNet-18.

    python simulations/benchmarks/checkpoint_cost.py [METRICS_CSV]

METRICS_CSV: a run's metrics.csv to checkpoint with the model (default: a
synthetic table of 1,500 rows, about a 10-round, 4-site run). Prints one line
per model: median save seconds over 5 rounds, load seconds, checkpoint MB.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from fedunlearn.federated.checkpoint import latest_checkpoint, save_checkpoint
from fedunlearn.federated.ledger import ServerLedger
from fedunlearn.federated.recorder import COLUMNS
from fedunlearn.federated.transport import to_arrays
from fedunlearn.models import build_model


def _rows(path: str | None) -> pd.DataFrame:
    if path:
        return pd.read_csv(path)
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        [
            (r % 11, f"site-{r % 4}", "local-test", "salun-cra", f"m{r % 30}", rng.random(), "")
            for r in range(1500)
        ],
        columns=list(COLUMNS),
    )


def main() -> None:
    rows = _rows(sys.argv[1] if len(sys.argv) > 1 else None)
    plan = {"accepted": [0], "pending": {}, "withdrawing": {}}
    for name in ("small-cnn", "resnet18"):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp)
            ledger = ServerLedger(run_dir / "ledger.sqlite")
            ledger.request(0, "site-0", 1, 0.2, "random")
            arrays = to_arrays(build_model(name))
            saves = []
            for server_round in range(1, 6):
                t0 = time.perf_counter()
                path = save_checkpoint(
                    run_dir, server_round, arrays, SimpleNamespace(), rows, plan, ledger.path, 10
                )
                saves.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            latest_checkpoint(run_dir)
            load = time.perf_counter() - t0
            size = sum(p.stat().st_size for p in path.iterdir()) / 1e6
            print(
                f"{name}: save {np.median(saves):.3f} s (median of 5), load {load:.3f} s, {size:.1f} MB, "
                f"{len(rows)} metric rows"
            )


if __name__ == "__main__":
    main()
