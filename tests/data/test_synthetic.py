"""The synthetic lesion dataset: format, exact prevalence, determinism, learnable but not trivial."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from fedunlearn.data import DataError, SyntheticSpec, clear_cache, make_synthetic

SMALL = SyntheticSpec(n_train=60, n_val=15, n_test=25, size=28, prevalence=0.2, seed=0)


def test_format_matches_medmnist_layout() -> None:
    ds = make_synthetic(SMALL)
    assert ds.name == "synthetic" and ds.size == 28
    for split, n in (("train", 60), ("val", 15), ("test", 25)):
        part = ds.split(split)
        assert part.images.shape == (n, 28, 28, 3) and part.images.dtype == torch.uint8
        assert part.labels.shape == (n,) and part.labels.dtype == torch.int64
        assert torch.equal(part.source_labels, part.labels)
    assert int(ds.train.images.min()) < 80 and int(ds.train.images.max()) > 180  # uses the range
    prov = ds.provenance
    assert prov.synthetic and not prov.official and prov.md5 is None and prov.path is None
    assert "seed 0" in prov.note and "prevalence 0.2" in prov.note


@pytest.mark.parametrize(
    ("n", "prevalence"), [(60, 0.2), (101, 0.37), (7, 0.5), (1, 0.2), (1000, 0.013)]
)
def test_exact_prevalence(n: int, prevalence: float) -> None:
    ds = make_synthetic(SyntheticSpec(n_train=n, n_val=n, n_test=3, prevalence=prevalence, seed=5))
    assert int(ds.train.labels.sum()) == round(prevalence * n)
    assert int(ds.val.labels.sum()) == round(prevalence * n)
    assert int(ds.test.labels.sum()) == round(prevalence * 3)


def test_deterministic_per_seed_and_seeds_differ() -> None:
    first = make_synthetic(SMALL)
    images, labels = first.train.images.clone(), first.train.labels.clone()
    clear_cache()  # regenerate rather than reuse the cached tensors
    second = make_synthetic(SyntheticSpec(**{**SMALL.__dict__}))
    assert second.train.images is not first.train.images
    assert torch.equal(second.train.images, images) and torch.equal(second.train.labels, labels)
    # each split has its own stream: other split sizes do not change the training images
    other_sizes = make_synthetic(SyntheticSpec(n_train=60, n_val=3, n_test=4, seed=0))
    assert torch.equal(other_sizes.train.images, images)
    reseeded = make_synthetic(SyntheticSpec(n_train=60, n_val=15, n_test=25, seed=1))
    assert not torch.equal(reseeded.train.images, images)
    assert not torch.equal(reseeded.train.labels, labels)


@pytest.mark.parametrize("size", [64, 224])
def test_larger_sizes(size: int) -> None:
    ds = make_synthetic(SyntheticSpec(n_train=4, n_val=1, n_test=1, size=size))
    assert ds.train.images.shape == (4, size, size, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prevalence": 0.0}, "prevalence"),
        ({"prevalence": 1.0}, "prevalence"),
        ({"n_train": 0}, "n_train"),
        ({"n_test": -3}, "n_test"),
        ({"size": 32}, "size"),
    ],
)
def test_spec_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        SyntheticSpec(**kwargs)


def _auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney statistic (ties count half)."""
    pos, neg = score[label == 1], score[label == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater) / (pos.size * neg.size)


def test_learnable_but_not_trivially_separable() -> None:
    ds = make_synthetic(SyntheticSpec(n_train=1500, n_val=1, n_test=1, seed=11))
    gray = ds.train.images.numpy().astype(np.float32).mean(-1)
    # high-frequency energy (a Laplacian): one hand-made texture feature
    centre = gray[:, 1:-1, 1:-1]
    lap = np.abs(
        4 * centre - gray[:, :-2, 1:-1] - gray[:, 2:, 1:-1] - gray[:, 1:-1, :-2] - gray[:, 1:-1, 2:]
    )
    auc = _auc(lap.mean((1, 2)), ds.train.labels.numpy())
    assert 0.75 < auc < 0.97, auc


def test_ten_thousand_images_generate_quickly() -> None:
    spec = SyntheticSpec(n_train=10_000, n_val=1, n_test=1, seed=123)
    start = time.perf_counter()
    make_synthetic(spec)
    elapsed = time.perf_counter() - start
    clear_cache()
    assert elapsed < 4.0, (
        f"{elapsed:.2f}s for 10k images at 28 px (target < 2 s on an idle machine)"
    )
