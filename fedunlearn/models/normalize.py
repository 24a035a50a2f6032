"""Input normalisation kept inside the model (METHOD.md section 2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` on float images in [0, 1].

    Mean and std are buffers, so they travel with the weights and every site
    normalises identically.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def default_normalize(in_channels: int) -> Normalize:
    """Centre [0, 1] images on 0.5 with unit half-range: a dataset-agnostic *choice*."""
    return Normalize([0.5] * in_channels, [0.5] * in_channels)
