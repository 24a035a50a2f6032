"""Shared fixtures: the real data copies beside the checkout, when present."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from fedunlearn.data import BinaryDataset, SyntheticSpec, make_synthetic

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


#: Test files whose tests share a session's real runs go to one xdist worker, so those runs are made once
#: per session: the tiny resumed sweep (tests/sweeps/tiny.py), the control and SalUn-CRA points of the
#: shared-prefix sweep run alone, and the default small scenario (``run_scenario_dir`` below runs each
#: distinct scenario once per worker). Every other file is a unit of its own, as ``--dist loadfile`` has it.
SHARED_RUN_GROUPS = {
    "tests/sweeps/test_resume.py": "tiny-sweep",
    "tests/reports/test_report.py": "tiny-sweep",
    "tests/sweeps/test_prefix.py": "tiny-arms",
    "tests/federated/test_control.py": "tiny-arms",
    "tests/federated/test_simulation.py": "small-scenario",
    "tests/federated/test_guard.py": "small-scenario",
}


#: Files that run real federations, longest first (measured on 2 cores): xdist hands out its work units
#: in collection order, so these start first and the short files fill in around them, instead of one
#: long unit starting last and ending the run alone.
LONGEST_FIRST = (
    "tests/sweeps/test_prefix.py",
    "tests/federated/test_control.py",
    "tests/federated/test_guard.py",
    "tests/federated/test_simulation.py",
    "tests/federated/test_reliability.py",
    "tests/federated/test_deploy.py",
    "tests/sweeps/test_resume.py",
    "tests/reports/test_report.py",
    "tests/federated/test_flwr_run.py",
    "tests/scenario/test_runs.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    # a stable sort: every other file keeps its place, and a file's tests their order
    items.sort(key=lambda item: rank.get(_relative(item), len(rank)))


def _relative(item: pytest.Item) -> str:
    return Path(str(item.path)).resolve().relative_to(REPO).as_posix()


@pytest.hookimpl(optionalhook=True)  # a plain `pytest` without xdist has no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile``, with the files of :data:`SHARED_RUN_GROUPS` kept together (xdist's own
    ``loadgroup`` marks do not reach the scheduler under pytest 9 and xdist 3.8: measured), handed out
    in collection order (:data:`LONGEST_FIRST` first)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    # xdist would order the units by their number of tests, which puts the few-test files that run real
    # processes last; keep the collection order instead, which LONGEST_FIRST sorted
    config.option.loadscopereorder = False

    class SharedRunScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return SHARED_RUN_GROUPS.get(path, path)

    return SharedRunScheduling(config, log)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; skip where it is absent."""
    if not (SHARED_DATA / "dermamnist_28_jpeg.npz").is_file():
        pytest.skip(
            f"real data copies absent: {SHARED_DATA} (only present beside a fedunlearn checkout in this workplace)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def derma_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MedMNIST root holding the JPEG DermaMNIST copy as ``dermamnist.npz``."""
    root = tmp_path_factory.mktemp("medmnist-root")
    (root / "dermamnist.npz").symlink_to(shared_data / "dermamnist_28_jpeg.npz")
    return root


#: Test folders whose small convolutions run faster, and steadier on a shared 2-core box, on one thread.
_ONE_THREAD_DIRS = {"engine", "models", "unlearning"}


@pytest.fixture(scope="module", autouse=True)
def one_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    if Path(str(request.path)).parent.name not in _ONE_THREAD_DIRS:
        yield
        return
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


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Any start of Ray or of Flower's simulation engine fails the test: the error under test must come first.

    ``run_scenario`` turns any exception of the engine into a one-line FedunlearnError, so raising alone
    could pass unnoticed: every attempt is also recorded (the list yielded) and checked at teardown.
    """
    import flwr.simulation
    import ray

    starts: list[str] = []

    def refuse(*args, **kwargs):
        starts.append("Ray started")
        raise AssertionError("Ray started")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(flwr.simulation, "run_simulation", refuse)
    # a long FEDUNLEARN_RAY_TMP from the environment would be refused before what the tests check
    monkeypatch.delenv("FEDUNLEARN_RAY_TMP", raising=False)
    monkeypatch.delenv("FEDUNLEARN_DEBUG", raising=False)
    yield starts
    assert starts == [], "Ray or the simulation engine was started"


@pytest.fixture(scope="session")
def run_scenario_dir(tmp_path_factory: pytest.TempPathFactory):
    """``run(scenario, name) -> Run``: a real run through the Ray backend, made once per distinct scenario
    in this worker (tests/federated/conftest.py's :class:`Run` reads it)."""
    from fedunlearn.federated.scenario import Scenario
    from fedunlearn.federated.simulation import run_scenario
    from tests.federated.conftest import Run

    made: dict[str, Run] = {}  # the scenario as JSON -> its run: each distinct scenario runs once

    def _run(scenario: Scenario, name: str) -> Run:
        key = scenario.model_dump_json()
        if key not in made:
            out = tmp_path_factory.mktemp("runs") / name
            run_scenario(scenario, out, quiet=True)
            made[key] = Run(out, scenario)
        return made[key]

    return _run
