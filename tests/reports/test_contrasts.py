"""The paired summary from handmade long tables: arms paired by seed and keys, at the final and erasure rounds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fedunlearn.reports.contrasts import (
    SUMMARY_COLUMNS,
    erasure_round,
    paired_markdown,
    paired_rounds,
    paired_summary,
    run_figures,
)
from fedunlearn.reports.paired import ONE_SEED, REFERENCE, paired_ci

LR = "training.lr"
EXACT_COLUMNS = [
    LR,
    "method",
    "metric",
    "at",
    "round",
    "mean",
    "std",
    "delta_vs_control",
    "ci_low",
    "ci_high",
    "delta_vs_retrain",
    "ci_low_retrain",
    "ci_high_retrain",
    "n_seeds",
    "verdict_vs_control",
    "verdict_vs_retrain",
]
# Per-seed FNR shift of each arm over the control arm from round 2 (the request round) on.
SHIFT = {"none": [0.0, 0.0, 0.0], "salun-cra": [0.05, 0.06, 0.07], "retrain": [0.02, 0.02, 0.02]}


def _run(method: str, seed: int, lr: str = "0.1", rounds: int = 3) -> list[dict]:
    """A run whose rounds before the request (round 2) equal the control arm's with the same seed."""
    rows = []

    def add(rnd, site, phase, metric, value, request=""):
        rows.append(
            {
                "run": f"{method}-{seed}-{lr}",
                "seed": seed,
                "method": method,
                LR: lr,
                "round": rnd,
                "site": site,
                "phase": phase,
                "metric": metric,
                "value": value,
                "request": request,
            }
        )

    for rnd in range(1, rounds + 1):
        shift = SHIFT[method][seed] if rnd >= 2 else 0.0
        base = 0.1 + 0.01 * seed + 0.001 * rnd
        add(rnd, "global", "test", "fnr", base + shift + (0.01 if rnd == rounds else 0.0))
        for metric in ("risk_2", "bac", "auc"):
            add(rnd, "global", "test", metric, 0.5 + 0.01 * seed)
        add(rnd, "site-0", "train", "seconds", 1.0)
        add(rnd, "site-0", "train", "images", 10.0)
        if rnd >= 2:  # every arm reports the forget set from the request on
            for k, v in {"tp": 3, "fp": 1, "tn": 4, "fn": 2 if method == "none" else 1}.items():
                add(rnd, "site-1", "forget", f"forget_{k}", float(v), "0")
            add(rnd, "site-1", "forget", "mia_efficacy", 0.3, "0")
            add(rnd, "site-1", "forget", "forget_count", 10.0, "0")
    if method not in ("none", "retrain"):
        add(2, "site-1", "unlearn", "seconds", 4.0, "0")
    return rows


def _long(methods=("none", "salun-cra", "retrain"), seeds=(0, 1, 2), lrs=("0.1",)) -> pd.DataFrame:
    return pd.DataFrame([r for lr in lrs for m in methods for s in seeds for r in _run(m, s, lr)])


def _summary(long: pd.DataFrame, keys=(LR,)) -> pd.DataFrame:
    firsts = {run: 2 for run in long["run"].unique()}
    return paired_summary(run_figures(long, list(keys), firsts), list(keys), n_resamples=999)


def _row(summary: pd.DataFrame, method: str, metric: str, at: str) -> pd.Series:
    rows = summary[
        (summary["method"] == method) & (summary["metric"] == metric) & (summary["at"] == at)
    ]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_exact_columns_and_one_row_per_keys_method_metric_moment() -> None:
    summary = _summary(_long())
    assert list(summary.columns) == EXACT_COLUMNS
    assert list(SUMMARY_COLUMNS) == EXACT_COLUMNS[1:]
    assert not summary.duplicated([LR, "method", "metric", "at"]).any()
    outcomes = {"fnr", "risk_2", "bac", "auc", "ubac", "mia_efficacy"}
    costs = {"seconds", "images", "erasure_seconds", "erasure_images"}
    assert set(summary.loc[summary["at"] == "final", "metric"]) == outcomes | costs
    assert (
        set(summary.loc[summary["at"] == "erasure", "metric"]) == outcomes
    )  # costs are whole-run totals
    assert list(dict.fromkeys(summary["method"])) == ["none", "salun-cra", "retrain"]
    assert set(summary.loc[summary["at"] == "final", "round"]) == {3}
    assert set(summary.loc[summary["at"] == "erasure", "round"]) == {2}


