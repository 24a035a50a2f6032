"""The in-memory contract of a binary image dataset: its splits, its provenance, the dataset itself.

:class:`ImageSplit`, :class:`DataProvenance` and :class:`BinaryDataset` are
what every loader returns (:mod:`fedunlearn.data.loading` for MedMNIST files,
:mod:`fedunlearn.data.synthetic` for generated images); they know nothing of
where the arrays come from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from .specs import DataError

__all__ = ["SPLITS", "BinaryDataset", "DataProvenance", "ImageSplit"]

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class ImageSplit:
    """One split of a binary image dataset.

    Parameters
    ----------
    images : torch.Tensor
        uint8 ``(N, H, W, C)`` in the official NHWC layout; may be a read-only
        memory map (index it, do not write to it).
    labels : torch.Tensor
        int64 ``(N,)``: 1 malignant, 0 benign.
    source_labels : torch.Tensor
        int64 ``(N,)``: the original MedMNIST class id.
    """

    images: torch.Tensor
    labels: torch.Tensor
    source_labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(
                f"ImageSplit images must be uint8 (N, H, W, C), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        for field_name in ("labels", "source_labels"):
            t = getattr(self, field_name)
            if t.dtype != torch.int64 or t.dim() != 1 or t.shape[0] != self.images.shape[0]:
                raise DataError(
                    f"ImageSplit {field_name} must be int64 ({self.images.shape[0]},) like the images, "
                    f"got {t.dtype} {tuple(t.shape)}"
                )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: torch.Tensor) -> ImageSplit:
        """Rows selected by an index (int64) or mask (bool) tensor, copied out of any memory map."""
        index = torch.as_tensor(index)
        return ImageSplit(
            images=self.images[index],
            labels=self.labels[index],
            source_labels=self.source_labels[index],
        )

    @property
    def prevalence(self) -> float:
        """Share of malignant samples; ``nan`` when the split is empty."""
        if len(self) == 0:
            return float("nan")
        return float(self.labels.sum().item()) / len(self)


@dataclass(frozen=True)
class DataProvenance:
    """Where the data of a run came from, for its manifest.

    Parameters
    ----------
    dataset, size : str, int
        Dataset name and image size.
    path : str or None
        The file read (``None`` for generated data).
    md5, official_md5 : str or None
        MD5 of that file and the official one.
    official : bool
        True only when both MD5s match.
    synthetic : bool
        True for generated data.
    note : str
        Anything a reader of the results must know (missing splits, non-official file).
    """

    dataset: str
    size: int
    path: str | None
    md5: str | None
    official_md5: str | None
    official: bool
    synthetic: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, ready for JSON."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class BinaryDataset:
    """A dataset reduced to the malignant / benign task, with its provenance."""

    name: str
    size: int
    train: ImageSplit
    val: ImageSplit | None
    test: ImageSplit | None
    provenance: DataProvenance

    def split(self, name: str) -> ImageSplit:
        """Return the split ``"train"``, ``"val"`` or ``"test"``.

        Raises
        ------
        DataError
            For an unknown split name, or a split the file does not hold.
        """
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
        found = getattr(self, name)
        if found is None:
            where = f" ({self.provenance.path})" if self.provenance.path else ""
            raise DataError(
                f"{self.name} {self.size}px{where} has no {name} split; use the official file "
                f"(`fedunlearn data fetch --dataset {self.name} --size {self.size}`), or with "
                "`fedunlearn centralized` / `ablation` carve val and test from its train split: --holdout 0.15 0.25"
            )
        return found
