"""How a training split is shared among hospitals (METHOD.md section 6).

Every partitioner takes the labels of the split and returns ``n_sites``
disjoint, sorted int64 index tensors; they are looked up by name in
:data:`PARTITIONERS`.

References
----------
Hsu, Qi and Brown, "Measuring the Effects of Non-Identical Data Distribution
for Federated Visual Classification", arXiv:1909.06335, 2019 (Dirichlet label
skew); Li et al., "Federated Learning on Non-IID Data Silos: An Experimental
Study", ICDE 2022 (quantity skew).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from fedunlearn.registry import Registry

__all__ = [
    "PARTITIONERS",
    "PARTITIONER_REGISTRY",
    "PARTITION_NAMES",
    "Partitioner",
    "get_partitioner",
    "partition",
    "register_partitioner",
]

Partitioner = Callable[..., list[np.ndarray]]
"""``fn(labels: np.ndarray, n_sites: int, rng: np.random.Generator, **params) -> list of index arrays``."""

PARTITIONER_REGISTRY: Registry[Partitioner] = Registry("partition scheme", choose="valid schemes")
#: Decorator: ``@register_partitioner("name")`` over a :data:`Partitioner`.
register_partitioner = PARTITIONER_REGISTRY.register
PARTITIONERS: Mapping[str, Partitioner] = PARTITIONER_REGISTRY.entries
"""Partitioners by scheme name."""


def get_partitioner(name: str) -> Partitioner:
    """Return the partitioner registered as ``name``; ValueError listing the valid names otherwise."""
    return PARTITIONER_REGISTRY.get(name)


def _weights(values: Any, n_sites: int, param: str, *, allow_zero: bool = False) -> np.ndarray:
    if isinstance(values, (str, bytes)) or not isinstance(
        values, Sequence | np.ndarray | torch.Tensor
    ):
        raise ValueError(f"{param} must be a list of {n_sites} numbers, got {values!r}")
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.shape[0] != n_sites:
        raise ValueError(f"{param} must have one entry per site ({n_sites}), got {array.shape[0]}")
    if (
        not np.all(np.isfinite(array))
        or np.any(array < 0)
        or (not allow_zero and np.any(array == 0))
    ):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{param} must hold {kind} finite numbers, got {list(array)}")
    return array


def _counts_from_shares(shares: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to ``total`` proportional to ``shares`` (largest remainder)."""
    exact = shares / shares.sum() * total
    counts = np.floor(exact).astype(np.int64)
    remainder = total - int(counts.sum())
    if remainder:
        counts[np.argsort(-(exact - counts), kind="stable")[:remainder]] += 1
    return counts


@register_partitioner("iid")
def iid(labels: np.ndarray, n_sites: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle and deal out near-equal shares; every sample is used."""
    if labels.shape[0] < n_sites:
        raise ValueError(f"n_sites ({n_sites}) exceeds the number of samples ({labels.shape[0]})")
    return list(np.array_split(rng.permutation(labels.shape[0]), n_sites))


@register_partitioner("dirichlet")
def dirichlet(
    labels: np.ndarray,
    n_sites: int,
    rng: np.random.Generator,
    *,
    alpha: float,
    min_size: int = 10,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Label skew: per class, site shares drawn from Dir(alpha); smaller alpha, stronger skew.

    Draws again (at most ``max_tries`` times) until every site holds at least
    ``min_size`` samples.
    """
    if not (isinstance(alpha, (int, float)) and np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    if not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise ValueError(f"min_size must be an integer >= 0, got {min_size!r}")
    if not isinstance(max_tries, (int, np.integer)) or max_tries < 1:
        raise ValueError(f"max_tries must be an integer >= 1, got {max_tries!r}")
    n = labels.shape[0]
    if min_size * n_sites > n:
        raise ValueError(
            f"min_size ({min_size}) x n_sites ({n_sites}) exceeds the {n} samples; "
            "lower min_size or n_sites"
        )
    classes = np.unique(labels)
    smallest = 0
    for _ in range(int(max_tries)):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_sites)]
        for c in classes:
            members = rng.permutation(np.flatnonzero(labels == c))
            shares = rng.dirichlet(np.full(n_sites, float(alpha)))
            cuts = (np.cumsum(shares)[:-1] * members.shape[0]).astype(np.int64)
            for site, chunk in enumerate(np.split(members, cuts)):
                parts[site].append(chunk)
        sites = [np.concatenate(p) for p in parts]
        smallest = min(s.shape[0] for s in sites)
        if smallest >= min_size:
            return sites
    raise ValueError(
        f"dirichlet alpha={alpha} left a site with {smallest} < min_size={min_size} samples after {max_tries} tries; "
        "use a larger alpha, fewer sites or a smaller min_size"
    )


