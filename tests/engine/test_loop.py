"""The single training loop: learning, checkpoint selection, row accounting, FedProx and SalUn masking."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from fedunlearn.engine import Phase, TrainConfig, predict, train
from fedunlearn.engine.loop import GradientMask
from fedunlearn.engine.losses import WeightedCE, class_weights
from fedunlearn.models import build_model


def phase(ds, rows: torch.Tensor, name: str = "train") -> Phase:
    split = ds.train
    return Phase(
        name, split.images, split.labels, rows, WeightedCE(class_weights(split.labels[rows]))
    )


def params_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def distance(model: nn.Module, start: dict[str, torch.Tensor]) -> float:
    return math.sqrt(
        sum(float((p.detach() - start[n]).pow(2).sum()) for n, p in model.named_parameters())
    )


def test_short_training_lowers_the_loss_and_beats_chance(synthetic, cpu) -> None:
    model = build_model("small-cnn", seed=0)
    cfg = TrainConfig(epochs=2, lr=0.05, batch_size=32)
    stats = train(
        model,
        [phase(synthetic, torch.arange(400))],
        cfg,
        device=cpu,
        generator=torch.Generator().manual_seed(0),
    )
    assert len(stats.epoch_losses) == 2
    assert stats.epoch_losses[-1] < stats.epoch_losses[0] - 0.05
    assert stats.images == 2 * 400
    assert stats.best_epoch is None and stats.best_score is None  # no select given
    preds = predict(model, synthetic.test.images, synthetic.test.labels, device=cpu)
    assert len(preds) == 200
    # Ranking, not the 0.5 threshold: after two epochs BatchNorm's running
    # statistics still lag the weights, which shifts eval-mode scores.
    assert roc_auc_score(preds.labels, preds.scores) > 0.75


def test_training_is_reproducible_for_a_seed(synthetic, cpu) -> None:
    rows = torch.arange(96)
    cfg = TrainConfig(epochs=1, lr=0.05, batch_size=32)
    states = []
    for _ in range(2):
        model = build_model("small-cnn", seed=1)
        train(
            model,
            [phase(synthetic, rows)],
            cfg,
            device=cpu,
            generator=torch.Generator().manual_seed(9),
        )
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_select_restores_the_best_epochs_weights(synthetic, cpu) -> None:
    model = build_model("small-cnn", seed=0)
    scores = iter([0.2, 0.9, 0.4, 0.9])  # a later tie does not replace the first best
    snapshots: list[dict[str, torch.Tensor]] = []

    def select(m: nn.Module) -> float:
        snapshots.append(copy.deepcopy(m.state_dict()))
        return next(scores)

    cfg = TrainConfig(epochs=4, lr=0.05, batch_size=32)
    stats = train(
        model,
        [phase(synthetic, torch.arange(64))],
        cfg,
        device=cpu,
        generator=torch.Generator().manual_seed(0),
        select=select,
    )
    assert len(snapshots) == 4
    assert stats.best_epoch == 1 and stats.best_score == 0.9
    final = model.state_dict()
    assert final.keys() == snapshots[1].keys()
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)  # buffers included
    assert not all(torch.equal(final[k], snapshots[3][k]) for k in final)


def test_a_nan_score_never_beats_a_real_one(synthetic, cpu) -> None:
    model = build_model("small-cnn", seed=0)
    scores = iter([float("nan"), 0.3, float("nan")])
    snapshots: list[dict[str, torch.Tensor]] = []

    def select(m: nn.Module) -> float:
        snapshots.append(copy.deepcopy(m.state_dict()))
        return next(scores)

    stats = train(
        model,
        [phase(synthetic, torch.arange(32))],
        TrainConfig(epochs=3, lr=0.05, batch_size=32),
        device=cpu,
        generator=torch.Generator().manual_seed(0),
        select=select,
    )
    assert stats.best_epoch == 1 and stats.best_score == 0.3
    final = model.state_dict()
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)


def test_track_rows_records_exactly_the_rows_given(synthetic, cpu) -> None:
    rows_a = torch.arange(0, 100, 7)
    rows_b = torch.tensor([399, 5, 200, 17, 350])
    phases = [phase(synthetic, rows_a, "a"), phase(synthetic, rows_b, "b")]
    cfg = TrainConfig(epochs=2, lr=0.01, batch_size=8)
    stats = train(
        build_model("small-cnn", seed=0),
        phases,
        cfg,
        device=cpu,
        generator=torch.Generator().manual_seed(0),
        track_rows=True,
    )
    assert set(stats.trained_rows) == {"a", "b"}
    assert torch.equal(stats.trained_rows["a"], rows_a)
    assert torch.equal(stats.trained_rows["b"], torch.sort(rows_b).values)
    assert stats.images == 2 * (len(rows_a) + len(rows_b))
    untracked = train(
        build_model("small-cnn", seed=0),
        phases,
        cfg,
        device=cpu,
        generator=torch.Generator().manual_seed(0),
    )
    assert untracked.trained_rows == {}


def test_fedprox_keeps_weights_closer_to_the_start(synthetic, cpu) -> None:
    rows = torch.arange(128)
    drift = {}
    for mu in (0.0, 1.0, 5.0):
        model = build_model("small-cnn", seed=2)
        start = params_of(model)
        cfg = TrainConfig(epochs=2, lr=0.05, batch_size=32, prox_mu=mu)
        train(
            model,
            [phase(synthetic, rows)],
            cfg,
            device=cpu,
            generator=torch.Generator().manual_seed(4),
        )
        drift[mu] = distance(model, start)
    assert drift[0.0] > 0
    assert drift[5.0] < drift[1.0] < drift[0.0]


class SpyMask(GradientMask):
    """Keeps the optimiser the loop used, to read its momentum buffers afterwards."""

    optimizer: torch.optim.Optimizer | None = None

    def restore(self, optimizer: torch.optim.Optimizer) -> None:
        super().restore(optimizer)
        self.optimizer = optimizer


def test_gradient_mask_freezes_masked_out_weights_exactly(synthetic, cpu) -> None:
    model = build_model("small-cnn", seed=0)
    start = params_of(model)
    g = torch.Generator().manual_seed(0)
    names = list(start)
    mask = {n: torch.rand(p.shape, generator=g) < 0.5 for n, p in start.items()}
    mask[names[0]] = torch.zeros_like(mask[names[0]])  # a whole tensor frozen
    mask[names[-1]] = torch.ones_like(mask[names[-1]])  # a whole tensor free
    spy = SpyMask(model, mask)
    cfg = TrainConfig(epochs=2, lr=0.05, momentum=0.9, weight_decay=5e-3, batch_size=32)
    train(
        model,
        [phase(synthetic, torch.arange(96))],
        cfg,
        device=cpu,
        generator=torch.Generator().manual_seed(0),
        mask=spy,
    )
    assert spy.optimizer is not None
    moved = 0
    for n, p in model.named_parameters():
        m = mask[n]
        assert torch.equal(p.detach()[~m], start[n][~m]), n
        moved += int((p.detach()[m] != start[n][m]).sum())
        buf = spy.optimizer.state[p]["momentum_buffer"]
        assert torch.equal(buf[~m], torch.zeros_like(buf[~m])), n
    assert moved > 0.9 * sum(int(m.sum()) for m in mask.values())


def test_gradient_mask_step_by_step() -> None:
    layer = nn.Linear(4, 3)
    mask = {
        "weight": torch.tensor([[1, 0, 1, 0]] * 3, dtype=torch.bool),
        "bias": torch.tensor([True, False, True]),
    }
    gm = GradientMask(layer, mask)
    w0, b0 = layer.weight.detach().clone(), layer.bias.detach().clone()
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        layer(torch.randn(5, 4)).pow(2).sum().backward()
        gm.mask_gradients()
        assert torch.equal(layer.weight.grad[~mask["weight"]], torch.zeros(6))
        assert torch.equal(layer.bias.grad[1], torch.tensor(0.0))
        opt.step()  # weight decay alone would move the frozen entries...
        gm.restore(opt)  # ...so they are put back and their momentum cleared
        assert torch.equal(layer.weight.detach()[~mask["weight"]], w0[~mask["weight"]])
        assert torch.equal(layer.bias.detach()[1], b0[1])
        assert torch.equal(
            opt.state[layer.weight]["momentum_buffer"][~mask["weight"]], torch.zeros(6)
        )
    assert not torch.equal(layer.weight.detach()[mask["weight"]], w0[mask["weight"]])


def test_gradient_mask_rejects_unknown_parameters() -> None:
    with pytest.raises(ValueError, match="lacks"):
        GradientMask(nn.Linear(2, 2), {"nope": torch.ones(2, dtype=torch.bool)})


def test_empty_phases_do_nothing(synthetic, cpu) -> None:
    model = build_model("small-cnn", seed=0)
    before = params_of(model)
    stats = train(
        model,
        [phase(synthetic, torch.zeros(0, dtype=torch.long))],
        TrainConfig(epochs=1),
        device=cpu,
        generator=torch.Generator().manual_seed(0),
    )
    assert stats.images == 0
    assert all(torch.equal(p, before[n]) for n, p in params_of(model).items())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 0},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"batch_size": 0},
        {"lr_schedule": "step"},
        {"prox_mu": -1.0},
    ],
)
def test_train_config_rejects_bad_values(kwargs) -> None:
    with pytest.raises(ValueError):
        TrainConfig(**kwargs)
