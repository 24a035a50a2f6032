"""``fedunlearn run``: one scenario through Flower's simulation engine on Ray.

The run directory gets the resolved scenario first and ``manifest.json``
(``complete: true``) last; a run that stops half-way is marked incomplete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.scenario import Scenario
from fedunlearn.progress import Progress


def client_resources(scenario: Scenario) -> dict[str, float]:
    """CPUs and (fractional) GPUs per hospital: a GPU share by default only where CUDA is present."""
    gpus: Any = scenario.ray.num_gpus_per_client
    if gpus == "auto":
        gpus = round(1.0 / min(scenario.sites.count, 4), 4) if torch.cuda.is_available() else 0.0
    return {"num_cpus": float(scenario.ray.num_cpus_per_client), "num_gpus": float(gpus)}


def backend_config(scenario: Scenario, ray_tmp: str, verbose: bool = False) -> dict[str, Any]:
    init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": verbose}
    if scenario.ray.address:
        init["address"] = scenario.ray.address
    else:
        init["num_cpus"] = max(os.cpu_count() or 1, int(scenario.ray.num_cpus_per_client))
        init["_temp_dir"] = ray_tmp
    return {"client_resources": client_resources(scenario), "init_args": init}


def run_scenario(scenario: Scenario, run_dir: Path, *, quiet: bool = False, verbose: bool = False) -> Path:
    """Run ``scenario`` through Flower's simulation engine with the Ray backend; returns ``run_dir``."""
    import ray
    from flwr.simulation import run_simulation

    from fedunlearn.federated.client_app import app as client_app
    from fedunlearn.federated.server_app import check_new_run_dir, make_server_app, start_run_dir

    from fedunlearn.federated.site import scenario_dataset

    run_dir = Path(run_dir).resolve()
    check_new_run_dir(run_dir)
    scenario_dataset(scenario)  # fail here, before Ray starts, if the data is missing or broken; warn once
    start_run_dir(run_dir, scenario)
    ray_tmp = tempfile.mkdtemp(prefix="fu-ray-", dir=os.environ.get("FEDUNLEARN_RAY_TMP", "/tmp"))
    os.environ.setdefault("RAY_TMPDIR", ray_tmp)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    if not verbose:
        # Flower's own INFO/deprecation lines would bury the progress lines; failures still reach
        # the server as error replies and are logged in events.jsonl.
        logging.getLogger("flwr").setLevel(logging.ERROR)
    progress = Progress(quiet=quiet)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            run_simulation(
                server_app=make_server_app(scenario, run_dir, progress),
                client_app=client_app,
                num_supernodes=scenario.sites.count,
                backend_name="ray",
                backend_config=backend_config(scenario, ray_tmp, verbose),
                verbose_logging=verbose,
            )
        finally:
            if ray.is_initialized():
                ray.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    if not manifest.get("complete"):
        raise FedunlearnError(f"the simulation stopped before the end; {run_dir} is incomplete (see events.jsonl and the log above)")
    return run_dir
