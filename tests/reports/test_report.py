"""Reports built from two small real runs (SalUn-CRA and Federated Retrain), and refusal of unfinished runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from fedunlearn.cli import main
from fedunlearn.reports import ReportError, build_report
from fedunlearn.reports.load import flatten, variant_keys, variant_label
from tests.sweeps.tiny import RETRAIN, SALUN, ResumedSweep

IMG = '<img src="data:image/png;base64,'


@pytest.fixture(scope="module")
def html(tiny_sweep: ResumedSweep, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert (
        main(["report", str(tiny_sweep.out), "--out", str(out)]) == 0
    )  # a sweep dir expands to runs/*
    return out.read_text()


@pytest.fixture()
def unfinished(tiny_sweep: ResumedSweep, tmp_path: Path) -> Path:
    """A copy of a finished run whose manifest says it is not finished."""
    run = tmp_path / "unfinished"
    shutil.copytree(tiny_sweep.run_dir(SALUN), run)
    (run / "manifest.json").write_text(json.dumps({"complete": False}))
    return run


def test_html_holds_the_figures_and_a_row_per_method(html: str) -> None:
    assert html.count(IMG) >= 4
    final = html.split('id="final"')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>([^<]+)</td>", final) == ["retrain", "salun-cra"]
    for section in ("final", "rounds", "sites", "pareto", "provenance"):
        assert f'<section id="{section}">' in html


def test_html_is_self_contained(html: str) -> None:
    assert "<style>" in html
    assert not re.search(
        r'(src|href)="(https?:|//|[^"#d])', html
    )  # only data: images and in-page anchors
    assert "<link" not in html and "<script" not in html


def test_provenance_names_data_and_versions(html: str) -> None:
    prov = html.split('id="provenance"')[1]
    assert "synthetic" in prov and "All runs share these versions" in prov and "flwr 1." in prov
    assert prov.count("<tr><td>deletion.method=") == 2


def test_markdown_from_run_dirs_leaves_unfinished_out_when_allowed(
    tiny_sweep: ResumedSweep, unfinished: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "md" / "report.md"
    runs = [tiny_sweep.run_dir(SALUN), tiny_sweep.run_dir(RETRAIN), unfinished]
    assert build_report(runs, out, allow_incomplete=True) == out
    assert f"{unfinished}: incomplete run" in capsys.readouterr().err
    text = out.read_text()
    pngs = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert len(pngs) >= 4 and all((out.parent / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert "| retrain | 1 (seeds 0) |" in text and "| salun-cra | 1 (seeds 0) |" in text


def test_refuses_an_unfinished_run(
    tiny_sweep: ResumedSweep, unfinished: Path, tmp_path: Path, capsys
) -> None:
    with pytest.raises(ReportError) as err:
        build_report([tiny_sweep.run_dir(RETRAIN), unfinished], tmp_path / "r.html")
    assert str(err.value).startswith(
        f"{unfinished}: incomplete run"
    ) and "--allow-incomplete" in str(err.value)
    out = tmp_path / "cli.html"
    assert main(["report", str(unfinished), "--out", str(out)]) == 2
    err_line = capsys.readouterr().err.strip()
    assert err_line.startswith("fedunlearn: error:") and err_line.count("\n") == 0
    assert not out.exists()


def test_refuses_a_directory_that_is_no_run(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not a run directory"):
        build_report([tmp_path], tmp_path / "r.html")


def test_variants_are_told_apart_by_the_keys_that_differ() -> None:
    from fedunlearn.reports.load import RunData

    def run(method: str, seed: int, rounds: int) -> RunData:
        scenario = {
            "name": f"n{seed}",
            "seed": seed,
            "training": {"rounds": rounds, "lr": 0.05},
            "deletion": {"method": method, "requests": [{"round": 1}]},
        }
        return RunData(Path(f"/r/{method}{seed}{rounds}"), None, (), {"method": method}, scenario)

    runs = [run("rl", 0, 5), run("rl", 1, 5), run("retrain", 0, 5), run("rl", 0, 10)]
    assert variant_keys(runs) == ["training.rounds"]  # seed, name and method never split variants
    assert variant_label("rl", {"training.rounds": "5"}) == "rl (training.rounds=5)"
    assert flatten({"a": {"b": [1, 2], "c": "x"}, "d": None}) == {
        "a.b": "[1, 2]",
        "a.c": "x",
        "d": "null",
    }
