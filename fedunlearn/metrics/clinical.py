"""Clinical metrics of a binary malignant-vs-benign classifier.

A pure functional core: confusion counts (poolable across sites by summing),
the rates derived from them, the study's global and per-class risks, and the
ranking metrics AUC and AUPRC computed from scores. Positive class = malignant
(1), benign = 0. A rate whose denominator is zero is ``nan``, never 0.

References
----------
METHOD.md section 5; "Does Machine Unlearning Preserve Clinical Safety? A Risk
Analysis for Medical Image Classification", arXiv:2604.23854 (SBCAS 2026).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "CLINICAL_METRICS",
    "Confusion",
    "RiskCosts",
    "accuracy",
    "average_precision",
    "balanced_accuracy",
    "class_risks",
    "clinical_metrics",
    "confusion_counts",
    "evaluate_scores",
    "f1",
    "fnr",
    "fpr",
    "global_risk_1",
    "global_risk_2",
    "npv",
    "pool",
    "ppv",
    "predict",
    "roc_auc",
    "sensitivity",
    "specificity",
]

_COUNT_FIELDS = ("tp", "fp", "tn", "fn")

CLINICAL_METRICS: tuple[str, ...] = (
    "tp", "fp", "tn", "fn",
    "sensitivity", "specificity", "fnr", "fpr", "ppv", "npv", "f1", "bac", "acc",
    "auc", "auprc",
    "risk_1", "risk_2", "risk_benign", "risk_malignant",
)  # fmt: skip


def _as_array(x: Any) -> np.ndarray:
    """Turn a list, numpy array or torch tensor into a numpy array (no copy where possible)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    return np.asarray(x)


def _binary(x: Any, name: str) -> np.ndarray:
    """Flatten ``x`` to a 1-D int64 array, raising ValueError unless every value is 0 or 1."""
    arr = _as_array(x).reshape(-1)
    if arr.dtype == np.bool_:
        return arr.astype(np.int64)
    if arr.size and not np.isin(arr, (0, 1)).all():
        bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5]
        raise ValueError(
            f"{name} must be binary (0 benign, 1 malignant); found values {bad.tolist()}"
        )
    return arr.astype(np.int64)


def _ratio(num: float, den: float) -> float:
    """``num / den`` as a float, ``nan`` when ``den`` is 0."""
    return float(num) / float(den) if den else math.nan


@dataclass(frozen=True)
class Confusion:
    """Confusion counts of a binary classifier (positive = malignant).

    Pooling across sites is summing counts (``a + b`` or :func:`pool`), never
    averaging per-site rates.

    References
    ----------
    METHOD.md section 5 (pooling rule); arXiv:2604.23854.
    """

    tp: int
    fp: int
    tn: int
    fn: int

    def __post_init__(self) -> None:
        for name in _COUNT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"Confusion.{name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"Confusion.{name} must be non-negative, got {value}")
            object.__setattr__(self, name, int(value))

    def __add__(self, other: Confusion) -> Confusion:
        if not isinstance(other, Confusion):
            return NotImplemented
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn
        )

    @property
    def n(self) -> int:
        """Total number of samples."""
        return self.tp + self.fp + self.tn + self.fn

    @property
    def positives(self) -> int:
        """Number of malignant samples, TP + FN."""
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        """Number of benign samples, TN + FP."""
        return self.tn + self.fp

    def as_dict(self) -> dict[str, int]:
        """The counts as ``{"tp": .., "fp": .., "tn": .., "fn": ..}``."""
        return {name: getattr(self, name) for name in _COUNT_FIELDS}

    @classmethod
    def from_mapping(cls, m: Mapping[str, float | int]) -> Confusion:
        """Build from a mapping with keys tp, fp, tn, fn (e.g. a Flower metric record).

        Float values are accepted when they are whole numbers; others raise ValueError.
        """
        missing = [k for k in _COUNT_FIELDS if k not in m]
        if missing:
            raise ValueError(f"mapping lacks confusion keys {missing}; needs {list(_COUNT_FIELDS)}")
        counts: dict[str, int] = {}
        for k in _COUNT_FIELDS:
            v = m[k]
            if isinstance(v, (float, np.floating)):
                if not (math.isfinite(v) and float(v).is_integer()):
                    raise ValueError(f"confusion count {k}={v!r} is not a whole number")
                v = int(v)
            counts[k] = v  # type: ignore[assignment]
        return cls(**counts)

    @classmethod
    def zero(cls) -> Confusion:
        """The empty confusion (all counts 0), the neutral element of pooling."""
        return cls(0, 0, 0, 0)


def pool(confusions: Iterable[Confusion]) -> Confusion:
    """Pool confusion counts by summing them; an empty iterable gives :meth:`Confusion.zero`.

    References
    ----------
    METHOD.md section 5: counts are pooled across sites, never per-site rates averaged.
    """
    total = Confusion.zero()
    for c in confusions:
        total = total + c
    return total


