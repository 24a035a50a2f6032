"""Forget-set metrics over several requests and sites come from pooled confusion counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from fedunlearn.metrics import confusion_counts
from fedunlearn.reports.tables import pooled_forget, run_summary

# Two forget sets of very different size and error pattern (1 = malignant).
LABELS_A, PREDS_A = (
    np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0]),
    np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 1]),
)
LABELS_B, PREDS_B = np.array([1, 0, 0]), np.array([0, 0, 1])


def _forget_rows(
    site: str,
    request: str,
    labels: np.ndarray,
    preds: np.ndarray,
    mia: float,
    rnd: int = 2,
    counts: bool = True,
) -> list[dict]:
    c = confusion_counts(labels, preds)
    metrics = {
        "ubac": 1 - balanced_accuracy_score(labels, preds),
        "ua": 1 - accuracy_score(labels, preds),
        "mia_efficacy": mia,
        "forget_count": float(len(labels)),
    }
    if counts:
        metrics.update({f"forget_{k}": float(v) for k, v in c.as_dict().items()})
    return [
        {
            "round": rnd,
            "site": site,
            "phase": "forget",
            "method": "rl",
            "metric": m,
            "value": v,
            "request": request,
        }
        for m, v in metrics.items()
    ]


@pytest.fixture()
def forget() -> pd.DataFrame:
    return pd.DataFrame(
        _forget_rows("site-1", "0", LABELS_A, PREDS_A, 0.2)
        + _forget_rows("site-2", "1", LABELS_B, PREDS_B, 0.8)
    )


def test_pooled_ubac_is_that_of_the_union_of_the_forget_sets(forget: pd.DataFrame) -> None:
    union_y, union_p = np.concatenate([LABELS_A, LABELS_B]), np.concatenate([PREDS_A, PREDS_B])
    got = pooled_forget(forget)
    assert got["ubac"] == pytest.approx(1 - balanced_accuracy_score(union_y, union_p))
    assert got["ua"] == pytest.approx(1 - accuracy_score(union_y, union_p))
    assert got["forget_fnr"] == pytest.approx(2 / 5)  # 2 of the 5 malignant forget rows missed
    per_request_mean = forget.loc[forget["metric"] == "ubac", "value"].mean()
    assert (
        abs(got["ubac"] - per_request_mean) > 0.05
    )  # the old average would differ: the test can fail


def test_mia_is_weighted_by_forget_set_size(forget: pd.DataFrame) -> None:
    assert pooled_forget(forget)["mia_efficacy"] == pytest.approx((10 * 0.2 + 3 * 0.8) / 13)


def test_old_runs_without_counts_fall_back_to_the_mean() -> None:
    old = pd.DataFrame(
        _forget_rows("site-1", "0", LABELS_A, PREDS_A, 0.2, counts=False)
        + _forget_rows("site-2", "1", LABELS_B, PREDS_B, 0.8, counts=False)
    )
    old = old[old["metric"] != "forget_count"]
    got = pooled_forget(old)
    assert got["ubac"] == pytest.approx(old.loc[old["metric"] == "ubac", "value"].mean())
    assert got["mia_efficacy"] == pytest.approx(0.5)
    assert np.isnan(got["forget_fnr"])
    assert all(np.isnan(v) for v in pooled_forget(old.iloc[:0]).values())


def test_run_summary_pools_the_final_round(forget: pd.DataFrame) -> None:
    decoy = pd.DataFrame(
        _forget_rows("site-1", "0", LABELS_B, PREDS_B, 0.9, rnd=1)
    )  # an earlier round
    test = pd.DataFrame(
        [
            {
                "round": r,
                "site": "global",
                "phase": "test",
                "method": "rl",
                "metric": m,
                "value": 0.5,
                "request": "",
            }
            for r in (1, 2)
            for m in ("risk_2", "fnr", "bac", "auc")
        ]
    )
    summary = run_summary(pd.concat([decoy, test, forget], ignore_index=True))
    assert summary["ubac"] == pytest.approx(pooled_forget(forget)["ubac"])
    assert summary["auc"] == 0.5
