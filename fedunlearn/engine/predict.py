"""Evaluation: class probabilities and labels, the input of every metric."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fedunlearn.engine.batches import iterate_batches
from fedunlearn.engine.device import autocast


@dataclass(frozen=True)
class Predictions:
    """Softmax probabilities ``(N, 2)`` and binary labels ``(N,)`` of one evaluated set."""

    probs: np.ndarray
    labels: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        """P(malignant), the score thresholded at 0.5 (METHOD.md section 5)."""
        return self.probs[:, 1]

    def __len__(self) -> int:
        return len(self.labels)


@torch.inference_mode()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    indices: torch.Tensor | None = None,
    *,
    device: torch.device,
    batch_size: int = 1024,
    amp: bool = True,
) -> Predictions:
    """Evaluate ``model`` (in eval mode) on the rows ``indices`` (all rows when None)."""
    if indices is None:
        indices = torch.arange(len(labels))
    was_training = model.training
    model.eval()
    probs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    try:
        for x, y, _ in iterate_batches(images, labels, indices, batch_size, device=device):
            with autocast(device, amp):
                logits = model(x)
            probs.append(torch.softmax(logits.float(), dim=1).cpu())
            ys.append(y.cpu())
    finally:
        model.train(was_training)
    if not probs:
        return Predictions(np.zeros((0, 2), dtype=np.float32), np.zeros(0, dtype=np.int64))
    return Predictions(torch.cat(probs).numpy(), torch.cat(ys).numpy())
