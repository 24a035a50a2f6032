"""The risk guard's branches that a real run reaches only by chance, against a scripted federation.

:class:`RiskGuard` talks to the sites through a Flower ``Grid``; here a stand-in
grid answers each message as a site would (evaluate counts, recovery updates,
forget-set checks), with figures chosen by the test, so that every branch is
reached on purpose, in-process and without Ray:

- ``data: site-test``: the guarded metric is computed from the confusion counts
  pooled over the sites' local test shards (never from the server's split);
- a recovery that brings the metric back but re-learns the forget set (its MIA
  efficacy falls by more than ``relearn_margin`` below its value after the pass)
  is dropped, and the next action (``escalate``) decides.

The guard as a whole, in real runs, is tests/federated/test_guard.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from flwr.app import ArrayRecord, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from fedunlearn.federated.guard import RiskGuard
from fedunlearn.federated.ledger import ServerLedger
from fedunlearn.federated.plan import FederationPlan
from fedunlearn.federated.policy import fresh_global_arrays
from fedunlearn.federated.protocol import (
    ARRAYS,
    EVALUATE,
    METRICS,
    RECOVER,
    SITE_RECORD,
    VERIFY,
    EvaluateReply,
    TrainMetrics,
    UnlearnInfo,
    VerifyReply,
)
from fedunlearn.federated.recorder import RunRecorder
from fedunlearn.federated.transport import to_arrays
from fedunlearn.metrics import Confusion, RiskCosts, clinical_metrics, pool
from fedunlearn.models import build_model
from tests.federated.conftest import small_scenario

NODES = {0: 101, 1: 202}  # site -> node id
ROUND = 3


def _scenario(**guard):
    return small_scenario(
        sites={"count": 2},
        deletion={
            "requests": [{"round": ROUND, "site": 1, "fraction": 0.25}],
            "guard": {"enabled": True, "tolerance": 0.02, "data": "site-test", **guard},
        },
    )


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    """Messages are stamped with the run and node they come from; the ServerApp's process sets them."""
    saved = TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


def _confusion(fn: int) -> Confusion:
    """Counts of a local test shard with 10 malignant rows, ``fn`` of them missed."""
    return Confusion(tp=10 - fn, fp=3, tn=37, fn=fn)


class ScriptedGrid:
    """Answers like the sites would: ``evaluate`` with the counts ``counts(site)`` gives for the model
    evaluated, ``train.recover`` with the model sent back, ``query.verify`` with ``verify_mia``."""

    def __init__(self, counts: Callable[[int, int], Confusion], verify_mia: float = 40.0) -> None:
        self.counts, self.verify_mia = counts, verify_mia
        self.sent: list[tuple[str, int]] = []
        self.evaluations = 0

    def send_and_receive(self, messages: Iterable[Message], timeout: float | None = None):
        messages = list(messages)
        if messages and messages[0].metadata.message_type == EVALUATE:
            self.evaluations += 1
        replies = []
        for msg in messages:
            kind, node = msg.metadata.message_type, msg.metadata.dst_node_id
            site = next(s for s, n in NODES.items() if n == node)
            self.sent.append((kind, site))
            if kind == EVALUATE:
                content = EvaluateReply(site, self.counts(self.evaluations, site), 0.1).to_content()
            elif kind == RECOVER:
                metrics = TrainMetrics(loss=0.5, seconds=0.2, images=100, num_examples=100)
                content = RecordDict({ARRAYS: msg.content[ARRAYS], METRICS: metrics.to_record()})
            elif kind == VERIFY:
                record = VerifyReply(site, {0: {"mia_efficacy": self.verify_mia, "ubac": 0.2}})
                content = RecordDict({SITE_RECORD: record.to_record()})
            else:
                raise AssertionError(f"unexpected message {kind}")
            reply = Message(content, reply_to=msg)
            reply.metadata.__dict__["_src_node_id"] = (
                node  # a reply comes from the node it was sent to
            )
            replies.append(reply)
        return replies


def _guard(tmp_path: Path, scenario) -> tuple[RiskGuard, ServerLedger, RunRecorder]:
    ledger = ServerLedger(tmp_path / "ledger.sqlite")
    ledger.request(0, "site-1", ROUND, 0.25, "random")
    recorder = RunRecorder(tmp_path, scenario.deletion.method)
    plan = FederationPlan(scenario, dict(NODES), ledger)
    return RiskGuard(plan, recorder, reset_optimiser=lambda: None), ledger, recorder


