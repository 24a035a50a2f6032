"""Shared fixtures: the real data copies beside the checkout, when present."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; skip where it is absent."""
    if not (SHARED_DATA / "dermamnist_28_jpeg.npz").is_file():
        pytest.skip(f"real data copies absent: {SHARED_DATA} (only present beside a fedunlearn checkout in this workplace)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def derma_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MedMNIST root holding the JPEG DermaMNIST copy as ``dermamnist.npz``."""
    root = tmp_path_factory.mktemp("medmnist-root")
    (root / "dermamnist.npz").symlink_to(shared_data / "dermamnist_28_jpeg.npz")
    return root
