"""Site logic without Flower: forget-set reports share one prediction of the retain rows the MIA draws."""

from __future__ import annotations

import pytest
import torch

from fedunlearn.engine.device import prepare_model
from fedunlearn.engine.predict import predict
from fedunlearn.evaluation import unlearning_report
from fedunlearn.federated import site as S
from fedunlearn.metrics import RiskCosts, mia_efficacy
from fedunlearn.models import build_model
from fedunlearn.seeding import stream_seed
from tests.federated.conftest import small_scenario


def test_forget_reports_predict_retain_once_and_match_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fedunlearn.evaluation as evaluation

    scenario = small_scenario()
    model = prepare_model(build_model(scenario.model, seed=1), torch.device("cpu")).eval()
    pool = S.site_shards(scenario, 1).train_rows
    forgets = {3: pool[:20], 7: pool[20:35]}
    retain = pool[35:]
    one_at_a_time = {
        k: S.forget_report(model, scenario, 1, rows, retain, device=torch.device("cpu"))
        for k, rows in forgets.items()
    }
    calls = []
    real = evaluation.predict
    monkeypatch.setattr(
        evaluation, "predict", lambda *a, **kw: calls.append(len(a[3])) or real(*a, **kw)
    )
    together = S.forget_reports(model, scenario, 1, forgets, retain, device=torch.device("cpu"))
    assert together == one_at_a_time
    assert together[7]["forget_count"] == 15.0
    n_test = len(S.site_shards(scenario, 1).test_rows)
    assert sorted(calls) == sorted(
        [min(len(retain), n_test), n_test, 20, 15]
    )  # retain once, and only the rows the MIA attack draws


@pytest.mark.parametrize(
    "retain_stop", [None, 60]
)  # the retain set larger / smaller than the test shard
def test_forget_reports_equal_the_report_of_the_whole_retain_set(retain_stop: int | None) -> None:
    """Predicting only the retain rows the attack draws gives exactly what predicting them all gives."""
    scenario = small_scenario()
    model = prepare_model(build_model(scenario.model, seed=3), torch.device("cpu")).eval()
    with torch.no_grad():  # spread the confidences, so that which retain rows are drawn matters
        model.fc.weight.mul_(40)
    pool = S.site_shards(scenario, 0).train_rows
    forget, retain = pool[:30], pool[30:retain_stop]
    data = S.scenario_dataset(scenario, quiet=True)
    val = data.split("val")
    test_rows = S.site_shards(scenario, 0).test_rows
    assert (len(retain) > len(test_rows)) == (retain_stop is None)
    cpu = torch.device("cpu")
    preds = {
        "forget": predict(model, data.train.images, data.train.labels, forget, device=cpu),
        "retain": predict(model, data.train.images, data.train.labels, retain, device=cpu),
        "test": predict(model, val.images, val.labels, test_rows, device=cpu),
    }
    e = scenario.evaluation
    whole = unlearning_report(
        preds, RiskCosts(e.c_fp, e.c_fn), e.mia, mia_seed=stream_seed(scenario.seed, "mia", 0)
    )["forget"]
    r, t, f = preds["retain"], preds["test"], preds["forget"]
    by_draw = {
        mia_efficacy(r.probs, r.labels, t.probs, t.labels, f.probs, f.labels, seed=s)
        for s in range(4)
    }
    assert (
        len(by_draw) > 1 or retain_stop is not None
    )  # the test can tell a wrong draw from the right one
    got = S.forget_report(model, scenario, 0, forget, retain, device=cpu)
    assert got["mia_efficacy"] == whole["mia_efficacy"]
    assert (got["ubac"], got["ua"], got["forget_fnr"]) == (whole["ubac"], whole["ua"], whole["fnr"])
