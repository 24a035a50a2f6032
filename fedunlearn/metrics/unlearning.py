"""Unlearning metrics: forgetting, retained utility and test utility.

References
----------
METHOD.md section 5; Fan et al., "SalUn: Empowering Machine Unlearning via
Gradient-based Weight Saliency", ICLR 2024; arXiv:2604.23854 (SBCAS 2026).
"""

from __future__ import annotations

from fedunlearn.metrics.clinical import Confusion, accuracy, balanced_accuracy

__all__ = ["UNLEARNING_METRICS", "unlearning_metrics"]

UNLEARNING_METRICS: tuple[str, ...] = ("ubac", "rbac", "tbac", "ua", "ra", "ta")


def unlearning_metrics(forget: Confusion, retain: Confusion, test: Confusion) -> dict[str, float]:
    """Forgetting and utility from the confusion counts on the forget, retain and test sets.

    Parameters
    ----------
    forget, retain, test : Confusion
        Counts on each set (pooled across sites where relevant).

    Returns
    -------
    dict[str, float]
        Keys exactly :data:`UNLEARNING_METRICS`: ``ubac`` = 1 - BAC(forget),
        ``rbac`` = BAC(retain), ``tbac`` = BAC(test), ``ua`` = 1 - ACC(forget),
        ``ra`` = ACC(retain), ``ta`` = ACC(test). A set lacking a class (or empty)
        gives nan for its BAC-based entry.

    References
    ----------
    METHOD.md section 5; Fan et al., SalUn, ICLR 2024 (UA, RA, TA);
    arXiv:2604.23854 (the balanced-accuracy versions UBAC, RBAC, TBAC).
    """
    return {
        "ubac": 1.0 - balanced_accuracy(forget),
        "rbac": balanced_accuracy(retain),
        "tbac": balanced_accuracy(test),
        "ua": 1.0 - accuracy(forget),
        "ra": accuracy(retain),
        "ta": accuracy(test),
    }
