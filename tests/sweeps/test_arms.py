"""The control arm and Retrain are added to every sweep that compares erasures, and the paired summary files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fedunlearn import sweeps as sweep_module
from fedunlearn.cli import main
from fedunlearn.sweeps import SweepOutcome, plan_sweep, with_reference_arms, write_summary
from tests.sweeps.tiny import write_tiny

KEY = "deletion.method"
PAIRED_COLUMNS = [
    "method",
    "metric",
    "at",
    "round",
    "mean",
    "std",
    "delta_vs_control",
    "ci_low",
    "ci_high",
    "delta_vs_retrain",
    "ci_low_retrain",
    "ci_high_retrain",
    "n_seeds",
    "verdict_vs_control",
    "verdict_vs_retrain",
]


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return write_tiny(tmp_path)  # deletion.method salun-cra, one request in round 2


def _methods(plan) -> list[str]:
    return [p.scenario.deletion.method for p in plan.points]


def test_arms_are_appended_to_the_method_axis(tiny: Path, tmp_path: Path) -> None:
    plan = plan_sweep(tiny, ["deletion.method=salun-cra,rl", "seed=0,1"], tmp_path / "out")
    assert plan.axes[0].values == ("salun-cra", "rl", "none", "retrain") and plan.added_arms == (
        "none",
        "retrain",
    )
    assert [p.slug for p in plan.points][4:] == [
        "deletion.method=none,seed=0",
        "deletion.method=none,seed=1",
        "deletion.method=retrain,seed=0",
        "deletion.method=retrain,seed=1",
    ]
    assert plan.group_keys == (KEY,)
    assert not (tmp_path / "out").exists()


def test_an_arm_already_in_the_grid_is_not_added_twice(tiny: Path, tmp_path: Path) -> None:
    plan = plan_sweep(tiny, ["deletion.method=retrain,rl"], tmp_path / "out")
    assert _methods(plan) == ["retrain", "rl", "none"] and plan.added_arms == ("none",)


def test_without_a_method_axis_one_is_made_from_the_base_method(tiny: Path, tmp_path: Path) -> None:
    plan = plan_sweep(tiny, ["seed=0,1"], tmp_path / "out")
    assert plan.keys == (KEY, "seed") and plan.axes[0].values == ("salun-cra", "none", "retrain")
    # the base method keeps the directory names it had before the arms existed, so old sweeps resume
    assert [p.slug for p in plan.points] == [
        "seed=0",
        "seed=1",
        "deletion.method=none,seed=0",
        "deletion.method=none,seed=1",
        "deletion.method=retrain,seed=0",
        "deletion.method=retrain,seed=1",
    ]
    assert all(p.assignments[0][0] == KEY for p in plan.points)
    assert plan.describe()["added_arms"] == ["none", "retrain"]
    assert [p.slug for p in plan_sweep(tiny, [], tmp_path / "o").points] == [
        "base",
        "deletion.method=none",
        "deletion.method=retrain",
    ]


def test_opt_out_flags(tiny: Path, tmp_path: Path) -> None:
    grid = ["deletion.method=salun-cra,rl"]
    assert _methods(plan_sweep(tiny, grid, tmp_path / "a", control=False)) == [
        "salun-cra",
        "rl",
        "retrain",
    ]
    assert _methods(plan_sweep(tiny, grid, tmp_path / "b", retrain=False)) == [
        "salun-cra",
        "rl",
        "none",
    ]
    both = plan_sweep(tiny, ["seed=0,1"], tmp_path / "c", control=False, retrain=False)
    assert (
        both.keys == ("seed",)
        and both.added_arms == ()
        and [p.slug for p in both.points] == ["seed=0", "seed=1"]
    )


def test_a_base_that_erases_nothing_gets_no_arms() -> None:
    axes, added, new = with_reference_arms((), "salun-cra", erases=False)
    assert (axes, added, new) == ((), (), False)
    axes, added, new = with_reference_arms((), "retrain", erases=True, control=False)
    assert (axes, added, new) == ((), (), False)  # Retrain alone: nothing to add


def test_cli_passes_the_opt_out_flags(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = []

    def fake_run_sweep(plan, **_):
        plans.append(plan)
        return SweepOutcome((), (), {}, None)

    monkeypatch.setattr(sweep_module, "run_sweep", fake_run_sweep)
    assert (
        main(
            [
                "sweep",
                str(tiny),
                "--grid",
                "seed=0",
                "--out",
                str(tmp_path / "a"),
                "--no-control",
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "sweep",
                str(tiny),
                "--grid",
                "seed=0",
                "--out",
                str(tmp_path / "b"),
                "--no-retrain",
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(["sweep", str(tiny), "--grid", "seed=0", "--out", str(tmp_path / "c"), "--quiet"]) == 0
    )
    assert [_methods(p) for p in plans] == [
        ["salun-cra", "retrain"],
        ["salun-cra", "none"],
        ["salun-cra", "none", "retrain"],
    ]


def _metrics_rows(method: str, seed: int) -> list[dict]:
    """A 2-round run (request in round 2): FNR shifted by the arm from round 2 on, forget counts per request."""
    shift = {"none": 0.0, "salun-cra": 0.1 + 0.01 * seed, "retrain": 0.05}[method]
    rows = []
    for rnd in (1, 2):
        for metric, value in (
            ("fnr", 0.2 + 0.01 * seed + (shift if rnd == 2 else 0.0)),
            ("risk_2", 1.0),
            ("bac", 0.7),
            ("auc", 0.8),
        ):
            rows.append((rnd, "global", "test", metric, value, ""))
        rows.append((rnd, "site-0", "train", "seconds", 1.0, ""))
        rows.append((rnd, "site-0", "train", "images", 50.0, ""))
    for metric, value in (
        ("forget_tp", 2),
        ("forget_fp", 1),
        ("forget_tn", 5),
        ("forget_fn", 2),
        ("forget_count", 10),
        ("ubac", 0.25),
        ("mia_efficacy", 0.4),
    ):
        rows.append((2, "site-1", "forget", metric, float(value), "0"))
    return [
        {
            "round": r,
            "site": s,
            "phase": ph,
            "method": method,
            "metric": m,
            "value": v,
            "request": q,
        }
        for r, s, ph, m, v, q in rows
    ]


def test_summary_files_from_finished_runs(tiny: Path, tmp_path: Path) -> None:
    plan = plan_sweep(tiny, ["seed=0,1,2"], tmp_path / "out")
    for point in plan.points:  # finished runs written by hand: no Ray
        run_dir = plan.run_dir(point)
        run_dir.mkdir(parents=True)
        pd.DataFrame(_metrics_rows(point.scenario.deletion.method, point.scenario.seed)).to_csv(
            run_dir / "metrics.csv", index=False
        )
        (run_dir / "manifest.json").write_text(json.dumps({"complete": True}))
    returned = write_summary(plan)
    paired = pd.read_csv(plan.out / "summary.csv")
    assert (
        list(paired.columns) == PAIRED_COLUMNS
    )  # the method is the only grid key besides the seed
    assert (
        len(paired) == len(returned) == 3 * (2 * 6 + 4)
    )  # 3 arms x (6 outcomes at 2 moments + 4 costs)
    fnr = paired[(paired["metric"] == "fnr") & (paired["at"] == "erasure")].set_index("method")
    assert list(fnr.index) == ["none", "salun-cra", "retrain"] and set(fnr["round"]) == {2}
    assert fnr.loc["salun-cra", "delta_vs_control"] == pytest.approx(0.11)
    assert fnr.loc["salun-cra", "ci_low"] > 0 and fnr.loc[
        "salun-cra", "verdict_vs_control"
    ].startswith("raises FNR")
    assert fnr.loc["salun-cra", "delta_vs_retrain"] == pytest.approx(0.06)
    assert fnr.loc["salun-cra", "n_seeds"] == 3
    ubac = paired[(paired["metric"] == "ubac") & (paired["at"] == "final")].set_index("method")
    assert ubac.loc["none", "mean"] == pytest.approx(
        1 - (2 / 4 + 5 / 6) / 2
    )  # pooled counts, not the 0.25 row
    assert (plan.out / "summary-variants.csv").is_file()
    md = (plan.out / "summary.md").read_text()
    assert (
        "raises FNR (misses more cancers)" in md and "erasure (round 2)" in md and "+0.110 [" in md
    )
