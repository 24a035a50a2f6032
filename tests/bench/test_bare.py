"""The bare loop's augmentation is the engine's, so the throughput comparison compares equal work."""

from __future__ import annotations

import torch

from fedunlearn.bench.bare import bare_augment, bare_epoch
from fedunlearn.engine import augment_batch, to_float
from fedunlearn.models import build_model


def test_bare_augment_equals_the_engine_for_the_same_draws() -> None:
    x = torch.randint(
        0, 256, (9, 28, 28, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    engine = to_float(augment_batch(x, torch.Generator().manual_seed(4)))
    bare = bare_augment(to_float(x), torch.Generator().manual_seed(4))
    assert torch.equal(engine, bare)


def test_bare_epoch_trains_every_image_once() -> None:
    x = torch.rand(70, 3, 28, 28)
    y = (torch.arange(70) % 5 == 0).long()
    model = build_model("small-cnn", seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    assert bare_epoch(model, x, y, augment=True, seed=0, batch_size=32) == 70
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
