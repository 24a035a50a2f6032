"""Fixtures of the scenario tests: the federated tests' runner of tiny synthetic scenarios."""

from __future__ import annotations

from tests.federated.conftest import run_scenario_dir  # noqa: F401  (a pytest fixture, re-exported)
