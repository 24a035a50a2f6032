"""``fedunlearn bench`` refuses a data root it cannot use before it writes or runs anything.

A ``--data-root`` that is not a folder once let the bench run for a quarter of an hour on synthetic
stand-ins and then report ``sweep_wall_ratio`` as "not measured": now it is one line, exit 2, and no
output folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fedunlearn.cli import main


def _refused(argv: list[str], out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["bench", "--quiet", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedunlearn: error: ") and err.count("\n") == 1
    assert not out.exists()
    return err


def test_a_data_root_that_is_not_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(["--data-root", str(tmp_path / "absent")], tmp_path / "out", capsys)
    assert f"--data-root {tmp_path / 'absent'} is not a folder" in err
    (tmp_path / "a-file").write_text("")
    assert "is not a folder" in _refused(
        ["--quick", "--data-root", str(tmp_path / "a-file")], tmp_path / "out", capsys
    )


@pytest.mark.parametrize("sweep", ["small", "full"])
def test_a_sweep_without_dermamnist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sweep: str
) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "pathmnist.npz").write_text("not the quickstart's data")
    err = _refused(
        ["--sweep", sweep, "--data-root", str(tmp_path / "root")], tmp_path / "out", capsys
    )
    assert f"--sweep {sweep} times the quickstart, which needs dermamnist.npz" in err
    assert "--data-root DIR" in err and "--sweep off" in err
    assert "(no --data-root)" in _refused(["--sweep", sweep], tmp_path / "out", capsys)