@register_partitioner("quantity")
def quantity(
    labels: np.ndarray,
    n_sites: int,
    rng: np.random.Generator,
    *,
    sizes: Sequence[float] | None = None,
    power: float | None = None,
) -> list[np.ndarray]:
    """Quantity skew: site sizes from weights ``sizes`` or a power law ``(site + 1) ** -power``; labels IID.

    Every sample is used; site 0 is the largest under a power law.
    """
    if (sizes is None) == (power is None):
        raise ValueError(
            "quantity partition needs exactly one of sizes (weights per site) or power (power-law "
            "exponent)"
        )
    if sizes is not None:
        shares = _weights(sizes, n_sites, "sizes")
    else:
        if not (isinstance(power, (int, float)) and np.isfinite(power) and power >= 0):
            raise ValueError(f"power must be a number >= 0, got {power!r}")
        shares = np.arange(1, n_sites + 1, dtype=np.float64) ** -float(power)
    counts = _counts_from_shares(shares, labels.shape[0])
    if np.any(counts == 0):
        site = int(np.flatnonzero(counts == 0)[0])
        raise ValueError(
            f"quantity partition leaves site {site} empty ({labels.shape[0]} samples); "
            "use less skewed sizes/power"
        )
    return list(np.split(rng.permutation(labels.shape[0]), np.cumsum(counts)[:-1]))


@register_partitioner("explicit")
def explicit(
    labels: np.ndarray,
    n_sites: int,
    rng: np.random.Generator,
    *,
    sizes: Sequence[float],
    prevalence: Sequence[float],
) -> list[np.ndarray]:
    """Exact size and malignancy per site.

    Site ``i`` gets ``round(sizes[i] * N)`` samples of which
    ``round(prevalence[i] * that)`` are malignant, drawn without replacement
    across sites. ``sizes`` are fractions of the split summing to at most 1.
    """
    fractions = _weights(sizes, n_sites, "sizes")
    if fractions.sum() > 1.0 + 1e-9:
        raise ValueError(
            f"sizes must sum to at most 1 (fractions of the split), got {fractions.sum():.6g}"
        )
    shares = _weights(prevalence, n_sites, "prevalence", allow_zero=True)
    if np.any(shares > 1):
        raise ValueError(f"prevalence must hold shares in [0, 1], got {list(shares)}")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError("explicit partition needs binary labels (0 benign, 1 malignant)")
    n = labels.shape[0]
    pools = {
        1: rng.permutation(np.flatnonzero(labels == 1)),
        0: rng.permutation(np.flatnonzero(labels == 0)),
    }
    used = {1: 0, 0: 0}
    names = {1: "malignant", 0: "benign"}
    sites: list[np.ndarray] = []
    for site in range(n_sites):
        n_site = round(fractions[site] * n)
        n_mal = round(shares[site] * n_site)
        parts = []
        for label, count in ((1, n_mal), (0, n_site - n_mal)):
            left = pools[label].shape[0] - used[label]
            if count > left:
                raise ValueError(
                    f"site {site} needs {count} {names[label]} samples but only {left} remain "
                    f"(of {pools[label].shape[0]}); lower its size or prevalence"
                )
            parts.append(pools[label][used[label] : used[label] + count])
            used[label] += count
        sites.append(np.concatenate(parts))
    return sites


PARTITION_NAMES: tuple[str, ...] = PARTITIONER_REGISTRY.names


def partition(
    labels: torch.Tensor, n_sites: int, scheme: str = "iid", *, seed: int = 0, **params: Any
) -> list[torch.Tensor]:
    """Split sample indices among ``n_sites`` hospitals.

    Parameters
    ----------
    labels : torch.Tensor
        Labels ``(N,)`` of the split (binary for ``explicit``).
    n_sites : int
        Number of hospitals, >= 1.
    scheme : str
        A name in :data:`PARTITIONERS`: ``iid``, ``dirichlet`` (``alpha``,
        ``min_size=10``), ``quantity`` (``sizes`` or ``power``), ``explicit``
        (``sizes``, ``prevalence``).
    seed : int
        Seed; the same inputs give the same partition.
    **params
        Parameters of the scheme.

    Returns
    -------
    list of torch.Tensor
        ``n_sites`` disjoint sorted int64 index tensors.

    Raises
    ------
    ValueError
        Unknown scheme, bad ``n_sites`` or parameters (the message names the parameter).
    """
    fn = get_partitioner(scheme)
    if isinstance(n_sites, bool) or not isinstance(n_sites, (int, np.integer)) or n_sites < 1:
        raise ValueError(f"n_sites must be an integer >= 1, got {n_sites!r}")
    accepted = [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for name in params:
        if name not in accepted:
            raise ValueError(
                f"unexpected parameter {name!r} for scheme {scheme!r}; "
                f"it accepts: {', '.join(accepted) or 'none'}"
            )
    for p in inspect.signature(fn).parameters.values():
        if (
            p.kind is inspect.Parameter.KEYWORD_ONLY
            and p.default is inspect.Parameter.empty
            and p.name not in params
        ):
            raise ValueError(f"scheme {scheme!r} needs the parameter {p.name!r}")
    tensor = torch.as_tensor(labels)
    if tensor.dim() != 1:
        raise ValueError(f"labels must be a 1-D tensor, got shape {tuple(tensor.shape)}")
    array = tensor.detach().cpu().numpy()
    rng = np.random.default_rng(seed)
    sites = fn(array, int(n_sites), rng, **params)
    return [torch.from_numpy(np.sort(s).astype(np.int64)) for s in sites]
