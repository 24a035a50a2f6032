"""``fedunlearn run --resume``: every refusal is one stderr line, exit code 2, nothing written, Ray never started.

The run directories are fabricated (scenario.yaml, manifest.json, a checkpoint written by
``save_checkpoint``); no simulation runs here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flwr.app import Array, ArrayRecord

from fedunlearn.cli import main
from fedunlearn.federated.checkpoint import save_checkpoint
from fedunlearn.federated.ledger import ServerLedger
from fedunlearn.federated.recorder import COLUMNS
from fedunlearn.federated.scenario import scenario_to_yaml
from tests.federated.conftest import small_scenario

QUICKSTART = str(Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml")


pytestmark = pytest.mark.usefixtures(
    "no_ray"
)  # tests/conftest.py: every refusal must come before Ray


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (folders as None), with its bytes."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def refused(argv: list[str], capsys: pytest.CaptureFixture[str], watch: Path) -> str:
    """Run the CLI in-process: exit code 2, exactly one stderr line, nothing under ``watch`` changed."""
    before = snapshot(watch)
    existed = watch.exists()
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("fedunlearn: error: ")
    assert "Traceback" not in err and "Ray started" not in err
    assert captured.out == ""
    assert watch.exists() == existed
    assert snapshot(watch) == before
    return err.strip()


def _run_dir(tmp_path: Path, complete: bool | None) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "scenario.yaml").write_text(scenario_to_yaml(small_scenario()))
    if complete is not None:
        (run_dir / "manifest.json").write_text(json.dumps({"complete": complete}))
    return run_dir


def _checkpoint(run_dir: Path, server_round: int) -> Path:
    ledger = ServerLedger(run_dir / "ledger.sqlite")
    ledger.request(0, "site-1", 2, 0.25, "random")
    arrays = ArrayRecord(
        {
            "w": Array(np.arange(6, dtype=np.float64).reshape(2, 3)),
            "b": Array(np.ones(2, dtype=np.float32)),
        }
    )
    rows = pd.DataFrame(
        [(1, "pooled", "local-test", "salun-cra", "ubac", 0.5, "")], columns=list(COLUMNS)
    )
    plan = {"accepted": [0], "pending": {"1": [0]}, "withdrawing": {}}
    return save_checkpoint(run_dir, server_round, arrays, None, rows, plan, ledger.path, 2)


def test_resume_a_missing_directory(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope"
    err = refused(["run", "--resume", str(missing)], capsys, tmp_path)
    assert str(missing) in err and "not a run directory" in err
    assert not missing.exists()


def test_resume_a_directory_without_scenario_yaml(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(json.dumps({"complete": False}))
    (run_dir / "notes.txt").write_text("precious")
    err = refused(["run", "--resume", str(run_dir)], capsys, tmp_path)
    assert str(run_dir) in err and "scenario.yaml" in err


def test_resume_a_directory_without_manifest(tmp_path: Path, capsys) -> None:
    run_dir = _run_dir(tmp_path, complete=None)
    err = refused(["run", "--resume", str(run_dir)], capsys, tmp_path)
    assert str(run_dir) in err and "manifest.json" in err


def test_resume_a_complete_run_has_nothing_to_resume(tmp_path: Path, capsys) -> None:
    run_dir = _run_dir(tmp_path, complete=True)
    _checkpoint(run_dir, 3)
    err = refused(["run", "--resume", str(run_dir)], capsys, tmp_path)
    assert str(run_dir) in err and "complete run" in err and "nothing to resume" in err


def test_resume_with_an_unreadable_manifest(tmp_path: Path, capsys) -> None:
    run_dir = _run_dir(tmp_path, complete=None)
    (run_dir / "manifest.json").write_text("{truncated")
    err = refused(["run", "--resume", str(run_dir)], capsys, tmp_path)
    assert str(run_dir / "manifest.json") in err


@pytest.mark.parametrize("damage", ["truncated-model", "missing-ledger", "garbage-state"])
def test_resume_with_an_unreadable_newest_checkpoint(tmp_path: Path, capsys, damage: str) -> None:
    run_dir = _run_dir(tmp_path, complete=False)
    _checkpoint(run_dir, 1)
    newest = _checkpoint(run_dir, 2)
    if damage == "truncated-model":
        model = newest / "model.safetensors"
        model.write_bytes(model.read_bytes()[:40])
    elif damage == "missing-ledger":
        (newest / "ledger.sqlite").unlink()
    else:
        (newest / "state.json").write_text("\x00\x01 not json")
    err = refused(["run", "--resume", str(run_dir)], capsys, tmp_path)
    assert f"checkpoint {newest} is unreadable" in err
    assert "delete that folder" in err
    assert "round-0001" not in err


def test_resume_together_with_a_scenario_file(tmp_path: Path, capsys) -> None:
    run_dir = _run_dir(tmp_path, complete=False)
    err = refused(["run", "--resume", str(run_dir), QUICKSTART], capsys, tmp_path)
    assert "--resume" in err and "drop the scenario file" in err


@pytest.mark.parametrize(
    "extra", [["--set", "training.rounds=5"], ["--out", "elsewhere"]], ids=["set", "out"]
)
def test_resume_together_with_set_or_out(
    tmp_path: Path, capsys, monkeypatch, extra: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    run_dir = _run_dir(tmp_path, complete=False)
    err = refused(["run", "--resume", str(run_dir), *extra], capsys, tmp_path)
    assert "--resume" in err
    assert not (tmp_path / "elsewhere").exists()


def test_run_with_neither_scenario_nor_resume(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default output folder would be ./runs/...
    err = refused(["run"], capsys, tmp_path)
    assert "scenario file" in err and "--resume" in err
    assert not (tmp_path / "runs").exists()


def test_the_guard_sees_a_resume_that_gets_as_far_as_ray(
    tmp_path: Path, capsys, no_ray: list[str]
) -> None:
    """Positive control: a resumable run directory passes every check and reaches the simulation engine,
    which the guard catches; so the refusals above are proven to come before Ray."""
    import logging
    import os

    run_dir = _run_dir(tmp_path, complete=False)
    _checkpoint(run_dir, 1)
    before = snapshot(run_dir)
    env = dict(os.environ)
    flwr_logger = logging.getLogger("flwr")
    level, filters = flwr_logger.level, list(flwr_logger.filters)
    try:
        code = main(["run", "--resume", str(run_dir), "--quiet"])
    finally:  # run_scenario sets RAY_* variables and quiets Flower's logger for the process
        os.environ.clear()
        os.environ.update(env)
        flwr_logger.setLevel(level)
        flwr_logger.filters[:] = filters
    err = capsys.readouterr().err
    assert no_ray == ["Ray started"]
    assert code == 2 and "Ray started" in err and "--resume" in err
    assert snapshot(run_dir) == before
    no_ray.clear()