@dataclass(frozen=True)
class RiskCosts:
    """Misclassification costs of Global Risk II (a missed cancer costs ``c_fn``).

    References
    ----------
    METHOD.md section 5 (C_FP = 1, C_FN = 20); arXiv:2604.23854.
    """

    c_fp: float = 1.0
    c_fn: float = 20.0

    def __post_init__(self) -> None:
        for name in ("c_fp", "c_fn"):
            value = getattr(self, name)
            try:
                f = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"RiskCosts.{name} must be a number, got {value!r}") from None
            if not math.isfinite(f) or f < 0:
                raise ValueError(f"RiskCosts.{name} must be finite and >= 0, got {value!r}")
            object.__setattr__(self, name, f)


def predict(scores: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """Hard predictions from P(malignant): 1 where ``score >= threshold``, else 0.

    Parameters
    ----------
    scores : array_like, shape (N,)
        Probability of the malignant class per sample (any shape is kept).
    threshold : float
        Decision threshold (0.5 in the study).

    Returns
    -------
    numpy.ndarray of int64, shape (N,)

    References
    ----------
    METHOD.md section 5 (threshold 0.5 on P(malignant)).
    """
    s = _as_array(scores).astype(np.float64)
    return (s >= threshold).astype(np.int64)


def confusion_counts(labels: ArrayLike, preds: ArrayLike) -> Confusion:
    """Count TP, FP, TN, FN of binary predictions against binary labels.

    Parameters
    ----------
    labels, preds : array_like of 0/1 (lists, numpy arrays or torch tensors)
        True and predicted classes, same shape.

    Returns
    -------
    Confusion

    Raises
    ------
    ValueError
        On a shape mismatch or a value outside {0, 1}.

    References
    ----------
    METHOD.md section 5.
    """
    y_arr, p_arr = _as_array(labels), _as_array(preds)
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"labels and preds differ in shape: {y_arr.shape} vs {p_arr.shape}")
    y, p = _binary(y_arr, "labels"), _binary(p_arr, "preds")
    tp = int(np.sum((y == 1) & (p == 1)))
    fp = int(np.sum((y == 0) & (p == 1)))
    tn = int(np.sum((y == 0) & (p == 0)))
    fn = int(np.sum((y == 1) & (p == 0)))
    return Confusion(tp=tp, fp=fp, tn=tn, fn=fn)


def sensitivity(c: Confusion) -> float:
    """Sensitivity (recall, TPR) = TP / (TP + FN); nan without malignant samples.

    References
    ----------
    METHOD.md section 5.
    """
    return _ratio(c.tp, c.tp + c.fn)


def specificity(c: Confusion) -> float:
    """Specificity (TNR) = TN / (TN + FP); nan without benign samples.

    References
    ----------
    METHOD.md section 5.
    """
    return _ratio(c.tn, c.tn + c.fp)


def fnr(c: Confusion) -> float:
    """False-negative rate (missed cancers) = FN / (TP + FN); nan without malignant samples.

    References
    ----------
    METHOD.md section 5; arXiv:2604.23854.
    """
    return _ratio(c.fn, c.tp + c.fn)


def fpr(c: Confusion) -> float:
    """False-positive rate = FP / (FP + TN); nan without benign samples.

    References
    ----------
    METHOD.md section 5.
    """
    return _ratio(c.fp, c.fp + c.tn)


def ppv(c: Confusion) -> float:
    """Positive predictive value (precision) = TP / (TP + FP); nan with no positive prediction.

    References
    ----------
    METHOD.md section 5.
    """
    return _ratio(c.tp, c.tp + c.fp)


def npv(c: Confusion) -> float:
    """Negative predictive value = TN / (TN + FN); nan with no negative prediction.

    References
    ----------
    METHOD.md section 5.
    """
    return _ratio(c.tn, c.tn + c.fn)


def f1(c: Confusion) -> float:
    """F1 = 2 TP / (2 TP + FP + FN); nan when the denominator is 0.

    References
    ----------
    METHOD.md section 5.
    """
    return _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn)


def balanced_accuracy(c: Confusion) -> float:
    """Balanced accuracy (BAC) = (sensitivity + specificity) / 2; nan if either is nan.

    References
    ----------
    METHOD.md section 5; arXiv:2604.23854.
    """
    return (sensitivity(c) + specificity(c)) / 2.0


def accuracy(c: Confusion) -> float:
    """Accuracy = (TP + TN) / N; nan when N is 0.

    References
    ----------
    METHOD.md section 5.
    """
    return _ratio(c.tp + c.tn, c.n)


def global_risk_1(c: Confusion) -> float:
    """Global Risk I = (FP + FN) / N, the error rate; nan when N is 0.

    References
    ----------
    METHOD.md section 5; arXiv:2604.23854.
    """
    return _ratio(c.fp + c.fn, c.n)


