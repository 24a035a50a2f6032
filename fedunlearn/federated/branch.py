"""A run started from another run's checkpoint: how a sweep's points branch from their shared prefix.

Points of a sweep that differ only in how deletions are handled run the very
same rounds up to the one before the first deletion request. The sweep runs
those rounds once (a *prefix*: a run paused after that round, ``run
--until-round``) and starts each such point from the prefix's checkpoint with
:func:`branch_run_dir`. The new run directory gets the point's scenario, the
checkpoint (its metric rows relabelled with the point's method), the events,
server ledger and sites' folders as they were at that round, and a manifest
naming the prefix; ``run --resume`` then continues it like any interrupted run,
so the finished directory holds what a run from scratch writes, plus the
``branched_from`` record in its manifest and a ``run-branched`` event.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.checkpoint import FOLDER
from fedunlearn.federated.ledger import SERVER_LEDGER, copy_database
from fedunlearn.federated.rundir import check_new_run_dir
from fedunlearn.federated.scenario import Scenario, scenario_to_yaml
from fedunlearn.io import atomic_write_json, now_iso

BRANCH_EVENT = "run-branched"


def relabel_metrics(path: Path, method: str) -> None:
    """Set the ``method`` column of a metrics table to ``method``, every other byte as it was."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("method")
    for row in rows[1:]:
        row[col] = method
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def branch_run_dir(
    prefix_dir: Path, server_round: int, run_dir: Path, scenario: Scenario, prefix: str
) -> None:
    """A new, unfinished run of ``scenario`` in ``run_dir`` that resumes after ``server_round`` of the prefix.

    Parameters
    ----------
    prefix_dir : Path
        The prefix run directory; it must hold the checkpoint of ``server_round``.
    server_round : int
        The prefix's last round (the one before the first deletion request).
    run_dir : Path
        The new run directory (absent or empty). It is filled aside and renamed
        into place, so an interruption leaves no half-made run behind.
    scenario : Scenario
        The point's scenario; it must equal the prefix's up to its deletion-handling settings.
    prefix : str
        The prefix's name, recorded in the manifest and the ``run-branched`` event.

    Raises
    ------
    FedunlearnError
        When ``run_dir`` is not empty or the prefix has no such checkpoint.
    """
    check_new_run_dir(run_dir)
    source = Path(prefix_dir) / FOLDER / f"round-{server_round:04d}"
    if not (source / "state.json").is_file():
        raise FedunlearnError(
            f"{prefix_dir} holds no checkpoint of round {server_round} to branch from; remove that "
            "folder and rerun the sweep (the prefix is run again)"
        )
    tmp = run_dir.with_name(f".{run_dir.name}.branching")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _fill(tmp, Path(prefix_dir), source, server_round, scenario, prefix)
        if run_dir.exists():
            run_dir.rmdir()
        tmp.rename(run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fill(
    tmp: Path, prefix_dir: Path, source: Path, server_round: int, scenario: Scenario, prefix: str
) -> None:
    tmp.mkdir(parents=True)
    (tmp / "scenario.yaml").write_text(scenario_to_yaml(scenario), encoding="utf-8")
    checkpoint = tmp / FOLDER / source.name
    shutil.copytree(source, checkpoint)
    relabel_metrics(checkpoint / "metrics.csv", scenario.deletion.method)
    shutil.copyfile(checkpoint / "metrics.csv", tmp / "metrics.csv")
    copy_database(source / "ledger.sqlite", tmp / SERVER_LEDGER)
    if (prefix_dir / "sites").is_dir():
        shutil.copytree(prefix_dir / "sites", tmp / "sites")
    state = json.loads((checkpoint / "state.json").read_text())
    lines = (prefix_dir / "events.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    if len(lines) < state["event_lines"]:
        raise FedunlearnError(
            f"{prefix_dir / 'events.jsonl'} has fewer events than its checkpoint of round {server_round} "
            "recorded; remove that folder and rerun the sweep (the prefix is run again)"
        )
    branched = {"prefix": prefix, "round": server_round}
    event = {"time": now_iso(), "event": BRANCH_EVENT, "round": server_round, **branched}
    lines = [*lines[: state["event_lines"]], json.dumps(event) + "\n"]
    (tmp / "events.jsonl").write_text("".join(lines), encoding="utf-8")
    state["event_lines"] = len(lines)  # the branch event belongs to the checkpoint it resumes from
    (checkpoint / "state.json").write_text(json.dumps(state, indent=1))
    atomic_write_json(
        tmp / "manifest.json",
        {
            "complete": False,
            "scenario": scenario.name,
            "branched_from": branched,
            "note": f"branched from the shared prefix {prefix} after round {server_round}; "
            "`fedunlearn run --resume` continues it",
        },
    )
