"""SalUn's SVC membership-inference attack: features by hand, efficacy vs direct sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.svm import SVC

from fedunlearn.metrics import MIA_VARIANTS, mia_draw, mia_efficacy, mia_features

PROBS = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
LABELS = np.array([0, 0, 1])


def test_confidence_by_hand() -> None:
    out = mia_features(PROBS, LABELS, "confidence")
    assert out.shape == (3, 1) and out.dtype == np.float64
    np.testing.assert_allclose(out[:, 0], [0.8, 0.3, 0.6])


def test_entropy_by_hand() -> None:
    out = mia_features(PROBS, LABELS, "entropy")[:, 0]
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    np.testing.assert_allclose(out, [h(0.8), h(0.3), h(0.4)], rtol=1e-12)


def test_m_entropy_by_hand() -> None:
    # Song & Mittal: -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)
    out = mia_features(PROBS, LABELS, "m_entropy")[:, 0]
    expected = [
        -(0.2 * math.log(0.8)) - 0.2 * math.log(0.8),
        -(0.7 * math.log(0.3)) - 0.7 * math.log(0.3),
        -(0.4 * math.log(0.6)) - 0.4 * math.log(0.6),
    ]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    three = np.array([[0.6, 0.3, 0.1]])
    got = mia_features(three, [1], "m_entropy")[0, 0]
    assert got == pytest.approx(
        -0.7 * math.log(0.3) - 0.6 * math.log(0.4) - 0.1 * math.log(0.9), rel=1e-12
    )


def test_m_entropy_is_per_row_not_per_column() -> None:
    # Each row's value depends only on its own label (SalUn's p[:, labels] would mix rows).
    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    both = mia_features(probs, [0, 1], "m_entropy")[:, 0]
    alone = [mia_features(probs[i : i + 1], [y], "m_entropy")[0, 0] for i, y in enumerate([0, 1])]
    np.testing.assert_allclose(both, alone)


def test_correctness_by_hand() -> None:
    np.testing.assert_array_equal(mia_features(PROBS, LABELS, "correctness")[:, 0], [1.0, 0.0, 1.0])


def test_zero_probabilities_are_finite() -> None:
    probs = np.array([[0.0, 1.0], [1.0, 0.0]])
    for variant in MIA_VARIANTS:
        assert np.isfinite(mia_features(probs, [0, 0], variant)).all(), variant
    assert mia_features(probs, [1, 0], "entropy")[:, 0].tolist() == [0.0, 0.0]


def test_features_accept_torch() -> None:
    out = mia_features(torch.tensor(PROBS), torch.tensor(LABELS), "confidence")
    np.testing.assert_allclose(out[:, 0], [0.8, 0.3, 0.6])


def test_unknown_variant_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"confidence.*entropy.*m_entropy.*correctness"):
        mia_features(PROBS, LABELS, "loss")


@pytest.mark.parametrize(
    ("probs", "labels"),
    [(np.array([0.2, 0.8]), [0, 1]), (PROBS, [0, 1]), (PROBS, [0, 1, 2]), (PROBS, [0, 1, -1])],
)
def test_bad_feature_inputs_raise(probs: np.ndarray, labels: list[int]) -> None:
    with pytest.raises(ValueError):
        mia_features(probs, labels)


def _binary_probs(
    rng: np.random.Generator, n: int, low: float, high: float
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax rows whose true-class probability is uniform in [low, high]."""
    labels = rng.integers(0, 2, size=n)
    conf = rng.uniform(low, high, size=n)
    probs = np.empty((n, 2))
    probs[np.arange(n), labels] = conf
    probs[np.arange(n), 1 - labels] = 1 - conf
    return probs, labels


@pytest.fixture()
def sets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return {
        "retain": _binary_probs(rng, 300, 0.97, 1.0),  # members: confident
        "test": _binary_probs(rng, 200, 0.5, 0.8),  # non-members: unsure
        "forget_like_test": _binary_probs(rng, 80, 0.5, 0.8),
        "forget_like_retain": _binary_probs(rng, 80, 0.97, 1.0),
    }


def test_efficacy_high_when_forget_looks_unseen(sets: dict) -> None:
    eff = mia_efficacy(*sets["retain"], *sets["test"], *sets["forget_like_test"])
    assert eff > 95.0


def test_efficacy_low_when_forget_looks_like_retain(sets: dict) -> None:
    eff = mia_efficacy(*sets["retain"], *sets["test"], *sets["forget_like_retain"])
    assert eff < 5.0


