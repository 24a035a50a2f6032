"""The five ingredients as method settings, and the two presets (METHOD.md section 4b)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from fedunlearn.data import ForgetSpec, select_forget
from fedunlearn.engine import TrainConfig, train
from fedunlearn.engine.loop import Phase
from fedunlearn.engine.losses import ForgetLoss, WeightedCE, class_weights
from fedunlearn.models import build_model
from fedunlearn.unlearning import (
    INGREDIENT_NAMES,
    INGREDIENTS,
    PRESETS,
    UnlearnConfig,
    UnlearnTask,
    effective,
    get_method,
    resolve_config,
    saliency_mask,
    unlearn,
)

FAST = {"epochs": 1, "batch_size": 32}
PAPER = {
    "schedule": "sequential",
    "forget_labels": "random",
    "loss_weighting": "class",
    "cra_scope": "malignant",
    "mask_freeze": "restore",
}


@pytest.fixture(scope="module")
def task(synthetic) -> UnlearnTask:
    split = synthetic.train
    forget = select_forget(split.labels, ForgetSpec(0.2, seed=0))
    keep = torch.ones(len(split.labels), dtype=torch.bool)
    keep[forget] = False
    return UnlearnTask(split.images, split.labels, forget, torch.nonzero(keep).flatten())


@pytest.fixture(scope="module")
def original(synthetic):
    model = build_model("small-cnn", seed=0)
    split = synthetic.train
    train(
        model,
        [
            Phase(
                "train",
                split.images,
                split.labels,
                torch.arange(len(split.labels)),
                WeightedCE(class_weights(split.labels)),
            )
        ],
        TrainConfig(epochs=1, lr=0.05, batch_size=64),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
    )
    return model


def test_defaults_are_the_papers_for_every_method() -> None:
    for name in ("retrain", "ft", "ga", "rl", "salun", "salun-cra"):
        assert resolve_config(name).ingredients() == PAPER
        assert dataclasses.replace(
            resolve_config(name, {"preset": "paper"}), preset=None
        ) == resolve_config(name)
    assert {k: v[0] for k, v in INGREDIENTS.items()} == PAPER


def test_study_code_preset_per_method() -> None:
    rl = resolve_config("rl", {"preset": "study-code"})
    assert (rl.schedule, rl.forget_labels, rl.loss_weighting) == ("mixed", "true", "none")
    salun = resolve_config("salun", {"preset": "study-code"})
    assert (salun.schedule, salun.forget_labels, salun.loss_weighting, salun.mask_freeze) == (
        "mixed",
        "true",
        "none",
        "gradient",
    )
    cra = resolve_config("salun-cra", {"preset": "study-code"})
    assert (cra.schedule, cra.loss_weighting, cra.cra_scope, cra.mask_freeze) == (
        "sequential",
        "class",
        "all",
        "gradient",
    )
    assert resolve_config("ft", {"preset": "study-code"}).loss_weighting == "none"
    assert resolve_config("salun", {"preset": "study-code"}).preset == "study-code"


def test_explicit_ingredients_win_over_the_preset() -> None:
    cfg = resolve_config("rl", {"preset": "study-code", "forget_labels": "random", "epochs": 2})
    assert (cfg.schedule, cfg.forget_labels, cfg.epochs) == ("mixed", "random", 2)


@pytest.mark.parametrize(
    "bad",
    [
        {"schedule": "interleaved"},
        {"forget_labels": "none"},
        {"loss_weighting": "focal"},
        {"cra_scope": "benign"},
        {"mask_freeze": "freeze"},
    ],
)
def test_bad_ingredient_values_are_one_line_errors(bad) -> None:
    with pytest.raises(ValueError) as err:
        resolve_config("salun-cra", bad)
    ((name, value),) = bad.items()
    assert "\n" not in str(err.value) and name in str(err.value) and repr(value) in str(err.value)
    for allowed in INGREDIENTS[name]:
        assert allowed in str(err.value)


def test_bad_preset_lists_the_presets() -> None:
    with pytest.raises(ValueError) as err:
        resolve_config("rl", {"preset": "code"})
    for name in PRESETS:
        assert name in str(err.value)


def test_effective_drops_what_a_method_does_not_read() -> None:
    assert effective("retrain", PAPER) == ()
    assert effective("ft", PAPER) == (("loss_weighting", "class"),)
    assert dict(effective("rl", PAPER)).keys() == {"schedule", "forget_labels", "loss_weighting"}
    assert "forget_labels" in dict(effective("salun-cra", PAPER))
    assert "forget_labels" not in dict(effective("salun-cra", {**PAPER, "cra_scope": "all"}))
    assert set(dict(effective("salun-cra", PAPER))) == set(INGREDIENT_NAMES)


def _phases(name: str, task: UnlearnTask, **ingredients):
    cfg = resolve_config(name, {**FAST, **ingredients})
    w = class_weights(task.labels[task.retain]) if cfg.loss_weighting == "class" else None
    return cfg, get_method(name).schedule(task, cfg, w)


@pytest.mark.parametrize("name", ["rl", "salun", "salun-cra"])
def test_mixed_yields_batches_with_forget_and_retain_rows_together(task, name: str) -> None:
    cfg, phases = _phases(name, task, schedule="mixed")
    assert [p.name for p in phases] == ["mixed"] and phases[0].pass_rows
    rows = phases[0].indices
    assert torch.equal(
        torch.sort(rows).values, torch.sort(torch.cat([task.forget, task.retain])).values
    )
    batches: list[torch.Tensor] = []

    def spy(logits, labels, generator, rows):
        batches.append(rows.clone())
        return phases[0].loss(logits, labels, generator, rows)

    train(
        build_model("small-cnn", seed=0),
        [dataclasses.replace(phases[0], loss=spy)],
        cfg.train_config(),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
    )
    both = [
        bool(torch.isin(b, task.forget).any() and torch.isin(b, task.retain).any()) for b in batches
    ]
    assert len(batches) == -(-len(rows) // 32) and all(
        both
    )  # every batch mixes forget and retain rows
    _, seq = _phases(name, task)
    assert [p.name for p in seq] == ["forget", "retain"]


@pytest.mark.parametrize("name", ["rl", "salun", "salun-cra"])
def test_forget_labels_true_never_draws_a_label(task, name: str) -> None:
    for schedule in ("sequential", "mixed"):
        _, phases = _phases(name, task, schedule=schedule, forget_labels="true")
        forget = [p.loss for p in phases if isinstance(p.loss, ForgetLoss)]
        assert forget and all(not f.random_labels for f in forget)
        g = torch.Generator().manual_seed(1)
        before = g.get_state().clone()
        logits = torch.randn(len(task.forget), 2)
        forget[0](logits, task.labels[task.forget], g, task.forget)
        assert torch.equal(g.get_state(), before)


@pytest.mark.parametrize("name", ["ft", "rl", "salun", "salun-cra"])
def test_loss_weighting_none_has_no_class_weights(task, name: str) -> None:
    _, none = _phases(name, task, loss_weighting="none")
    _, cls = _phases(name, task)
    assert all(p.loss.weights is None for p in none)
    w = class_weights(task.labels[task.retain])
    assert all(torch.equal(p.loss.weights, w) for p in cls if hasattr(p.loss, "weights"))


def test_cra_scope_reaches_the_forget_loss(task) -> None:
    _, phases = _phases("salun-cra", task, cra_scope="all")
    assert phases[0].loss.entropy == "all"
    _, phases = _phases("salun-cra", task)
    assert phases[0].loss.entropy == "malignant"
    _, phases = _phases("rl", task, cra_scope="all")  # RL reads no scope
    assert phases[0].loss.entropy is None


@pytest.mark.parametrize("freeze", ["restore", "gradient"])
def test_mask_freeze_through_salun(task, original, freeze: str) -> None:
    cfg = resolve_config("salun", {**FAST, "mask_freeze": freeze, "weight_decay": 5e-3})
    start = copy.deepcopy(original)
    mask = saliency_mask(
        copy.deepcopy(original),
        task.images,
        task.labels,
        task.forget,
        cfg.mask_ratio,
        device=torch.device("cpu"),
        batch_size=cfg.batch_size,
    )
    result = unlearn("salun", copy.deepcopy(original), task, device=torch.device("cpu"), config=cfg)
    p0 = dict(start.named_parameters())
    changed = 0
    for n, p in result.model.named_parameters():
        frozen = ~mask[n]
        changed += int((p.detach()[frozen] != p0[n].detach()[frozen]).sum())
    if freeze == "restore":
        assert changed == 0  # bit-identical
    else:
        assert changed > 0.5 * sum(
            int((~m).sum()) for m in mask.values()
        )  # weight decay moved them


def test_ingredients_change_the_result(task, original) -> None:
    cpu = torch.device("cpu")
    runs = {}
    for label, extra in {
        "paper": {},
        "true": {"forget_labels": "true"},
        "mixed": {"schedule": "mixed"},
        "none": {"loss_weighting": "none"},
        "all": {"cra_scope": "all"},
    }.items():
        cfg = resolve_config("salun-cra", {**FAST, **extra})
        runs[label] = unlearn(
            "salun-cra", copy.deepcopy(original), task, device=cpu, seed=0, config=cfg
        ).model
    ref = list(runs["paper"].parameters())
    for label in ("true", "mixed", "none", "all"):
        assert not all(torch.equal(a, b) for a, b in zip(ref, runs[label].parameters())), label


def test_unlearn_config_validates_ingredients() -> None:
    with pytest.raises(ValueError, match="schedule"):
        UnlearnConfig(schedule="both")


def test_scenario_unlearn_settings_reach_resolve_config() -> None:
    from fedunlearn.federated.scenario import UnlearnSettings

    settings = UnlearnSettings(preset="study-code", mask_freeze="restore", epochs=3)
    cfg = resolve_config("salun", settings)
    assert (cfg.preset, cfg.schedule, cfg.forget_labels, cfg.mask_freeze, cfg.epochs) == (
        "study-code",
        "mixed",
        "true",
        "restore",
        3,
    )
    assert resolve_config("salun", UnlearnSettings()) == resolve_config("salun")
