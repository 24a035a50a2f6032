"""Clinical metrics against sklearn and hand-counted confusion matrices."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from fedunlearn.metrics import (
    CLINICAL_METRICS,
    Confusion,
    RiskCosts,
    accuracy,
    average_precision,
    balanced_accuracy,
    class_risks,
    clinical_metrics,
    confusion_counts,
    evaluate_scores,
    f1,
    fnr,
    fpr,
    global_risk_1,
    global_risk_2,
    npv,
    pool,
    ppv,
    predict,
    roc_auc,
    sensitivity,
    specificity,
)

RATIOS = (sensitivity, specificity, fnr, fpr, ppv, npv, f1, balanced_accuracy, accuracy)


def _random_labels_preds(seed: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.2).astype(int)
    # predictions that agree with the labels more often than not
    flip = rng.random(n) < 0.3
    preds = np.where(flip, 1 - labels, labels)
    return labels, preds


# --- Confusion ---------------------------------------------------------------


def test_confusion_properties_and_dict() -> None:
    c = Confusion(tp=3, fp=2, tn=10, fn=1)
    assert (c.n, c.positives, c.negatives) == (16, 4, 12)
    assert c.as_dict() == {"tp": 3, "fp": 2, "tn": 10, "fn": 1}
    assert list(c.as_dict()) == ["tp", "fp", "tn", "fn"]
    assert Confusion.from_mapping({"tp": 3.0, "fp": 2, "tn": 10.0, "fn": 1, "extra": 9.5}) == c
    assert Confusion.zero() == Confusion(0, 0, 0, 0)
    assert Confusion(1, 2, 3, 4) + Confusion(10, 20, 30, 40) == Confusion(11, 22, 33, 44)
    assert type(Confusion(np.int64(2), 0, 0, 0).tp) is int


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None, True])
def test_confusion_rejects_bad_counts(bad: object) -> None:
    with pytest.raises(ValueError):
        Confusion(tp=bad, fp=0, tn=0, fn=0)  # type: ignore[arg-type]


def test_from_mapping_rejects_fractional_and_missing() -> None:
    with pytest.raises(ValueError):
        Confusion.from_mapping({"tp": 1.5, "fp": 0, "tn": 0, "fn": 0})
    with pytest.raises(ValueError, match="fn"):
        Confusion.from_mapping({"tp": 1, "fp": 0, "tn": 0})


def test_confusion_is_frozen() -> None:
    c = Confusion.zero()
    with pytest.raises(AttributeError):
        c.tp = 1  # type: ignore[misc]


# --- confusion_counts and rates vs sklearn -------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_confusion_counts_match_sklearn(seed: int) -> None:
    labels, preds = _random_labels_preds(seed)
    c = confusion_counts(labels, preds)
    tn, fp, fn, tp = confusion_matrix(labels, preds, labels=[0, 1]).ravel()
    assert c == Confusion(tp=int(tp), fp=int(fp), tn=int(tn), fn=int(fn))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_rates_match_sklearn(seed: int) -> None:
    labels, preds = _random_labels_preds(seed)
    c = confusion_counts(labels, preds)
    sens = recall_score(labels, preds, pos_label=1)
    spec = recall_score(labels, preds, pos_label=0)
    assert sensitivity(c) == pytest.approx(sens, abs=1e-12)
    assert specificity(c) == pytest.approx(spec, abs=1e-12)
    assert fnr(c) == pytest.approx(1 - sens, abs=1e-12)
    assert fpr(c) == pytest.approx(1 - spec, abs=1e-12)
    assert ppv(c) == pytest.approx(precision_score(labels, preds, pos_label=1), abs=1e-12)
    assert npv(c) == pytest.approx(precision_score(labels, preds, pos_label=0), abs=1e-12)
    assert f1(c) == pytest.approx(f1_score(labels, preds), abs=1e-12)
    assert balanced_accuracy(c) == pytest.approx(balanced_accuracy_score(labels, preds), abs=1e-12)
    assert accuracy(c) == pytest.approx(accuracy_score(labels, preds), abs=1e-12)
    assert global_risk_1(c) == pytest.approx(1 - accuracy_score(labels, preds), abs=1e-12)


def test_hand_counted_example_with_custom_costs() -> None:
    labels = [1, 1, 1, 0, 0, 0, 0, 0, 1, 0]
    preds = [1, 0, 1, 0, 1, 0, 0, 1, 0, 0]
    # by hand: TP = 2 (idx 0, 2), FN = 2 (idx 1, 8), FP = 2 (idx 4, 7), TN = 4
    c = confusion_counts(labels, preds)
    assert c == Confusion(tp=2, fp=2, tn=4, fn=2)
    assert sensitivity(c) == 0.5 and fnr(c) == 0.5
    assert specificity(c) == pytest.approx(4 / 6) and fpr(c) == pytest.approx(2 / 6)
    assert ppv(c) == 0.5 and npv(c) == pytest.approx(4 / 6)
    assert f1(c) == pytest.approx(4 / 8)
    assert balanced_accuracy(c) == pytest.approx((0.5 + 4 / 6) / 2)
    assert accuracy(c) == pytest.approx(0.6)
    assert global_risk_1(c) == pytest.approx(4 / 10)
    # default costs: (1 * 2 + 20 * 2) / 10
    assert global_risk_2(c) == pytest.approx(4.2)
    costs = RiskCosts(c_fp=2.5, c_fn=7.0)
    assert global_risk_2(c, costs) == pytest.approx((2.5 * 2 + 7.0 * 2) / 10)
    assert class_risks(c, costs) == pytest.approx((2.5 * 2 / 6, 7.0 * 2 / 4))
    assert class_risks(c) == pytest.approx((2 / 6, 20 * 2 / 4))


def test_second_hand_example_risks() -> None:
    c = Confusion(tp=5, fp=3, tn=40, fn=2)  # N = 50, 7 malignant, 43 benign
    costs = RiskCosts(c_fp=0.5, c_fn=10.0)
    assert global_risk_1(c) == pytest.approx(5 / 50)
    assert global_risk_2(c, costs) == pytest.approx((1.5 + 20.0) / 50)
    benign, malignant = class_risks(c, costs)
    assert benign == pytest.approx(1.5 / 43)
    assert malignant == pytest.approx(20.0 / 7)


def test_accepts_torch_tensors_and_bools() -> None:
    labels = torch.tensor([1, 0, 1, 0])
    preds = torch.tensor([1, 1, 0, 0])
    assert confusion_counts(labels, preds) == Confusion(tp=1, fp=1, tn=1, fn=1)
    assert confusion_counts(np.array([True, False]), [1.0, 0.0]) == Confusion(
        tp=1, fp=0, tn=1, fn=0
    )


# --- edge cases ----------------------------------------------------------------


def test_no_positives() -> None:
    c = confusion_counts([0, 0, 0, 0], [0, 1, 0, 0])
    assert math.isnan(sensitivity(c)) and math.isnan(fnr(c))
    assert specificity(c) == 0.75 and fpr(c) == 0.25
    assert math.isnan(balanced_accuracy(c))
    benign, malignant = class_risks(c)
    assert benign == 0.25 and math.isnan(malignant)


def test_no_negatives() -> None:
    c = confusion_counts([1, 1, 1], [1, 0, 1])
    assert sensitivity(c) == pytest.approx(2 / 3)
    assert math.isnan(specificity(c)) and math.isnan(fpr(c))
    assert math.isnan(balanced_accuracy(c))
    benign, malignant = class_risks(c)
    assert math.isnan(benign) and malignant == pytest.approx(20 / 3)


def test_everything_predicted_benign() -> None:
    c = confusion_counts([1, 0, 1, 0, 0], [0, 0, 0, 0, 0])
    assert sensitivity(c) == 0.0 and fnr(c) == 1.0
    assert math.isnan(ppv(c))
    assert specificity(c) == 1.0 and npv(c) == pytest.approx(3 / 5)
    assert f1(c) == 0.0
    assert balanced_accuracy(c) == 0.5


def test_empty_input_gives_nan_everywhere() -> None:
    c = confusion_counts([], [])
    assert c == Confusion.zero()
    for fn_ in (*RATIOS, global_risk_1, global_risk_2):
        assert math.isnan(fn_(c)), fn_.__name__
    assert all(math.isnan(r) for r in class_risks(c))
    m = clinical_metrics(c)
    assert [m[k] for k in ("tp", "fp", "tn", "fn")] == [0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("labels", "preds"),
    [([0, 1, 2], [0, 1, 1]), ([0, 1, 1], [0, -1, 1]), ([0.5, 1, 0], [0, 1, 0])],
)
def test_non_binary_raises(labels: list[float], preds: list[float]) -> None:
    with pytest.raises(ValueError, match="binary"):
        confusion_counts(labels, preds)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="shape"):
        confusion_counts([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="shape"):
        roc_auc([0, 1, 1], [0.1, 0.9])


@pytest.mark.parametrize(
    ("c_fp", "c_fn"), [(-1.0, 20.0), (1.0, -0.1), (math.inf, 1.0), (1.0, math.nan)]
)
def test_bad_risk_costs_raise(c_fp: float, c_fn: float) -> None:
    with pytest.raises(ValueError):
        RiskCosts(c_fp=c_fp, c_fn=c_fn)


def test_risk_costs_defaults() -> None:
    assert RiskCosts() == RiskCosts(c_fp=1.0, c_fn=20.0)


# --- pooling ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooled_parts_equal_concatenation(seed: int) -> None:
    labels, preds = _random_labels_preds(seed, n=200)
    cuts = [0, 17, 90, 91, 200]
    parts = [confusion_counts(labels[a:b], preds[a:b]) for a, b in itertools.pairwise(cuts)]
    assert pool(parts) == confusion_counts(labels, preds)
    assert pool([]) == Confusion.zero()
    assert pool(iter(parts)) == sum(parts[1:], parts[0])


def test_pooling_counts_differs_from_averaging_rates() -> None:
    # Site A: 1 malignant case, caught. Site B: 9 malignant cases, 3 caught.
    # Averaging per-site sensitivities weighs A's single case like B's nine.
    site_a = Confusion(tp=1, fp=0, tn=50, fn=0)
    site_b = Confusion(tp=3, fp=2, tn=40, fn=6)
    pooled = pool([site_a, site_b])
    assert sensitivity(pooled) == pytest.approx(4 / 10)
    averaged = (sensitivity(site_a) + sensitivity(site_b)) / 2
    assert averaged == pytest.approx((1.0 + 3 / 9) / 2)
    assert sensitivity(pooled) != pytest.approx(averaged)


# --- ranking metrics -----------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_roc_auc_and_ap_match_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    labels = (rng.random(n) < 0.25).astype(int)
    scores = np.clip(rng.normal(0.35 + 0.25 * labels, 0.2), 0, 1).round(1)  # many ties
    assert len(np.unique(scores)) < n
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )


def test_ranking_hand_examples() -> None:
    # Pairs (pos, neg): (0.8 vs 0.1) win, (0.8 vs 0.4) win, (0.4 vs 0.1) win, (0.4 vs 0.4) tie -> 3.5/4
    assert roc_auc([1, 0, 1, 0], [0.8, 0.1, 0.4, 0.4]) == pytest.approx(3.5 / 4)
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    # AP: thresholds 0.8 (P=1, R=.5) then 0.4 (3 predicted, 2 TP: P=2/3, R=1) -> .5*1 + .5*2/3
    assert average_precision([1, 0, 1, 0], [0.8, 0.1, 0.4, 0.4]) == pytest.approx(0.5 + 1 / 3)


def test_ranking_single_class_is_nan() -> None:
    assert math.isnan(roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert math.isnan(roc_auc([0, 0], [0.2, 0.5]))
    assert math.isnan(average_precision([0, 0, 0], [0.2, 0.5, 0.9]))
    assert average_precision([1, 1], [0.2, 0.5]) == 1.0


def test_ranking_accepts_torch() -> None:
    labels = torch.tensor([1, 0, 1, 0])
    scores = torch.tensor([0.8, 0.1, 0.4, 0.4])
    assert roc_auc(labels, scores) == pytest.approx(3.5 / 4)


# --- predict, clinical_metrics, evaluate_scores -----------------------------------


def test_predict_threshold_inclusive() -> None:
    out = predict([0.1, 0.5, 0.49999, 0.9])
    assert out.dtype == np.int64
    assert out.tolist() == [0, 1, 0, 1]
    assert predict(torch.tensor([0.2, 0.7]), threshold=0.2).tolist() == [1, 1]


def test_clinical_metrics_keys_and_values() -> None:
    c = Confusion(tp=2, fp=2, tn=4, fn=2)
    m = clinical_metrics(c, costs=RiskCosts(c_fp=2.5, c_fn=7.0))
    assert tuple(m) == CLINICAL_METRICS
    assert all(isinstance(v, float) for v in m.values())
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2.0, 2.0, 4.0, 2.0)
    assert math.isnan(m["auc"]) and math.isnan(m["auprc"])
    assert m["bac"] == pytest.approx(balanced_accuracy(c))
    assert m["risk_2"] == pytest.approx((2.5 * 2 + 7.0 * 2) / 10)
    assert (m["risk_benign"], m["risk_malignant"]) == pytest.approx((5 / 6, 14 / 4))


def test_evaluate_scores_matches_sklearn() -> None:
    rng = np.random.default_rng(7)
    labels = (rng.random(250) < 0.3).astype(int)
    scores = np.clip(rng.normal(0.3 + 0.3 * labels, 0.2), 0, 1)
    m = evaluate_scores(labels, scores)
    assert tuple(m) == CLINICAL_METRICS
    preds = (scores >= 0.5).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, preds).ravel()
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)
    assert m["sensitivity"] == pytest.approx(recall_score(labels, preds), abs=1e-12)
    assert m["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert m["auprc"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert m["risk_2"] == pytest.approx((fp + 20 * fn) / 250)
