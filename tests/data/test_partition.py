"""Partitioning a training split among hospitals: every scheme, its invariants and its errors."""

from __future__ import annotations

import pytest
import torch

from fedunlearn.data import PARTITIONERS, get_partitioner, partition

N = 1000
# 1000 samples, 200 malignant, interleaved
LABELS = (torch.arange(N) % 5 == 0).to(torch.int64)
BALANCED = (torch.arange(N) % 2).to(torch.int64)


def _check_disjoint(
    parts: list[torch.Tensor], n_sites: int, n: int = N, all_used: bool = True
) -> None:
    assert len(parts) == n_sites
    for p in parts:
        assert p.dtype == torch.int64 and p.dim() == 1
        assert torch.equal(p, torch.sort(p).values)
        if p.numel():
            assert int(p.min()) >= 0 and int(p.max()) < n
    joined = torch.cat(parts)
    assert joined.numel() == torch.unique(joined).numel()  # disjoint
    if all_used:
        assert joined.numel() == n


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_registry_lists_schemes() -> None:
    assert set(PARTITIONERS) == {"iid", "dirichlet", "quantity", "explicit"}
    assert get_partitioner("iid") is PARTITIONERS["iid"]
    with pytest.raises(ValueError, match="iid, dirichlet, quantity, explicit"):
        get_partitioner("pathological")
    with pytest.raises(ValueError, match="valid schemes"):
        partition(LABELS, 3, "shards")


def test_iid() -> None:
    parts = partition(LABELS, 3, "iid", seed=0)
    _check_disjoint(parts, 3)
    assert sorted(p.numel() for p in parts) == [333, 333, 334]
    assert _same(parts, partition(LABELS, 3, seed=0))
    assert not _same(parts, partition(LABELS, 3, seed=1))
    for p in parts:  # IID: each site close to the global 20 %
        assert abs(float(LABELS[p].float().mean()) - 0.2) < 0.07


def test_single_site_gets_everything() -> None:
    (only,) = partition(LABELS, 1)
    assert torch.equal(only, torch.arange(N))


def test_dirichlet_small_alpha_is_skewed_large_alpha_is_not() -> None:
    skewed = partition(BALANCED, 5, "dirichlet", alpha=0.1, seed=0)
    _check_disjoint(skewed, 5)
    assert all(p.numel() >= 10 for p in skewed)
    shares = [float(BALANCED[p].float().mean()) for p in skewed]
    assert max(shares) - min(shares) > 0.5, shares
    even = partition(BALANCED, 5, "dirichlet", alpha=1000.0, seed=0)
    _check_disjoint(even, 5)
    assert all(abs(float(BALANCED[p].float().mean()) - 0.5) < 0.1 for p in even)
    assert _same(skewed, partition(BALANCED, 5, "dirichlet", alpha=0.1, seed=0))
    assert not _same(skewed, partition(BALANCED, 5, "dirichlet", alpha=0.1, seed=1))


def test_dirichlet_min_size_and_errors() -> None:
    parts = partition(LABELS, 4, "dirichlet", alpha=0.5, min_size=100, seed=2)
    assert all(p.numel() >= 100 for p in parts)
    with pytest.raises(ValueError, match="larger alpha"):
        partition(LABELS, 10, "dirichlet", alpha=0.01, min_size=95, max_tries=5)
    with pytest.raises(ValueError, match="min_size"):
        partition(LABELS, 10, "dirichlet", alpha=1.0, min_size=101)
    with pytest.raises(ValueError, match="alpha"):
        partition(LABELS, 3, "dirichlet", alpha=0)
    with pytest.raises(ValueError, match="needs the parameter 'alpha'"):
        partition(LABELS, 3, "dirichlet")


