"""A site that sends no reply before ``deployment.round_timeout_s`` (its node died mid-round) is handled like
a failed one: a ``site-failure`` event, its requests pending, ``failures.min_sites`` deciding whether the run
goes on. Plain unit tests of the strategy hooks: no Ray, no Flower run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedunlearn.federated.ledger import ServerLedger
from fedunlearn.federated.plan import FederationPlan
from fedunlearn.federated.recorder import RunRecorder
from fedunlearn.federated.strategy import FederationStopped, make_strategy
from tests.federated.conftest import small_scenario

NODES = {0: 100, 1: 101, 2: 102}
SILENT = "no reply within 5s (deployment.round_timeout_s): the node is gone or too slow"


def _strategy(tmp: Path):
    scenario = small_scenario(deployment={"round_timeout_s": 5})
    ledger = ServerLedger(tmp / "ledger.sqlite")
    recorder = RunRecorder(tmp, "salun-cra")
    return make_strategy(scenario, FederationPlan(scenario, dict(NODES), ledger), recorder), ledger


def _events(tmp: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp / "events.jsonl").read_text().splitlines()]


def test_silent_trainers_are_site_failures_and_their_requests_stay_pending(tmp_path: Path) -> None:
    strategy, ledger = _strategy(tmp_path)
    ledger.request(0, "site-1", 2, 0.25, "random")
    strategy._sent, strategy._unlearning = {100, 101}, {1: [0]}
    assert strategy.aggregate_train(2, []) == (None, None)
    events = [
        (e["event"], e.get("site"), e.get("phase"), e.get("reason")) for e in _events(tmp_path)
    ]
    assert events[:2] == [
        ("site-failure", "site-0", "train", SILENT),
        ("site-failure", "site-1", "unlearn", SILENT),
    ]
    assert events[2][:2] == ("deletion-failed", "site-1")
    (row,) = ledger.rows()
    assert row["status"] == "pending" and row["failures"] == 1 and row["last_failure"] == SILENT


def test_silent_evaluators_count_against_min_sites(tmp_path: Path) -> None:
    strategy, _ = _strategy(tmp_path)
    strategy._sent, strategy._t_eval = set(NODES.values()), 0.0  # as configure_evaluate leaves them
    with pytest.raises(FederationStopped, match="only 0 of 3 sites answered round 1"):
        strategy.aggregate_evaluate(1, [])
    failures = [e for e in _events(tmp_path) if e["event"] == "site-failure"]
    assert [(e["site"], e["phase"], e["reason"]) for e in failures] == [
        (f"site-{k}", "evaluate", SILENT) for k in range(3)
    ]
