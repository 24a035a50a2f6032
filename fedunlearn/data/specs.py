"""One typed contract per dataset: classes, malignant labels, files, checksums.

Every runner loops over datasets through :class:`DatasetSpec`, so that the
binary task (malignant = 1, benign = 0), the MedMNIST+ file names and their
official MD5s are defined in exactly one place (METHOD.md section 1).

References
----------
Yang et al., "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D
biomedical image classification", Scientific Data, 2023.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np

from fedunlearn.errors import FedunlearnError

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "SIZES",
    "DataError",
    "DatasetSpec",
    "get_dataset_spec",
]

SIZES: tuple[int, ...] = (28, 64, 128, 224)
"""Image sizes (pixels per side) published by MedMNIST+."""


class DataError(FedunlearnError):
    """A data problem, told in one line that names the problem and the fix."""


@lru_cache(maxsize=1)
def _medmnist_info() -> Mapping[str, Mapping[str, Any]]:
    """Return ``medmnist.INFO`` without importing the whole medmnist package.

    ``import medmnist`` pulls in torch, PIL and scikit-learn (seconds); its
    ``info`` module needs the standard library only, so it is loaded on its
    own when possible, and through the package otherwise.
    """
    found = importlib.util.find_spec("medmnist")
    if found is None:
        raise DataError("the medmnist package is not installed; run `pip install medmnist>=3.0`")
    module: ModuleType | None = None
    for location in found.submodule_search_locations or ():
        info_py = Path(location) / "info.py"
        if info_py.is_file():
            spec = importlib.util.spec_from_file_location("_fedunlearn_medmnist_info", info_py)
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                try:
                    spec.loader.exec_module(module)
                except Exception:
                    module = None
            break
    if module is None or not hasattr(module, "INFO"):
        module = importlib.import_module("medmnist.info")
    return module.INFO


@dataclass(frozen=True)
class DatasetSpec:
    """The contract of one MedMNIST dataset for the binary malignancy task.

    Parameters
    ----------
    name : str
        The MedMNIST flag, e.g. ``"dermamnist"``.
    malignant_labels : frozenset of int
        MedMNIST class ids mapped to the positive class (malignant, 1).
    class_names : tuple of str
        Names of the original MedMNIST classes, indexed by class id.
    n_samples : Mapping[str, int]
        Official number of images per split (``train``, ``val``, ``test``).
    """

    name: str
    malignant_labels: frozenset[int]
    class_names: tuple[str, ...]
    n_samples: Mapping[str, int] = field(hash=False)

    @property
    def n_classes(self) -> int:
        """Number of original MedMNIST classes."""
        return len(self.class_names)

    def _check_size(self, size: int) -> int:
        if (
            isinstance(size, bool)
            or not isinstance(size, (int, np.integer))
            or int(size) not in SIZES
        ):
            raise DataError(
                f"{self.name}: image size {size!r} is not published; "
                f"choose one of {', '.join(map(str, SIZES))}"
            )
        return int(size)

    def filename(self, size: int) -> str:
        """File name of the official archive: ``{flag}.npz`` at 28 px, else ``{flag}_{size}.npz``."""
        size = self._check_size(size)
        return f"{self.name}.npz" if size == 28 else f"{self.name}_{size}.npz"

    def _info_key(self, stem: str, size: int) -> str:
        size = self._check_size(size)
        return stem if size == 28 else f"{stem}_{size}"

    def url(self, size: int) -> str:
        """Official download URL (from ``medmnist.INFO``)."""
        return str(_medmnist_info()[self.name][self._info_key("url", size)])

    def md5(self, size: int) -> str:
        """Official MD5 of the archive (from ``medmnist.INFO``)."""
        return str(_medmnist_info()[self.name][self._info_key("MD5", size)])

    def binarise(self, labels: np.ndarray) -> np.ndarray:
        """Map MedMNIST class ids to the binary task.

        Parameters
        ----------
        labels : numpy.ndarray
            Class ids of any shape, e.g. the official ``(N, 1)`` uint8.

        Returns
        -------
        numpy.ndarray
            int64 of shape ``(N,)``: 1 malignant, 0 benign.
        """
        flat = np.asarray(labels).reshape(-1)
        return np.isin(flat, np.fromiter(self.malignant_labels, dtype=np.int64)).astype(np.int64)


def _spec_from_info(name: str, malignant: set[int]) -> DatasetSpec:
    info = _medmnist_info()[name]
    labels = info["label"]
    class_names = tuple(str(labels[str(i)]) for i in range(len(labels)))
    n_samples = MappingProxyType({str(k): int(v) for k, v in info["n_samples"].items()})
    return DatasetSpec(
        name=name,
        malignant_labels=frozenset(malignant),
        class_names=class_names,
        n_samples=n_samples,
    )


DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        # 0 akiec, 1 bcc, 4 mel are malignant; bkl, df, nv, vasc benign.
        "dermamnist": _spec_from_info("dermamnist", {0, 1, 4}),
        # 7 cancer-associated stroma, 8 colorectal adenocarcinoma epithelium.
        "pathmnist": _spec_from_info("pathmnist", {7, 8}),
    }
)
"""File-backed datasets by name."""

DATASET_NAMES: tuple[str, ...] = ("dermamnist", "pathmnist", "synthetic")
"""Every name :func:`fedunlearn.data.load_dataset` accepts."""


def get_dataset_spec(name: str) -> DatasetSpec:
    """Return the spec of a file-backed dataset.

    Parameters
    ----------
    name : str
        ``"dermamnist"`` or ``"pathmnist"`` (case-insensitive).

    Raises
    ------
    DataError
        For an unknown name (the message lists the valid ones), and for
        ``"synthetic"``, which is generated and has no file contract.
    """
    key = str(name).strip().lower()
    if key in DATASETS:
        return DATASETS[key]
    if key == "synthetic":
        raise DataError(
            "'synthetic' is generated, not read from a file, so it has no DatasetSpec; "
            "use fedunlearn.data.make_synthetic"
        )
    raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
