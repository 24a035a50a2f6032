"""ForgetLoss under every ingredient setting (METHOD.md sections 4 and 4b)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fedunlearn.engine.losses import (
    ClinicalRiskAwareForget,
    ForgetLoss,
    RandomLabelCE,
    WeightedCE,
    neg_entropy,
    random_labels,
)

WEIGHTS = torch.tensor([0.625, 2.5])


def batch(seed: int = 0, b: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(b, 2, generator=g)
    labels = torch.tensor([1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0][:b])
    return logits, labels


def gen(seed: int = 5) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("seed", range(4))
def test_paper_settings_equal_the_original_losses_bit_for_bit(seed: int) -> None:
    logits, labels = batch(seed)
    assert torch.equal(
        ForgetLoss(WEIGHTS)(logits, labels, gen(seed)),
        RandomLabelCE(WEIGHTS)(logits, labels, gen(seed)),
    )
    assert torch.equal(
        ForgetLoss(WEIGHTS, entropy="malignant")(logits, labels, gen(seed)),
        ClinicalRiskAwareForget(WEIGHTS)(logits, labels, gen(seed)),
    )


def test_true_labels_never_draw_and_are_plain_ce() -> None:
    logits, labels = batch()
    g = gen()
    before = g.get_state().clone()
    got = ForgetLoss(WEIGHTS, random_labels=False)(logits, labels, g)
    assert torch.equal(g.get_state(), before)  # nothing drawn
    torch.testing.assert_close(got, F.cross_entropy(logits, labels, weight=WEIGHTS))
    # Random labels do draw, and give another loss.
    g2 = gen()
    rand = ForgetLoss(WEIGHTS)(logits, labels, g2)
    assert not torch.equal(g2.get_state(), before)
    assert not torch.allclose(rand, got)


def test_no_weighting_equals_plain_cross_entropy() -> None:
    logits, labels = batch()
    assert torch.equal(WeightedCE(None)(logits, labels, gen()), F.cross_entropy(logits, labels))
    assert torch.equal(
        ForgetLoss(None, random_labels=False)(logits, labels, gen()),
        F.cross_entropy(logits, labels),
    )
    fake = random_labels(len(labels), gen())
    assert torch.equal(ForgetLoss(None)(logits, labels, gen()), F.cross_entropy(logits, fake))
    assert not torch.allclose(
        WeightedCE(WEIGHTS)(logits, labels, gen()), F.cross_entropy(logits, labels)
    )


def test_cra_scope_all_applies_entropy_to_benign_rows_too() -> None:
    logits, labels = batch()
    assert bool((labels == 0).any())
    torch.testing.assert_close(
        ForgetLoss(WEIGHTS, entropy="all")(logits, labels, gen()), neg_entropy(logits)
    )
    # Gradient of a benign row: the entropy's under "all", the cross-entropy's under "malignant".
    z = logits.clone().requires_grad_(True)
    ForgetLoss(WEIGHTS, entropy="all")(z, labels, gen()).backward()
    z_ref = logits.clone().requires_grad_(True)
    neg_entropy(z_ref).backward()
    torch.testing.assert_close(z.grad, z_ref.grad)
    z_mal = logits.clone().requires_grad_(True)
    ForgetLoss(WEIGHTS, entropy="malignant")(z_mal, labels, gen()).backward()
    benign = labels == 0
    assert not torch.allclose(z.grad[benign], z_mal.grad[benign])
    # Malignant rows get the same entropy gradient in both scopes: (1 / B) d(-H_i) / dz_i.
    torch.testing.assert_close(z.grad[~benign], z_mal.grad[~benign])


def test_mixed_batch_relabels_only_forget_rows() -> None:
    logits, labels = batch()
    is_forget = torch.zeros(100, dtype=torch.bool)
    rows = torch.arange(40, 52)
    is_forget[rows[:5]] = True  # the first five rows of the batch are forget rows
    got = ForgetLoss(None, is_forget=is_forget)(logits, labels, gen(), rows)
    fake = random_labels(len(labels), gen())
    targets = labels.clone()
    targets[:5] = fake[:5]
    torch.testing.assert_close(got, F.cross_entropy(logits, targets))
    # True labels on a mixed batch: one plain cross-entropy over the whole batch (the study's ConcatDataset loop).
    torch.testing.assert_close(
        ForgetLoss(None, False, None, is_forget)(logits, labels, gen(), rows),
        F.cross_entropy(logits, labels),
    )


def test_mixed_batch_entropy_only_on_forget_rows() -> None:
    logits, labels = batch()
    is_forget = torch.zeros(12, dtype=torch.bool)
    is_forget[:6] = True
    rows = torch.arange(12)
    got = ForgetLoss(WEIGHTS, False, "all", is_forget)(logits, labels, gen(), rows)
    expected = 0.5 * neg_entropy(logits[:6]) + 0.5 * F.cross_entropy(
        logits[6:], labels[6:], weight=WEIGHTS
    )
    torch.testing.assert_close(got, expected)


def test_mixed_loss_needs_rows_and_a_known_scope() -> None:
    logits, labels = batch()
    with pytest.raises(ValueError, match="row ids"):
        ForgetLoss(None, is_forget=torch.zeros(12, dtype=torch.bool))(logits, labels, gen())
    with pytest.raises(ValueError, match="entropy scope"):
        ForgetLoss(None, entropy="benign")
