"""The loop's hooks for the ingredients: gradient-only masking, row-aware losses, per-phase callbacks."""

from __future__ import annotations

import torch
from torch import nn

from fedunlearn.engine import Phase, TrainConfig, train
from fedunlearn.engine.loop import GradientMask
from fedunlearn.engine.losses import WeightedCE, class_weights
from fedunlearn.models import build_model


def test_gradient_only_mask_lets_weight_decay_move_masked_weights() -> None:
    layer = nn.Linear(4, 3)
    mask = {
        "weight": torch.tensor([[1, 0, 1, 0]] * 3, dtype=torch.bool),
        "bias": torch.tensor([True, False, True]),
    }
    gm = GradientMask(layer, mask, restore=False)
    w0 = layer.weight.detach().clone()
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        layer(torch.randn(5, 4)).pow(2).sum().backward()
        gm.mask_gradients()
        assert torch.equal(layer.weight.grad[~mask["weight"]], torch.zeros(6))
        opt.step()
        gm.restore(opt)  # a no-op
    frozen = ~mask["weight"]
    # Only weight decay acted on them: each masked weight shrank towards 0 and kept its sign.
    moved = layer.weight.detach()[frozen]
    assert bool((moved != w0[frozen]).all())
    assert bool((moved.abs() < w0[frozen].abs()).all()) and bool(
        (moved.sign() == w0[frozen].sign()).all()
    )


def test_row_aware_loss_gets_the_batch_rows(synthetic, cpu) -> None:
    split = synthetic.train
    seen: list[torch.Tensor] = []
    base = WeightedCE(class_weights(split.labels))

    def loss(logits, labels, generator, rows):
        seen.append(rows.clone())
        assert torch.equal(split.labels[rows], labels)
        return base(logits, labels, generator)

    rows = torch.arange(50, 130)
    train(
        build_model("small-cnn", seed=0),
        [Phase("mixed", split.images, split.labels, rows, loss, pass_rows=True)],
        TrainConfig(epochs=1, batch_size=32),
        device=cpu,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(torch.sort(torch.cat(seen)).values, rows)


def test_after_phase_runs_after_every_phase_and_changes_nothing(synthetic, cpu) -> None:
    split = synthetic.train
    w = class_weights(split.labels)
    phases = [
        Phase("forget", split.images, split.labels, torch.arange(40), WeightedCE(w)),
        Phase("retain", split.images, split.labels, torch.arange(40, 120), WeightedCE(w)),
    ]
    cfg = TrainConfig(epochs=2, batch_size=32)
    calls: list[tuple[int, str, bool]] = []

    def hook(epoch: int, name: str, model: nn.Module) -> None:
        calls.append((epoch, name, model.training))
        model.eval()  # the loop must put it back in train mode

    a, b = build_model("small-cnn", seed=0), build_model("small-cnn", seed=0)
    train(a, phases, cfg, device=cpu, generator=torch.Generator().manual_seed(0), after_phase=hook)
    train(b, phases, cfg, device=cpu, generator=torch.Generator().manual_seed(0))
    assert calls == [
        (0, "forget", True),
        (0, "retain", True),
        (1, "forget", True),
        (1, "retain", True),
    ]
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(p, q)
