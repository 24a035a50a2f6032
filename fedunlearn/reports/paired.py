"""Paired comparisons over seeds: a bootstrap interval of the mean difference and a plain-words verdict.

Runs are reproducible bit for bit, so two arms with the same seed (and the
same other keys) differ only by what the arms do: an erasure method against
the control arm (``deletion.method: none``, nothing erased) or against
Federated Retrain. The per-seed differences are the unit of analysis; their
mean is the effect and a percentile bootstrap over seeds gives its 95 %
interval. Pure functions: arrays in, numbers and words out.

With few seeds (3 to 5) a percentile bootstrap interval is too narrow rather
than too wide (it cannot be wider than the spread of the differences); read a
verdict from 3 seeds as a screening result and confirm it with more seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 9999
SEED = 0

#: Verdict wording per metric: (name, what a rise means, what a fall means); costs read "more"/"less".
METRIC_WORDS: dict[str, tuple[str, str, str]] = {
    "fnr": ("FNR", "misses more cancers", "misses fewer cancers"),
    "risk_2": ("Risk II", "costlier errors", "cheaper errors"),
    "bac": ("BAC", "better balanced accuracy", "worse balanced accuracy"),
    "auc": ("AUC", "ranks better", "ranks worse"),
    "ubac": ("UBAC", "forgets more", "forgets less"),
    "mia_efficacy": (
        "MIA efficacy",
        "forget set looks less like training data",
        "forget set looks more like training data",
    ),
    "seconds": ("seconds", "slower", "faster"),
    "images": ("images", "more computation", "less computation"),
    "erasure_seconds": ("erasure seconds", "slower erasure", "faster erasure"),
    "erasure_images": ("erasure images", "costlier erasure", "cheaper erasure"),
}
NOISE = "no effect distinguishable from noise"
ONE_SEED = "one seed: no conclusion"
NO_PAIR = "no paired seeds"
IDENTICAL = "identical in every seed"
REFERENCE = "(reference)"


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-seed differences with its bootstrap interval (NaN bounds with fewer than 2 pairs)."""

    mean: float
    low: float
    high: float
    n: int


def paired_ci(
    differences: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> PairedDifference:
    """Mean of paired differences and its percentile bootstrap interval over seeds.

    Parameters
    ----------
    differences : array_like
        One difference per seed (arm minus reference, same seed and keys);
        NaN entries (a metric missing in one arm) are left out.
    confidence : float
        Two-sided confidence level of the interval.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling, so that the same table gives the same interval.

    Returns
    -------
    PairedDifference
        ``n`` = pairs used. With ``n == 0`` everything is NaN; with ``n == 1``
        the interval is NaN (one pair says nothing of the spread); when every
        difference is the same value ``c`` the interval is ``[c, c]``.

    References
    ----------
    Efron, B. and Tibshirani, R. J. (1993), An Introduction to the Bootstrap,
    ch. 13 (percentile interval); ``scipy.stats.bootstrap``.
    """
    d = np.asarray(differences, dtype=float).ravel()
    d = d[~np.isnan(d)]
    n = int(d.size)
    if n == 0:
        return PairedDifference(float("nan"), float("nan"), float("nan"), 0)
    mean = float(d.mean())
    if n == 1:
        return PairedDifference(mean, float("nan"), float("nan"), 1)
    if np.all(d == d[0]):  # no spread: the bootstrap distribution is one point
        return PairedDifference(mean, float(d[0]), float(d[0]), n)
    res = stats.bootstrap(
        (d,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return PairedDifference(mean, float(ci.low), float(ci.high), n)


def verdict(metric: str, diff: PairedDifference, reference: str = "control") -> str:
    """Plain words for ``diff`` (arm minus ``reference``) on ``metric``.

    Parameters
    ----------
    metric : str
        A key of :data:`METRIC_WORDS` (others are named as they are).
    diff : PairedDifference
        From :func:`paired_ci`.
    reference : {"control", "retrain"}
        What the arm is compared with: against the control arm the words say
        what the erasure does ("raises FNR"); against Retrain where the arm
        stands ("FNR above Retrain").

    Returns
    -------
    str
        A rise or fall only when the interval excludes 0; otherwise
        :data:`NOISE`, :data:`ONE_SEED` with one pair, :data:`NO_PAIR`
        without any, :data:`IDENTICAL` when every difference is 0.
    """
    if diff.n == 0:
        return NO_PAIR
    if diff.n == 1:
        return ONE_SEED
    if diff.low == 0.0 and diff.high == 0.0:
        return IDENTICAL
    name, up, down = METRIC_WORDS.get(metric, (metric, "higher", "lower"))
    if diff.low > 0:
        return f"raises {name} ({up})" if reference == "control" else f"{name} above Retrain ({up})"
    if diff.high < 0:
        return (
            f"lowers {name} ({down})"
            if reference == "control"
            else f"{name} below Retrain ({down})"
        )
    return NOISE


def format_difference(diff: PairedDifference, digits: int = 3) -> str:
    """``+0.012 [-0.004, +0.030]``; ``+0.012 [n/a]`` without an interval; ``n/a`` without pairs."""
    if np.isnan(diff.mean):
        return "n/a"
    if np.isnan(diff.low):
        return f"{diff.mean:+.{digits}f} [n/a]"
    return f"{diff.mean:+.{digits}f} [{diff.low:+.{digits}f}, {diff.high:+.{digits}f}]"


__all__ = [
    "CONFIDENCE",
    "IDENTICAL",
    "METRIC_WORDS",
    "NOISE",
    "NO_PAIR",
    "N_RESAMPLES",
    "ONE_SEED",
    "REFERENCE",
    "PairedDifference",
    "format_difference",
    "paired_ci",
    "verdict",
]
