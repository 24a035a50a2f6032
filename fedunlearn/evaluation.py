"""From a model and labelled sets to metric rows: shared by the study and the sites."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from fedunlearn.engine import Predictions, predict
from fedunlearn.metrics import (
    Confusion,
    RiskCosts,
    clinical_metrics,
    confusion_counts,
    mia_efficacy,
    unlearning_metrics,
)
from fedunlearn.metrics import predict as threshold
from fedunlearn.metrics.operating import choose_threshold, operating_point_name


@dataclass(frozen=True)
class EvalSet:
    """Rows ``indices`` of (``images``, ``labels``)."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor | None = None


def predict_sets(
    model: nn.Module, sets: Mapping[str, EvalSet], *, device: torch.device
) -> dict[str, Predictions]:
    """Predictions of ``model`` on each named set."""
    return {
        name: predict(model, s.images, s.labels, s.indices, device=device)
        for name, s in sets.items()
    }


def confusion_of(preds: Predictions) -> Confusion:
    """Confusion counts at the 0.5 threshold on P(malignant)."""
    return confusion_counts(preds.labels, threshold(preds.scores))


def split_metrics(preds: Predictions, costs: RiskCosts) -> dict[str, float]:
    """Every clinical metric of one evaluated set, AUC and AUPRC included."""
    return clinical_metrics(confusion_of(preds), preds.labels, preds.scores, costs)


def unlearning_report(
    preds: Mapping[str, Predictions],
    costs: RiskCosts,
    mia_variant: str = "confidence",
    *,
    mia_seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Metrics per split for an unlearned model evaluated on ``test``, ``forget`` and ``retain``.

    Each split gets its clinical metrics; the unlearning scores go to the split
    they describe (UBAC/UA and MIA efficacy to ``forget``, RBAC/RA to ``retain``,
    TBAC/TA to ``test``). ``mia_seed`` seeds the attack's draw of members and
    non-members (:func:`~fedunlearn.metrics.mia.mia_efficacy`).
    """
    out = {name: split_metrics(p, costs) for name, p in preds.items()}
    scores = unlearning_metrics(
        confusion_of(preds["forget"]), confusion_of(preds["retain"]), confusion_of(preds["test"])
    )
    out["forget"].update(ubac=scores["ubac"], ua=scores["ua"])
    out["retain"].update(rbac=scores["rbac"], ra=scores["ra"])
    out["test"].update(tbac=scores["tbac"], ta=scores["ta"])
    r, t, f = preds["retain"], preds["test"], preds["forget"]
    out["forget"]["mia_efficacy"] = mia_efficacy(
        r.probs, r.labels, t.probs, t.labels, f.probs, f.labels, variant=mia_variant, seed=mia_seed
    )
    return out


def operating_point_metrics(
    points, preds: Mapping[str, Predictions], costs: RiskCosts
) -> dict[str, dict[str, float]]:
    """Test metrics at each operating point, its threshold chosen on ``preds["val"]`` only.

    Returns ``{point name: clinical metrics of preds["test"] at the threshold, plus "threshold"}``.
    The test predictions are used only to be scored at the chosen threshold.
    """
    out: dict[str, dict[str, float]] = {}
    if not points:
        return out
    val, test = preds["val"], preds["test"]
    for point in points:
        t = choose_threshold(point, val.labels, val.scores, costs)
        conf = confusion_counts(test.labels, threshold(test.scores, t))
        out[operating_point_name(point)] = {
            **clinical_metrics(conf, test.labels, test.scores, costs),
            "threshold": t,
        }
    return out
