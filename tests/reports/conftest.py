from __future__ import annotations

import pytest

from tests.sweeps.tiny import ResumedSweep, resumed_sweep


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory: pytest.TempPathFactory) -> ResumedSweep:
    return resumed_sweep(tmp_path_factory)
