"""Small synthetic scenarios run through the real Ray backend (shared by the federated tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from fedunlearn.federated.scenario import Scenario, scenario_from_mapping


def small_scenario(**sections: Any) -> Scenario:
    raw: dict[str, Any] = {
        "name": "tiny",
        "seed": 3,
        "data": {"dataset": "synthetic", "synthetic": {"n_train": 360, "n_val": 90, "n_test": 150}},
        "sites": {"count": 3},
        "training": {"rounds": 3, "local_epochs": 1, "batch_size": 32, "lr": 0.05},
        "deletion": {
            "method": "salun-cra",
            "unlearn": {"epochs": 1, "batch_size": 32},
            "requests": [{"round": 2, "site": 1, "fraction": 0.25}],
        },
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return scenario_from_mapping(raw, "test scenario")


class Run:
    """Read access to a finished run directory."""

    def __init__(self, path: Path, scenario: Scenario) -> None:
        self.path, self.scenario = path, scenario
        self.metrics = pd.read_csv(path / "metrics.csv", keep_default_na=False, na_values=[""])
        self.events = [
            json.loads(line) for line in (path / "events.jsonl").read_text().splitlines()
        ]
        self.manifest = json.loads((path / "manifest.json").read_text())

    def audit(self, site: str) -> list[dict]:
        f = self.path / "sites" / site / "audit.jsonl"
        return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []
