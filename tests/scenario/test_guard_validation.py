"""Bad ``deletion.guard`` settings: one line each from the loader and from ``fedunlearn validate``."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedunlearn.cli import main
from fedunlearn.federated.scenario import ScenarioError, scenario_from_mapping

ON = {"enabled": True}
BAD = [
    (
        {"deletion": {"guard": {**ON, "metric": "auc"}}},
        "deletion.guard.metric: bad value 'auc'; allowed: one of fnr, risk_2, bac",
    ),
    (
        {"deletion": {"guard": {**ON, "tolerance": -0.01}}},
        "deletion.guard.tolerance: bad value -0.01; allowed: a number in [0, 1000]",
    ),
    (
        {"deletion": {"guard": {**ON, "actions": ["recover", "pray"]}}},
        "deletion.guard.actions[1]: bad value 'pray'; allowed: one of retry, recover, escalate",
    ),
    (
        {"deletion": {"guard": {**ON, "actions": []}}},
        "deletion.guard.actions: bad value []; allowed: at least one of retry, recover, escalate while the guard "
        "is enabled",
    ),
    (
        {"deletion": {"guard": {**ON, "actions": ["escalate", "recover"]}}},
        "deletion.guard.actions: bad value ['escalate', 'recover']; allowed: escalate last (a reset ends the "
        "request; an action after it could never run)",
    ),
    (
        {"deletion": {"guard": {**ON, "actions": ["recover", "recover"]}}},
        "deletion.guard.actions: bad value ['recover', 'recover']; allowed: distinct actions (each is tried once)",
    ),
    (
        {"deletion": {"guard": {**ON, "actions": ["retry", "escalate"]}}},
        "deletion.guard.retry: bad value []; allowed: at least one setting while `retry` is an action "
        "(e.g. [{method: salun-cra}])",
    ),
    (
        {"deletion": {"guard": {**ON, "recover": {"max_rounds": 0}}}},
        "deletion.guard.recover.max_rounds: bad value 0; allowed: an integer in [1, 100]",
    ),
    (
        {
            "deletion": {
                "integration": "aggregate",
                "guard": {**ON, "actions": ["retry"], "retry": [{"method": "salun-cra"}]},
            }
        },
        "deletion.guard.actions: bad value ['retry']; allowed: retry only under deletion.integration 'adopt' "
        "(the retried pass replaces the adopted one)",
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected"), BAD, ids=[e.split(":")[0] + str(i) for i, (_, e) in enumerate(BAD)]
)
def test_bad_guard_gives_one_exact_line(raw: dict, expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_mapping(raw, "bad.yaml")
    assert str(info.value) == f"bad.yaml: {expected}"
    assert "\n" not in str(info.value)


def test_validate_command_names_the_guard_problem_and_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("deletion: {guard: {enabled: true, metric: recall}}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"fedunlearn: error: {bad}: deletion.guard.metric: bad value 'recall'; allowed: one of fnr, risk_2, bac"
    )


def test_guard_is_off_by_default_and_a_good_one_validates() -> None:
    assert scenario_from_mapping({}, "x.yaml").deletion.guard.enabled is False
    g = scenario_from_mapping(
        {
            "deletion": {
                "method": "rl",
                "guard": {
                    **ON,
                    "tolerance": 0.05,
                    "actions": ["retry", "recover", "escalate"],
                    "retry": [{"method": "salun-cra", "unlearn": {"lr": 0.001}}],
                },
            }
        },
        "x.yaml",
    ).deletion.guard
    assert g.within(0.10, 0.15) and not g.within(0.10, 0.151)