def test_paired_differences_to_control_and_retrain() -> None:
    summary = _summary(_long())
    salun = _row(summary, "salun-cra", "fnr", "erasure")
    assert salun["delta_vs_control"] == pytest.approx(0.06)
    expected = paired_ci(np.array(SHIFT["salun-cra"]), n_resamples=999)
    assert (salun["ci_low"], salun["ci_high"]) == (
        pytest.approx(expected.low),
        pytest.approx(expected.high),
    )
    assert salun["verdict_vs_control"] == "raises FNR (misses more cancers)"
    assert salun["delta_vs_retrain"] == pytest.approx(0.04)
    assert salun["verdict_vs_retrain"] == "FNR above Retrain (misses more cancers)"
    assert salun["n_seeds"] == 3 and salun["mean"] == pytest.approx(
        np.mean([0.102 + 0.01 * s + d for s, d in enumerate(SHIFT["salun-cra"])])
    )
    retrain = _row(summary, "retrain", "fnr", "final")
    assert (retrain["ci_low"], retrain["ci_high"]) == (
        pytest.approx(0.02),
        pytest.approx(0.02),
    )  # constant shift
    assert (
        retrain["verdict_vs_retrain"] == REFERENCE
        and _row(summary, "none", "fnr", "final")["verdict_vs_control"] == REFERENCE
    )
    same = _row(summary, "salun-cra", "bac", "final")  # equal in every seed
    assert (
        same["delta_vs_control"] == 0.0 and same["verdict_vs_control"] == "identical in every seed"
    )
    assert _row(summary, "salun-cra", "erasure_seconds", "final")[
        "delta_vs_control"
    ] == pytest.approx(4.0)


def test_forget_metrics_are_pooled_in_the_summary() -> None:
    summary = _summary(_long())
    # control: tp 3, fn 2, tn 4, fp 1 -> BAC = (3/5 + 4/5) / 2 = 0.7; method: fn 1 -> (3/4 + 4/5) / 2 = 0.775
    assert _row(summary, "none", "ubac", "final")["mean"] == pytest.approx(0.3)
    assert _row(summary, "salun-cra", "ubac", "erasure")["delta_vs_control"] == pytest.approx(
        0.225 - 0.3
    )
    assert (
        _row(summary, "salun-cra", "ubac", "erasure")["verdict_vs_control"]
        == "lowers UBAC (forgets less)"
    )
    assert _row(summary, "salun-cra", "mia_efficacy", "final")["mean"] == pytest.approx(0.3)


def test_pairing_respects_the_other_keys() -> None:
    long = pd.concat(
        [_long(lrs=("0.1",)), _long(methods=("salun-cra",), lrs=("0.01",))], ignore_index=True
    )
    summary = _summary(long)
    lone = summary[
        (summary[LR] == "0.01") & (summary["metric"] == "fnr") & (summary["at"] == "final")
    ].iloc[0]
    assert math.isnan(lone["delta_vs_control"]) and lone["verdict_vs_control"] == "no control arm"
    assert lone["verdict_vs_retrain"] == "no Retrain arm"


def test_one_seed_gives_no_conclusion() -> None:
    summary = _summary(_long(seeds=(0,)))
    row = _row(summary, "salun-cra", "fnr", "final")
    assert row["n_seeds"] == 1 and math.isnan(row["std"]) and math.isnan(row["ci_low"])
    assert row["delta_vs_control"] == pytest.approx(0.05) and row["verdict_vs_control"] == ONE_SEED


def test_without_a_request_only_final_rows() -> None:
    long = _long()
    figures = run_figures(long, [LR], {})
    assert set(figures["at"]) == {"final"}
    assert erasure_round(long[long["run"] == "none-0-0.1"], 2) == 2
    assert erasure_round(long[long["run"] == "none-0-0.1"], 7) is None


def test_markdown_table() -> None:
    md = paired_markdown(_summary(_long()), [LR])
    row = md[
        (md["method"] == "salun-cra") & (md["metric"] == "FNR") & (md["at"] == "erasure (round 2)")
    ].iloc[0]
    assert row["Δ vs control [95% CI]"].startswith("+0.060 [")
    assert row["verdict vs control"] == "raises FNR (misses more cancers)" and row["seeds"] == 3


def test_paired_rounds_are_zero_before_the_request() -> None:
    long = _long()
    long["variant"] = long["method"]
    d = paired_rounds(long, [LR], "fnr", n_resamples=999).set_index(["variant", "round"])
    assert set(d.index.get_level_values("variant")) == {"salun-cra", "retrain"}
    assert (d.loc[("salun-cra", 1), "mean"], d.loc[("salun-cra", 1), "high"]) == (0.0, 0.0)
    assert (
        d.loc[("salun-cra", 2), "mean"] == pytest.approx(0.06) and d.loc[("salun-cra", 2), "n"] == 3
    )
    assert paired_rounds(long[long["method"] != "none"], [LR], "fnr").empty
