"""The life of a run directory: created, marked incomplete or complete, checked for resuming, removed.

A run directory gets the resolved ``scenario.yaml`` and a ``manifest.json``
that says ``complete: false`` first (:func:`start_run_dir`); the manifest is
rewritten when the run stops early (:func:`mark_stopped`) and, last of all,
when it ends (:func:`mark_complete`). :func:`check_resumable` refuses a folder
that ``--resume`` cannot continue; :func:`remove_run_dir` deletes an
unfinished run a sweep redoes. The ServerApp, ``fedunlearn run`` and
``fedunlearn sweep`` all go through here. A run paused on purpose after a given
round (``run --until-round``, a sweep's shared prefix) is marked so by
:func:`mark_paused`; :mod:`fedunlearn.federated.branch` starts new runs from
such a prefix's checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.checkpoint import latest_checkpoint
from fedunlearn.federated.scenario import Scenario, scenario_to_yaml
from fedunlearn.io import (
    atomic_write_json,
    atomic_write_text,
    build_manifest,
    read_manifest,
    write_manifest,
)

RUN_FILES = ("manifest.json", "scenario.yaml")  # either one marks a folder as a fedunlearn run


def check_new_run_dir(run_dir: Path) -> None:
    """Refuse to mix two runs in one directory."""
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FedunlearnError(
            f"run directory {run_dir} is not empty; pass another --out or remove it"
        )


def start_run_dir(run_dir: Path, scenario: Scenario) -> None:
    """A new run directory: the resolved scenario first, and a manifest that says 'incomplete' until the end."""
    check_new_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "scenario.yaml", scenario_to_yaml(scenario))
    atomic_write_json(
        run_dir / "manifest.json",
        {
            "complete": False,
            "scenario": scenario.name,
            "note": "run in progress or interrupted; results are not final",
        },
    )


CARRIED = ("branched_from",)  # manifest fields a run keeps from its start to its end


def carried_fields(run_dir: Path) -> dict[str, Any]:
    """The fields of the current (unfinished) manifest that every later manifest of the run keeps."""
    try:
        manifest = read_manifest(run_dir) or {}
    except ValueError:
        manifest = {}
    return {k: manifest[k] for k in CARRIED if k in manifest}


def mark_stopped(run_dir: Path, scenario: Scenario, reason: str) -> None:
    """The run stopped before its last round (too few sites answered): incomplete, resumable, with the reason."""
    atomic_write_json(
        run_dir / "manifest.json",
        {
            "complete": False,
            "scenario": scenario.name,
            "stopped": reason,
            "note": "run stopped; results are not final",
            **carried_fields(run_dir),
        },
    )


def mark_paused(run_dir: Path, scenario: Scenario, server_round: int) -> None:
    """The run stopped on purpose after ``server_round`` (``--until-round``): incomplete and resumable."""
    atomic_write_json(
        run_dir / "manifest.json",
        {
            "complete": False,
            "scenario": scenario.name,
            "paused_after_round": server_round,
            "note": f"run paused after round {server_round} on request; `fedunlearn run --resume` "
            "continues it",
            **carried_fields(run_dir),
        },
    )


def paused_after(run_dir: Path) -> int | None:
    """The round a run was paused after (:func:`mark_paused`); None when it was not, or its manifest is
    missing or damaged."""
    try:
        manifest = read_manifest(run_dir) or {}
    except ValueError:
        return None
    value = manifest.get("paused_after_round")
    return value if isinstance(value, int) else None


def mark_complete(run_dir: Path, **fields: Any) -> None:
    """The run's last write: a ``federated-run`` manifest with ``complete: true`` and ``fields``."""
    write_manifest(run_dir, build_manifest(kind="federated-run", complete=True, **fields))


def check_resumable(run_dir: Path) -> None:
    """Refuse, in one line, a directory that is not an unfinished run, or whose newest checkpoint is unreadable."""
    try:
        manifest = read_manifest(run_dir)
    except ValueError as exc:
        raise FedunlearnError(f"{exc}; the run directory is damaged, start the run again") from None
    if not (run_dir / "scenario.yaml").is_file() or manifest is None:
        raise FedunlearnError(
            f"{run_dir} is not a run directory (no scenario.yaml or manifest.json); "
            "pass the folder a `fedunlearn run` wrote"
        )
    if manifest.get("complete") is True:
        raise FedunlearnError(f"{run_dir} is a complete run; there is nothing to resume")
    latest_checkpoint(run_dir)


def looks_like_run_dir(run_dir: Path) -> bool:
    """Whether ``run_dir`` is empty or holds a run's ``manifest.json`` or ``scenario.yaml`` (safe to remove)."""
    return not any(run_dir.iterdir()) or any((run_dir / name).exists() for name in RUN_FILES)


def remove_run_dir(run_dir: Path) -> None:
    """Delete an unfinished run (a sweep redoes it); refuses a folder that is not a fedunlearn run."""
    if not looks_like_run_dir(run_dir):
        raise FedunlearnError(f"{run_dir} is not a fedunlearn run directory; it is not removed")
    shutil.rmtree(run_dir)
