"""Choose the samples a deletion request asks to forget (METHOD.md section 3).

References
----------
Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight
Saliency in Both Image Classification and Generation", ICLR 2024 (random,
class-balanced and skewed forget sets in the public code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["FORGET_MODES", "ForgetSpec", "select_forget"]

FORGET_MODES: tuple[str, ...] = ("random", "balanced", "malignant", "benign")
"""random: uniform; balanced: half from each class; malignant / benign: ``skew`` of the set from that class."""


@dataclass(frozen=True)
class ForgetSpec:
    """What to forget.

    Parameters
    ----------
    fraction : float
        Share of the samples to forget, in (0, 1]; the study uses 0.2 and 0.5.
    mode : str
        One of :data:`FORGET_MODES`.
    skew : float
        For ``"malignant"`` / ``"benign"``: share of the forget set drawn from
        that class, in [0.5, 1] (the authors' code: 0.7).
    seed : int
        Seed of the selection.
    """

    fraction: float
    mode: str = "random"
    skew: float = 0.7
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < float(self.fraction) <= 1.0:
            raise ValueError(f"forget fraction must be in (0, 1], got {self.fraction}")
        if self.mode not in FORGET_MODES:
            raise ValueError(
                f"unknown forget mode {self.mode!r}; valid modes: {', '.join(FORGET_MODES)}"
            )
        if not 0.5 <= float(self.skew) <= 1.0:
            raise ValueError(f"forget skew must be in [0.5, 1], got {self.skew}")


def _take(pool: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    return pool[torch.randperm(pool.numel(), generator=generator)[:k]]


def _split_counts(k: int, wanted_a: int, n_a: int, n_b: int) -> tuple[int, int]:
    """``wanted_a`` from class a as far as it allows, the rest from b, topping up a if b runs short."""
    take_a = min(n_a, wanted_a)
    take_b = min(n_b, k - take_a)
    take_a = min(n_a, k - take_b)
    return take_a, take_b


def select_forget(labels: torch.Tensor, spec: ForgetSpec) -> torch.Tensor:
    """Indices of the forget set.

    Parameters
    ----------
    labels : torch.Tensor
        Binary labels ``(N,)`` of the pool (1 malignant, 0 benign).
    spec : ForgetSpec
        Fraction, mode, skew and seed.

    Returns
    -------
    torch.Tensor
        Sorted unique int64 indices into ``labels``; ``max(1, round(fraction * N))`` of them.

    Raises
    ------
    ValueError
        Empty or non-binary ``labels``.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.numel() == 0:
        raise ValueError(f"labels must be a non-empty 1-D tensor, got shape {tuple(labels.shape)}")
    labels = labels.to(torch.int64)
    if bool(((labels != 0) & (labels != 1)).any()):
        raise ValueError("labels must be binary (0 benign, 1 malignant)")
    n = labels.numel()
    k = min(n, max(1, round(spec.fraction * n)))
    generator = torch.Generator().manual_seed(int(spec.seed))
    if spec.mode == "random":
        chosen = torch.randperm(n, generator=generator)[:k]
    else:
        malignant = torch.nonzero(labels == 1).flatten()
        benign = torch.nonzero(labels == 0).flatten()
        n_mal, n_ben = malignant.numel(), benign.numel()
        if spec.mode == "balanced":
            # the odd one goes to the larger class
            wanted_mal = (k + 1) // 2 if n_mal > n_ben else k // 2
        elif spec.mode == "malignant":
            wanted_mal = round(spec.skew * k)
        else:  # benign
            wanted_mal = k - round(spec.skew * k)
        if spec.mode == "benign":
            take_ben, take_mal = _split_counts(k, k - wanted_mal, n_ben, n_mal)
        else:
            take_mal, take_ben = _split_counts(k, wanted_mal, n_mal, n_ben)
        chosen = torch.cat(
            [_take(malignant, take_mal, generator), _take(benign, take_ben, generator)]
        )
    return torch.sort(chosen).values.to(torch.int64)
