"""``--trace``: mean P(malignant) of four groups after every phase of every epoch.

The groups are the test split's malignant and benign rows and the forget
set's malignant and benign rows: where an unlearning method pushes each of
them, phase by phase, shows which pass moves the model towards missing cancer.
Evaluating changes nothing in training (no random draw, train mode restored).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from fedunlearn.data.loading import ImageSplit
from fedunlearn.engine import predict

GROUPS: tuple[str, ...] = ("test-malignant", "test-benign", "forget-malignant", "forget-benign")


class Tracer:
    """Collects one row per (epoch, phase, group); pass :meth:`record` as ``after_phase``."""

    def __init__(
        self, test: ImageSplit, train: ImageSplit, forget: torch.Tensor, device: torch.device
    ) -> None:
        self.test, self.train, self.forget, self.device = test, train, forget, device
        self.rows: list[dict] = []

    def record(self, epoch: int, phase: str, model: nn.Module | None) -> None:
        """Mean P(malignant) of each group; ``model=None`` records nothing."""
        if model is None:
            return
        t = predict(model, self.test.images, self.test.labels, device=self.device)
        f = predict(model, self.train.images, self.train.labels, self.forget, device=self.device)
        for group, preds, positive in (
            ("test-malignant", t, 1),
            ("test-benign", t, 0),
            ("forget-malignant", f, 1),
            ("forget-benign", f, 0),
        ):
            rows = preds.labels == positive
            value = float(preds.scores[rows].mean()) if rows.any() else float("nan")
            self.rows.append(
                {
                    "epoch": epoch,
                    "phase": phase,
                    "group": group,
                    "p_malignant": value,
                    "n": int(rows.sum()),
                }
            )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["epoch", "phase", "group", "p_malignant", "n"])
