"""Unlearning metrics computed by hand from confusion counts."""

from __future__ import annotations

import math

import pytest

from fedunlearn.metrics import UNLEARNING_METRICS, Confusion, unlearning_metrics


def test_unlearning_metrics_by_hand() -> None:
    forget = Confusion(tp=6, fp=1, tn=9, fn=4)  # sens .6, spec .9, BAC .75, ACC 15/20
    retain = Confusion(tp=18, fp=4, tn=76, fn=2)  # sens .9, spec .95, BAC .925, ACC 94/100
    test = Confusion(tp=7, fp=10, tn=30, fn=3)  # sens .7, spec .75, BAC .725, ACC 37/50
    m = unlearning_metrics(forget, retain, test)
    assert tuple(m) == UNLEARNING_METRICS
    assert m["ubac"] == pytest.approx(0.25)
    assert m["rbac"] == pytest.approx(0.925)
    assert m["tbac"] == pytest.approx(0.725)
    assert m["ua"] == pytest.approx(0.25)
    assert m["ra"] == pytest.approx(0.94)
    assert m["ta"] == pytest.approx(0.74)


def test_ubac_differs_from_ua_under_imbalance() -> None:
    # Forget set of 2 malignant (both missed) and 18 benign (all right):
    # UA = 2/20 looks like little forgetting, UBAC = 1 - (0 + 1)/2 = 0.5.
    forget = Confusion(tp=0, fp=0, tn=18, fn=2)
    m = unlearning_metrics(forget, forget, forget)
    assert m["ua"] == pytest.approx(0.1)
    assert m["ubac"] == pytest.approx(0.5)


def test_single_class_forget_gives_nan_ubac() -> None:
    forget = Confusion(tp=3, fp=0, tn=0, fn=1)
    m = unlearning_metrics(forget, Confusion(1, 1, 1, 1), Confusion(1, 1, 1, 1))
    assert math.isnan(m["ubac"])
    assert m["ua"] == pytest.approx(0.25)
    assert m["rbac"] == pytest.approx(0.5)
