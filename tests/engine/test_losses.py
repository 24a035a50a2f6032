"""Losses, and SalUn-CRA's clinical safety invariant (METHOD.md section 4).

"salun-cra never trains a malignant forget sample towards the benign label":
malignant rows of a forget batch get only the entropy term, whatever the
random labels drawn for the batch.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fedunlearn.engine.losses import (
    ClinicalRiskAwareForget,
    GradientAscent,
    RandomLabelCE,
    WeightedCE,
    class_weights,
    neg_entropy,
)

WEIGHTS = torch.tensor([0.625, 2.5])  # N / (2 N_c) for an 80 / 20 benign / malignant set


def softmax64(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def entropy_grad64(z: np.ndarray) -> np.ndarray:
    """d/dz of sum_k p_k log p_k for each row: p_j (log p_j - sum_k p_k log p_k)."""
    p = softmax64(z)
    logp = np.log(p)
    return p * (logp - (p * logp).sum(axis=1, keepdims=True))


def mixed_batch(seed: int = 0, b: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(b, 2, generator=g, dtype=torch.float64).float()
    labels = torch.tensor([1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0][:b])
    return logits, labels


# ---------------------------------------------------------------- class weights


def test_class_weights_by_hand() -> None:
    labels = torch.tensor([0] * 7 + [1] * 3)
    torch.testing.assert_close(class_weights(labels), torch.tensor([10 / 14, 10 / 6]))
    labels = torch.tensor([1] * 5 + [0] * 45)
    w = class_weights(labels)
    torch.testing.assert_close(w, torch.tensor([50 / 90, 50 / 10]))
    # Balanced: each class contributes the same total weight.
    assert float(w[0] * 45) == pytest.approx(float(w[1] * 5))


def test_class_weights_absent_class_gets_zero() -> None:
    # N / (2 N_c) with K = 2 fixed: 6 / (2 * 6) for the present class.
    torch.testing.assert_close(
        class_weights(torch.zeros(6, dtype=torch.long)), torch.tensor([0.5, 0.0])
    )


# ---------------------------------------------------------------- simple losses


def test_weighted_ce_by_hand() -> None:
    logits, labels = mixed_batch()
    z, y, w = logits.double().numpy(), labels.numpy(), WEIGHTS.double().numpy()
    nll = -np.log(softmax64(z)[np.arange(len(y)), y])
    expected = (w[y] * nll).sum() / w[y].sum()
    got = WeightedCE(WEIGHTS)(logits, labels, torch.Generator())
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_gradient_ascent_is_minus_ce() -> None:
    logits, labels = mixed_batch()
    z, y = logits.double().numpy(), labels.numpy()
    expected = np.log(softmax64(z)[np.arange(len(y)), y]).mean()
    assert float(GradientAscent()(logits, labels, torch.Generator())) == pytest.approx(
        expected, rel=1e-5
    )


def test_neg_entropy_by_hand() -> None:
    logits, _ = mixed_batch()
    p = softmax64(logits.double().numpy())
    assert float(neg_entropy(logits)) == pytest.approx((p * np.log(p)).sum(axis=1).mean(), rel=1e-5)
    # Its minimum is the uniform prediction: -log 2.
    assert float(neg_entropy(torch.zeros(3, 2))) == pytest.approx(-np.log(2.0))


def test_random_labels_cover_both_classes_including_the_true_one() -> None:
    loss = RandomLabelCE(torch.ones(2))
    logits = torch.tensor([[0.0, 3.0]]).repeat(200, 1)  # all confidently malignant
    labels = torch.ones(200, dtype=torch.long)
    # CE of label 1 is small, of label 0 large: a mean strictly between means both labels were drawn.
    value = float(loss(logits, labels, torch.Generator().manual_seed(0)))
    lo, hi = (
        float(F.cross_entropy(logits[:1], torch.tensor([1]))),
        float(F.cross_entropy(logits[:1], torch.tensor([0]))),
    )
    assert lo + 0.2 * (hi - lo) < value < hi - 0.2 * (hi - lo)


# ---------------------------------------------------------------- SalUn-CRA


def test_cra_combined_loss_by_hand() -> None:
    logits, labels = mixed_batch()
    b = len(labels)
    g = torch.Generator().manual_seed(42)
    got = float(ClinicalRiskAwareForget(WEIGHTS)(logits, labels, g))
    # The loss draws one random label per row of the batch (its documented stream).
    fake = torch.randint(0, 2, (b,), generator=torch.Generator().manual_seed(42)).numpy()
    z, y, w = logits.double().numpy(), labels.numpy(), WEIGHTS.double().numpy()
    p = softmax64(z)
    mal, ben = y == 1, y == 0
    l_entropy = (p[mal] * np.log(p[mal])).sum(axis=1).mean()  # minus the mean entropy
    f = fake[ben]
    l_rl = (w[f] * -np.log(p[ben][np.arange(ben.sum()), f])).sum() / w[f].sum()
    expected = mal.sum() / b * l_entropy + ben.sum() / b * l_rl
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_cra_all_benign_batch_is_random_label_ce() -> None:
    logits, _ = mixed_batch()
    labels = torch.zeros(len(logits), dtype=torch.long)
    cra = ClinicalRiskAwareForget(WEIGHTS)(logits, labels, torch.Generator().manual_seed(3))
    rl = RandomLabelCE(WEIGHTS)(logits, labels, torch.Generator().manual_seed(3))
    assert float(cra) == pytest.approx(float(rl), rel=1e-6)


def test_cra_all_malignant_batch_is_the_entropy_term() -> None:
    logits, _ = mixed_batch()
    labels = torch.ones(len(logits), dtype=torch.long)
    cra = ClinicalRiskAwareForget(WEIGHTS)(logits, labels, torch.Generator().manual_seed(3))
    assert float(cra) == pytest.approx(float(neg_entropy(logits)), rel=1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_cra_malignant_gradient_is_the_entropy_gradient_alone(seed: int) -> None:
    logits, labels = mixed_batch(seed=100 + seed)
    logits.requires_grad_(True)
    ClinicalRiskAwareForget(WEIGHTS)(logits, labels, torch.Generator().manual_seed(seed)).backward()
    b = len(labels)
    mal = (labels == 1).numpy()
    # (n_mal / B) * mean over malignant rows = (1 / B) * each row's own entropy gradient.
    expected = entropy_grad64(logits.detach().double().numpy()[mal]) / b
    np.testing.assert_allclose(logits.grad.numpy()[mal], expected, rtol=1e-5, atol=1e-8)
    # The benign rows do carry a label term.
    assert logits.grad[~torch.from_numpy(mal)].abs().sum() > 0


def test_cra_malignant_gradient_does_not_depend_on_the_random_labels() -> None:
    logits, labels = mixed_batch(seed=7)
    mal = labels == 1
    grads = []
    for seed in range(8):
        z = logits.clone().requires_grad_(True)
        ClinicalRiskAwareForget(WEIGHTS)(z, labels, torch.Generator().manual_seed(seed)).backward()
        grads.append(z.grad)
    assert all(torch.equal(g[mal], grads[0][mal]) for g in grads)
    assert not all(
        torch.equal(g[~mal], grads[0][~mal]) for g in grads
    )  # benign rows do see the draws


def p_malignant(start: float) -> torch.Tensor:
    """Logits of one sample with P(malignant) = ``start``."""
    return torch.tensor([[np.log(1 - start), np.log(start)]], dtype=torch.float32)


def optimise(loss, start: float, seed: int, steps: int = 60, lr: float = 1.0) -> list[float]:
    """Gradient descent on one malignant sample's logits under ``loss``; P(malignant) after each step."""
    z = p_malignant(start).requires_grad_(True)
    opt = torch.optim.SGD([z], lr=lr)
    g = torch.Generator().manual_seed(seed)
    label = torch.ones(1, dtype=torch.long)
    trace = [start]
    for _ in range(steps):
        opt.zero_grad()
        loss(z, label, g).backward()
        opt.step()
        trace.append(float(torch.softmax(z.detach(), 1)[0, 1]))
    return trace


