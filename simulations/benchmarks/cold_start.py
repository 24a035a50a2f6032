"""What a cold ClientApp costs per message under Flower's Deployment Engine.

    python simulations/benchmarks/cold_start.py [--data-root DIR] [--runs DEPLOYED SIMULATED]

Flower 1.42's SuperNode starts a fresh ``flwr-clientapp`` process for every
message (``run_clientapp`` pulls one message, answers it and exits; there is
no long-lived ClientApp), so each message pays for Python, torch, Flower and
fedunlearn imports, then for loading the dataset and cutting the site's shard.

1. Fresh processes (median of ``--repeats``): seconds to import the
   ClientApp, then to load the data (DermaMNIST 28 px from ``--data-root``,
   else the synthetic stand-in of the same size) and cut site 0's shards.
2. With ``--runs``: two run directories of one scenario, deployed and
   simulated (where Ray keeps the actors and the data warm); per round, the
   server's train and evaluate wall seconds of each, and the difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import fedunlearn.federated.client_app  # torch, flwr, the site code
t1 = time.perf_counter()
from fedunlearn.federated.scenario import scenario_from_mapping
from fedunlearn.federated.site import scenario_dataset, site_shards
root = sys.argv[1] or None
data = {"dataset": "dermamnist", "root": root} if root else {
    "dataset": "synthetic", "synthetic": {"n_train": 7007, "n_val": 1003, "n_test": 2005}}
scenario = scenario_from_mapping({"name": "cold", "data": data, "sites": {"count": 4}}, "cold")
scenario_dataset(scenario, quiet=True)
site_shards(scenario, 0)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "data_s": t2 - t1}))
"""


def fresh_process_costs(data_root: str | None, repeats: int) -> dict[str, float]:
    """Median seconds of a fresh process: imports, then data and shards (and the whole process)."""
    samples = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, data_root or ""],
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(s[k] for s in samples) for k in ("import_s", "data_s")}


def round_seconds(run_dir: Path) -> pd.DataFrame:
    """Per round: the server's train and evaluate wall seconds (``global``/``timing`` rows)."""
    m = pd.read_csv(run_dir / "metrics.csv")
    t = m[(m["site"] == "global") & (m["phase"] == "timing")]
    t = t[t["metric"].isin(["train_seconds", "evaluate_seconds"])]
    return t.pivot_table(index="round", columns="metric", values="value")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None, help="folder with dermamnist.npz")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--runs", nargs=2, metavar=("DEPLOYED", "SIMULATED"), default=None)
    args = p.parse_args()
    c = fresh_process_costs(args.data_root, args.repeats)
    data = "dermamnist 28px" if args.data_root else "synthetic 28px (DermaMNIST-sized)"
    print(
        f"fresh ClientApp process: imports {c['import_s']:.2f} s, {data} + shards {c['data_s']:.2f} s, "
        f"{c['import_s'] + c['data_s']:.2f} s per message (median of {args.repeats})"
    )
    if args.runs:
        dep, sim = (round_seconds(Path(r)) for r in args.runs)
        both = dep.merge(
            sim, left_index=True, right_index=True, suffixes=("_deployed", "_simulated")
        )
        print(both.round(2).to_string())
        extra = (dep - sim).mean()
        print(
            f"deployed minus simulated, mean per round: train {extra['train_seconds']:.2f} s, "
            f"evaluate {extra['evaluate_seconds']:.2f} s"
        )


if __name__ == "__main__":
    main()
