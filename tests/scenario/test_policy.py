"""Deletion policies: the seeded request process and the schedule of :class:`FederationPlan`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from fedunlearn.federated.ledger import ServerLedger
from fedunlearn.federated.plan import FederationPlan
from fedunlearn.federated.policy import POLICY_NAMES, fresh_global_arrays, get_policy, policy_cost
from fedunlearn.federated.recorder import RunRecorder
from fedunlearn.federated.scenario import ForgetRequest, expand_requests, scenario_from_mapping
from fedunlearn.federated.strategy import make_strategy
from tests.federated.conftest import small_scenario

STREAM = {"rate": 0.3, "fraction": {"min": 0.05, "max": 0.2}, "start_round": 2}


def _stochastic(scenario_seed: int = 3, rounds: int = 20, **process):
    return small_scenario(
        seed=scenario_seed,
        training={"rounds": rounds},
        deletion={
            "requests": [{"round": 1, "site": 0, "fraction": 0.1}],
            "stochastic": {**STREAM, **process},
        },
    )


def _key(requests) -> list[tuple]:
    return [(r.round, r.site, r.fraction, r.mode, r.seed) for r in requests]


# ----------------------------------------------------------------------------- random requests
def test_same_seed_same_requests_different_seed_different() -> None:
    a = _key(expand_requests(_stochastic(scenario_seed=3)))
    assert a == _key(expand_requests(_stochastic(scenario_seed=3))) and len(a) > 3
    assert _key(expand_requests(_stochastic(scenario_seed=4))) != a  # the scenario seed
    assert (
        _key(expand_requests(_stochastic(scenario_seed=3, seed=1))) != a
    )  # the process's own seed


def test_explicit_requests_come_first_and_ids_are_indices() -> None:
    s = _stochastic()
    reqs = s.effective_requests
    assert reqs[0] == ForgetRequest(round=1, site=0, fraction=0.1)
    assert s.effective_requests is reqs  # computed once per scenario
    drawn = reqs[1:]
    assert [(r.round, r.site) for r in drawn] == sorted((r.round, r.site) for r in drawn)


def test_drawn_requests_respect_the_process() -> None:
    s = _stochastic(rounds=30, end_round=25, sites=[0, 2], mode="malignant")
    drawn = s.effective_requests[1:]
    assert drawn and all(
        2 <= r.round <= 25 and r.site in (0, 2) and r.mode == "malignant" for r in drawn
    )
    assert all(0.05 <= r.fraction <= 0.2 for r in drawn)
    fixed = _stochastic(fraction=0.15).effective_requests[1:]
    assert fixed and {r.fraction for r in fixed} == {0.15}
    rate = np.mean(
        [len(_stochastic(scenario_seed=k, rounds=50).effective_requests) - 1 for k in range(8)]
    )
    assert rate == pytest.approx(0.3 * 3 * 49, rel=0.15)  # 3 sites, rounds 2..50


def test_the_draw_is_coupled_across_what_ifs() -> None:
    """A higher rate only adds requests; a shorter window keeps the requests of the rounds it shares."""
    low, high = (
        set(_key(_stochastic(rate=0.2).effective_requests)),
        set(_key(_stochastic(rate=0.5).effective_requests)),
    )
    assert low < high
    full = set(_key(_stochastic().effective_requests[1:]))
    assert set(_key(_stochastic(end_round=10).effective_requests[1:])) == {
        k for k in full if k[0] <= 10
    }


def test_client_and_server_expand_the_same_list() -> None:
    """The client gets the scenario as JSON and expands it itself: same requests, same ids."""
    s = _stochastic()
    on_site = scenario_from_mapping(json.loads(json.dumps(s.model_dump(mode="json"))), "sent")
    assert _key(on_site.effective_requests) == _key(s.effective_requests)


def test_policy_registry_lists_names() -> None:
    assert POLICY_NAMES == ("immediate", "batched", "retrain")
    with pytest.raises(ValueError, match="choose one of: immediate, batched, retrain"):
        get_policy("lazy")


def test_fresh_global_model_is_seeded_by_round() -> None:
    s = small_scenario()

    def flat(a: ArrayRecord) -> torch.Tensor:
        return torch.cat([v.flatten().float() for v in a.to_torch_state_dict().values()])

    assert torch.equal(flat(fresh_global_arrays(s, 3)), flat(fresh_global_arrays(s, 3)))
    assert not torch.equal(flat(fresh_global_arrays(s, 3)), flat(fresh_global_arrays(s, 4)))


# ----------------------------------------------------------------------------- schedule
REQS = [
    {"round": 1, "site": 0, "fraction": 0.1},
    {"round": 2, "site": 1, "fraction": 0.1},
    {"round": 2, "site": 0, "fraction": 0.1},
    {"round": 3, "site": 2, "fraction": 0.1},
]


_LEDGER_ROOT: list[
    Path
] = []  # the running test's tmp_path (pytest removes it): no ledger left in /tmp


@pytest.fixture(autouse=True)
def ledger_root(tmp_path: Path) -> None:
    _LEDGER_ROOT[:] = [tmp_path]


def _ledger() -> ServerLedger:
    return ServerLedger(
        Path(tempfile.mkdtemp(prefix="ledger-", dir=_LEDGER_ROOT[0])) / "ledger.sqlite"
    )


def _plan(**deletion) -> FederationPlan:
    s = small_scenario(training={"rounds": 6}, deletion={"requests": REQS, **deletion})
    return FederationPlan(s, {0: 100, 1: 101, 2: 102}, _ledger())


def _applied(plan: FederationPlan, due: dict[int, list[int]]) -> None:
    for site, rids in due.items():
        plan.unlearned(site, rids)


def test_immediate_unlearns_in_the_request_round() -> None:
    plan = _plan(policy="immediate")
    seen = {}
    for r in range(1, 5):
        seen[r] = plan.deletions_at(r)
        _applied(plan, seen[r])
    assert seen == {1: {0: [0]}, 2: {1: [1], 0: [2]}, 3: {2: [3]}, 4: {}}


def test_immediate_retries_a_request_not_reported_applied() -> None:
    plan = _plan(policy="immediate")
    assert plan.deletions_at(1) == {0: [0]}  # the site failed: nothing reported
    assert plan.deletions_at(2) == {0: [0, 2], 1: [1]}


def test_batched_waits_for_the_batch_round_and_applies_all_pending() -> None:
    plan = _plan(policy="batched", batch_every=2)
    seen = {}
    for r in range(1, 7):
        seen[r] = plan.deletions_at(r)
        _applied(plan, seen[r])
    assert seen == {1: {}, 2: {0: [0, 2], 1: [1]}, 3: {}, 4: {2: [3]}, 5: {}, 6: {}}


def test_requests_are_withdrawn_in_their_round_until_confirmed() -> None:
    plan = _plan(policy="batched", batch_every=4)
    assert plan.withdrawals_at(1) == {0: [0]}
    plan.withdrawn(0, [0])
    assert plan.withdrawals_at(2) == {0: [2], 1: [1]}
    plan.withdrawn(0, [2])  # site 1 was not sampled: its withdrawal waits for its next message
    assert plan.withdrawals_at(3) == {1: [1], 2: [3]}
    assert plan.deletions_at(3) == {}
    assert plan.deletions_at(4) == {0: [0, 2], 1: [1], 2: [3]}
    _applied(plan, plan.deletions_at(4))
    assert plan.withdrawals_at(5) == {} and plan.deletions_at(5) == {}


def test_retrain_policy_resets_instead_of_unlearning() -> None:
    plan = _plan(policy="retrain", batch_every=2)
    resets = {r: plan.resets_at(r) for r in range(1, 7)}
    assert resets == {1: [], 2: [0, 1, 2], 3: [], 4: [3], 5: [], 6: []}
    assert all(plan.deletions_at(r) == {} for r in range(1, 7))
    assert plan.withdrawals_at(6) == {
        0: [0, 2],
        1: [1],
        2: [3],
    }  # sites still drop the rows at once
    assert plan.pending == {}


def test_federated_retrain_schedules_nothing() -> None:
    plan = _plan(method="retrain", policy="batched", batch_every=2)
    assert [plan.deletions_at(r) for r in range(1, 5)] == [{}] * 4
    assert plan.withdrawals_at(4) == {} and plan.resets_at(4) == []


def test_plan_uses_the_effective_request_list() -> None:
    s = small_scenario(
        training={"rounds": 8},
        deletion={
            "requests": REQS[:1],
            "stochastic": {"rate": 1.0, "fraction": 0.1, "sites": [2], "start_round": 5},
        },
    )
    plan = FederationPlan(s, {0: 100, 1: 101, 2: 102}, _ledger())
    assert plan.deletions_at(1) == {0: [0]}
    plan.unlearned(0, [0])
    assert plan.deletions_at(5) == {2: [1]}
    plan.unlearned(2, [1])
    assert plan.deletions_at(6) == {2: [2]}


# ----------------------------------------------------------------------------- aggregation and cost
class _Reply:
    """A site's reply as the strategy reads it (a real Message needs a running Flower run)."""

    def __init__(self, content: RecordDict, src_node_id: int) -> None:
        self.content = content
        self.metadata = SimpleNamespace(src_node_id=src_node_id)

    def has_error(self) -> bool:
        return False


