"""Per-round checkpoints of the server, so that a killed run resumes where it stopped.

``RUN_DIR/checkpoints/round-NNNN/`` holds everything the server carries from
one round to the next:

- ``model.safetensors``: the global model, arrays exactly as aggregated (dtype
  included), in their order (``state.json``);
- ``strategy-m_t.safetensors``, ``strategy-v_t.safetensors``: FedAdam/FedYogi
  moments (FedAvg, FedProx and FedMedian keep no state across rounds);
- ``ledger.sqlite``: the server's deletion ledger;
- ``state.json``: the round, the federation plan (accepted, pending and
  withdrawing request ids), how many lines of ``events.jsonl`` and how many
  rows and bytes of the run's append-only ``metrics.csv`` belong to it
  (``metrics``), so that writing a checkpoint does not grow with the run's
  history. A checkpoint given the rows themselves (a ``DataFrame``: older runs,
  tools) keeps them in its own ``metrics.csv``, and both kinds are read back.

Every other random state is derived from the scenario seed and the round (site
sampling, local shuffles and augmentation, forget rows, failures), so nothing
else needs saving. The sites' own ledgers live in their folders and are never
rolled back: a request once accepted stays withdrawn.

A checkpoint is written under a temporary name and renamed when complete, so a
kill at any moment leaves the previous one intact; the two newest are kept.
Nothing is unpickled on load.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from flwr.app import Array, ArrayRecord
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.ledger import copy_database
from fedunlearn.federated.recorder import MetricsMark

KEEP = 2
FOLDER = "checkpoints"
_STRATEGY_ATTRS = ("m_t", "v_t")


class CheckpointError(FedunlearnError):
    """A checkpoint cannot be read."""


@dataclass
class Checkpoint:
    """What :func:`latest_checkpoint` reads back."""

    path: Path
    server_round: int
    arrays: ArrayRecord
    strategy_state: dict[str, dict[str, np.ndarray]]
    rows: pd.DataFrame
    plan: dict[str, Any]
    event_lines: int
    metrics: MetricsMark | None = None  # where its rows end in RUN_DIR/metrics.csv (None: own copy)

    @property
    def ledger(self) -> Path:
        return self.path / "ledger.sqlite"


def _save_tensors(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # np.asarray, not np.ascontiguousarray: that one turns 0-d arrays (BatchNorm's counter) into shape (1,)
    save_file({k: torch.from_numpy(np.asarray(v, order="C")) for k, v in arrays.items()}, str(path))


def _load_tensors(path: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in load_file(str(path)).items()}


def strategy_state(strategy: Any) -> dict[str, dict[str, np.ndarray]]:
    """The server optimiser's state of a Flower strategy (empty for the stateless ones)."""
    return {a: dict(getattr(strategy, a)) for a in _STRATEGY_ATTRS if getattr(strategy, a, None)}


def restore_strategy(strategy: Any, state: dict[str, dict[str, np.ndarray]]) -> None:
    for attr, arrays in state.items():
        if attr in _STRATEGY_ATTRS and hasattr(strategy, attr):
            setattr(strategy, attr, dict(arrays))


def save_checkpoint(
    run_dir: Path,
    server_round: int,
    arrays: ArrayRecord,
    strategy: Any,
    rows: pd.DataFrame | MetricsMark,
    plan: dict[str, Any],
    ledger: Path,
    event_lines: int,
) -> Path:
    """Write ``checkpoints/round-NNNN`` atomically (temporary folder, then rename); keep the newest two.

    ``rows``: a :class:`MetricsMark` (what the server passes: the rows stay in the run's
    ``metrics.csv``, the checkpoint records where they end) or the rows themselves.
    """
    root = Path(run_dir) / FOLDER
    final = root / f"round-{server_round:04d}"
    tmp = root / f".round-{server_round:04d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    numpy_arrays = {k: a.numpy() for k, a in arrays.items()}
    _save_tensors(tmp / "model.safetensors", numpy_arrays)
    for attr, state in strategy_state(strategy).items():
        _save_tensors(tmp / f"strategy-{attr}.safetensors", state)
    if not isinstance(rows, MetricsMark):
        rows.to_csv(tmp / "metrics.csv", index=False)
    copy_database(ledger, tmp / "ledger.sqlite")
    state = {
        "round": server_round,
        "array_order": list(numpy_arrays),
        "plan": plan,
        "event_lines": event_lines,
    }
    if isinstance(rows, MetricsMark):
        state["metrics"] = {"rows": rows.rows, "size": rows.size}
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(p for p in root.glob("round-*") if p.is_dir())[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest checkpoint, or None when the run stopped before its first round ended.

    Raises
    ------
    CheckpointError
        If the newest checkpoint cannot be read (one line, naming the folder and what to do).
    """
    dirs = sorted(p for p in (Path(run_dir) / FOLDER).glob("round-*") if p.is_dir())
    if not dirs:
        return None
    path = dirs[-1]
    try:
        state = json.loads((path / "state.json").read_text())
        model = _load_tensors(path / "model.safetensors")
        order = list(state["array_order"])
        if sorted(order) != sorted(model):
            raise ValueError("model.safetensors does not hold the arrays state.json lists")
        strategy = {
            f.stem.removeprefix("strategy-"): _load_tensors(f)
            for f in sorted(path.glob("strategy-*.safetensors"))
        }
        mark = MetricsMark(**state["metrics"]) if "metrics" in state else None
        rows = read_metric_rows(
            path / "metrics.csv" if mark is None else Path(run_dir) / "metrics.csv", mark
        )
        if not (path / "ledger.sqlite").is_file():
            raise FileNotFoundError(f"{path / 'ledger.sqlite'} is missing")
        arrays = ArrayRecord({k: Array(model[k]) for k in order})
        return Checkpoint(
            path,
            int(state["round"]),
            arrays,
            strategy,
            rows,
            dict(state["plan"]),
            int(state["event_lines"]),
            mark,
        )
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        SafetensorError,
        pd.errors.ParserError,
    ) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}: {reason}); delete that folder "
            "to resume from the one before it, or start the run again"
        ) from None


def read_metric_rows(path: Path, mark: MetricsMark | None) -> pd.DataFrame:
    """The metric rows of a checkpoint: a whole file, or the first ``mark.size`` bytes of the run's."""
    if mark is None:
        source: Any = path
    else:
        with open(path, "rb") as fh:
            data = fh.read(mark.size)
        if len(data) < mark.size:
            raise ValueError(
                f"{path} has {len(data)} bytes, fewer than the {mark.size} the checkpoint recorded"
            )
        source = io.BytesIO(data)
    rows = pd.read_csv(source, keep_default_na=False, na_values=[""], dtype={"request": str})
    rows["request"] = rows["request"].fillna("")
    if mark is not None and len(rows) != mark.rows:
        raise ValueError(f"{path} has {len(rows)} rows where the checkpoint recorded {mark.rows}")
    return rows


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "latest_checkpoint",
    "read_metric_rows",
    "restore_strategy",
    "save_checkpoint",
    "strategy_state",
]
