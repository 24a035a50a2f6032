"""The report's paired section and paired risk-over-rounds figure, from finished runs written by hand (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from fedunlearn.reports import build_report
from fedunlearn.reports.build import build_sections
from fedunlearn.reports.load import load_runs
from fedunlearn.reports.render import Figure

SCENARIO = {
    "name": "fake",
    "data": {"dataset": "synthetic"},
    "sites": {"count": 2},
    "training": {"rounds": 3},
    "deletion": {"requests": [{"round": 2, "site": 1, "fraction": 0.25}]},
}


def _write_run(root: Path, method: str, seed: int) -> Path:
    run = root / f"{method}-{seed}"
    run.mkdir(parents=True)
    shift = {"none": 0.0, "salun-cra": 0.1 + 0.02 * seed, "retrain": 0.03}[method]
    rows = []
    for rnd in (1, 2, 3):
        fnr = 0.2 + 0.01 * seed + (shift if rnd >= 2 else 0.0)
        for metric, value in (("fnr", fnr), ("risk_2", 2.0 + fnr), ("bac", 0.7), ("auc", 0.8)):
            rows.append(
                {"round": rnd, "site": "global", "phase": "test", "metric": metric, "value": value}
            )
        rows.append(
            {"round": rnd, "site": "site-0", "phase": "train", "metric": "seconds", "value": 1.0}
        )
        if rnd >= 2:
            for metric, value in (
                ("forget_tp", 2),
                ("forget_fp", 1),
                ("forget_tn", 5),
                ("forget_fn", 2),
                ("forget_count", 10),
                ("mia_efficacy", 0.4),
            ):
                rows.append(
                    {
                        "round": rnd,
                        "site": "site-1",
                        "phase": "forget",
                        "metric": metric,
                        "value": float(value),
                        "request": "0",
                    }
                )
    pd.DataFrame(rows).assign(method=method).to_csv(run / "metrics.csv", index=False)
    scenario = {**SCENARIO, "seed": seed, "deletion": {**SCENARIO["deletion"], "method": method}}
    (run / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    (run / "manifest.json").write_text(
        json.dumps({"complete": True, "method": method, "seed": seed})
    )
    return run


@pytest.fixture()
def fake_runs(tmp_path: Path) -> list[Path]:
    return [
        _write_run(tmp_path / "runs", m, s)
        for m in ("salun-cra", "none", "retrain")
        for s in (0, 1, 2)
    ]


def test_paired_section_states_the_effect_against_control(fake_runs: list[Path]) -> None:
    _, _, sections = build_sections(load_runs(fake_runs))
    paired = next(s for s in sections if s.anchor == "paired")
    sentence = next(
        b for b in paired.blocks if isinstance(b, str) and b.startswith("Against the control arm")
    )
    assert (
        "salun-cra: raises FNR (misses more cancers), raises Risk II (costlier errors)" in sentence
    )
    table = next(b for b in paired.blocks if isinstance(b, pd.DataFrame))
    row = table[
        (table["method"] == "salun-cra")
        & (table["metric"] == "FNR")
        & (table["at"] == "erasure (round 2)")
    ].iloc[0]
    assert row["Δ vs control [95% CI]"].startswith("+0.120 [") and row["seeds"] == 3
    rounds = next(s for s in sections if s.anchor == "rounds").blocks[0]
    assert (
        isinstance(rounds, Figure)
        and "minus control" in rounds.caption
        and rounds.png[:4] == b"\x89PNG"
    )


def test_without_a_control_arm_the_report_says_so(fake_runs: list[Path], tmp_path: Path) -> None:
    out = build_report([r for r in fake_runs if not r.name.startswith("none")], tmp_path / "r.md")
    text = out.read_text()
    assert "No control arm (deletion.method: none) among these runs" in text
    assert "no control arm" in text  # the verdict column
