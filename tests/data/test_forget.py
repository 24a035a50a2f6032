"""Forget-set selection: sizes, class composition per mode, seeding, validation."""

from __future__ import annotations

import pytest
import torch

from fedunlearn.data import FORGET_MODES, ForgetSpec, select_forget

# 200 samples, 30 malignant, scattered
LABELS = torch.zeros(200, dtype=torch.int64)
LABELS[torch.arange(3, 200, 6)[:30]] = 1


def _check(index: torch.Tensor, n: int = 200) -> None:
    assert index.dtype == torch.int64 and index.dim() == 1
    assert torch.equal(index, torch.unique(index))  # sorted and unique
    assert int(index.min()) >= 0 and int(index.max()) < n


def _composition(index: torch.Tensor) -> tuple[int, int]:
    picked = LABELS[index]
    return int((picked == 1).sum()), int((picked == 0).sum())


def test_labels_fixture() -> None:
    assert int(LABELS.sum()) == 30


@pytest.mark.parametrize(
    ("fraction", "k"), [(0.2, 40), (0.5, 100), (0.001, 1), (1.0, 200), (0.333, 67)]
)
def test_random_size(fraction: float, k: int) -> None:
    index = select_forget(LABELS, ForgetSpec(fraction, "random", seed=3))
    _check(index)
    assert index.numel() == k


def test_fraction_one_forgets_everything() -> None:
    for mode in FORGET_MODES:
        assert torch.equal(select_forget(LABELS, ForgetSpec(1.0, mode)), torch.arange(200))


@pytest.mark.parametrize(
    ("fraction", "mode", "expected"),
    [
        (0.2, "balanced", (20, 20)),
        (0.5, "balanced", (30, 70)),  # only 30 malignant: the rest from benign
        (0.2, "malignant", (28, 12)),  # 70 % of 40 from the malignant class
        (0.5, "malignant", (30, 70)),  # wants 70, only 30 exist
        (0.2, "benign", (12, 28)),
        (0.5, "benign", (30, 70)),
    ],
)
def test_mode_composition(fraction: float, mode: str, expected: tuple[int, int]) -> None:
    index = select_forget(LABELS, ForgetSpec(fraction, mode, skew=0.7, seed=1))
    _check(index)
    assert _composition(index) == expected


def test_skew_one_takes_only_that_class() -> None:
    index = select_forget(LABELS, ForgetSpec(0.1, "malignant", skew=1.0))
    assert _composition(index) == (20, 0)


def test_balanced_odd_extra_goes_to_larger_class() -> None:
    index = select_forget(LABELS, ForgetSpec(0.105, "balanced"))  # k = 21
    assert _composition(index) == (10, 11)


@pytest.mark.parametrize("mode", FORGET_MODES)
def test_reproducible_and_seed_dependent(mode: str) -> None:
    a = select_forget(LABELS, ForgetSpec(0.2, mode, seed=7))
    b = select_forget(LABELS, ForgetSpec(0.2, mode, seed=7))
    c = select_forget(LABELS, ForgetSpec(0.2, mode, seed=8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("fraction", [0, 0.0, 1.5, -0.1])
def test_fraction_validation(fraction: float) -> None:
    with pytest.raises(ValueError, match=r"forget fraction must be in \(0, 1\], got"):
        ForgetSpec(fraction)


def test_mode_and_skew_validation() -> None:
    with pytest.raises(ValueError, match="random, balanced, malignant, benign"):
        ForgetSpec(0.2, "class")
    with pytest.raises(ValueError, match="skew"):
        ForgetSpec(0.2, "malignant", skew=0.4)
    with pytest.raises(ValueError, match="skew"):
        ForgetSpec(0.2, "malignant", skew=1.1)


def test_labels_validation() -> None:
    with pytest.raises(ValueError, match="binary"):
        select_forget(torch.tensor([0, 1, 2]), ForgetSpec(0.5))
    with pytest.raises(ValueError, match="non-empty"):
        select_forget(torch.tensor([], dtype=torch.int64), ForgetSpec(0.5))
