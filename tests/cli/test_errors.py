"""Bad input: one line naming the problem and the fix, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

from fedunlearn.cli import main

QUICKSTART = str(Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml")


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


def test_missing_data_file(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code, err = _run(["centralized", "--data-root", str(tmp_path), "--out", str(out)], capsys)
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("fedunlearn: error:")
    assert str(tmp_path / "dermamnist.npz") in err and "fedunlearn data fetch" in err
    assert not out.exists()


def test_corrupt_npz(tmp_path, capsys) -> None:
    (tmp_path / "dermamnist.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    code, err = _run(
        ["centralized", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "dermamnist.npz" in err and err.count("\n") == 0


def test_forget_fraction_out_of_range(tmp_path, capsys) -> None:
    code, err = _run(
        [
            "centralized",
            "--dataset",
            "synthetic",
            "--forget-ratio",
            "1.5",
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert code == 2 and "forget fraction must be in (0, 1]" in err


def test_fetch_offline_names_url_and_path(tmp_path, capsys, monkeypatch) -> None:
    from fedunlearn.data import DatasetSpec

    monkeypatch.setattr(DatasetSpec, "url", lambda self, size: "http://127.0.0.1:9/dermamnist.npz")
    code, err = _run(
        ["data", "fetch", "--dataset", "dermamnist", "--data-root", str(tmp_path)], capsys
    )
    assert code == 2 and str(tmp_path / "dermamnist.npz") in err and err.count("\n") == 0
    assert not (tmp_path / "dermamnist.npz").exists()


def test_validate_reports_bad_scenario(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sites: {count: 2}\ndeletion: {requests: [{round: 1, site: 5, fraction: 0.2}]}\n"
    )
    code, err = _run(["validate", str(bad)], capsys)
    assert code == 2 and str(bad) in err and "site" in err and err.count("\n") == 0


def test_validate_ok(capsys) -> None:
    assert main(["validate", QUICKSTART]) == 0
    assert "valid" in capsys.readouterr().out


def test_run_refuses_a_non_empty_run_dir(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    code, err = _run(
        ["run", QUICKSTART, "--set", "data.dataset=synthetic", "--out", str(out)], capsys
    )
    assert code == 2 and "not empty" in err
    assert (out / "keep.txt").read_text() == "precious"
