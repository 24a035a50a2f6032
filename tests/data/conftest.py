"""Helpers for the data-layer tests: small handmade MedMNIST-style archives."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def write_npz(tmp_path: Path) -> Callable[..., Path]:
    """Write ``arrays`` as ``<tmp root>/<filename>`` (np.savez, or compressed) and return the path."""

    def write(
        filename: str, *, compressed: bool = False, root: Path | None = None, **arrays: np.ndarray
    ) -> Path:
        folder = root if root is not None else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / filename
        with open(path, "wb") as fh:
            (np.savez_compressed if compressed else np.savez)(fh, **arrays)
        return path

    return write


def _tiny_split(
    n: int, size: int, n_classes: int = 7, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = (np.arange(n) % n_classes).astype(np.uint8)[:, None]
    return images, labels


@pytest.fixture
def tiny_split() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``tiny_split(n, size, n_classes=7, seed=0)``: random images (n, size, size, 3), labels (n, 1) cycling classes."""
    return _tiny_split
