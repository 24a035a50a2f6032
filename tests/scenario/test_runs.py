"""Tiny real runs (Flower simulation on Ray) of the deletion policies and of a hospital leaving."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fedunlearn.federated import site as S
from fedunlearn.federated.policy import policy_cost
from fedunlearn.federated.scenario import load_scenario
from tests.federated.conftest import Run, small_scenario

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _events(run: Run, kind: str) -> list[tuple]:
    return sorted((e["round"], e["site"], e["requests"]) for e in run.events if e["event"] == kind)


def _rows(run: Run, site: str, phase: str, server_round: int) -> torch.Tensor:
    return torch.tensor(
        [
            r
            for a in run.audit(site)
            if a["round"] == server_round and a["phase"] == phase
            for r in a["rows"]
        ],
        dtype=torch.long,
    )


@pytest.fixture(scope="module")
def batched(run_scenario_dir) -> Run:
    scenario = small_scenario(
        training={"rounds": 4},
        deletion={
            "policy": "batched",
            "batch_every": 2,
            "requests": [
                {"round": 1, "site": 0, "fraction": 0.25},
                {"round": 2, "site": 1, "fraction": 0.25},
            ],
        },
    )
    return run_scenario_dir(scenario, "batched")


def test_batched_unlearns_only_at_the_batch_round(batched: Run) -> None:
    assert batched.manifest["complete"] is True
    assert _events(batched, "deletion-applied") == [(2, "site-0", [0]), (2, "site-1", [1])]
    assert _events(batched, "withdrawal-applied") == [(1, "site-0", [0])]
    for site in ("site-0", "site-1", "site-2"):
        unlearn = {
            (a["round"], a["phase"])
            for a in batched.audit(site)
            if a["phase"].startswith("unlearn")
        }
        assert unlearn == (
            set() if site == "site-2" else {(2, "unlearn-forget"), (2, "unlearn-retain")}
        ), site
    m = batched.metrics
    assert set(m.loc[m["phase"] == "unlearn", "round"]) == {2}
    cost = policy_cost(m).set_index("work")
    assert cost.loc["unlearn", "images"] > 0 and cost.loc["train", "images"] > 0


def test_batched_never_trains_on_withdrawn_rows_from_the_request_round(batched: Run) -> None:
    s = batched.scenario
    for site, rid in ((0, 0), (1, 1)):
        shard = S.site_shards(s, site).train_rows
        forget = S.select_request_rows(s, site, s.effective_requests[rid], shard)
        request_round = s.effective_requests[rid].round
        name = f"site-{site}"
        for a in batched.audit(name):
            if a["round"] >= request_round and a["phase"] in ("train", "unlearn-retain"):
                assert not torch.isin(forget, torch.tensor(a["rows"], dtype=torch.long)).any(), (
                    name,
                    a["round"],
                )
        # The unlearning pass (round 2) forgets exactly the rows withdrawn at the request round.
        assert torch.equal(torch.sort(_rows(batched, name, "unlearn-forget", 2)).values, forget)
    # Site 0 withdrew its rows before training in round 1: it trained on exactly the rest of its shard ...
    shard0 = S.site_shards(s, 0).train_rows
    forget0 = S.select_request_rows(s, 0, s.effective_requests[0], shard0)
    assert torch.equal(
        torch.sort(_rows(batched, "site-0", "train", 1)).values, S.remove(shard0, forget0)
    )
    # ... while site 1, whose request came at round 2, still trained on its rows in round 1.
    forget1 = S.select_request_rows(s, 1, s.effective_requests[1], S.site_shards(s, 1).train_rows)
    assert torch.isin(forget1, _rows(batched, "site-1", "train", 1)).all()


def test_withdrawn_but_not_unlearned_rows_are_tracked(batched: Run) -> None:
    """Between withdrawal and unlearning the request's forget-set metrics are already reported (the exposure)."""
    m = batched.metrics
    r0 = m[(m["phase"] == "forget") & (m["request"] == "r0")]
    assert sorted(set(r0["round"])) == [1, 2, 3, 4]


def test_site_leaves_runs_to_the_end(run_scenario_dir) -> None:
    scenario = load_scenario(
        CONFIGS / "site-leaves.yaml",
        [
            "name=site-leaves-tiny",
            "data.dataset=synthetic",
            "data.synthetic={n_train: 360, n_val: 90, n_test: 150}",
            "sites.count=3",
            "training.rounds=4",
            "training.local_epochs=1",
            "training.batch_size=32",
            "deletion.unlearn.epochs=1",
            "deletion.requests[0].round=2",
            "deletion.requests[0].site=2",
        ],
    )
    assert (scenario.deletion.policy, scenario.effective_requests[0].fraction) == ("retrain", 1.0)
    run = run_scenario_dir(scenario, "site-leaves")
    assert run.manifest["complete"] is True
    assert not [e for e in run.events if e["event"] == "site-failure"]
    assert [(e["round"], e["requests"]) for e in run.events if e["event"] == "retrain-reset"] == [
        (2, [0])
    ]
    assert _events(run, "withdrawal-applied") == [(2, "site-2", [0])]
    shard = S.site_shards(scenario, 2).train_rows
    assert torch.equal(torch.sort(_rows(run, "site-2", "train", 1)).values, shard)
    for r in (2, 3, 4):  # the site keeps answering, with nothing to train on
        assert len(_rows(run, "site-2", "train", r)) == 0
    m = run.metrics
    site2 = m[(m["site"] == "site-2") & (m["phase"] == "train") & (m["metric"] == "num_examples")]
    assert site2.set_index("round")["value"].to_dict() == {1: len(shard), 2: 0, 3: 0, 4: 0}
    for r in range(1, 5):
        bac = m[
            (m["round"] == r)
            & (m["site"] == "global")
            & (m["phase"] == "test")
            & (m["metric"] == "bac")
        ]["value"]
        assert len(bac) == 1 and math.isfinite(float(bac.iloc[0])), r
        local = m[(m["round"] == r) & (m["site"] == "site-2") & (m["phase"] == "local-test")]
        assert not local.empty, r
