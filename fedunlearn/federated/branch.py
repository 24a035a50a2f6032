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

import json
import shutil
from pathlib import Path

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.checkpoint import FOLDER, read_metric_rows
from fedunlearn.federated.ledger import SERVER_LEDGER, copy_database
from fedunlearn.federated.recorder import MetricsMark
from fedunlearn.federated.rundir import check_new_run_dir
from fedunlearn.federated.scenario import Scenario, scenario_to_yaml
from fedunlearn.io import atomic_write_json, now_iso

BRANCH_EVENT = "run-branched"


def relabel_metrics(
    prefix_dir: Path, checkpoint: Path, state: dict, method: str, out: Path
) -> None:
    """Write the checkpoint's metric rows to ``out`` with ``method`` in the method column.

    The rows are the first ``state["metrics"]`` bytes of the prefix's append-only
    ``metrics.csv`` (or, for a checkpoint that keeps its own copy, that copy). They
    are written with the recorder's own ``DataFrame.to_csv``, so the rows a
    resumed branch appends continue the file byte for byte as a run from scratch
    writes it; the mark in ``state`` (or the checkpoint's copy) is updated to match.
    """
    mark = MetricsMark(**state["metrics"]) if "metrics" in state else None
    source = prefix_dir / "metrics.csv" if mark is not None else checkpoint / "metrics.csv"
    rows = read_metric_rows(source, mark)
    rows["method"] = method
    text = rows.to_csv(index=False)
    out.write_text(text, encoding="utf-8")
    if mark is None:
        (checkpoint / "metrics.csv").write_text(text, encoding="utf-8")
    else:
        state["metrics"] = {"rows": len(rows), "size": len(text.encode("utf-8"))}


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
    state = json.loads((checkpoint / "state.json").read_text())
    relabel_metrics(prefix_dir, checkpoint, state, scenario.deletion.method, tmp / "metrics.csv")
    copy_database(source / "ledger.sqlite", tmp / SERVER_LEDGER)
    if (prefix_dir / "sites").is_dir():
        shutil.copytree(prefix_dir / "sites", tmp / "sites")
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
