"""The front door for Python scripts: load a scenario, run it, sweep it, report on it.

Everything a user's simulation script needs, without knowing the package's
internal module paths; the ``fedunlearn`` command line does the same through
these functions' building blocks. Heavy imports (torch, flwr, ray) happen when
a function is called, not when ``fedunlearn`` is imported.

Examples
--------
>>> import fedunlearn as fu                                      # doctest: +SKIP
>>> scenario = fu.load_scenario("configs/quickstart.yaml", ["deletion.method=rl", "data.root=/tmp/derma"])
>>> result = fu.run(scenario, "runs/my-rl-run")
>>> result.metrics.query("site == 'global' and phase == 'test' and metric == 'fnr'")
>>> outcome = fu.sweep("configs/quickstart.yaml", ["deletion.method=salun-cra,rl", "seed=0,1,2,3,4"], "sweeps/qs",
...                    overrides=["data.root=/tmp/derma"])
>>> fu.report(["sweeps/qs"], "qs.html")
>>> table = fu.centralized(fu.StudyConfig(forget_ratio=0.5, data_root="/tmp/derma"), "runs/single-site")

The settings of the single-site study and its ablation (``fu.StudyConfig``,
``fu.AblationConfig``, ``fu.TrainConfig``, ``fu.SyntheticSpec``) are exported
too, loaded on first use; every user-facing error is a ``fu.FedunlearnError``
whose message is one line naming the problem and the fix.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedunlearn.errors import FedunlearnError

if TYPE_CHECKING:
    import pandas as pd

    from fedunlearn.federated.scenario import Scenario
    from fedunlearn.study import AblationConfig, StudyConfig
    from fedunlearn.sweeps import SweepOutcome


@dataclass(frozen=True)
class RunResult:
    """A finished run directory, read on demand.

    Attributes
    ----------
    run_dir : Path
        The run directory (``scenario.yaml``, ``metrics.csv``, ``events.jsonl``, ``ledger.sqlite``, ...).
    """

    run_dir: Path

    @property
    def metrics(self) -> pd.DataFrame:
        """The long metrics table: ``round, site, phase, method, metric, value, request``."""
        import pandas as pd

        return pd.read_csv(self.run_dir / "metrics.csv", keep_default_na=False, na_values=[""])

    @property
    def ledger(self) -> pd.DataFrame:
        """The server's deletion ledger, one row per request (counts and aggregates, never rows)."""
        import pandas as pd

        with sqlite3.connect(f"file:{self.run_dir / 'ledger.sqlite'}?mode=ro", uri=True) as con:
            return pd.read_sql_query("SELECT * FROM requests ORDER BY id", con)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The run's events (deletions sent, applied, verified; failures; start, resumes, end)."""
        text = (self.run_dir / "events.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    @property
    def manifest(self) -> dict[str, Any]:
        """Versions, seed, device, data MD5 and whether the file is official; ``complete``."""
        return json.loads((self.run_dir / "manifest.json").read_text(encoding="utf-8"))


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read and validate a scenario file; ``overrides`` are ``key.path=value`` items as with ``--set``.

    Raises
    ------
    fedunlearn.federated.scenario.ScenarioError
        One line naming the file, the key path, the bad value and what is allowed.
    """
    from fedunlearn.federated.scenario import load_scenario as _load

    return _load(path, list(overrides))


def run(
    scenario: Scenario, out: str | Path, *, quiet: bool = True, resume: bool = False
) -> RunResult:
    """Run ``scenario`` on Flower's simulation engine (Ray) into the new folder ``out``.

    With ``resume``, ``out`` is an unfinished run of ``scenario`` and it continues
    from its newest checkpoint.
    """
    from fedunlearn.federated.simulation import run_scenario

    return RunResult(run_scenario(scenario, Path(out), quiet=quiet, resume=resume))


def sweep(
    scenario_path: str | Path,
    grid: Sequence[str],
    out: str | Path,
    *,
    overrides: Sequence[str] = (),
    jobs: int = 1,
    control: bool = True,
    retrain: bool = True,
    quiet: bool = True,
    share_prefix: bool = True,
    engine: str = "shared",
) -> SweepOutcome:
    """The product of ``grid`` items (``key=v1,v2``), resumable, with paired statistics in ``out/summary.csv``.

    The control arm (``deletion.method=none``) and Federated Retrain are added to
    an erasure grid unless ``control`` / ``retrain`` is False. Points that differ
    only in deletion handling run their rounds before the first request once
    and branch from that shared prefix unless ``share_prefix`` is False. ``engine``:
    ``shared`` runs each batch of points in one warm simulation engine,
    ``per-point`` each point in its own process and Ray.
    """
    from fedunlearn.progress import Progress
    from fedunlearn.sweeps import plan_sweep, run_sweep

    plan = plan_sweep(
        scenario_path, list(grid), out, list(overrides), control=control, retrain=retrain
    )
    return run_sweep(
        plan, jobs=jobs, progress=Progress(quiet=quiet), share_prefix=share_prefix, engine=engine
    )


def report(inputs: Sequence[str | Path], out: str | Path, fmt: str | None = None) -> Path:
    """One self-contained HTML (or Markdown, ``fmt="md"``) report from run and sweep directories."""
    from fedunlearn.reports import build_report

    return Path(build_report(list(inputs), out, fmt))


def centralized(config: StudyConfig, out: str | Path, *, quiet: bool = True) -> pd.DataFrame:
    """The single-site study (original model, every method, one forget set per seed); its long metrics table."""
    from fedunlearn.progress import Progress
    from fedunlearn.study import run_study

    return run_study(config, Path(out), Progress(quiet=quiet))


def ablation(
    config: AblationConfig, out: str | Path, *, quiet: bool = True, report_only: bool = False
) -> pd.DataFrame:
    """The ingredient ablation of the single-site study (resumable); its paired-effect table.

    ``out`` receives ``ablation.csv``, ``methods.csv``, ``ablation.md``,
    ``ablation.png`` and one file per finished unit; rerunning the same call
    resumes. With ``report_only`` nothing runs: the tables are rewritten from
    the units already finished.
    """
    from fedunlearn.progress import Progress
    from fedunlearn.study import run_ablation

    return run_ablation(config, Path(out), Progress(quiet=quiet), report_only=report_only)


def ablation_plan(config: AblationConfig) -> list[tuple[float, int, str]]:
    """The units ``ablation(config, ...)`` runs, as ``(forget ratio, seed, unit)`` in work order.

    Nothing is read or run: a script can size the work (e.g. estimate its wall
    time) before starting it. The original model of each seed is trained once
    on top of these units.
    """
    from fedunlearn.study.plan import plan_entries, work_order

    return work_order(plan_entries(config.methods, config.presets), config.ratios, config.seeds)


def __getattr__(name: str) -> Any:
    """The settings classes, imported on first use so that ``import fedunlearn`` stays cheap."""
    if name == "StudyConfig":
        from fedunlearn.study import StudyConfig

        return StudyConfig
    if name == "AblationConfig":
        from fedunlearn.study import AblationConfig

        return AblationConfig
    if name == "TrainConfig":
        from fedunlearn.engine import TrainConfig

        return TrainConfig
    if name == "SyntheticSpec":
        from fedunlearn.data import SyntheticSpec

        return SyntheticSpec
    raise AttributeError(f"module 'fedunlearn' has no attribute {name!r}")


#: Names loaded on first use by :func:`__getattr__`.
LAZY = ("AblationConfig", "StudyConfig", "SyntheticSpec", "TrainConfig")

__all__ = [
    "FedunlearnError",
    "RunResult",
    "ablation",
    "ablation_plan",
    "centralized",
    "load_scenario",
    "report",
    "run",
    "sweep",
    *LAZY,
]
