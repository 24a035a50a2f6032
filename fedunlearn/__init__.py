"""fedunlearn: a federated hospital machine-unlearning simulator.

The front door for Python scripts (:mod:`fedunlearn.api`):

- :func:`load_scenario` reads and validates a scenario file (with ``--set``-style overrides);
- :func:`run` runs it on Flower's simulation engine and returns a :class:`RunResult`
  (``.metrics``, ``.ledger``, ``.events``, ``.run_dir``);
- :func:`sweep` runs a grid of scenarios with control and Retrain arms and paired statistics;
- :func:`report` writes the HTML or Markdown report of runs and sweeps;
- :func:`centralized` runs the single-site study, :func:`ablation` its ingredient
  ablation (:func:`ablation_plan` lists the units first);
- their settings: :class:`StudyConfig`, :class:`AblationConfig`, :class:`TrainConfig`,
  :class:`SyntheticSpec`; every user-facing error is a :class:`FedunlearnError`.

Importing the package is cheap: torch, Flower and Ray load when a function runs
(the settings classes when first named).
"""

from fedunlearn.api import (
    FedunlearnError,
    RunResult,
    ablation,
    ablation_plan,
    centralized,
    load_scenario,
    report,
    run,
    sweep,
)
from fedunlearn.api import __getattr__ as __getattr__

# AblationConfig, StudyConfig, SyntheticSpec and TrainConfig load on first use (fedunlearn.api.__getattr__).
__all__ = [
    "AblationConfig",
    "FedunlearnError",
    "RunResult",
    "StudyConfig",
    "SyntheticSpec",
    "TrainConfig",
    "ablation",
    "ablation_plan",
    "centralized",
    "load_scenario",
    "report",
    "run",
    "sweep",
]
