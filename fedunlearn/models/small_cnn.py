"""A small CNN for CPU runs (a *choice*, METHOD.md section 2).

Three conv-norm-ReLU stages (32/64/128 channels, the first with stride 2 so
no convolution runs at full resolution) and a global average pool, so it works
at every MedMNIST+ size and trains fast on a laptop CPU.

``small-cnn`` normalises with BatchNorm; ``small-cnn-gn`` with GroupNorm (8
groups), which keeps no running statistics: under FedAvg every site
re-estimates BatchNorm's running statistics from its last local batches each
round, and their average moves the global model's calibration from round to
round even when the learning rate is near zero (README, "Stable federated
training").

References
----------
Wu & He, "Group Normalization", ECCV 2018; Hsieh et al., "The Non-IID Data
Quagmire of Decentralized Machine Learning", ICML 2020 (GroupNorm in place of
BatchNorm for federated training).
"""

from __future__ import annotations

import torch
from torch import nn

from fedunlearn.models.normalize import default_normalize


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.GroupNorm(8, channels) if kind == "group" else nn.BatchNorm2d(channels)


def _stage(c_in: int, c_out: int, stride: int = 1, norm: str = "batch") -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        _norm(norm, c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 2, in_channels: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "group"):
            raise ValueError(f"norm must be 'batch' or 'group', got {norm!r}")
        self.normalize = default_normalize(in_channels)
        self.features = nn.Sequential(
            _stage(in_channels, 32, stride=2, norm=norm),
            _stage(32, 64, norm=norm),
            nn.MaxPool2d(2),
            _stage(64, 128, norm=norm),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(self.normalize(x)), 1))


def small_cnn_gn(num_classes: int = 2, in_channels: int = 3) -> SmallCNN:
    """The small CNN with GroupNorm (no running statistics)."""
    return SmallCNN(num_classes, in_channels, norm="group")
