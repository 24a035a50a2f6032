"""Round-level learning-rate schedules (training.lr_schedule)."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest

from fedunlearn.federated.schedule import round_lr
from fedunlearn.federated.site import local_train_config
from tests.federated.conftest import small_scenario


def _t(**kw) -> SimpleNamespace:
    base = dict(
        rounds=10,
        lr=0.1,
        lr_schedule="cosine",
        warmup_rounds=0,
        lr_min_factor=0.0,
        step_every=2,
        step_gamma=0.5,
    )
    return SimpleNamespace(**{**base, **kw})


def test_constant_is_lr_every_round() -> None:
    t = _t(lr_schedule="constant", warmup_rounds=3)
    assert [round_lr(t, r) for r in range(1, 11)] == [0.1] * 10


def test_cosine_starts_at_lr_decreases_and_stays_above_the_floor() -> None:
    t = _t(lr_min_factor=0.1)
    rates = [round_lr(t, r) for r in range(1, 11)]
    assert rates[0] == pytest.approx(0.1)
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert rates[-1] > 0.01
    # hand-computed: round 6 is k = 5 of span 10, half way: floor + (lr - floor) / 2
    assert rates[5] == pytest.approx(0.01 + 0.5 * 0.09 * (1 + math.cos(math.pi * 5 / 10)))


def test_warmup_is_linear_then_the_schedule_starts_at_the_peak() -> None:
    t = _t(warmup_rounds=3)
    assert [round_lr(t, r) for r in (1, 2, 3)] == pytest.approx([0.025, 0.05, 0.075])
    assert round_lr(t, 4) == pytest.approx(0.1)
    assert round_lr(t, 10) < round_lr(t, 5)


def test_step_halves_every_step_every_rounds() -> None:
    t = _t(lr_schedule="step", step_every=3)
    assert [round_lr(t, r) for r in range(1, 8)] == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]
    )


def test_round_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="from 1"):
        round_lr(_t(), 0)


def test_sites_train_at_the_rate_of_the_round() -> None:
    sc = small_scenario(
        training={
            "rounds": 4,
            "lr": 0.08,
            "lr_schedule": "step",
            "step_every": 1,
            "step_gamma": 0.5,
        }
    )
    assert [local_train_config(sc, server_round=r).lr for r in (1, 2, 3)] == pytest.approx(
        [0.08, 0.04, 0.02]
    )
    assert (
        local_train_config(sc).lr == 0.08
    )  # no round: the peak (Federated Retrain's reference settings)
