"""Site logic without Flower: forget-set reports of several requests share one prediction of the retain set."""

from __future__ import annotations

import pytest
import torch

from fedunlearn.engine.device import prepare_model
from fedunlearn.federated import site as S
from fedunlearn.models import build_model
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
    assert sorted(calls) == sorted(
        [len(retain), len(S.site_shards(scenario, 1).test_rows), 20, 15]
    )  # retain once