def _reply(site: int, kind: str, n: int, value: float) -> _Reply:
    arrays = ArrayRecord({"w": torch.full((3,), value)})
    metrics = MetricRecord({"num-examples": n, "train-loss": 0.0, "seconds": 0.1, "images": n})
    info = {"site": site, "kind": kind}
    if kind == "unlearn":
        info.update(
            {
                "method": "none",
                "request-ids": [0],
                "request-counts": [5],
                "forget-count": 5,
                "retain-count": 0,
                "unlearn-seconds": 0.0,
                "unlearn-images": 0,
            }
        )
    return _Reply(
        RecordDict({"arrays": arrays, "metrics": metrics, "info": ConfigRecord(info)}), 100 + site
    )


@pytest.mark.parametrize("integration", ["adopt", "aggregate"])
def test_sites_with_nothing_left_do_not_divide_by_zero(tmp_path, integration: str) -> None:
    s = small_scenario(deletion={"integration": integration})
    plan = FederationPlan(s, {0: 100, 1: 101, 2: 102}, _ledger())
    strategy = make_strategy(s, plan, RunRecorder(tmp_path, "salun-cra"))
    strategy._t0 = 0.0
    if (
        integration == "adopt"
    ):  # the only unlearning site had no retain data: its (unchanged) model is adopted
        arrays, _ = strategy.aggregate_train(2, [_reply(1, "unlearn", 0, 1.0)])
        assert np.allclose(arrays["w"].numpy(), 1.0)
    else:  # zero-example replies carry no weight; a round of only such replies keeps the global model
        arrays, _ = strategy.aggregate_train(
            3, [_reply(1, "train", 0, 9.0), _reply(0, "train", 10, 2.0)]
        )
        assert np.allclose(arrays["w"].numpy(), 2.0)
        assert strategy.aggregate_train(4, [_reply(1, "train", 0, 9.0)]) == (None, None)


def test_policy_cost_counts_unlearning_replies_once() -> None:
    rows = [
        (1, "site-0", "train", "seconds", 2.0),
        (1, "site-0", "train", "images", 100),
        (2, "site-0", "train", "seconds", 3.0),
        (2, "site-0", "train", "images", 50),
        (2, "site-0", "unlearn", "seconds", 2.5),
        (2, "site-0", "unlearn", "images", 50),
        (2, "site-1", "train", "seconds", 1.0),
        (2, "site-1", "train", "images", 80),
    ]
    table = pd.DataFrame(rows, columns=["round", "site", "phase", "metric", "value"])
    cost = policy_cost(table).set_index("work")
    assert cost.loc["train"].tolist() == [3.0, 180.0]
    assert cost.loc["unlearn"].tolist() == [2.5, 50.0]
