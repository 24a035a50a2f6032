"""fedunlearn: a federated hospital machine-unlearning simulator.

The front door for Python scripts (:mod:`fedunlearn.api`):

- :func:`load_scenario` reads and validates a scenario file (with ``--set``-style overrides);
- :func:`run` runs it on Flower's simulation engine and returns a :class:`RunResult`
  (``.metrics``, ``.ledger``, ``.events``, ``.run_dir``);
- :func:`sweep` runs a grid of scenarios with control and Retrain arms and paired statistics;
- :func:`report` writes the HTML or Markdown report of runs and sweeps;
- :func:`centralized` runs the single-site study.

Importing the package is cheap: torch, Flower and Ray load when a function runs.
"""

from fedunlearn.api import RunResult, centralized, load_scenario, report, run, sweep

__all__ = ["RunResult", "centralized", "load_scenario", "report", "run", "sweep"]
