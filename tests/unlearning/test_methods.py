"""The six unlearning methods through :func:`unlearn` (METHOD.md section 4)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from fedunlearn.data import ForgetSpec, select_forget
from fedunlearn.engine import TrainConfig, to_float, train
from fedunlearn.engine.loop import Phase
from fedunlearn.engine.losses import WeightedCE, class_weights
from fedunlearn.models import build_model
from fedunlearn.unlearning import (
    METHOD_NAMES,
    UnlearnConfig,
    UnlearnTask,
    get_method,
    mask_fraction,
    resolve_config,
    saliency_mask,
    unlearn,
)

SIX = ("retrain", "ft", "ga", "rl", "salun", "salun-cra")
RETRAIN_CFG = TrainConfig(epochs=1, lr=0.05, batch_size=64)
FAST = {"epochs": 1, "batch_size": 64}
# Rows each method trains on per epoch: the forget set is never trained on by retrain and FT.
PHASES = {
    "retrain": ("retain",),
    "ft": ("retain",),
    "ga": ("forget",),
    "rl": ("forget", "retain"),
    "salun": ("forget", "retain"),
    "salun-cra": ("forget", "retain"),
}


@pytest.fixture(scope="module")
def task(synthetic) -> UnlearnTask:
    split = synthetic.train
    forget = select_forget(split.labels, ForgetSpec(0.2, seed=0))
    retain = torch.arange(len(split.labels))[~torch.isin(torch.arange(len(split.labels)), forget)]
    return UnlearnTask(split.images, split.labels, forget, retain)


@pytest.fixture(scope="module")
def original(synthetic) -> nn.Module:
    """small-cnn trained one epoch on the whole training split."""
    model = build_model("small-cnn", seed=0)
    split = synthetic.train
    rows = torch.arange(len(split.labels))
    train(
        model,
        [Phase("train", split.images, split.labels, rows, WeightedCE(class_weights(split.labels)))],
        TrainConfig(epochs=1, lr=0.05, batch_size=64),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
    )
    return model


@pytest.fixture(scope="module")
def results(task, original) -> dict:
    """Each method run once on a copy of the original, rows tracked."""
    cpu = torch.device("cpu")
    out = {}
    for name in SIX:
        model = copy.deepcopy(original)
        out[name] = (
            model,
            unlearn(
                name,
                model,
                task,
                device=cpu,
                seed=0,
                config=resolve_config(name, FAST),
                fresh_model=lambda: build_model("small-cnn", seed=1),
                retrain_config=RETRAIN_CFG,
                track_rows=True,
            ),
        )
    return out


def same_params(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_the_six_methods_are_registered() -> None:
    assert METHOD_NAMES == SIX


@pytest.mark.parametrize("name", SIX)
def test_every_method_runs_and_accounts_for_its_rows(results, task, original, name: str) -> None:
    _passed_in, result = results[name]
    assert result.method == name
    stats = result.stats
    expected_rows = {"forget": task.forget, "retain": task.retain}
    assert stats.images == sum(len(expected_rows[p]) for p in PHASES[name]) > 0
    assert set(stats.trained_rows) == set(PHASES[name])
    for phase_name, rows in stats.trained_rows.items():
        assert torch.equal(rows, torch.sort(expected_rows[phase_name]).values)
    if "forget" not in PHASES[name]:
        assert not bool(torch.isin(torch.cat(list(stats.trained_rows.values())), task.forget).any())
    assert len(stats.epoch_losses) == 1 and stats.seconds > 0
    with torch.no_grad():
        out = result.model.eval()(to_float(task.images[:8]))
    assert out.shape == (8, 2) and torch.isfinite(out).all()
    assert not same_params(result.model, original)  # something was learnt or unlearnt


@pytest.mark.parametrize("name", ["ft", "ga", "rl", "salun", "salun-cra"])
def test_methods_start_from_the_original_in_place(results, name: str) -> None:
    passed_in, result = results[name]
    assert result.model is passed_in
    assert result.config == resolve_config(name, FAST)


def test_retrain_starts_from_a_fresh_model(results, original) -> None:
    passed_in, result = results["retrain"]
    assert result.model is not passed_in
    assert same_params(passed_in, original)  # the original is left alone
    assert result.config is RETRAIN_CFG


@pytest.mark.parametrize("name", ["salun", "salun-cra"])
def test_salient_methods_leave_masked_out_weights_bit_identical(
    results, task, original, name: str
) -> None:
    _, result = results[name]
    cfg = result.config
    reference = saliency_mask(
        copy.deepcopy(original),
        task.images,
        task.labels,
        task.forget,
        cfg.mask_ratio,
        device=torch.device("cpu"),
        batch_size=cfg.batch_size,
    )
    assert result.mask_fraction == pytest.approx(mask_fraction(reference))
    assert result.mask_fraction == pytest.approx(0.5, abs=1e-6)
    start = dict(original.named_parameters())
    moved = 0
    for n, p in result.model.named_parameters():
        m = reference[n]
        assert torch.equal(p.detach()[~m], start[n].detach()[~m]), n
        moved += int((p.detach()[m] != start[n].detach()[m]).sum())
    assert moved > 0.9 * sum(int(m.sum()) for m in reference.values())


def test_mask_ratio_setting_reaches_the_mask(task, original, cpu) -> None:
    cfg = resolve_config("salun", {**FAST, "mask_ratio": 0.1})
    result = unlearn("salun", copy.deepcopy(original), task, device=cpu, config=cfg)
    n = sum(p.numel() for p in original.parameters())
    assert result.mask_fraction == pytest.approx(round(0.1 * n) / n)
    assert result.seconds >= result.stats.seconds


def test_unlearning_is_reproducible_for_a_seed(task, original, cpu) -> None:
    cfg = resolve_config("rl", FAST)
    a = unlearn("rl", copy.deepcopy(original), task, device=cpu, seed=3, config=cfg).model
    b = unlearn("rl", copy.deepcopy(original), task, device=cpu, seed=3, config=cfg).model
    assert same_params(a, b)


def test_retrain_needs_a_fresh_model_and_its_config(task, original, cpu) -> None:
    with pytest.raises(ValueError, match="fresh_model"):
        unlearn("retrain", copy.deepcopy(original), task, device=cpu)
    with pytest.raises(ValueError, match="retrain_config"):
        unlearn(
            "retrain",
            copy.deepcopy(original),
            task,
            device=cpu,
            fresh_model=lambda: build_model("small-cnn"),
        )


@pytest.mark.parametrize("call", [get_method, resolve_config])
def test_unknown_method_error_lists_the_names(call) -> None:
    with pytest.raises(ValueError) as err:
        call("boundary-shrink")
    for name in SIX:
        assert name in str(err.value)


def test_unlearn_rejects_an_unknown_method(task, original, cpu) -> None:
    with pytest.raises(ValueError, match="salun-cra"):
        unlearn("scrub", original, task, device=cpu)


def test_resolve_config_applies_overrides_on_the_method_defaults() -> None:
    cfg = resolve_config("ga", {"epochs": 2})
    assert cfg.epochs == 2
    assert cfg.lr == get_method("ga").defaults.lr
    assert resolve_config("salun") == get_method("salun").defaults


def test_resolve_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError) as err:
        resolve_config("salun", {"epoch": 3, "mask_ratio": 0.3})
    assert "'epoch'" in str(err.value)
    assert "epochs" in str(err.value) and "mask_ratio" in str(
        err.value
    )  # the valid keys are listed


@pytest.mark.parametrize(
    "overrides", [{"mask_ratio": 0.0}, {"mask_ratio": 1.5}, {"epochs": 0}, {"lr": -1.0}]
)
def test_resolve_config_rejects_bad_values(overrides) -> None:
    with pytest.raises(ValueError):
        resolve_config("salun", overrides)


def test_salun_defaults_follow_the_method() -> None:
    d = get_method("salun").defaults
    assert (d.epochs, d.lr, d.momentum, d.weight_decay, d.batch_size, d.mask_ratio) == (
        10,
        0.013,
        0.9,
        5e-4,
        256,
        0.5,
    )
    assert get_method("salun-cra").defaults == d
    assert get_method("salun").salient and get_method("salun-cra").salient
    assert not any(get_method(n).salient for n in ("retrain", "ft", "ga", "rl"))
    assert get_method("retrain").from_scratch and not any(
        get_method(n).from_scratch for n in SIX[1:]
    )


def test_unlearn_task_rejects_overlap_and_an_empty_forget_set(synthetic) -> None:
    split = synthetic.train
    with pytest.raises(ValueError, match="both"):
        UnlearnTask(split.images, split.labels, torch.tensor([1, 2, 3]), torch.tensor([3, 4, 5]))
    with pytest.raises(ValueError, match="empty"):
        UnlearnTask(split.images, split.labels, torch.zeros(0, dtype=torch.long), torch.arange(10))
    UnlearnTask(
        split.images, split.labels, torch.tensor([1, 2]), torch.tensor([3, 4])
    )  # disjoint is fine


def test_unlearn_config_rejects_bad_mask_ratio() -> None:
    with pytest.raises(ValueError, match="mask_ratio"):
        UnlearnConfig(mask_ratio=0.0)
