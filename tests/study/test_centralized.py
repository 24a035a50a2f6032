"""The single-site study end to end on synthetic data (tiny epochs)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fedunlearn.data import SyntheticSpec
from fedunlearn.engine import TrainConfig
from fedunlearn.progress import Progress
from fedunlearn.study import StudyConfig, run_study
from fedunlearn.unlearning import METHOD_NAMES

REQUIRED = {
    "tp",
    "fp",
    "tn",
    "fn",
    "sensitivity",
    "specificity",
    "fnr",
    "fpr",
    "ppv",
    "npv",
    "f1",
    "bac",
    "auc",
    "auprc",
    "risk_1",
    "risk_2",
    "ubac",
    "rbac",
    "tbac",
    "ua",
    "ra",
    "ta",
    "mia_efficacy",
    "seconds",
}


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("study")
    cfg = StudyConfig(
        dataset="synthetic",
        seeds=(0, 1),
        forget_ratio=0.2,
        synthetic=SyntheticSpec(n_train=400, n_val=100, n_test=200),
        train=TrainConfig(epochs=1, batch_size=64),
        unlearn_overrides={
            m: {"epochs": 1, "batch_size": 64} for m in METHOD_NAMES if m != "retrain"
        },
    )
    run_study(cfg, out, Progress(quiet=True))
    return out


def test_metrics_csv_is_long_and_complete(study_dir) -> None:
    table = pd.read_csv(study_dir / "metrics.csv")
    assert {"seed", "method", "split", "metric", "value"} <= set(table.columns)
    assert set(table["method"]) == {"original", *METHOD_NAMES}
    assert set(table["seed"]) == {0, 1}
    assert REQUIRED <= set(table["metric"])
    assert {"test", "forget", "retain"} <= set(table["split"])
    for (seed, method), sub in table.groupby(["seed", "method"]):
        assert REQUIRED <= set(sub["metric"]), (seed, method)
        forget = sub[sub["split"] == "forget"].set_index("metric")["value"]
        assert forget["ubac"] == pytest.approx(1 - forget["bac"])
        test = sub[sub["split"] == "test"].set_index("metric")["value"]
        assert test["tp"] + test["fp"] + test["tn"] + test["fn"] == 200  # the synthetic test split
        assert test["risk_2"] == pytest.approx((test["fp"] + 20 * test["fn"]) / 200)


def test_summary_and_manifest(study_dir) -> None:
    summary = (study_dir / "summary.md").read_text()
    for method in ("original", *METHOD_NAMES):
        assert f"| {method} |" in summary
    assert "TBAC | FNR | Risk I | Risk II | UBAC | RBAC | MIA | seconds" in summary
    assert "±" in summary  # two seeds: mean ± std
    assert "synthetic" in summary
    manifest = json.loads((study_dir / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["seeds"] == [0, 1]
    assert manifest["data"]["synthetic"] is True and manifest["data"]["official"] is False
    assert {"torch", "flwr", "numpy"} <= set(manifest["versions"])


def test_same_seed_same_forget_set_for_every_method(study_dir) -> None:
    table = pd.read_csv(study_dir / "metrics.csv")
    forget_n = table[(table["split"] == "forget") & table["metric"].isin(["tp", "fp", "tn", "fn"])]
    sizes = forget_n.groupby(["seed", "method"])["value"].sum()
    assert sizes.nunique() == 1 and sizes.iloc[0] == 80  # 20 % of 400
