"""The counterfactual control arm (deletion.method: none) through the real Ray backend.

The pair is the tiny scenario of tests/sweeps/test_prefix.py (2 sites, 4 rounds, a cosine schedule
with a warm-up round, one request in round 4) under ``deletion.method=none`` and ``salun-cra``.
"""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
import torch

from fedunlearn.federated import site as S
from fedunlearn.federated.ledger import SiteLedger
from tests.federated.conftest import Run
from tests.sweeps.tiny import REQUEST_ROUND, arm_points

_TIMING = {"seconds", "train_seconds", "evaluate_seconds", "server_eval_seconds"}


@pytest.fixture(scope="module")
def pair(run_scenario_dir, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    """The control and SalUn-CRA points of tests/sweeps/test_prefix.py's sweep, as run alone there
    (same worker: ``tiny-arms`` in tests/conftest.py), so those two runs are made once per session."""
    points = arm_points(tmp_path_factory.mktemp("control"))
    return tuple(run_scenario_dir(points[m].scenario, m) for m in ("none", "salun-cra"))


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
        fraction = run.scenario.deletion.requests[0].fraction
        expected = round(fraction * len(S.site_shards(run.scenario, 1).train_rows))
        assert counts.sum() == at["forget_count"] == expected
        tp, fp, tn, fn = counts
        bac = 0.5 * (tp / (tp + fn) + tn / (tn + fp))
        assert at["ubac"] == pytest.approx(1 - bac)
