"""SalUn's saliency mask, against a reference computed here (METHOD.md section 4)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from fedunlearn.engine import to_float
from fedunlearn.models import build_model
from fedunlearn.unlearning import mask_fraction, saliency_mask

FORGET = torch.arange(0, 400, 5)  # 80 rows


def reference_grads(model, split, rows) -> dict[str, torch.Tensor]:
    """|d CE_sum / d w| over the forget rows in one batch, on a copy in eval mode."""
    ref = copy.deepcopy(model).eval()
    F.cross_entropy(
        ref(to_float(split.images[rows])), split.labels[rows], reduction="sum"
    ).backward()
    return {n: p.grad.abs() for n, p in ref.named_parameters()}


@pytest.fixture(scope="module")
def model(synthetic):
    """small-cnn whose BatchNorm running statistics are not the defaults (so eval mode matters)."""
    m = build_model("small-cnn", seed=0)
    m.train()
    with torch.no_grad():
        m(to_float(synthetic.train.images[:128]))
    return m


@pytest.mark.parametrize("ratio", [0.1, 0.5, 1.0])
def test_mask_keeps_the_global_top_fraction(model, synthetic, cpu, ratio: float) -> None:
    split = synthetic.train
    mask = saliency_mask(
        model, split.images, split.labels, FORGET, ratio, device=cpu, batch_size=512
    )
    grads = reference_grads(model, split, FORGET)
    names = [n for n, _ in model.named_parameters()]
    assert list(mask) == names
    for n, p in model.named_parameters():
        assert mask[n].shape == p.shape and mask[n].dtype == torch.bool
    n_weights = sum(p.numel() for p in model.parameters())
    kept = sum(int(m.sum()) for m in mask.values())
    assert kept == round(ratio * n_weights)
    assert mask_fraction(mask) == pytest.approx(kept / n_weights)
    # Reference: rank every weight of the whole model together.
    flat = torch.cat([grads[n].flatten() for n in names])
    expected = torch.zeros(flat.numel(), dtype=torch.bool)
    expected[torch.topk(flat, kept).indices] = True
    got = torch.cat([mask[n].flatten() for n in names])
    assert torch.equal(got, expected)
    if ratio < 1.0:
        assert flat[got].min() >= flat[~got].max()


def test_mask_ranks_over_the_whole_model_not_per_layer(model, synthetic, cpu) -> None:
    split = synthetic.train
    mask = saliency_mask(model, split.images, split.labels, FORGET, 0.5, device=cpu, batch_size=512)
    per_tensor = [float(m.float().mean()) for m in mask.values()]
    assert max(per_tensor) - min(per_tensor) > 0.2


def test_mask_hardly_depends_on_the_batch_size(model, synthetic, cpu) -> None:
    # Gradients are summed, not averaged, so batching changes only float rounding.
    split = synthetic.train
    a = saliency_mask(model, split.images, split.labels, FORGET, 0.5, device=cpu, batch_size=512)
    b = saliency_mask(model, split.images, split.labels, FORGET, 0.5, device=cpu, batch_size=16)
    differ = sum(int((a[n] != b[n]).sum()) for n in a)
    total = sum(m.numel() for m in a.values())
    assert differ <= 0.001 * total


def test_mask_leaves_the_model_as_it_was(model, synthetic, cpu) -> None:
    split = synthetic.train
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    saliency_mask(model, split.images, split.labels, FORGET, 0.5, device=cpu, batch_size=32)
    assert model.training
    after = model.state_dict()
    # BatchNorm running statistics included: the gradient is taken in eval mode.
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_mask_rejects_bad_ratios(model, synthetic, cpu, ratio: float) -> None:
    with pytest.raises(ValueError, match="ratio"):
        saliency_mask(
            model, synthetic.train.images, synthetic.train.labels, FORGET, ratio, device=cpu
        )


def test_mask_rejects_an_empty_forget_set(model, synthetic, cpu) -> None:
    with pytest.raises(ValueError, match="empty"):
        saliency_mask(
            model,
            synthetic.train.images,
            synthetic.train.labels,
            torch.zeros(0, dtype=torch.long),
            device=cpu,
        )