def test_quantity_sizes_and_power() -> None:
    parts = partition(LABELS, 3, "quantity", sizes=[1, 2, 7], seed=0)
    _check_disjoint(parts, 3)
    assert [p.numel() for p in parts] == [100, 200, 700]
    power = partition(LABELS, 4, "quantity", power=1.0, seed=0)
    _check_disjoint(power, 4)
    counts = [p.numel() for p in power]
    assert (
        counts == sorted(counts, reverse=True) and counts[0] == 480
    )  # 1000 * 1 / (1 + 1/2 + 1/3 + 1/4)
    assert _same(parts, partition(LABELS, 3, "quantity", sizes=[1, 2, 7], seed=0))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({}, "sizes .* or power"),
        ({"sizes": [1, 1, 1], "power": 1.0}, "exactly one"),
        ({"sizes": [1, 2]}, r"sizes must have one entry per site \(3\), got 2"),
        ({"sizes": [1, -1, 1]}, "sizes must hold positive"),
        ({"sizes": "abc"}, "sizes must be a list"),
        ({"power": -1}, "power"),
        ({"sizes": [1, 1, 1], "alpha": 1}, "unexpected parameter 'alpha'"),
    ],
)
def test_quantity_errors_name_the_param(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        partition(LABELS, 3, "quantity", **params)


def test_explicit_sizes_and_prevalence_are_exact() -> None:
    sizes, prevalence = [0.1, 0.3, 0.25, 0.05], [0.5, 0.1, 0.0, 1.0]
    parts = partition(LABELS, 4, "explicit", sizes=sizes, prevalence=prevalence, seed=4)
    _check_disjoint(parts, 4, all_used=False)
    for p, size, prev in zip(parts, sizes, prevalence, strict=True):
        assert p.numel() == round(size * N)
        assert int(LABELS[p].sum()) == round(prev * round(size * N))
    assert _same(
        parts, partition(LABELS, 4, "explicit", sizes=sizes, prevalence=prevalence, seed=4)
    )
    assert not _same(
        parts, partition(LABELS, 4, "explicit", sizes=sizes, prevalence=prevalence, seed=5)
    )


def test_explicit_whole_split() -> None:
    parts = partition(LABELS, 2, "explicit", sizes=[0.5, 0.5], prevalence=[0.3, 0.1])
    _check_disjoint(parts, 2)
    assert [int(LABELS[p].sum()) for p in parts] == [150, 50]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (
            {"sizes": [0.3, 0.3], "prevalence": [0.5, 0.5]},
            "site 1 needs 150 malignant samples but only 50 remain",
        ),
        (
            {"sizes": [0.5, 0.4], "prevalence": [0.0, 0.0]},
            "site 1 needs 400 benign samples but only 300 remain",
        ),
        ({"sizes": [0.6, 0.5], "prevalence": [0.1, 0.1]}, "sizes must sum to at most 1"),
        (
            {"sizes": [0.1, 0.1], "prevalence": [0.1]},
            r"prevalence must have one entry per site \(2\)",
        ),
        (
            {"sizes": [0.1, 0.1], "prevalence": [0.1, 1.2]},
            r"prevalence must hold shares in \[0, 1\]",
        ),
        ({"sizes": [0.1, 0.0], "prevalence": [0.1, 0.1]}, "sizes must hold positive"),
        ({"sizes": [0.1, 0.1]}, "needs the parameter 'prevalence'"),
    ],
)
def test_explicit_errors_name_the_site_or_param(params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        partition(LABELS, 2, "explicit", **params)


def test_explicit_needs_binary_labels() -> None:
    with pytest.raises(ValueError, match="binary"):
        partition(torch.arange(10) % 3, 2, "explicit", sizes=[0.5, 0.5], prevalence=[0.5, 0.5])


@pytest.mark.parametrize("n_sites", [0, -1, 2.5, True])
def test_n_sites_validation(n_sites: object) -> None:
    with pytest.raises(ValueError, match="n_sites must be an integer >= 1"):
        partition(LABELS, n_sites)  # type: ignore[arg-type]


def test_more_sites_than_samples_and_bad_labels() -> None:
    with pytest.raises(ValueError, match="n_sites"):
        partition(torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="1-D"):
        partition(torch.zeros(4, 2, dtype=torch.int64), 2)
