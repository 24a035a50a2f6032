"""Scenario files: the typed, validated description of one federated run.

A scenario is YAML parsed once, at the edge, into frozen pydantic models.
Every error is one line, ``FILE: key.path: bad value X; allowed: ...``: it names
the file, the key path, the bad value and what is allowed (the valid names of
an enumeration, the range of a number, the valid keys of a section, the keys a
section requires). ``--set key.path=value`` overrides are applied before
validation.

The package, by job:

- :mod:`~fedunlearn.federated.scenario.sections`,
  :mod:`~fedunlearn.federated.scenario.deletion` and
  :mod:`~fedunlearn.federated.scenario.schema`: the pydantic models (the
  sections, the deletion section, then :class:`Scenario` with its
  cross-section checks and its effective request list);
- :mod:`~fedunlearn.federated.scenario.errors`: the one-line error messages;
- :mod:`~fedunlearn.federated.scenario.keypaths`: the key-path parser and
  schema walker shared by ``--set`` and ``fedunlearn sweep --grid``;
- :mod:`~fedunlearn.federated.scenario.loading`: YAML in, overrides, validation;
- :mod:`~fedunlearn.federated.scenario.reference`: every field carries its
  description, and :func:`reference_markdown` renders the whole schema,
  defaults included, as ``configs/README.md``
  (``python -m fedunlearn.federated.scenario > configs/README.md``; a test
  fails when the file is out of date).
"""

from __future__ import annotations

from fedunlearn.federated.scenario.deletion import (
    CONTROL,
    DELETION_METHODS,
    DeletionSection,
    ForgetRequest,
    FractionRange,
    StochasticRequests,
    UnlearnSettings,
)
from fedunlearn.federated.scenario.errors import BadValue, ScenarioError, bad, show
from fedunlearn.federated.scenario.guard import (
    GUARD_ACTIONS,
    GUARD_METRICS,
    GuardRecover,
    GuardRetry,
    GuardSection,
)
from fedunlearn.federated.scenario.keypaths import key_path_problem, parse_key_path, render_key_path
from fedunlearn.federated.scenario.loading import (
    apply_overrides,
    load_scenario,
    read_scenario_yaml,
    scenario_from_mapping,
    scenario_to_yaml,
)
from fedunlearn.federated.scenario.reference import reference_markdown
from fedunlearn.federated.scenario.schema import Scenario, expand_requests
from fedunlearn.federated.scenario.sections import (
    CRASH_PHASES,
    PARTITIONS,
    STRATEGIES,
    DataSection,
    DeploymentSection,
    EvaluationSection,
    FailuresSection,
    RaySection,
    SiteCrash,
    SitesSection,
    SyntheticData,
    TrainingSection,
)

__all__ = [
    "CONTROL",
    "CRASH_PHASES",
    "DELETION_METHODS",
    "GUARD_ACTIONS",
    "GUARD_METRICS",
    "PARTITIONS",
    "STRATEGIES",
    "BadValue",
    "DataSection",
    "DeletionSection",
    "DeploymentSection",
    "EvaluationSection",
    "FailuresSection",
    "ForgetRequest",
    "FractionRange",
    "GuardRecover",
    "GuardRetry",
    "GuardSection",
    "RaySection",
    "Scenario",
    "ScenarioError",
    "SiteCrash",
    "SitesSection",
    "StochasticRequests",
    "SyntheticData",
    "TrainingSection",
    "UnlearnSettings",
    "apply_overrides",
    "bad",
    "expand_requests",
    "key_path_problem",
    "load_scenario",
    "parse_key_path",
    "read_scenario_yaml",
    "reference_markdown",
    "render_key_path",
    "scenario_from_mapping",
    "scenario_to_yaml",
    "show",
]
