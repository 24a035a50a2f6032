"""Losses: the only thing, with the data schedule, by which methods differ.

Every loss has the signature ``loss(logits, labels, generator) -> Tensor``;
``generator`` is a CPU ``torch.Generator`` for the losses that draw random
labels, so that a run is reproducible whatever the device.

References
----------
METHOD.md sections 2 and 4; Fan et al., "SalUn", ICLR 2024; the clinical-risk
study (arXiv:2604.23854) for SalUn-CRA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

NUM_CLASSES = 2


class Loss(Protocol):
    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


def class_weights(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Class-balanced weights ``w_c = N / (K * N_c)`` counted on the set being trained on.

    A class absent from ``labels`` gets weight 0 (it cannot occur in the loss).
    """
    counts = torch.bincount(labels.long().cpu(), minlength=num_classes).double()
    n = counts.sum()
    weights = torch.where(counts > 0, n / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts))
    return weights.float()


def random_labels(n: int, generator: torch.Generator, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Labels drawn uniformly from all classes (so a label can equal the true one)."""
    return torch.randint(0, num_classes, (n,), generator=generator)


def neg_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Minus the mean softmax entropy: minimising it pushes predictions towards uniform."""
    logp = F.log_softmax(logits.float(), dim=1)
    return (logp.exp() * logp).sum(dim=1).mean()


@dataclass(frozen=True)
class WeightedCE:
    """Class-weighted cross-entropy with the true labels (training, FT, the retain pass)."""

    weights: torch.Tensor

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels, weight=self.weights.to(logits.device))


@dataclass(frozen=True)
class GradientAscent:
    """GA: minus the cross-entropy of the true labels on the forget set."""

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return -F.cross_entropy(logits.float(), labels)


@dataclass(frozen=True)
class RandomLabelCE:
    """RL / SalUn forget pass: weighted cross-entropy against uniformly random labels."""

    weights: torch.Tensor

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        fake = random_labels(len(labels), generator).to(logits.device)
        return F.cross_entropy(logits.float(), fake, weight=self.weights.to(logits.device))


@dataclass(frozen=True)
class ClinicalRiskAwareForget:
    """SalUn-CRA forget pass.

    Malignant forget samples get only the entropy-maximisation loss (never a
    label); benign ones keep random relabelling with class-weighted
    cross-entropy. A batch's loss is
    ``(n_mal / B) * L_entropy + (n_ben / B) * L_random_label``.
    """

    weights: torch.Tensor

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        malignant = labels == 1
        batch = len(labels)
        n_mal = int(malignant.sum())
        n_ben = batch - n_mal
        # Draw for the whole batch so the random stream does not depend on the class mix.
        fake = random_labels(batch, generator).to(logits.device)
        loss = logits.new_zeros((), dtype=torch.float32)
        if n_mal:
            loss = loss + (n_mal / batch) * neg_entropy(logits[malignant])
        if n_ben:
            benign = ~malignant
            loss = loss + (n_ben / batch) * F.cross_entropy(
                logits[benign].float(), fake[benign], weight=self.weights.to(logits.device)
            )
        return loss