@pytest.mark.parametrize("seed", range(5))
def test_cra_raises_a_missed_malignant_towards_half(seed: int) -> None:
    trace = optimise(ClinicalRiskAwareForget(WEIGHTS), 0.1, seed)
    assert all(b >= a - 1e-7 for a, b in itertools.pairwise(trace))  # never pushed towards benign
    assert min(trace) >= 0.1 - 1e-7
    assert trace[-1] == pytest.approx(0.5, abs=0.02)
    assert max(trace) <= 0.5 + 1e-6


@pytest.mark.parametrize("seed", range(5))
def test_cra_never_turns_a_malignant_into_benign(seed: int) -> None:
    trace = optimise(ClinicalRiskAwareForget(WEIGHTS), 0.9, seed)
    assert all(b <= a + 1e-7 for a, b in itertools.pairwise(trace))
    assert trace[-1] == pytest.approx(0.5, abs=0.02)
    assert min(trace) >= 0.5 - 1e-6  # never predicted benign


def test_random_labels_do_turn_malignants_into_benign() -> None:
    # The contrast that motivates CRA: the same sample under plain random relabelling.
    crossed = [seed for seed in range(10) if min(optimise(RandomLabelCE(WEIGHTS), 0.9, seed)) < 0.5]
    assert crossed
    assert all(
        min(optimise(ClinicalRiskAwareForget(WEIGHTS), 0.9, seed)) >= 0.5 - 1e-6 for seed in crossed
    )