def _pass(mia_after: float) -> UnlearnInfo:
    return UnlearnInfo(
        site=1,
        method="salun-cra",
        request_ids=(0,),
        request_counts=(45,),
        forget_count=45,
        retain_count=135,
        seconds=1.0,
        images=500,
        after={"mia_efficacy": mia_after, "ubac": 0.3},
    )


def _arrays(scenario, seed: int) -> ArrayRecord:
    return to_arrays(build_model(scenario.model, seed=seed))


def _events(tmp_path: Path, kind: str) -> list[dict]:
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def test_site_test_data_pools_the_sites_counts(tmp_path: Path) -> None:
    scenario = _scenario()
    guard, _, _ = _guard(tmp_path, scenario)
    grid = ScriptedGrid(lambda _, site: _confusion(fn=2 + 3 * site))  # 2 and 5 missed of 10 each
    value = guard.measure(_arrays(scenario, 0), grid, ROUND)
    costs = RiskCosts(scenario.evaluation.c_fp, scenario.evaluation.c_fn)
    expected = clinical_metrics(pool([_confusion(2), _confusion(5)]), costs=costs)["fnr"]
    assert value == pytest.approx(expected) == pytest.approx(7 / 20)
    assert grid.sent == [(EVALUATE, 0), (EVALUATE, 1)]  # every site asked, nothing else


def test_a_recovery_that_relearns_the_forget_set_is_dropped_and_escalates(
    tmp_path: Path,
) -> None:
    scenario = _scenario(
        actions=["recover", "escalate"], recover={"max_rounds": 2}, relearn_margin=5.0
    )
    guard, ledger, _ = _guard(tmp_path, scenario)

    # evaluations in order: the reference (FNR 0.10), the pass (0.50: trips), recovery round 1
    # (0.10: back within tolerance), then the escalated (reset) model (0.60)
    fnr_by_evaluation = {1: 1, 2: 5, 3: 1, 4: 6}
    grid = ScriptedGrid(lambda k, _: _confusion(fn=fnr_by_evaluation[k]), verify_mia=20.0)
    reference, after_pass = _arrays(scenario, 0), _arrays(scenario, 1)
    adopted = guard.review(ROUND, grid, reference, after_pass, [_pass(mia_after=40.0)])

    (decision,) = _events(tmp_path, "guard-decision")
    assert decision["status"] == "escalated"
    assert decision["reference"] == pytest.approx(0.1) and decision["after_pass"] == pytest.approx(
        0.5
    )
    assert decision["after_recovery"] == pytest.approx(0.1) and decision["rounds"] == 1
    assert decision["final"] == pytest.approx(0.6)  # the reset model, not the re-learnt one
    assert any("re-learnt" in note for note in decision["notes"])
    # one recovery round at every site, then the requesting site checked its forget set
    assert [k for k, _ in grid.sent if k != EVALUATE] == [RECOVER, RECOVER, VERIFY]
    assert (VERIFY, 1) in grid.sent
    fresh = fresh_global_arrays(scenario, ROUND)
    assert all(
        (adopted[k].numpy() == fresh[k].numpy()).all() for k in fresh.keys()
    )  # escalate adopted the reset model
    (row,) = [r for r in ledger.rows() if r["id"] == 0]
    assert row["guard_status"] == "escalated" and row["guard_after_recovery"] == pytest.approx(0.1)


def test_a_recovery_that_keeps_the_forget_set_forgotten_is_adopted(tmp_path: Path) -> None:
    scenario = _scenario(actions=["recover", "escalate"], relearn_margin=5.0)
    guard, _, _ = _guard(tmp_path, scenario)
    fnr_by_evaluation = {1: 1, 2: 5, 3: 1}
    grid = ScriptedGrid(lambda k, _: _confusion(fn=fnr_by_evaluation[k]), verify_mia=38.0)
    guard.review(ROUND, grid, _arrays(scenario, 0), _arrays(scenario, 1), [_pass(40.0)])
    (decision,) = _events(tmp_path, "guard-decision")
    assert decision["status"] == "recovered" and decision["final"] == pytest.approx(0.1)
    assert decision["notes"] == []  # MIA efficacy 40 -> 38: within the margin of 5
