"""``fedunlearn ablation``: plan, paired effects, resume, trace and bad input (synthetic data, tiny epochs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedunlearn.cli import main
from fedunlearn.data import SyntheticSpec
from fedunlearn.engine import TrainConfig
from fedunlearn.errors import FedunlearnError
from fedunlearn.progress import Progress
from fedunlearn.study import ablation as ablation_module
from fedunlearn.study.ablation import AblationConfig, run_ablation
from fedunlearn.study.effects import EFFECT_COLUMNS, bootstrap_mean_ci, effect_table
from fedunlearn.study.plan import Setting, plan_entries, toggles, unit_key, work_order

SPEC = SyntheticSpec(n_train=120, n_val=30, n_test=60)
REQUIRED = {"ingredient", "from", "to", "method", "metric", "delta", "ci_low", "ci_high", "n_seeds"}


def tiny(**kw) -> AblationConfig:
    base = dict(
        dataset="synthetic",
        seeds=(0, 1),
        ratios=(0.2,),
        methods=("retrain", "rl"),
        synthetic=SPEC,
        train=TrainConfig(epochs=1, batch_size=32),
        unlearn_epochs=1,
    )
    return AblationConfig(**{**base, **kw})


# ---------------------------------------------------------------- plan


def test_settings_that_run_the_same_share_one_unit() -> None:
    # FT reads only loss_weighting: the paper toggle lands on the study-code preset.
    assert unit_key("ft", Setting("paper", "loss_weighting", "none")) == unit_key(
        "ft", Setting("study-code")
    )
    # A toggle the method does not read is no toggle at all.
    assert all(s.ingredient != "mask_freeze" for s in toggles("rl", "paper"))
    assert all(s.ingredient != "cra_scope" for s in toggles("salun", "study-code"))
    # SalUn-CRA with entropy on every forget row reads no forget label.
    assert all(s.ingredient != "forget_labels" for s in toggles("salun-cra", "study-code"))
    assert {s.ingredient for s in toggles("salun-cra", "paper")} == {
        "schedule",
        "forget_labels",
        "loss_weighting",
        "cra_scope",
        "mask_freeze",
    }
    assert unit_key("retrain", Setting("paper")) == unit_key("retrain", Setting("study-code"))


def test_work_order_runs_each_unit_once_ratio_then_tier_then_seed() -> None:
    entries = plan_entries(("retrain", "ft", "rl", "salun", "salun-cra"), ("paper", "study-code"))
    order = work_order(entries, (0.2, 0.5), (0, 1))
    assert len(order) == len(set(order)) == 2 * 2 * len({e.key for e in entries})
    assert [r for r, _, _ in order] == sorted(
        r for r, _, _ in order
    )  # every 20 % unit before any 50 % one
    tier: dict[str, int] = {}
    for e in entries:  # a unit shared by two entries runs in the earlier tier
        tier[e.key] = min(tier.get(e.key, e.tier), e.tier)
    first = [tier[k] for r, _, k in order if r == 0.2]
    assert first == sorted(first)  # presets (and Retrain) of every seed before any toggle
    assert order[0][2].startswith("retrain")
    # Within a tier, one setting for every seed before the next setting.
    first_toggle = [(s, k) for r, s, k in order if r == 0.2 and tier[k] == 2]
    assert [s for s, _ in first_toggle[:2]] == [0, 1] and first_toggle[0][1] == first_toggle[1][1]


# ---------------------------------------------------------------- statistics


def test_paired_effect_is_the_mean_of_per_seed_differences() -> None:
    entries = plan_entries(("retrain", "rl"), ("paper", "study-code"))
    base = unit_key("rl", Setting("paper"))
    toggled = unit_key("rl", Setting("paper", "forget_labels", "true"))
    rows = []
    values = {base: [0.40, 0.50, 0.30], toggled: [0.20, 0.35, 0.25]}
    for key, vals in values.items():
        for seed, v in enumerate(vals):
            for split, metric in (
                ("test", "fnr"),
                ("test", "risk_2"),
                ("test", "bac"),
                ("forget", "ubac"),
                ("forget", "mia_efficacy"),
            ):
                rows.append(
                    {
                        "ratio": 0.2,
                        "seed": seed,
                        "method": "rl",
                        "unit": key,
                        "split": split,
                        "metric": metric,
                        "value": v,
                    }
                )
    table = effect_table(pd.DataFrame(rows), entries, (0.2,), ("paper", "study-code"))
    assert list(table.columns) == EFFECT_COLUMNS
    row = table[
        (table["ingredient"] == "forget_labels")
        & (table["preset"] == "paper")
        & (table["metric"] == "fnr")
    ]
    assert len(row) == 1
    r = row.iloc[0]
    assert (r["from"], r["to"], r["n_seeds"]) == ("random", "true", 3)
    assert r["delta"] == pytest.approx(np.mean([-0.20, -0.15, -0.05]))
    assert r["ci_low"] <= r["delta"] <= r["ci_high"] and r["ci_high"] < 0
    assert set(table["ingredient"]) == {"forget_labels"}  # nothing else ran


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    x = [0.1, -0.3, 0.25, 0.05, 0.0]
    assert bootstrap_mean_ci(x) == bootstrap_mean_ci(x)
    mean, lo, hi = bootstrap_mean_ci(x)
    assert lo < mean < hi and mean == pytest.approx(np.mean(x))
    m1, lo1, hi1 = bootstrap_mean_ci([0.2])
    assert m1 == 0.2 and np.isnan(lo1) and np.isnan(hi1)


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    run_ablation(tiny(trace=True), out, Progress(quiet=True))
    return out


def test_outputs(run_dir) -> None:
    table = pd.read_csv(run_dir / "ablation.csv")
    assert REQUIRED <= set(table.columns)
    assert set(table["metric"]) == {"fnr", "risk_2", "bac", "ubac", "mia_efficacy"}
    assert set(table["ingredient"]) == {"schedule", "forget_labels", "loss_weighting", "preset"}
    assert set(table["n_seeds"]) == {2}
    assert (run_dir / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    methods = pd.read_csv(run_dir / "methods.csv")
    assert {"original", "retrain", "rl"} <= set(methods["method"])
    retrain = methods[methods["method"] == "retrain"]
    assert (retrain["gap_to_retrain"] == 0).all()
    assert "| paper | rl |" in (run_dir / "ablation.md").read_text()
    assert sorted((run_dir / "originals").glob("*.pt")) == [
        run_dir / "originals" / f"seed{s}.pt" for s in (0, 1)
    ]


def test_trace_has_every_phase_of_every_epoch(run_dir) -> None:
    trace = pd.read_csv(run_dir / "trace.csv")
    assert set(trace["group"]) == {
        "test-malignant",
        "test-benign",
        "forget-malignant",
        "forget-benign",
    }
    units = set(pd.read_csv(run_dir / "results.csv").query("method != 'original'")["unit"])
    assert set(trace["unit"]) == units
    seq = trace[trace["unit"] == unit_key("rl", Setting("paper"))]
    assert list(dict.fromkeys(zip(seq["epoch"], seq["phase"]))) == [
        (-1, "start"),
        (0, "forget"),
        (0, "retain"),
    ]
    mixed = trace[trace["unit"] == unit_key("rl", Setting("study-code"))]
    assert list(dict.fromkeys(zip(mixed["epoch"], mixed["phase"]))) == [(-1, "start"), (0, "mixed")]
    assert trace["p_malignant"].between(0, 1).all()


def test_trace_is_reproducible_and_changes_no_result(run_dir, tmp_path) -> None:
    run_ablation(tiny(seeds=(0,), trace=True), tmp_path / "again", Progress(quiet=True))
    run_ablation(tiny(seeds=(0,)), tmp_path / "plain", Progress(quiet=True))
    a = pd.read_csv(run_dir / "trace.csv").query("seed == 0").reset_index(drop=True)
    b = pd.read_csv(tmp_path / "again" / "trace.csv").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        a.sort_values(list(a.columns)).reset_index(drop=True),
        b.sort_values(list(b.columns)).reset_index(drop=True),
    )
    keys = ["ratio", "seed", "unit", "split", "metric"]
    traced = (
        pd.read_csv(run_dir / "results.csv")
        .query("seed == 0 and metric != 'seconds'")
        .set_index(keys)
    )
    plain = (
        pd.read_csv(tmp_path / "plain" / "results.csv").query("metric != 'seconds'").set_index(keys)
    )
    pd.testing.assert_series_equal(traced["value"].sort_index(), plain["value"].sort_index())


def test_rerun_resumes_without_redoing_anything(run_dir, monkeypatch) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "units").glob("*.csv")}

    def refuse(*args, **kwargs):
        raise AssertionError("work redone")

    monkeypatch.setattr(ablation_module, "_train_original", refuse)
    monkeypatch.setattr(ablation_module, "unlearn", refuse)
    run_ablation(tiny(trace=True), run_dir, Progress(quiet=True))
    after = {p.name: p.stat().st_mtime_ns for p in (run_dir / "units").glob("*.csv")}
    assert after == before


def test_other_settings_in_the_same_folder_are_refused(run_dir) -> None:
    with pytest.raises(FedunlearnError, match="other settings"):
        run_ablation(tiny(trace=True, unlearn_epochs=2), run_dir, Progress(quiet=True))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--ratios", "1.5"], "forget fraction"),
        (["--methods", "rl", "salun"], "retrain"),
        (["--seeds", "0", "0"], "distinct"),
        (["--presets", "code"], "invalid choice"),
        (["--unlearn-epochs", "0"], "unlearn epochs"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, needle, tmp_path, capsys) -> None:
    code = None
    try:
        code = main(["ablation", "--dataset", "synthetic", "--out", str(tmp_path / "o"), *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and needle in err
    assert not (tmp_path / "o").exists()


def test_missing_data_is_one_line_exit_2(tmp_path, capsys) -> None:
    code = main(["ablation", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "dermamnist.npz" in err
    assert not (tmp_path / "o").exists()


def test_report_only_runs_nothing(run_dir, monkeypatch, tmp_path) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("work done")

    monkeypatch.setattr(ablation_module, "_train_original", refuse)
    monkeypatch.setattr(ablation_module, "unlearn", refuse)
    (run_dir / "ablation.png").unlink()
    more = tiny(trace=True, seeds=(0, 1, 2))  # seed 2 never ran: left out, not run
    table = run_ablation(more, run_dir, Progress(quiet=True), report_only=True)
    assert set(table["n_seeds"]) == {2} and (run_dir / "ablation.png").is_file()
