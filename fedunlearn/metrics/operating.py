"""Clinical operating points: decision thresholds chosen on a validation split.

The study thresholds P(malignant) at 0.5. A hospital deploys a model at an
operating point chosen on data it may look at, never on the test split:

- a fixed threshold, e.g. ``0.5`` (the study's);
- ``sens@T``: the highest threshold whose validation sensitivity is at least T
  (a screening target: "miss at most 5 % of cancers" is ``sens@0.95``);
- ``cost-optimal``: the threshold minimising Global Risk II
  ``(C_FP FP + C_FN FN) / N`` on validation, with the scenario's costs.

These functions are pure: they take the validation labels and scores only,
so the test split cannot leak into the choice.

References
----------
METHOD.md section 5 (Global Risk II, costs); Habibzadeh et al., "On
determining the most appropriate test cut-off value", Biochem. Med. 2016.
"""

from __future__ import annotations

import math
import re

import numpy as np
from numpy.typing import ArrayLike

from fedunlearn.metrics.clinical import RiskCosts

FIXED_THRESHOLD = 0.5  # the study's
_SENS = re.compile(r"^sens@(0?\.\d+|1(\.0*)?)$")
OPERATING_POINT_HELP = (
    "a threshold in (0, 1) such as 0.5, sens@T with T in (0, 1] (e.g. sens@0.95), or cost-optimal"
)


def parse_operating_point(spec: float | str) -> tuple[str, float | None]:
    """``(kind, value)`` of an operating point: ``("fixed", t)``, ``("sens", T)`` or ``("cost", None)``.

    Raises
    ------
    ValueError
        When ``spec`` is none of :data:`OPERATING_POINT_HELP`.
    """
    if isinstance(spec, bool):
        raise ValueError(f"bad operating point {spec!r}; use {OPERATING_POINT_HELP}")
    if isinstance(spec, (int, float)):
        if 0 < float(spec) < 1:
            return "fixed", float(spec)
        raise ValueError(f"bad operating point {spec!r}; use {OPERATING_POINT_HELP}")
    text = str(spec).strip()
    if text == "cost-optimal":
        return "cost", None
    if m := _SENS.match(text):
        target = float(m.group(1))
        if 0 < target <= 1:
            return "sens", target
    try:
        return parse_operating_point(float(text))
    except ValueError:
        raise ValueError(f"bad operating point {spec!r}; use {OPERATING_POINT_HELP}") from None


def operating_point_name(spec: float | str) -> str:
    """The label of an operating point in tables: ``0.5``, ``sens@0.95``, ``cost-optimal``."""
    kind, value = parse_operating_point(spec)
    return (
        f"{value:g}"
        if kind == "fixed"
        else ("cost-optimal" if kind == "cost" else f"sens@{value:g}")
    )


def threshold_for_sensitivity(labels: ArrayLike, scores: ArrayLike, target: float) -> float:
    """The highest threshold ``t`` with sensitivity ``>= target`` when predicting malignant for ``score >= t``.

    With P malignant samples, at least ``ceil(target * P)`` must score ``>= t``,
    so ``t`` is the ``ceil(target * P)``-th highest malignant score. NaN without
    malignant samples.
    """
    y, s = np.asarray(labels).astype(int).ravel(), np.asarray(scores, dtype=float).ravel()
    malignant = np.sort(s[y == 1])[::-1]
    if len(malignant) == 0:
        return math.nan
    k = max(1, math.ceil(target * len(malignant) - 1e-9))
    return float(malignant[k - 1])


def cost_optimal_threshold(labels: ArrayLike, scores: ArrayLike, costs: RiskCosts) -> float:
    """The threshold minimising ``C_FP FP + C_FN FN`` (predicting malignant for ``score >= t``).

    Candidates are the distinct scores and one above them all (nothing called
    malignant); among equally good thresholds the highest is taken.
    """
    y, s = np.asarray(labels).astype(int).ravel(), np.asarray(scores, dtype=float).ravel()
    if len(s) == 0:
        return math.nan
    candidates = np.unique(s)[::-1]  # descending; threshold c calls malignant every score >= c
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # for each candidate, how many samples score >= it (searchsorted on the ascending copy)
    n_at_least = len(s) - np.searchsorted(np.sort(s), candidates, side="left")
    tp = np.concatenate([[0], np.cumsum(y_sorted)])[n_at_least]
    fp = n_at_least - tp
    fn = int(y.sum()) - tp
    cost = costs.c_fp * fp + costs.c_fn * fn
    none_cost = costs.c_fn * int(y.sum())  # threshold above every score
    best = int(np.argmin(cost))
    if none_cost < cost[best]:
        return float(np.nextafter(s_sorted[0], np.inf))
    return float(candidates[best])


def choose_threshold(
    spec: float | str, val_labels: ArrayLike, val_scores: ArrayLike, costs: RiskCosts
) -> float:
    """The threshold of operating point ``spec``, chosen on validation labels and scores only."""
    kind, value = parse_operating_point(spec)
    if kind == "fixed":
        return float(value)  # type: ignore[arg-type]
    if kind == "sens":
        return threshold_for_sensitivity(val_labels, val_scores, float(value))  # type: ignore[arg-type]
    return cost_optimal_threshold(val_labels, val_scores, costs)
