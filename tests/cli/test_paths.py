"""Impossible output paths, empty scenario files and unreadable sweep checkpoints: one line, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedunlearn import sweep_prefix
from fedunlearn import sweeps as sweep_mod
from fedunlearn.cli import main
from fedunlearn.sweeps import SweepError, plan_sweep, resumable_round

TINY = """\
name: tiny
data: {dataset: synthetic, synthetic: {n_train: 240, n_val: 60, n_test: 100}}
sites: {count: 2}
training: {rounds: 2, local_epochs: 1, batch_size: 32}
"""


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    "command", [["run", "SCENARIO"], ["sweep", "SCENARIO", "--grid", "seed=0,1"]]
)
def test_an_impossible_out_is_one_line(command, tmp_path: Path, capsys, no_ray) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(TINY)
    argv = [str(scenario) if a == "SCENARIO" else a for a in command] + [
        "--out",
        "/dev/null/x",
        "--quiet",
    ]
    assert main(argv) == 2
    line = _one_line(capsys)
    assert (
        line.startswith("fedunlearn: error: cannot use /dev/null/x") and "Not a directory" in line
    )


def test_an_empty_scenario_file_is_an_error(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("\n# nothing but a comment\n")
    assert main(["validate", str(empty)]) == 2
    assert _one_line(capsys) == (
        f"fedunlearn: error: {empty}: the file is empty; write the sections to change "
        "(copy configs/quickstart.yaml and edit it)"
    )


def _half_finished(tmp_path: Path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(TINY)
    plan = plan_sweep(scenario, ["seed=0"], tmp_path / "sweep")
    point = plan.points[0]
    run_dir = plan.run_dir(point)
    run_dir.mkdir(parents=True)
    (run_dir / "scenario.yaml").write_text(sweep_mod.scenario_to_yaml(point.scenario))
    (run_dir / "manifest.json").write_text('{"complete": false}')
    return plan, point, run_dir


def test_an_io_error_on_the_checkpoint_keeps_the_run(tmp_path: Path, monkeypatch) -> None:
    plan, point, run_dir = _half_finished(tmp_path)

    def unreadable(_):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sweep_prefix, "latest_checkpoint", unreadable)
    with pytest.raises(
        SweepError, match=r"cannot read its checkpoints .Permission denied.; the run is kept"
    ):
        resumable_round(run_dir, point)
    with pytest.raises(SweepError):
        sweep_mod.pending_points(plan, sweep_mod.Progress(quiet=True))
    assert (run_dir / "scenario.yaml").is_file()


def test_a_run_without_checkpoint_or_of_another_scenario_is_redone(tmp_path: Path) -> None:
    _plan, point, run_dir = _half_finished(tmp_path)
    assert resumable_round(run_dir, point) is None  # no checkpoint yet
    (run_dir / "scenario.yaml").write_text(TINY.replace("rounds: 2", "rounds: 1"))
    assert resumable_round(run_dir, point) is None  # another scenario
