"""``fedunlearn run``: one scenario through Flower's simulation engine on Ray.

The run directory gets the resolved scenario first and ``manifest.json``
(``complete: true``) last; a run that stops half-way is marked incomplete, and
``run_scenario(..., resume=True)`` (``fedunlearn run --resume RUN_DIR``)
continues it from its newest checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import torch

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.checkpoint import latest_checkpoint
from fedunlearn.federated.rundir import check_new_run_dir, check_resumable, start_run_dir
from fedunlearn.federated.scenario import Scenario
from fedunlearn.io import read_manifest
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


class _HideSimulatedFailures(logging.Filter):
    """Drop Flower's tracebacks of failures the scenario scheduled (events.jsonl logs each one in a line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return (
            "SimulatedSiteFailure" not in text
            and "An exception was raised when processing a message" not in text
        )


def check_inputs(scenario: Scenario) -> None:
    """Fail here, before Ray starts and before anything is written, if the data is missing or broken or the
    sites cannot be formed from it (the unofficial-file warning is shown once, here)."""
    from fedunlearn.federated.site import scenario_dataset, site_shards

    data = scenario_dataset(scenario)
    data.split("val"), data.split("test")
    try:
        site_shards(scenario, 0)  # cached: the sites reuse it
    except ValueError as exc:
        raise FedunlearnError(
            f"the {scenario.sites.count} sites cannot be formed from {data.name} {data.size}px: {exc}; "
            "lower sites.count or change sites.partition"
        ) from None


RAY_TMP_MAX = (
    28  # Ray adds about 78 bytes under it (our folder, its session and socket names): 107 in all
)


def _root_cause(exc: BaseException) -> str:
    """The innermost exception of a chain, in one line."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1]}" if text else type(exc).__name__


def _ray_root() -> str:
    """Where each run's Ray temp folder goes (``FEDUNLEARN_RAY_TMP``, else /tmp); refuses one too long."""
    ray_root = os.environ.get("FEDUNLEARN_RAY_TMP", "/tmp")
    if len(os.fsencode(os.path.abspath(ray_root))) > RAY_TMP_MAX:
        raise FedunlearnError(
            f"FEDUNLEARN_RAY_TMP={ray_root} is too long for Ray's socket paths (at most {RAY_TMP_MAX} "
            "bytes: Unix sockets are limited to 107); use a shorter folder, e.g. /tmp"
        )
    return ray_root


def _pause_round(scenario: Scenario, resumed: Path | None, until_round: int | None) -> int | None:
    """The round to pause after (None: run to the end); refuses one the run cannot stop at."""
    if until_round is None or until_round >= scenario.training.rounds:
        return None
    if until_round < 1:
        raise FedunlearnError(f"--until-round must be a round >= 1, got {until_round}")
    checkpoint = latest_checkpoint(resumed) if resumed is not None else None
    if checkpoint is not None and checkpoint.server_round >= until_round:
        raise FedunlearnError(
            f"{resumed} is past round {until_round} already (its newest checkpoint is of round "
            f"{checkpoint.server_round}); resume it without --until-round, or with a later round"
        )
    return until_round


def run_scenario(
    scenario: Scenario,
    run_dir: Path,
    *,
    quiet: bool = False,
    verbose: bool = False,
    resume: bool = False,
    until_round: int | None = None,
) -> Path:
    """Run ``scenario`` through Flower's simulation engine with the Ray backend; returns ``run_dir``.

    With ``resume``, ``run_dir`` is an unfinished run of this scenario and it
    continues from its newest checkpoint. With ``until_round`` (below
    ``training.rounds``), the run pauses after that round: incomplete, marked
    ``paused_after_round``, resumable (a sweep's shared prefix is such a run).
    """
    import ray
    from flwr.simulation import run_simulation

    from fedunlearn.federated.client_app import app as client_app
    from fedunlearn.federated.server_app import make_server_app

    run_dir = Path(run_dir).resolve()
    ray_root = _ray_root()
    if resume:
        check_resumable(run_dir)
    else:
        check_new_run_dir(run_dir)
    pause = _pause_round(scenario, run_dir if resume else None, until_round)
    check_inputs(scenario)
    if not resume:
        start_run_dir(run_dir, scenario)
    ray_tmp = tempfile.mkdtemp(prefix="fu-ray-", dir=ray_root)
    os.environ.setdefault("RAY_TMPDIR", ray_tmp)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    if not verbose:
        # Flower's own INFO/deprecation lines would bury the progress lines; failures still reach
        # the server as error replies and are logged in events.jsonl.
        logging.getLogger("flwr").setLevel(logging.ERROR)
        if not any(
            isinstance(f, _HideSimulatedFailures) for f in logging.getLogger("flwr").filters
        ):
            logging.getLogger("flwr").addFilter(_HideSimulatedFailures())
    progress = Progress(quiet=quiet)
    abort = threading.Event()  # tells the ServerApp's thread to stop waiting when the engine dies
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            run_simulation(
                server_app=make_server_app(scenario, run_dir, progress, resume, abort, pause),
                client_app=client_app,
                num_supernodes=scenario.sites.count,
                backend_name="ray",
                backend_config=backend_config(scenario, ray_tmp, verbose),
                verbose_logging=verbose,
            )
        except Exception as exc:  # the ServerApp stopped the run, or the engine itself failed
            abort.set()
            failure = f"the simulation engine failed ({_root_cause(exc)})"
        else:
            failure = "the simulation stopped before the end (see events.jsonl and the log above)"
        finally:
            if ray.is_initialized():
                ray.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)
    manifest = read_manifest(run_dir) or {}
    if pause is not None and manifest.get("paused_after_round") == pause:
        return run_dir
    if manifest.get("complete") is not True:
        why = manifest.get("stopped") or failure
        raise FedunlearnError(
            f"{why}; {run_dir} is incomplete, `fedunlearn run --resume {run_dir}` continues it "
            "once the cause is fixed"
        )
    return run_dir
