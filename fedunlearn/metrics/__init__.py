"""Clinical, unlearning and membership-inference metrics (METHOD.md section 5).

Pure functions of labels and scores: confusion counts, clinical metrics and
Global Risk I/II (``clinical.py``), UBAC/RBAC/TBAC (``unlearning.py``), MIA
efficacy (``mia.py``) and the operating points chosen on validation
(``operating.py``).
"""

from fedunlearn.metrics.clinical import (
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
from fedunlearn.metrics.mia import MIA_VARIANTS, mia_draw, mia_efficacy, mia_features
from fedunlearn.metrics.unlearning import UNLEARNING_METRICS, unlearning_metrics

__all__ = [
    "CLINICAL_METRICS",
    "MIA_VARIANTS",
    "UNLEARNING_METRICS",
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
    "mia_draw",
    "mia_efficacy",
    "mia_features",
    "npv",
    "pool",
    "ppv",
    "predict",
    "roc_auc",
    "sensitivity",
    "specificity",
    "unlearning_metrics",
]
