"""Summary arithmetic on handmade long tables: final-round figures, costs, mean ± std, gaps to Retrain."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fedunlearn.reports.tables import (
    aggregate,
    pareto_front,
    per_run,
    run_costs,
    summarize,
    summary_markdown,
)

KEY = "deletion.method"


def _run(
    run: str, seed: int, method: str, risk: float, fnr: float, mia: float, **keys: str
) -> list[dict]:
    """A 2-round, 2-site run; earlier rounds carry decoy values so only the final round may count."""
    rows = []

    def add(rnd, site, phase, metric, value, request=""):
        rows.append(
            {
                "run": run,
                "seed": seed,
                KEY: method,
                **keys,
                "round": rnd,
                "site": site,
                "phase": phase,
                "method": method,
                "metric": metric,
                "value": value,
                "request": request,
            }
        )

    for rnd in (0, 1, 2):
        final = rnd == 2
        add(rnd, "global", "test", "risk_2", risk if final else 99.0)
        add(rnd, "global", "test", "fnr", fnr if final else 0.99)
        add(rnd, "global", "test", "bac", 0.7 if final else 0.01)
        add(rnd, "global", "val", "risk_2", 55.0)  # the validation split never counts
    for site in ("site-0", "site-1"):
        add(1, site, "train", "seconds", 1.0)
        add(1, site, "train", "images", 100.0)
    if method == "retrain":
        add(1, "site-1", "forget", "mia_efficacy", 77.0, "r0")
        add(1, "site-1", "forget", "ubac", 0.01, "r0")
        for site in ("site-0", "site-1"):
            add(2, site, "train", "seconds", 1.0)
            add(2, site, "train", "images", 80.0)
    else:  # the deletion reply: recorded as train and as unlearn, counted once
        add(2, "site-1", "train", "seconds", 5.0)
        add(2, "site-1", "train", "images", 60.0)
        add(2, "site-1", "unlearn", "seconds", 4.0, "r0")
        add(2, "site-1", "unlearn", "images", 60.0, "r0")
        add(2, "site-1", "unlearn", "ubac", 0.99, "r0")
    add(2, "site-1", "forget", "ubac", 0.4, "r0")
    add(2, "site-1", "forget", "mia_efficacy", mia, "r0")
    return rows


@pytest.fixture()
def long() -> pd.DataFrame:
    rows = (
        _run("s0", 0, "salun-cra", 1.0, 0.2, 30.0)
        + _run("s1", 1, "salun-cra", 2.0, 0.4, 50.0)
        + _run("r0", 0, "retrain", 0.5, 0.1, 20.0)
        + _run("r1", 1, "retrain", 1.5, 0.1, 20.0)
    )
    return pd.DataFrame(rows)


def test_costs_count_a_deletion_reply_once(long: pd.DataFrame) -> None:
    salun = run_costs(long[long["run"] == "s0"])
    assert salun == {
        "seconds": 1 + 1 + 4,
        "images": 200 + 60,
        "erasure_seconds": 4,
        "erasure_images": 60,
    }
    retrain = run_costs(long[long["run"] == "r0"])  # Retrain's erasure is its whole training
    assert retrain == {"seconds": 4, "images": 360, "erasure_seconds": 4, "erasure_images": 360}


def test_per_run_takes_the_final_round(long: pd.DataFrame) -> None:
    runs = per_run(long, [KEY]).set_index("run")
    assert runs.loc["s1", ["risk_2", "fnr", "bac", "ubac", "mia_efficacy"]].tolist() == [
        2.0,
        0.4,
        0.7,
        0.4,
        50.0,
    ]
    assert runs.loc["r0", "mia_efficacy"] == 20.0  # not round 1's 77
    assert runs.loc["s0", "seed"] == 0 and runs.loc["r1", "method"] == "retrain"


def test_mean_std_and_gap_to_retrain(long: pd.DataFrame) -> None:
    runs, agg = summarize(long, [KEY], KEY)
    a = agg.set_index(KEY)
    assert list(a.index) == ["salun-cra", "retrain"]
    assert a.loc["salun-cra", "runs"] == 2 and a.loc["salun-cra", "seeds"] == "0 1"
    assert a.loc["salun-cra", "risk_2_mean"] == pytest.approx(1.5)
    assert a.loc["salun-cra", "risk_2_std"] == pytest.approx(math.sqrt(0.5))
    assert a.loc["salun-cra", "risk_2_gap"] == pytest.approx(1.5 - 1.0)
    assert a.loc["salun-cra", "fnr_gap"] == pytest.approx(0.3 - 0.1)
    assert a.loc["salun-cra", "mia_efficacy_gap"] == pytest.approx(40.0 - 20.0)
    assert a.loc["retrain", ["risk_2_gap", "fnr_gap", "mia_efficacy_gap"]].tolist() == [
        0.0,
        0.0,
        0.0,
    ]
    assert (
        a.loc["salun-cra", "erasure_seconds_mean"] == 4.0
        and a.loc["retrain", "erasure_images_mean"] == 360.0
    )
    md = summary_markdown(runs, agg, [KEY]).set_index(KEY)
    assert md.loc["salun-cra", "Risk II"] == "1.500 ± 0.707"
    assert md.loc["salun-cra", "ΔRisk II"] == "+0.500" and md.loc["salun-cra", "ΔMIA"] == "+20.000"


def test_gaps_match_retrain_on_the_other_keys(long: pd.DataFrame) -> None:
    rows = (
        _run("a", 0, "rl", 2.0, 0.5, 10.0, **{"training.lr": "0.1"})
        + _run("b", 0, "rl", 3.0, 0.5, 10.0, **{"training.lr": "0.01"})
        + _run("c", 0, "retrain", 1.25, 0.25, 10.0, **{"training.lr": "0.1"})
    )
    _, agg = summarize(pd.DataFrame(rows), [KEY, "training.lr"], KEY)
    gaps = {(m, lr): g for m, lr, g in zip(agg[KEY], agg["training.lr"], agg["risk_2_gap"])}
    assert gaps[("rl", "0.1")] == pytest.approx(0.75)
    assert np.isnan(gaps[("rl", "0.01")])  # no Retrain with lr 0.01


def test_no_gap_columns_without_retrain(long: pd.DataFrame) -> None:
    _, agg = summarize(long[long[KEY] != "retrain"], [KEY], KEY)
    assert not any(c.endswith("_gap") for c in agg.columns)


def test_single_run_has_no_std(long: pd.DataFrame) -> None:
    agg = aggregate(per_run(long[long["run"] == "s0"], [KEY]), [KEY])
    assert agg["runs"].tolist() == [1] and np.isnan(agg["risk_2_std"].iloc[0])


def test_pareto_front() -> None:
    cost = [1.0, 2.0, 3.0, 2.0, float("nan"), 1.0]
    risk = [5.0, 1.0, 0.5, 3.0, 0.1, 5.0]
    # (2, 3) is beaten by (2, 1); the two (1, 5) points tie and neither beats the other
    assert pareto_front(cost, risk).tolist() == [True, True, True, False, False, True]
