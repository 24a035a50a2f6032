"""SalUn's SVC membership-inference attack (MIA efficacy) on the forget set.

An RBF SVC learns to tell retain samples (members) from test samples
(non-members) by one per-sample feature of the model's softmax output; applied
to the forget set, the share it judges non-members (x100) is the MIA efficacy.
Compare it with Retrain's value: close to Retrain is the goal, not maximal.

References
----------
METHOD.md section 5; Fan et al., "SalUn", ICLR 2024 (evaluation code
``SVC_MIA``); Jia et al., "Model Sparsity Can Simplify Machine Unlearning",
NeurIPS 2023; Song & Mittal, "Systematic Evaluation of Privacy Risks of Machine
Learning Models", USENIX Security 2021.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from fedunlearn.metrics.clinical import _as_array

__all__ = ["MIA_VARIANTS", "mia_draw", "mia_efficacy", "mia_features", "warm_attack"]

MIA_VARIANTS: tuple[str, ...] = ("confidence", "entropy", "m_entropy", "correctness")

_EPS = 1e-30  # SalUn substitutes log(1e-30) for log(0)


@functools.cache
def warm_attack() -> None:
    """Import the attack's classifier (scikit-learn's SVC: about 1.6 s on 2 cores) now, once per process.

    Sites call it when they are set up in a scenario with deletion requests, so that a process's one-time
    import is paid with its other start-up costs, not inside the first erasure round's before-report (the
    latency a hospital sees for its request, and ``fedunlearn bench``'s ``erasure_wall_ratio``)."""
    import sklearn.svm  # noqa: F401


def _safe_log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, _EPS, None))


