"""Validation and test rows carved from the train split of a file that has neither.

The real PathMNIST copy of this project's machines (``../shared/data``,
``pathmnist_28_train1000.npz``: the first 1000 training images of PathMNIST, no
val or test split) cannot feed a study that chooses on validation and reports
on test. :func:`carve_holdout` splits its train rows three ways, stratified by
the binary label, with one fixed draw (stream ``holdout``, seed 0): the same
rows for every seed and every run, as an official split would be. The
provenance note says so, with the sizes, so no result from it passes for one on
the official splits.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from fedunlearn.seeding import numpy_rng

from .specs import DataError
from .splits import BinaryDataset

__all__ = ["carve_holdout"]


def carve_holdout(data: BinaryDataset, val: float, test: float) -> BinaryDataset:
    """``data`` with ``val`` and ``test`` fractions of its train rows moved to new val and test splits.

    Each class (malignant, benign) is split in the same proportions: ``round(test * n_c)`` test rows and
    ``round(val * n_c)`` validation rows drawn from its ``n_c`` rows, the rest kept for training; every
    split keeps file order.

    Raises
    ------
    DataError
        The file has a val or test split of its own, or the fractions leave a split empty.
    """
    if data.val is not None or data.test is not None:
        have = " and ".join(s for s in ("val", "test") if getattr(data, s) is not None)
        raise DataError(
            f"{data.name} {data.size}px has its own {have} split; drop --holdout (it is for a file "
            "with a train split only)"
        )
    if not (0 < val < 1 and 0 < test < 1 and val + test < 1):
        raise DataError(
            f"--holdout {val} {test}: the val and test fractions must be > 0 and sum to < 1 (e.g. 0.15 0.25)"
        )
    labels = data.train.labels.numpy()
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in (0, 1):
        rows = np.flatnonzero(labels == cls)
        drawn = numpy_rng(0, "holdout", cls).permutation(rows)
        n_test, n_val = round(test * len(rows)), round(val * len(rows))
        parts["test"].append(drawn[:n_test])
        parts["val"].append(drawn[n_test : n_test + n_val])
        parts["train"].append(drawn[n_test + n_val :])
    index = {k: torch.from_numpy(np.sort(np.concatenate(v))) for k, v in parts.items()}
    for name, rows in index.items():
        if len(rows) == 0 or len(torch.unique(data.train.labels[rows])) < 2:
            raise DataError(
                f"--holdout {val} {test} leaves the {name} split of {data.name} ({len(labels)} images) without "
                "both classes; choose larger fractions"
            )
    sizes = ", ".join(f"{k} {len(v)}" for k, v in index.items())
    note = (
        f"val and test carved from the file's train split (--holdout {val} {test}: stratified by class, "
        f"one fixed draw): {sizes}"
    )
    provenance = dataclasses.replace(
        data.provenance,
        note="; ".join(n for n in (data.provenance.note, note) if n),
    )
    return dataclasses.replace(
        data,
        train=data.train.subset(index["train"]),
        val=data.train.subset(index["val"]),
        test=data.train.subset(index["test"]),
        provenance=provenance,
    )
