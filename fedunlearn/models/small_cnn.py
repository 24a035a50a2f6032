"""A small CNN for CPU runs (a *choice*, METHOD.md section 2).

Three conv-BN-ReLU stages (32/64/128 channels, the first with stride 2 so
no convolution runs at full resolution) and a global average pool, so it works
at every MedMNIST+ size and trains fast on a laptop CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from fedunlearn.models.normalize import default_normalize


def _stage(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 2, in_channels: int = 3) -> None:
        super().__init__()
        self.normalize = default_normalize(in_channels)
        self.features = nn.Sequential(
            _stage(in_channels, 32, stride=2),
            _stage(32, 64),
            nn.MaxPool2d(2),
            _stage(64, 128),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(self.normalize(x)), 1))
