"""Paired bootstrap intervals and verdicts, against hand-computed cases and scipy called directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fedunlearn.reports.paired import (
    IDENTICAL,
    NO_PAIR,
    NOISE,
    ONE_SEED,
    PairedDifference,
    format_difference,
    paired_ci,
    verdict,
)


def test_mean_and_interval_match_scipy_with_the_same_seed() -> None:
    d = [0.02, 0.05, 0.11]  # mean 0.06 by hand
    got = paired_ci(d)
    assert got.n == 3 and got.mean == pytest.approx(0.06)
    ref = stats.bootstrap(
        (np.array(d),),
        np.mean,
        confidence_level=0.95,
        n_resamples=9999,
        method="percentile",
        random_state=np.random.default_rng(0),
    ).confidence_interval
    assert (got.low, got.high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert (
        min(d) - 1e-12 <= got.low <= got.mean <= got.high <= max(d) + 1e-12
    )  # resampled means stay inside
    assert paired_ci(d) == got  # seeded: the same table gives the same interval


def test_two_seeds_bracket_the_hand_computed_means() -> None:
    # resampled means of (a, b) are a, (a+b)/2, b with probabilities 1/4, 1/2, 1/4: the 95 % interval is [a, b]
    got = paired_ci([-1.0, 3.0])
    assert got.mean == 1.0 and (got.low, got.high) == (-1.0, 3.0)


def test_constant_differences_give_a_zero_width_interval() -> None:
    got = paired_ci([0.25, 0.25, 0.25, 0.25])
    assert got == PairedDifference(0.25, 0.25, 0.25, 4)
    assert verdict("fnr", got) == "raises FNR (misses more cancers)"
    zero = paired_ci([0.0, 0.0, 0.0])
    assert (zero.low, zero.high) == (0.0, 0.0) and verdict("fnr", zero) == IDENTICAL


def test_one_seed_has_no_interval_and_no_conclusion() -> None:
    got = paired_ci([0.3])
    assert got.mean == 0.3 and got.n == 1 and math.isnan(got.low) and math.isnan(got.high)
    assert verdict("fnr", got) == ONE_SEED == "one seed: no conclusion"
    assert format_difference(got) == "+0.300 [n/a]"


def test_missing_values_are_left_out() -> None:
    assert paired_ci([float("nan"), 0.4]).n == 1
    none = paired_ci([float("nan")])
    assert none.n == 0 and math.isnan(none.mean) and verdict("bac", none) == NO_PAIR
    assert format_difference(none) == "n/a"


@pytest.mark.parametrize(
    ("metric", "diffs", "reference", "words"),
    [
        ("fnr", [0.1, 0.2, 0.3], "control", "raises FNR (misses more cancers)"),
        ("fnr", [-0.1, -0.2, -0.3], "control", "lowers FNR (misses fewer cancers)"),
        ("risk_2", [0.5, 0.7, 0.9], "control", "raises Risk II (costlier errors)"),
        ("bac", [-0.05, -0.02, -0.03], "control", "lowers BAC (worse balanced accuracy)"),
        ("auc", [-0.05, -0.02, -0.03], "retrain", "AUC below Retrain (ranks worse)"),
        ("ubac", [0.2, 0.1, 0.3], "retrain", "UBAC above Retrain (forgets more)"),
        ("fnr", [-0.1, 0.2, 0.05], "control", NOISE),
    ],
)
def test_verdict_words(metric: str, diffs: list[float], reference: str, words: str) -> None:
    assert verdict(metric, paired_ci(diffs), reference) == words


def test_format_difference() -> None:
    assert format_difference(PairedDifference(0.012, -0.004, 0.03, 3)) == "+0.012 [-0.004, +0.030]"
    assert (
        format_difference(PairedDifference(120.0, 100.0, 140.0, 3), 1) == "+120.0 [+100.0, +140.0]"
    )
