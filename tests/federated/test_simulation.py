"""Federated runs through Flower's simulation engine on the real Ray backend."""

from __future__ import annotations

import pytest
import torch

from fedunlearn.federated import site as S
from tests.federated.conftest import Run, small_scenario

COUNTS = ["tp", "fp", "tn", "fn"]


@pytest.fixture(scope="module")
def one_deletion(run_scenario_dir) -> Run:
    return run_scenario_dir(small_scenario(), "one-deletion")


def _forget_rows(run: Run, site: int, request: int) -> torch.Tensor:
    """Recompute, independently of the run, which rows the request withdrew (first request: full shard)."""
    req = run.scenario.deletion.requests[request]
    return S.select_request_rows(
        run.scenario, site, req, S.site_shards(run.scenario, site).train_rows
    )


def test_run_directory_is_complete(one_deletion: Run) -> None:
    for name in (
        "scenario.yaml",
        "manifest.json",
        "metrics.csv",
        "events.jsonl",
        "model.safetensors",
        "risk.png",
    ):
        assert (one_deletion.path / name).is_file(), name
    assert one_deletion.manifest["complete"] is True
    assert one_deletion.manifest["data"]["synthetic"] is True
    assert (one_deletion.path / "risk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(one_deletion.metrics.columns[:6]) == [
        "round",
        "site",
        "phase",
        "method",
        "metric",
        "value",
    ]


def test_unlearning_ran_exactly_once_at_the_requesting_site(one_deletion: Run) -> None:
    applied = [e for e in one_deletion.events if e["event"] == "deletion-applied"]
    assert [(e["round"], e["site"], e["requests"]) for e in applied] == [(2, "site-1", [0])]
    unlearn_rows = one_deletion.metrics[one_deletion.metrics["phase"] == "unlearn"]
    assert set(zip(unlearn_rows["round"], unlearn_rows["site"])) == {(2, "site-1")}
    for site in ("site-0", "site-1", "site-2"):
        phases = {(a["round"], a["phase"]) for a in one_deletion.audit(site)}
        unlearn = {p for p in phases if p[1].startswith("unlearn")}
        assert unlearn == (
            {(2, "unlearn-forget"), (2, "unlearn-retain")} if site == "site-1" else set()
        )


def test_site_never_trains_on_forget_samples_after_the_request(one_deletion: Run) -> None:
    forget = _forget_rows(one_deletion, 1, 0)
    assert len(forget) == round(0.25 * len(S.site_shards(one_deletion.scenario, 1).train_rows))
    audit = one_deletion.audit("site-1")
    trained = {(a["round"], a["phase"]): torch.tensor(a["rows"]) for a in audit}
    # Before the request the site did train on them (so the check below can fail) ...
    assert torch.isin(forget, trained[(1, "train")]).all()
    # ... in the deletion round only the forget pass sees them, and afterwards nothing does.
    assert torch.equal(torch.sort(trained[(2, "unlearn-forget")]).values, forget)
    assert not torch.isin(forget, trained[(2, "unlearn-retain")]).any()
    after = [
        rows
        for (rnd, phase), rows in trained.items()
        if rnd >= 2 and phase in ("train", "unlearn-retain")
    ]
    assert after and all(not torch.isin(forget, rows).any() for rows in after)
    assert (3, "train") in trained


def test_every_round_and_site_has_metric_rows(one_deletion: Run) -> None:
    m = one_deletion.metrics
    rounds = range(1, one_deletion.scenario.training.rounds + 1)
    for r in [0, *rounds]:
        g = m[(m["round"] == r) & (m["site"] == "global") & (m["phase"] == "test")]
        assert {"fnr", "sensitivity", "specificity", "bac", "risk_1", "risk_2", "auc"} <= set(
            g["metric"]
        )
    for r in rounds:
        for site in ("site-0", "site-1", "site-2", "pooled"):
            rows = m[(m["round"] == r) & (m["site"] == site) & (m["phase"] == "local-test")]
            assert {"tp", "fp", "tn", "fn", "fnr", "risk_2"} <= set(rows["metric"]), (r, site)
    forget = m[(m["phase"] == "forget") & (m["site"] == "site-1")]
    assert sorted(set(forget["round"])) == [2, 3]
    assert {"ubac", "mia_efficacy"} <= set(forget["metric"])


def test_global_counts_equal_sum_of_site_counts(one_deletion: Run) -> None:
    """The sites' local test shards partition the validation split, so the server's
    evaluation on that split must equal the sum of the sites' confusion counts."""
    m = one_deletion.metrics
    for r in range(1, one_deletion.scenario.training.rounds + 1):

        def counts(site: str, phase: str, r: int = r) -> list[float]:
            sub = m[(m["round"] == r) & (m["site"] == site) & (m["phase"] == phase)].set_index(
                "metric"
            )["value"]
            return [sub[c] for c in COUNTS]

        per_site = [counts(s, "local-test") for s in ("site-0", "site-1", "site-2")]
        summed = [sum(col) for col in zip(*per_site)]
        assert counts("pooled", "local-test") == summed
        assert counts("global", "val") == summed
        assert sum(summed) == one_deletion.scenario.data.synthetic.n_val


def test_two_sites_in_one_round_with_aggregation(run_scenario_dir) -> None:
    scenario = small_scenario(
        deletion={
            "integration": "aggregate",
            "method": "rl",
            "requests": [
                {"round": 2, "site": 0, "fraction": 0.2},
                {"round": 2, "site": 2, "fraction": 0.3, "mode": "malignant"},
            ],
        }
    )
    run = run_scenario_dir(scenario, "two-sites")
    applied = sorted(
        (e["round"], e["site"], e["requests"])
        for e in run.events
        if e["event"] == "deletion-applied"
    )
    assert applied == [(2, "site-0", [0]), (2, "site-2", [1])]
    # Under 'aggregate' the other site trains in the deletion round too.
    assert any(a["round"] == 2 and a["phase"] == "train" for a in run.audit("site-1"))
    for site, rid in ((0, 0), (2, 1)):
        forget = S.select_request_rows(
            scenario,
            site,
            scenario.deletion.requests[rid],
            S.site_shards(scenario, site).train_rows,
        )
        for a in run.audit(f"site-{site}"):
            if a["round"] >= 2 and a["phase"] in ("train", "unlearn-retain"):
                assert not torch.isin(forget, torch.tensor(a["rows"])).any()


def test_federated_retrain_never_trains_on_forget_sets(run_scenario_dir) -> None:
    scenario = small_scenario(deletion={"method": "retrain"}, training={"rounds": 2})
    run = run_scenario_dir(scenario, "retrain")
    assert not [e for e in run.events if e["event"] == "deletion-applied"]
    forget = S.select_request_rows(
        scenario, 1, scenario.deletion.requests[0], S.site_shards(scenario, 1).train_rows
    )
    audit = run.audit("site-1")
    assert audit and all(not torch.isin(forget, torch.tensor(a["rows"])).any() for a in audit)
    # The gold standard still reports the forget set's metrics, for comparison.
    assert not run.metrics[(run.metrics["phase"] == "forget")].empty
