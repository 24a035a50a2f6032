"""One monitored federated run: its metrics table, wall time and memory high-water marks.

Every run goes through :func:`fedunlearn.federated.simulation.run_scenario`
in this process (so this process is the server: in Flower's simulation the
ServerApp runs in the driver, the ClientApps in Ray actor processes). Before
the run this process's ``VmHWM`` is reset to its current RSS, and a thread
samples the ``ClientAppActor`` processes below it while the run goes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fedunlearn.bench.procmem import ActorMonitor, ActorPeak, reset_peak, status_mb
from fedunlearn.federated.scenario import Scenario, scenario_from_mapping


@dataclass
class RunFigures:
    """What one run measured; per-round views are read from its ``metrics.csv``."""

    label: str
    scenario: Scenario
    metrics: pd.DataFrame
    wall_s: float
    server_rss_before_mb: float
    server_peak_mb: float
    server_peak_reset: bool
    actors: dict[int, ActorPeak] = field(default_factory=dict)
    data_mb: float = math.nan

    @property
    def sites(self) -> int:
        return self.scenario.sites.count

    @property
    def n_actors(self) -> int:
        """Client actors seen; where none were seen, the count Flower's Ray backend starts."""
        if self.actors:
            return len(self.actors)
        from fedunlearn.federated.simulation import client_resources

        cpus = max(os.cpu_count() or 1, int(self.scenario.ray.num_cpus_per_client))
        return max(1, min(self.sites, int(cpus // client_resources(self.scenario)["num_cpus"])))

    def timing(self, server_round: int, name: str) -> float:
        """``train``, ``evaluate`` or ``server_eval``: the strategy's wall time of that phase of the round."""
        m = self.metrics
        sel = m[
            (m["round"] == server_round)
            & (m["site"] == "global")
            & (m["phase"] == "timing")
            & (m["metric"] == f"{name}_seconds")
        ]
        return float(sel["value"].iloc[-1]) if len(sel) else math.nan

    def site_values(self, server_round: int, phase: str, metric: str) -> list[float]:
        """One value per site of ``phase``/``metric`` in a round (``[]`` when not recorded)."""
        m = self.metrics
        sel = m[
            (m["round"] == server_round)
            & (m["phase"] == phase)
            & (m["metric"] == metric)
            & ~m["site"].isin(["global", "pooled"])
        ]
        return [float(v) for v in sel["value"]]

    def unlearn_rounds(self) -> list[int]:
        m = self.metrics
        return sorted(int(r) for r in set(m.loc[m["phase"] == "unlearn", "round"]))

    @property
    def rounds(self) -> int:
        return self.scenario.training.rounds

    def largest_actor(self) -> ActorPeak | None:
        return max(self.actors.values(), key=lambda p: p.hwm_mb, default=None)


def scenario_of(raw: Mapping[str, Any], label: str) -> Scenario:
    return scenario_from_mapping(raw, f"bench scenario {label}")


def data_megabytes(scenario: Scenario) -> float:
    """Bytes of the scenario's image arrays (every split), in MiB."""
    from fedunlearn.federated.site import scenario_dataset

    data = scenario_dataset(scenario, quiet=True)
    splits = [s for s in (data.train, data.val, data.test) if s is not None]
    return (
        sum(s.images.numel() * s.images.element_size() + 2 * s.labels.numel() * 8 for s in splits)
        / 2**20
    )


def run_monitored(scenario: Scenario, run_dir: Path, label: str) -> RunFigures:
    """Run ``scenario`` into ``run_dir`` (new) while watching memory; read back its metrics."""
    from fedunlearn.federated.simulation import run_scenario

    before = status_mb().get("VmRSS", math.nan)
    was_reset = reset_peak()
    with ActorMonitor() as monitor:
        t0 = time.perf_counter()
        run_scenario(scenario, run_dir, quiet=True)
        wall = time.perf_counter() - t0
    peak = status_mb().get("VmHWM", math.nan)
    metrics = pd.read_csv(Path(run_dir) / "metrics.csv", keep_default_na=False, na_values=[""])
    return RunFigures(
        label,
        scenario,
        metrics,
        wall,
        before,
        peak,
        was_reset,
        dict(monitor.peaks),
        data_megabytes(scenario),
    )