@pytest.mark.parametrize("variant", MIA_VARIANTS)
@pytest.mark.parametrize("seed", [0, 7])
def test_efficacy_equals_direct_svc(sets: dict, variant: str, seed: int) -> None:
    rng = np.random.default_rng(1)
    forget = _binary_probs(rng, 120, 0.6, 1.0)
    (rp, rl), (tp, tl) = sets["retain"], sets["test"]
    n = min(len(rl), len(tl))
    draw = np.random.default_rng(seed)  # the documented draw: n members, then n non-members
    members = np.sort(draw.choice(len(rl), size=n, replace=False))
    non_members = np.sort(draw.choice(len(tl), size=n, replace=False))
    feats = {
        "confidence": lambda p, y: p[np.arange(len(y)), y],
        "entropy": lambda p, y: -(p * np.log(p)).sum(1),
        "m_entropy": lambda p, y: (
            -2 * (1 - p[np.arange(len(y)), y]) * np.log(p[np.arange(len(y)), y])
        ),
        "correctness": lambda p, y: (p.argmax(1) == y).astype(float),
    }[variant]
    x = np.r_[feats(rp[members], rl[members]), feats(tp[non_members], tl[non_members])]
    y = np.r_[np.ones(n), np.zeros(n)]
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x.reshape(-1, 1), y)
    expected = 100.0 * np.mean(clf.predict(feats(*forget).reshape(-1, 1)) == 0)
    got = mia_efficacy(rp, rl, tp, tl, *forget, variant=variant, seed=seed)
    assert got == pytest.approx(expected, abs=1e-12)


def test_efficacy_draws_members_at_random_not_in_file_order(sets: dict) -> None:
    (tp, tl), forget = sets["test"], sets["forget_like_test"]
    n = len(tl)
    # The retain file starts with n rows that look like non-members, then 2000 confident
    # ones. Taking the first n rows, the attack cannot tell members from non-members; a
    # random draw of n takes mostly confident rows and calls the unsure forget set unseen.
    odd_p, odd_l = _binary_probs(np.random.default_rng(5), n, 0.5, 0.8)
    many_p, many_l = _binary_probs(np.random.default_rng(6), 2000, 0.97, 1.0)
    retain_p, retain_l = np.r_[odd_p, many_p], np.r_[odd_l, many_l]
    first_n_only = mia_efficacy(odd_p, odd_l, tp, tl, *forget)
    drawn = [mia_efficacy(retain_p, retain_l, tp, tl, *forget, seed=s) for s in (0, 1)]
    assert min(drawn) > 90.0 and min(drawn) > first_n_only + 20.0
    # Seeded: the same seed draws the same rows.
    assert mia_efficacy(retain_p, retain_l, tp, tl, *forget, seed=1) == drawn[1]


def test_efficacy_uses_a_set_of_exactly_n_rows_whole(sets: dict) -> None:
    (rp, rl), (tp, tl), forget = sets["retain"], sets["test"], sets["forget_like_test"]
    n = len(tl)
    # Whatever the seed, n of n rows is the whole set in file order.
    values = {mia_efficacy(rp[:n], rl[:n], tp, tl, *forget, seed=s) for s in range(4)}
    assert len(values) == 1


def test_efficacy_nan_for_empty_sets(sets: dict) -> None:
    retain, test = sets["retain"], sets["test"]
    assert math.isnan(mia_efficacy(*retain, *test, np.zeros((0, 2)), np.zeros(0, dtype=int)))
    assert math.isnan(mia_efficacy(*retain, *test, [], []))
    assert math.isnan(mia_efficacy(*retain, np.zeros((0, 2)), [], *sets["forget_like_test"]))


def test_efficacy_with_identical_features_does_not_crash() -> None:
    probs = np.full((10, 2), 0.5)
    labels = np.zeros(10, dtype=int)
    eff = mia_efficacy(probs, labels, probs, labels, probs[:4], labels[:4])
    assert 0.0 <= eff <= 100.0


@pytest.mark.parametrize("seed", [0, 3])
def test_efficacy_on_the_drawn_retain_rows_alone_equals_the_whole_set(
    sets: dict, seed: int
) -> None:
    (rp, rl), (tp, tl), forget = sets["retain"], sets["test"], sets["forget_like_test"]
    members, non_members = mia_draw(len(rl), len(tl), seed)
    assert len(members) == len(non_members) == min(len(rl), len(tl))
    whole = mia_efficacy(rp, rl, tp, tl, *forget, seed=seed)
    alone = mia_efficacy(rp[members], rl[members], tp, tl, *forget, seed=seed, retain_size=len(rl))
    assert alone == whole
    with pytest.raises(ValueError, match="pass the rows mia_draw picks"):
        mia_efficacy(rp, rl, tp, tl, *forget, seed=seed, retain_size=len(rl) + 1)