def _confidence(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return probs[np.arange(labels.size), labels]


def _entropy(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -np.sum(probs * _safe_log(probs), axis=1) + 0.0  # + 0.0 turns -0.0 into 0.0


def _m_entropy(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    # Song & Mittal (2021), eq. (3): -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i).
    rows = np.arange(labels.size)
    p_true = probs[rows, labels]
    others = probs * _safe_log(1.0 - probs)
    others[rows, labels] = 0.0
    return -(1.0 - p_true) * _safe_log(p_true) - others.sum(axis=1)


def _correctness(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return (np.argmax(probs, axis=1) == labels).astype(np.float64)


_FEATURES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "confidence": _confidence,
    "entropy": _entropy,
    "m_entropy": _m_entropy,
    "correctness": _correctness,
}


def mia_features(probs: ArrayLike, labels: ArrayLike, variant: str = "confidence") -> np.ndarray:
    """Per-sample attack feature from softmax outputs.

    Parameters
    ----------
    probs : array_like, shape (N, K)
        Softmax probabilities (numpy array, list or torch tensor).
    labels : array_like of int, shape (N,)
        True classes in ``[0, K)``.
    variant : {"confidence", "entropy", "m_entropy", "correctness"}
        ``confidence``: probability of the true class; ``entropy``: -sum p log p;
        ``m_entropy``: modified entropy -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i);
        ``correctness``: 1.0 where argmax equals the label, else 0.0. Logs clip
        their argument at 1e-30.

    Returns
    -------
    numpy.ndarray of float64, shape (N, 1)

    Raises
    ------
    ValueError
        On an unknown variant, bad shapes or labels outside ``[0, K)``.

    Notes
    -----
    ``m_entropy`` follows Song & Mittal's definition row by row. SalUn's code
    indexes ``p[:, labels]`` (whole columns, not each row's true class) and takes
    ``log p`` where ``log(1 - p)`` is meant; we do not reproduce that slip.

    References
    ----------
    Fan et al., SalUn, ICLR 2024 (``SVC_MIA`` features); Song & Mittal, USENIX
    Security 2021 (modified entropy); METHOD.md section 5.
    """
    try:
        feature = _FEATURES[variant]
    except KeyError:
        raise ValueError(
            f"unknown MIA variant {variant!r}; valid: {', '.join(MIA_VARIANTS)}"
        ) from None
    p = _as_array(probs).astype(np.float64)
    y_raw = _as_array(labels).reshape(-1)
    if p.size == 0 and y_raw.size == 0:
        return np.zeros((0, 1), dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must have shape (N, K), got {p.shape}")
    if y_raw.shape[0] != p.shape[0]:
        raise ValueError(f"labels length {y_raw.shape[0]} differs from probs rows {p.shape[0]}")
    if y_raw.size and not np.array_equal(y_raw, np.round(y_raw)):
        raise ValueError("labels must be integers")
    y = y_raw.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(f"labels must lie in [0, {p.shape[1]}), got range [{y.min()}, {y.max()}]")
    return feature(p, y).astype(np.float64).reshape(-1, 1)


def mia_draw(
    n_retain: int, n_test: int, seed: int | np.random.Generator = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The rows the attack of :func:`mia_efficacy` trains on: ``n = min(n_retain, n_test)`` members drawn
    from the retain set, then ``n`` non-members from the test set, each sorted (file order), from ``seed``."""
    n = min(n_retain, n_test)
    rng = np.random.default_rng(seed)
    members = np.sort(rng.choice(n_retain, size=n, replace=False))
    non_members = np.sort(rng.choice(n_test, size=n, replace=False))
    return members, non_members


def mia_efficacy(
    retain_probs: ArrayLike,
    retain_labels: ArrayLike,
    test_probs: ArrayLike,
    test_labels: ArrayLike,
    forget_probs: ArrayLike,
    forget_labels: ArrayLike,
    variant: str = "confidence",
    seed: int | np.random.Generator = 0,
    retain_size: int | None = None,
) -> float:
    """MIA efficacy: percentage of forget samples an SVC attack judges non-members.

    With ``n = min(|retain|, |test|)``, ``n`` retain rows drawn at random are
    members (label 1) and ``n`` test rows drawn at random non-members (label 0);
    the draw is seeded (``seed``) and keeps file order, so a set of exactly ``n``
    rows is used whole. An
    ``SVC(C=3, gamma="auto", kernel="rbf")`` fitted on their :func:`mia_features`
    predicts the forget rows, and the efficacy is 100 times the share predicted 0.

    Parameters
    ----------
    retain_probs, test_probs, forget_probs : array_like, shape (N_*, K)
        Softmax outputs of the model on each set.
    retain_labels, test_labels, forget_labels : array_like of int, shape (N_*,)
        True classes.
    variant : str
        One of :data:`MIA_VARIANTS`.
    seed : int or numpy.random.Generator
        Seeds the draw of the ``n`` members and non-members (a run passes its
        ``mia`` stream, :mod:`fedunlearn.seeding`).
    retain_size : int, optional
        The retain set's size when ``retain_probs`` / ``retain_labels`` hold
        only the rows :func:`mia_draw` picks from it (in its order), so that a
        caller predicts ``n`` retain rows instead of all of them; the result is
        the same as passing the whole set.

    Returns
    -------
    float
        In [0, 100]; nan when the forget set is empty or ``n`` is 0.

    References
    ----------
    Fan et al., SalUn, ICLR 2024 (``SVC_MIA``, ``SVC_fit_predict``); Jia et al.,
    NeurIPS 2023; METHOD.md section 5.
    """
    retain = mia_features(retain_probs, retain_labels, variant)
    test = mia_features(test_probs, test_labels, variant)
    forget = mia_features(forget_probs, forget_labels, variant)
    drawn = retain_size is not None
    members, non_members = mia_draw(retain_size if drawn else retain.shape[0], test.shape[0], seed)
    n = len(members)
    if drawn and retain.shape[0] != n:
        raise ValueError(
            f"retain_probs hold {retain.shape[0]} rows; with retain_size={retain_size} and "
            f"{test.shape[0]} test rows the attack draws {n} (pass the rows mia_draw picks)"
        )
    if forget.shape[0] == 0 or n == 0:
        return math.nan
    x = np.concatenate([retain if drawn else retain[members], test[non_members]])
    y = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)])
    from sklearn.svm import SVC  # lazy: only a deleting site pays for sklearn

    clf = SVC(C=3, gamma="auto", kernel="rbf")
    clf.fit(x, y)
    return float(100.0 * np.mean(clf.predict(forget) == 0))
