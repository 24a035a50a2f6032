"""Reading run directories (and sweep directories of them) into plain tables.

A run is read from its files only: ``metrics.csv`` (the long table),
``events.jsonl``, ``manifest.json`` and the resolved ``scenario.yaml``.
Runs are then told apart by the scenario keys on which they differ (the
*variant*); runs that differ only by ``seed`` are seeds of one variant.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.scenario import scenario_from_mapping
from fedunlearn.io import read_manifest
from fedunlearn.reports.tables import CONTROL, RETRAIN

ABSENT = "(absent)"
#: Scenario keys that never make two runs different variants.
NOT_VARIANT_KEYS = ("seed", "name", "data.root", "deletion.method")


class ReportError(FedunlearnError):
    """A run or sweep directory that cannot go into a report; one line."""


@dataclass(frozen=True)
class RunData:
    """One finished run, as its files say."""

    path: Path
    metrics: pd.DataFrame = field(repr=False)
    events: tuple[dict[str, Any], ...] = field(repr=False)
    manifest: dict[str, Any] = field(repr=False)
    scenario: dict[str, Any] = field(repr=False)

    @property
    def method(self) -> str:
        return str(self.manifest.get("method") or self.scenario.get("deletion", {}).get("method"))

    @property
    def seed(self) -> int:
        return int(self.scenario.get("seed", self.manifest.get("seed", 0)))

    @property
    def first_request_round(self) -> int | None:
        """Round of the scenario's first deletion request (explicit or drawn); None without one."""
        try:
            requests = [r.round for r in scenario_from_mapping(self.scenario).effective_requests]
        except (
            FedunlearnError
        ):  # a scenario today's schema refuses: its explicit requests as written
            requests = [
                int(r["round"])
                for r in (self.scenario.get("deletion") or {}).get("requests") or []
                if isinstance(r, Mapping) and "round" in r
            ]
        return min(requests) if requests else None


def is_sweep_dir(path: Path) -> bool:
    return (path / "sweep.json").is_file() or (
        (path / "runs").is_dir() and not (path / "manifest.json").exists()
    )


def expand(paths: Sequence[str | Path]) -> list[Path]:
    """Run directories named by ``paths``: sweep directories expand to their ``runs/*`` (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise ReportError(f"{p}: no such directory; pass run directories or sweep directories")
        if is_sweep_dir(p):
            runs = (
                sorted(d for d in (p / "runs").iterdir() if d.is_dir())
                if (p / "runs").is_dir()
                else []
            )
            if not runs:
                raise ReportError(
                    f"{p}: a sweep directory without runs; run `fedunlearn sweep` first"
                )
            out += runs
        else:
            out.append(p)
    unique: dict[Path, Path] = {}
    for p in out:
        unique.setdefault(p.resolve(), p)  # the same run named twice counts once
    return list(unique.values())


def _incomplete(path: Path) -> str | None:
    """Why ``path`` is not a finished run, or None."""
    try:
        manifest = read_manifest(path)
    except ValueError:
        return "incomplete run (unreadable manifest.json)"
    if manifest is None:
        if not (path / "metrics.csv").is_file():
            return (
                "not a run directory (no manifest.json); pass a run directory or a sweep directory"
            )
        return "incomplete run (no manifest.json)"
    if manifest.get("complete") is not True:
        return "incomplete run (manifest.json says complete: false: interrupted or still running)"
    if not (path / "metrics.csv").is_file():
        return "incomplete run (no metrics.csv)"
    return None


def normalized_scenario(raw: Any) -> dict[str, Any]:
    """A run's resolved scenario through today's schema, so that defaults added since read the same;
    as written when it no longer validates."""
    if not isinstance(raw, Mapping):
        return {}
    try:
        return scenario_from_mapping(raw).model_dump(mode="json")
    except FedunlearnError:
        return dict(raw)


def read_run(path: Path) -> RunData:
    """Read one finished run's tables."""
    events = (
        tuple(
            json.loads(line)
            for line in (path / "events.jsonl").read_text().splitlines()
            if line.strip()
        )
        if (path / "events.jsonl").is_file()
        else ()
    )
    scenario = (
        yaml.safe_load((path / "scenario.yaml").read_text())
        if (path / "scenario.yaml").is_file()
        else {}
    )
    return RunData(
        path,
        pd.read_csv(path / "metrics.csv"),
        events,
        read_manifest(path) or {},
        normalized_scenario(scenario),
    )


def load_runs(
    paths: Sequence[str | Path],
    *,
    allow_incomplete: bool = False,
    warn: Callable[[str], None] = print,
) -> list[RunData]:
    """Read the finished runs named by ``paths``.

    Raises
    ------
    ReportError
        On the first unfinished run (unless ``allow_incomplete``: then it is
        left out with a warning), or when nothing is left.
    """
    runs = []
    for path in expand(paths):
        problem = _incomplete(path)
        if problem and allow_incomplete:
            warn(f"fedunlearn: warning: {path}: {problem}; left out of the report")
            continue
        if problem:
            hint = (
                ""
                if problem.startswith("not a run")
                else "; finish it (rerunning the sweep resumes it) or pass --allow-incomplete to leave it out"
            )
            raise ReportError(f"{path}: {problem}{hint}")
        runs.append(read_run(path))
    if not runs:
        raise ReportError("no finished run to report on")
    return runs


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; lists and scalars as JSON text (strings as they are)."""
    out: dict[str, str] = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def variant_keys(runs: Sequence[RunData]) -> list[str]:
    """Scenario keys whose values differ between runs (seed, name, data root and method aside)."""
    flat = [flatten(r.scenario) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [
        k for k in keys if k not in NOT_VARIANT_KEYS and len({f.get(k, ABSENT) for f in flat}) > 1
    ]


def variant_label(method: str, context: Mapping[str, str]) -> str:
    """``salun-cra`` or ``salun-cra (training.rounds=5)``."""
    return method + (f" ({', '.join(f'{k}={v}' for k, v in context.items())})" if context else "")


def long_table(runs: Sequence[RunData]) -> tuple[pd.DataFrame, list[str]]:
    """The runs' metrics stacked with ``run``, ``seed``, ``variant`` and one column per variant key.

    Returns the table and the variant keys (``method`` first); runs of
    Federated Retrain come first, then the control arm, the others in the order given.
    """
    context_keys = variant_keys(runs)
    ordered = sorted(runs, key=lambda r: (r.method != RETRAIN, r.method != CONTROL))
    frames = []
    for r in ordered:
        flat = flatten(r.scenario)
        context = {k: flat.get(k, ABSENT) for k in context_keys}
        m = r.metrics.copy()
        m["method"] = r.method
        m.insert(0, "run", str(r.path))
        m.insert(1, "seed", r.seed)
        m.insert(2, "variant", variant_label(r.method, context))
        for i, (k, v) in enumerate(context.items()):
            m.insert(3 + i, k, v)
        frames.append(m)
    return pd.concat(frames, ignore_index=True), ["method", *context_keys]
