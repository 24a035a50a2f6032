"""Operating points chosen on validation (evaluation.operating_points)."""

from __future__ import annotations

import numpy as np
import pytest

from fedunlearn.engine.predict import Predictions
from fedunlearn.evaluation import operating_point_metrics
from fedunlearn.metrics import RiskCosts, confusion_counts, global_risk_2, sensitivity
from fedunlearn.metrics.operating import (
    choose_threshold,
    cost_optimal_threshold,
    operating_point_name,
    parse_operating_point,
    threshold_for_sensitivity,
)


def _preds(labels, scores) -> Predictions:
    s = np.asarray(scores, dtype=np.float32)
    return Predictions(probs=np.stack([1 - s, s], axis=1), labels=np.asarray(labels))


def _random(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(int)
    s = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    return y, s


def test_parse_and_name() -> None:
    assert parse_operating_point(0.5) == ("fixed", 0.5)
    assert parse_operating_point("sens@0.95") == ("sens", 0.95)
    assert parse_operating_point("cost-optimal") == ("cost", None)
    assert [operating_point_name(p) for p in (0.5, "0.3", "sens@0.9", "cost-optimal")] == [
        "0.5",
        "0.3",
        "sens@0.9",
        "cost-optimal",
    ]
    for bad in (0, 1.5, "sens@0", "sens@1.2", "youden", True):
        with pytest.raises(ValueError, match="bad operating point"):
            parse_operating_point(bad)


def test_sensitivity_threshold_is_the_highest_meeting_the_target() -> None:
    y, s = _random(400, 0)
    for target in (0.8, 0.9, 0.95, 1.0):
        t = threshold_for_sensitivity(y, s, target)
        assert sensitivity(confusion_counts(y, s >= t)) >= target
        higher = np.unique(s[s > t])
        if len(higher):  # the next distinct score up misses the target
            assert sensitivity(confusion_counts(y, s >= higher[0])) < target
    # hand case: malignant scores 0.9, 0.8, 0.3, 0.2 -> sens 0.75 needs 3 of 4 called: t = 0.3
    assert threshold_for_sensitivity(
        [1, 1, 1, 1, 0], [0.9, 0.8, 0.3, 0.2, 0.95], 0.75
    ) == pytest.approx(0.3)
    assert np.isnan(threshold_for_sensitivity([0, 0], [0.1, 0.2], 0.9))


def test_cost_optimal_equals_brute_force() -> None:
    costs = RiskCosts(1.0, 20.0)
    for seed in range(5):
        y, s = _random(300, seed)
        t = cost_optimal_threshold(y, s, costs)
        candidates = np.append(np.unique(s), np.nextafter(s.max(), np.inf))
        risks = [global_risk_2(confusion_counts(y, s >= c), costs) for c in candidates]
        assert global_risk_2(confusion_counts(y, s >= t), costs) == pytest.approx(min(risks))
    # with no cancer costing anything, calling nobody malignant is optimal
    t = cost_optimal_threshold([0, 1, 0], [0.2, 0.6, 0.9], RiskCosts(1.0, 0.0))
    assert t > 0.9


def test_thresholds_read_the_validation_split_only() -> None:
    costs = RiskCosts()
    yv, sv = _random(300, 1)
    yt, st = _random(500, 2)
    points = ["sens@0.95", "cost-optimal", 0.3]
    a = operating_point_metrics(points, {"val": _preds(yv, sv), "test": _preds(yt, st)}, costs)
    # Any other test split: the thresholds stay exactly those chosen on validation alone.
    yt2, st2 = _random(200, 3)
    b = operating_point_metrics(points, {"val": _preds(yv, sv), "test": _preds(yt2, st2)}, costs)
    for point in points:
        name = operating_point_name(point)
        expected = choose_threshold(point, yv, _preds(yv, sv).scores, costs)
        assert a[name]["threshold"] == b[name]["threshold"] == expected
    assert a["0.3"]["threshold"] == pytest.approx(0.3)
    # ... and the test metrics are the test split scored at that threshold
    t = a["cost-optimal"]["threshold"]
    assert a["cost-optimal"]["fn"] == float(((st.astype(np.float32) < t) & (yt == 1)).sum())
    # another validation split moves the data-driven thresholds
    yv2, sv2 = _random(300, 9)
    c = operating_point_metrics(points, {"val": _preds(yv2, sv2), "test": _preds(yt, st)}, costs)
    assert c["sens@0.95"]["threshold"] != a["sens@0.95"]["threshold"]
