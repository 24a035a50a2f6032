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
    def __call__(
        self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor: ...


def class_weights(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Class-balanced weights ``w_c = N / (K * N_c)`` counted on the set being trained on.

    A class absent from ``labels`` gets weight 0 (it cannot occur in the loss).
    """
    counts = torch.bincount(labels.long().cpu(), minlength=num_classes).double()
    n = counts.sum()
    weights = torch.where(
        counts > 0, n / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts)
    )
    return weights.float()


def random_labels(
    n: int, generator: torch.Generator, num_classes: int = NUM_CLASSES
) -> torch.Tensor:
    """Labels drawn uniformly from all classes (so a label can equal the true one)."""
    return torch.randint(0, num_classes, (n,), generator=generator)


def neg_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Minus the mean softmax entropy: minimising it pushes predictions towards uniform."""
    logp = F.log_softmax(logits.float(), dim=1)
    return (logp.exp() * logp).sum(dim=1).mean()


def _ce(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy, class-weighted unless ``weights`` is None (then plain, unweighted)."""
    w = None if weights is None else weights.to(logits.device)
    return F.cross_entropy(logits.float(), targets, weight=w)


@dataclass(frozen=True)
class WeightedCE:
    """Class-weighted cross-entropy with the true labels (training, FT, the retain pass).

    ``weights=None`` is plain, unweighted cross-entropy (``loss_weighting: none``).
    """

    weights: torch.Tensor | None

    def __call__(
        self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        return _ce(logits, labels, self.weights)


@dataclass(frozen=True)
class GradientAscent:
    """GA: minus the cross-entropy of the true labels on the forget set."""

    def __call__(
        self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        return -F.cross_entropy(logits.float(), labels)


@dataclass(frozen=True)
class RandomLabelCE:
    """RL / SalUn forget pass: weighted cross-entropy against uniformly random labels."""

    weights: torch.Tensor

    def __call__(
        self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
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

    def __call__(
        self, logits: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
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


@dataclass(frozen=True)
class ForgetLoss:
    """The forget loss of RL, SalUn and SalUn-CRA under every ingredient setting.

    On the forget rows of a batch: rows in the entropy scope get minus the
    entropy (none for RL / SalUn; malignant rows, or all forget rows, for
    SalUn-CRA); the others get cross-entropy against random labels
    (``random_labels=True``) or their true labels (``False``: what the study's
    code does on MedMNIST, where the drawn labels are never read). Rows that
    are not forget rows (``mixed`` schedule) get cross-entropy with their true
    labels. A batch's loss is ``(n_ent / B) * L_entropy + (n_ce / B) * L_ce``;
    with no entropy rows it is one cross-entropy over the batch, as the study's
    code computes on its mixed loader. ``weights=None`` is unweighted.

    Parameters
    ----------
    weights
        Class weights of the cross-entropy (counted on the retain set), or None.
    random_labels
        Draw labels uniformly at random for the forget rows; when False no label is drawn.
    entropy
        ``None`` (RL, SalUn), ``"malignant"`` or ``"all"`` forget rows (SalUn-CRA).
    is_forget
        Bool over every row of the split, for a phase mixing forget and retain rows;
        None when every row of the phase is a forget row.

    References
    ----------
    Fan et al., "SalUn", ICLR 2024; arXiv:2604.23854 (SalUn-CRA); METHOD.md sections 4 and 4b.
    """

    weights: torch.Tensor | None
    random_labels: bool = True
    entropy: str | None = None
    is_forget: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.entropy not in (None, "malignant", "all"):
            raise ValueError(
                f"entropy scope must be None, 'malignant' or 'all', got {self.entropy!r}"
            )

    def __call__(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        generator: torch.Generator,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch = len(labels)
        if self.is_forget is None:
            forget = torch.ones(batch, dtype=torch.bool, device=labels.device)
        else:
            if rows is None:
                raise ValueError("a mixed forget/retain loss needs the batch's row ids")
            forget = self.is_forget[rows.cpu()].to(labels.device)
        targets = labels
        if self.random_labels:
            # Drawn for the whole batch so the random stream does not depend on the row mix.
            fake = random_labels(batch, generator).to(labels.device)
            targets = torch.where(forget, fake, labels)
        if self.entropy is None:
            ent = torch.zeros_like(forget)
        elif self.entropy == "malignant":
            ent = forget & (labels == 1)
        else:
            ent = forget
        n_ent = int(ent.sum())
        n_ce = batch - n_ent
        if n_ent == 0:
            return _ce(logits, targets, self.weights)
        loss = logits.new_zeros((), dtype=torch.float32)
        loss = loss + (n_ent / batch) * neg_entropy(logits[ent])
        if n_ce:
            keep = ~ent
            loss = loss + (n_ce / batch) * _ce(logits[keep], targets[keep], self.weights)
        return loss
