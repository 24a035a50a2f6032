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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.checkpoint import latest_checkpoint
from fedunlearn.federated.rundir import check_new_run_dir, check_resumable, start_run_dir
from fedunlearn.federated.scenario import Scenario
from fedunlearn.io import read_manifest
from fedunlearn.progress import Progress

if TYPE_CHECKING:
    from flwr.app import Context
    from flwr.serverapp import Grid


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


@dataclass(frozen=True)
class RunItem:
    """One run of :func:`run_scenarios`: a scenario into ``run_dir``, anew or resumed, to the end or paused.

    ``prepare`` is called inside the engine just before the run opens (a sweep
    point branches from its shared prefix there, once the prefix has run).
    """

    scenario: Scenario
    run_dir: Path
    resume: bool = False
    until_round: int | None = None
    prepare: Callable[[], None] | None = None


def engine_key(scenario: Scenario) -> tuple:
    """What must be equal for two runs to share one simulation engine: the nodes and their resources."""
    return (
        scenario.sites.count,
        tuple(sorted(client_resources(scenario).items())),
        scenario.ray.address or "",
    )


def _check(item: RunItem) -> int | None:
    """Check ``item``'s run directory and pause round; returns the round it pauses after (None: the end)."""
    run_dir = Path(item.run_dir).resolve()
    if item.resume:
        check_resumable(run_dir)
    else:
        check_new_run_dir(run_dir)
    return _pause_round(item.scenario, run_dir if item.resume else None, item.until_round)


def _open(item: RunItem) -> int | None:
    """Prepare and check ``item``, start its run directory when new; returns the round it pauses after."""
    if item.prepare is not None:
        item.prepare()
    pause = _check(item)
    if not item.resume:
        start_run_dir(Path(item.run_dir).resolve(), item.scenario)
    return pause


def _outcome(run_dir: Path, pause: int | None, error: str | None) -> str | None:
    """None when the run ended (or paused where asked), else why not."""
    manifest = read_manifest(run_dir) or {}
    if pause is not None and manifest.get("paused_after_round") == pause:
        return None
    if manifest.get("complete") is True:
        return None
    return str(manifest.get("stopped") or error or "the run stopped before the end")


def _quiet_flower(verbose: bool) -> None:
    if not verbose:
        # Flower's own INFO/deprecation lines would bury the progress lines; failures still reach
        # the server as error replies and are logged in events.jsonl.
        logging.getLogger("flwr").setLevel(logging.ERROR)
        if not any(
            isinstance(f, _HideSimulatedFailures) for f in logging.getLogger("flwr").filters
        ):
            logging.getLogger("flwr").addFilter(_HideSimulatedFailures())


def _engine(
    scenario: Scenario,
    main: Callable[[Grid, threading.Event], None],
    verbose: bool,
) -> str | None:
    """Run ``main(grid, abort)`` as the ServerApp of one Flower simulation on Ray (nodes and resources from
    ``scenario``); returns why the engine failed (None when it did not)."""
    import ray
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    from fedunlearn.federated.client_app import app as client_app

    ray_tmp = tempfile.mkdtemp(prefix="fu-ray-", dir=_ray_root())
    os.environ.setdefault("RAY_TMPDIR", ray_tmp)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    _quiet_flower(verbose)
    abort = threading.Event()  # tells the ServerApp's thread to stop waiting when the engine dies
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        main(grid, abort)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=scenario.sites.count,
                backend_name="ray",
                backend_config=backend_config(scenario, ray_tmp, verbose),
                verbose_logging=verbose,
            )
        except Exception as exc:  # the ServerApp stopped the run, or the engine itself failed
            abort.set()
            return f"the simulation engine failed ({_root_cause(exc)})"
        finally:
            if ray.is_initialized():
                ray.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)
    return None


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
    from fedunlearn.federated.server_app import run_federation

    run_dir = Path(run_dir).resolve()
    _ray_root()
    pause = _check(RunItem(scenario, run_dir, resume, until_round))
    check_inputs(scenario)
    if not resume:
        start_run_dir(run_dir, scenario)
    progress = Progress(quiet=quiet)

    def main(grid: Grid, abort: threading.Event) -> None:
        run_federation(
            grid, scenario, run_dir, progress, resume=resume, abort=abort, until_round=pause
        )

    failure = _engine(scenario, main, verbose) or (
        "the simulation stopped before the end (see events.jsonl and the log above)"
    )
    why = _outcome(run_dir, pause, failure)
    if why is not None:
        raise FedunlearnError(
            f"{why}; {run_dir} is incomplete, `fedunlearn run --resume {run_dir}` continues it "
            "once the cause is fixed"
        )
    return run_dir


def run_scenarios(
    items: Sequence[RunItem], *, quiet: bool = False, verbose: bool = False
) -> list[str | None]:
    """Run ``items`` one after another inside ONE Flower simulation engine; returns, per item, None when it
    ended (or paused where asked) or why it did not.

    The engine (Ray, its actors, the hospitals' imports and cached data) starts
    once and serves every run: each run sets its sites up anew with a setup
    query, as a run in its own engine does, so its files equal those of the
    same run alone (timings aside; ``tests/sweeps/test_prefix.py``, whose resumed sweep
    runs a prefix and its branches in one engine). The
    items must share :func:`engine_key`. A run that fails does not stop the
    next one; only the engine's own failure stops them all.
    """
    from fedunlearn.federated.server_app import run_federation

    if not items:
        return []
    keys = {engine_key(item.scenario) for item in items}
    if len(keys) > 1:
        raise FedunlearnError(
            "runs of one engine need the same sites.count and ray settings; group them by engine_key"
        )
    _ray_root()
    for scenario in {id(i.scenario): i.scenario for i in items}.values():
        check_inputs(scenario)
    progress = Progress(quiet=quiet)
    errors: list[str | None] = [None] * len(items)
    pauses: list[int | None] = [None] * len(items)
    opened = [False] * len(items)

    def main(grid: Grid, abort: threading.Event) -> None:
        for i, item in enumerate(items):
            if abort.is_set():
                errors[i] = "the simulation engine stopped before this run began"
                continue
            try:
                pauses[i] = _open(item)
                opened[i] = True
                progress(f"[{i + 1}/{len(items)}] {item.run_dir}")
                run_federation(
                    grid,
                    item.scenario,
                    Path(item.run_dir).resolve(),
                    progress,
                    resume=item.resume,
                    abort=abort,
                    until_round=pauses[i],
                )
            except Exception as exc:  # one run's failure must not stop the others
                errors[i] = str(exc) if isinstance(exc, FedunlearnError) else _root_cause(exc)

    failure = _engine(items[0].scenario, main, verbose)
    return [
        _outcome(Path(item.run_dir).resolve(), pauses[i], errors[i] or failure)
        if opened[i]
        else errors[i] or failure or "the run did not start"
        for i, item in enumerate(items)
    ]
