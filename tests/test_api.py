"""The front door for Python scripts (fedunlearn.api), through the real engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import fedunlearn as fu
from fedunlearn.federated.scenario import ScenarioError

TINY = """\
name: api-tiny
data: {dataset: synthetic, synthetic: {n_train: 240, n_val: 60, n_test: 100}}
sites: {count: 2}
training: {rounds: 2, local_epochs: 1, batch_size: 32}
deletion: {method: salun-cra, unlearn: {epochs: 1}, requests: [{round: 2, site: 1, fraction: 0.25}]}
"""


def test_exports_are_the_documented_api() -> None:
    assert set(fu.__all__) == {
        "AblationConfig",
        "FedunlearnError",
        "RunResult",
        "StudyConfig",
        "SyntheticSpec",
        "TrainConfig",
        "ablation",
        "ablation_plan",
        "centralized",
        "load_scenario",
        "report",
        "run",
        "sweep",
    }
    assert all(getattr(fu, name) is not None for name in fu.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = fu.nope


def test_importing_the_package_loads_neither_torch_nor_flower() -> None:
    code = (
        "import sys, fedunlearn as fu; heavy = {'torch', 'flwr', 'ray'} & set(sys.modules); "
        "assert not heavy, heavy; fu.TrainConfig; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ablation_runs_the_units_ablation_plan_lists(tmp_path: Path) -> None:
    cfg = fu.AblationConfig(
        dataset="synthetic",
        synthetic=fu.SyntheticSpec(n_train=160, n_val=40, n_test=80),
        seeds=(0, 1),
        ratios=(0.5,),
        methods=("retrain", "ft"),
        presets=("paper",),
        train=fu.TrainConfig(epochs=1, batch_size=64),
        unlearn_epochs=1,
    )
    plan = fu.ablation_plan(cfg)
    assert {(r, s) for r, s, _ in plan} == {(0.5, 0), (0.5, 1)} and len(plan) == len(set(plan))
    assert not (tmp_path / "abl").exists()  # planning reads and writes nothing
    effects = fu.ablation(cfg, tmp_path / "abl")
    units = {f.stem for f in (tmp_path / "abl" / "units").glob("*.csv")}
    assert len(units) == len(plan) + 2  # + the original model of each seed
    assert set(effects["ratio"]) <= {0.5} and (tmp_path / "abl" / "ablation.md").is_file()


def test_load_scenario_applies_overrides_and_gives_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(TINY)
    assert fu.load_scenario(path, ["deletion.method=rl"]).deletion.method == "rl"
    with pytest.raises(
        ScenarioError, match=r"^.*deletion.method: bad value 'x'; allowed: one of .*$"
    ):
        fu.load_scenario(path, ["deletion.method=x"])


def test_run_returns_metrics_ledger_and_events(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(TINY)
    result = fu.run(fu.load_scenario(path), tmp_path / "run")
    assert result.run_dir == (tmp_path / "run").resolve() and result.manifest["complete"] is True
    m = result.metrics
    assert list(m.columns) == ["round", "site", "phase", "method", "metric", "value", "request"]
    fnr = m[(m["site"] == "global") & (m["phase"] == "test") & (m["metric"] == "fnr")]
    assert sorted(fnr["round"]) == [0, 1, 2]
    assert result.ledger[["id", "status"]].values.tolist() == [[0, "verified"]]
    assert next(e["event"] for e in result.events) == "run-start"
    assert result.events[-1]["event"] == "run-complete"


def test_the_functions_survive_importing_every_module() -> None:
    # a submodule named like an exported function would replace it on the package when imported
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(fu.__path__, "fedunlearn."):
        if info.name != "fedunlearn.__main__":
            importlib.import_module(info.name)
    assert all(callable(getattr(fu, name)) for name in fu.__all__)
