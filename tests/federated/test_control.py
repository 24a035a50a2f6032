"""The counterfactual control arm (deletion.method: none) through the real Ray backend."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
import torch

from fedunlearn.federated import site as S
from fedunlearn.federated.ledger import SiteLedger
from tests.federated.conftest import Run, small_scenario

REQUEST_ROUND = 3
_TIMING = {"seconds", "train_seconds", "evaluate_seconds", "server_eval_seconds"}


def _scenario(method: str):
    return small_scenario(
        training={"rounds": 4, "lr_schedule": "cosine", "warmup_rounds": 1},
        deletion={
            "method": method,
            "requests": [{"round": REQUEST_ROUND, "site": 1, "fraction": 0.3}],
        },
    )


@pytest.fixture(scope="module")
def pair(run_scenario_dir) -> tuple[Run, Run]:
    return run_scenario_dir(_scenario("none"), "control"), run_scenario_dir(
        _scenario("salun-cra"), "salun-cra"
    )


def _rows(run: Run) -> pd.DataFrame:
    m = run.metrics
    m = m[(m["phase"] != "timing") & ~m["metric"].isin(_TIMING)]
    return (
        m.drop(columns="method")
        .set_index(["round", "site", "phase", "metric", "request"])["value"]
        .sort_index()
    )


def test_control_equals_the_method_bit_for_bit_before_the_request_round(
    pair: tuple[Run, Run],
) -> None:
    control, method = (_rows(r) for r in pair)
    before_c = control[control.index.get_level_values("round") < REQUEST_ROUND]
    before_m = method[method.index.get_level_values("round") < REQUEST_ROUND]
    assert len(before_c) > 100
    pd.testing.assert_series_equal(before_c, before_m, check_exact=True)
    # ... and the erasure is what makes them differ from its round on
    at_c = control.xs((REQUEST_ROUND, "global", "test"), level=("round", "site", "phase"))
    at_m = method.xs((REQUEST_ROUND, "global", "test"), level=("round", "site", "phase"))
    assert not at_c.equals(at_m)


def test_control_records_the_request_and_erases_nothing(pair: tuple[Run, Run]) -> None:
    control, method = pair
    with sqlite3.connect(control.path / "ledger.sqlite") as con:
        assert con.execute("SELECT status, method, applied_round FROM requests").fetchall() == [
            ("not-erased", "none", REQUEST_ROUND)
        ]
    assert control.manifest["requests"]["not-erased"] == 1
    assert not any(e["event"].startswith("deletion-") for e in control.events)
    assert not (control.metrics["phase"] == "unlearn").any()
    # the would-be forget rows are trained on after the request round (nothing withdrawn) ...
    sc = control.scenario
    req = sc.deletion.requests[0]
    forget = S.select_request_rows(sc, 1, req, S.site_shards(sc, 1).train_rows)
    later = [
        torch.tensor(a["rows"]) for a in control.audit("site-1") if a["round"] >= REQUEST_ROUND
    ]
    assert later and all(torch.isin(forget, rows).all() for rows in later)
    # ... the site's ledger holds nothing, and the method's run withdrew exactly those rows
    assert SiteLedger(control.path / "sites" / "site-1" / "ledger.sqlite").withdrawn() == {}
    assert torch.equal(
        SiteLedger(method.path / "sites" / "site-1" / "ledger.sqlite").withdrawn()[0],
        torch.sort(forget).values,
    )


def test_control_tracks_the_same_forget_set_with_counts(pair: tuple[Run, Run]) -> None:
    for run in pair:
        f = run.metrics[(run.metrics["phase"] == "forget") & (run.metrics["site"] == "site-1")]
        assert sorted(set(f["round"])) == list(range(REQUEST_ROUND, 5)), (
            run.scenario.deletion.method
        )
        at = f[f["round"] == 4].set_index("metric")["value"]
        counts = at[["forget_tp", "forget_fp", "forget_tn", "forget_fn"]]
        expected = round(0.3 * len(S.site_shards(run.scenario, 1).train_rows))
        assert counts.sum() == at["forget_count"] == expected
        tp, fp, tn, fn = counts
        bac = 0.5 * (tp / (tp + fn) + tn / (tn + fp))
        assert at["ubac"] == pytest.approx(1 - bac)