def global_risk_2(c: Confusion, costs: RiskCosts = RiskCosts()) -> float:
    """Global Risk II = (C_FP * FP + C_FN * FN) / N; nan when N is 0.

    References
    ----------
    METHOD.md section 5 (C_FP = 1, C_FN = 20 by default); arXiv:2604.23854.
    """
    return _ratio(costs.c_fp * c.fp + costs.c_fn * c.fn, c.n)


def class_risks(c: Confusion, costs: RiskCosts = RiskCosts()) -> tuple[float, float]:
    """Per-class risks ``(C_FP * FP / N_benign, C_FN * FN / N_malignant)``; nan for an absent class.

    References
    ----------
    METHOD.md section 5; arXiv:2604.23854.
    """
    return _ratio(costs.c_fp * c.fp, c.negatives), _ratio(costs.c_fn * c.fn, c.positives)


def _labels_scores(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate binary labels and finite scores of the same length, both flattened."""
    y_arr, s_arr = _as_array(labels), _as_array(scores)
    if y_arr.shape != s_arr.shape:
        raise ValueError(f"labels and scores differ in shape: {y_arr.shape} vs {s_arr.shape}")
    y = _binary(y_arr, "labels")
    s = s_arr.astype(np.float64).reshape(-1)
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return y, s


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``; a tie counts one half).

    Returns
    -------
    float
        nan when only one class is present.

    References
    ----------
    METHOD.md section 5; Hanley & McNeil, Radiology 143 (1982); scikit-learn's ``roc_auc_score``.
    """
    y, s = _labels_scores(labels, scores)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        return math.nan
    from sklearn.metrics import roc_auc_score  # lazy: a site's process need not pay for sklearn

    return float(roc_auc_score(y, s))


def average_precision(labels: ArrayLike, scores: ArrayLike) -> float:
    """AUPRC as step-wise average precision, AP = sum_k (R_k - R_{k-1}) P_k (``average_precision_score``).

    The sum runs over the distinct score thresholds in decreasing order (tied scores
    form one threshold).

    Returns
    -------
    float
        nan when there is no malignant sample.

    References
    ----------
    METHOD.md section 5; Manning, Raghavan & Schuetze, Introduction to Information
    Retrieval (2008), section 8.4; scikit-learn's ``average_precision_score``.
    """
    y, s = _labels_scores(labels, scores)
    if int(y.sum()) == 0:
        return math.nan
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s))


def clinical_metrics(
    c: Confusion,
    labels: ArrayLike | None = None,
    scores: ArrayLike | None = None,
    costs: RiskCosts = RiskCosts(),
) -> dict[str, float]:
    """All clinical metrics of :data:`CLINICAL_METRICS`, in that order.

    Parameters
    ----------
    c : Confusion
        Counts, possibly pooled across sites.
    labels, scores : array_like, optional
        Binary labels and P(malignant) for AUC and AUPRC; without them (e.g. pooled
        per-site counts) ``auc`` and ``auprc`` are nan.
    costs : RiskCosts
        Costs of Global Risk II and the per-class risks.

    Returns
    -------
    dict[str, float]
        Keys exactly ``CLINICAL_METRICS``; ``tp``..``fn`` are the counts as floats.

    References
    ----------
    METHOD.md section 5; arXiv:2604.23854.
    """
    if (labels is None) != (scores is None):
        raise ValueError("give both labels and scores, or neither")
    auc = auprc = math.nan
    if labels is not None and scores is not None:
        auc, auprc = roc_auc(labels, scores), average_precision(labels, scores)
    risk_benign, risk_malignant = class_risks(c, costs)
    values = {
        "tp": float(c.tp),
        "fp": float(c.fp),
        "tn": float(c.tn),
        "fn": float(c.fn),
        "sensitivity": sensitivity(c),
        "specificity": specificity(c),
        "fnr": fnr(c),
        "fpr": fpr(c),
        "ppv": ppv(c),
        "npv": npv(c),
        "f1": f1(c),
        "bac": balanced_accuracy(c),
        "acc": accuracy(c),
        "auc": auc,
        "auprc": auprc,
        "risk_1": global_risk_1(c),
        "risk_2": global_risk_2(c, costs),
        "risk_benign": risk_benign,
        "risk_malignant": risk_malignant,
    }
    return {key: values[key] for key in CLINICAL_METRICS}


def evaluate_scores(
    labels: ArrayLike,
    scores: ArrayLike,
    threshold: float = 0.5,
    costs: RiskCosts = RiskCosts(),
) -> dict[str, float]:
    """Clinical metrics of P(malignant) scores: threshold, count, then :func:`clinical_metrics`.

    References
    ----------
    METHOD.md section 5; arXiv:2604.23854.
    """
    c = confusion_counts(labels, predict(scores, threshold))
    return clinical_metrics(c, labels, scores, costs)
