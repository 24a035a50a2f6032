"""Shared fixtures of the engine tests: one CPU thread, a small synthetic dataset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from fedunlearn.data import BinaryDataset, SyntheticSpec, make_synthetic


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Small convolutions run faster (and steadier on a shared 2-core box) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synthetic() -> BinaryDataset:
    """400 / 100 / 200 synthetic lesions at 28 px (20 % malignant)."""
    return make_synthetic(SyntheticSpec(n_train=400, n_val=100, n_test=200))


@pytest.fixture
def cpu() -> torch.device:
    return torch.device("cpu")
