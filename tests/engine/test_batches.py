"""Batching and augmentation (METHOD.md section 2: 4-pixel padded random crop, horizontal flip)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedunlearn.engine import augment_batch, iterate_batches, to_float

PAD = 4
CPU = torch.device("cpu")


def random_images(n: int, h: int = 10, w: int = 9, c: int = 3, seed: int = 0) -> torch.Tensor:
    """uint8 NHWC images with no zero pixel, so padding is told apart from content."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (n, h, w, c), generator=g, dtype=torch.uint8)


def reference_augment(
    x: torch.Tensor, dy: np.ndarray, dx: np.ndarray, flip: np.ndarray
) -> np.ndarray:
    """Slow per-sample reference: zero-pad 4, crop at (dy, dx), then flip left-right."""
    arr = x.numpy()
    _, h, w, _ = arr.shape
    out = np.empty_like(arr)
    for i, img in enumerate(arr):
        padded = np.pad(img, ((PAD, PAD), (PAD, PAD), (0, 0)), mode="constant", constant_values=0)
        crop = padded[dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop[:, ::-1] if flip[i] else crop
    return out


def all_candidates(img: np.ndarray) -> list[np.ndarray]:
    """Every crop of the padded image (81 offsets) and its mirror image."""
    h, w, _ = img.shape
    padded = np.pad(img, ((PAD, PAD), (PAD, PAD), (0, 0)))
    crops = [
        padded[dy : dy + h, dx : dx + w] for dy in range(2 * PAD + 1) for dx in range(2 * PAD + 1)
    ]
    return crops + [c[:, ::-1] for c in crops]


def test_augment_equals_per_sample_reference() -> None:
    x = random_images(32)
    out = augment_batch(x, torch.Generator().manual_seed(5))
    # The draws, in the documented order: row offsets, column offsets, flips.
    g = torch.Generator().manual_seed(5)
    dy = torch.randint(0, 2 * PAD + 1, (32, 1), generator=g).flatten().numpy()
    dx = torch.randint(0, 2 * PAD + 1, (32, 1), generator=g).flatten().numpy()
    flip = (torch.rand((32, 1), generator=g) < 0.5).flatten().numpy()
    assert out.dtype == torch.uint8 and out.shape == x.shape
    np.testing.assert_array_equal(out.numpy(), reference_augment(x, dy, dx, flip))
    assert flip.any() and (~flip).any()


def test_every_augmented_image_is_a_crop_or_flip_of_its_padded_input() -> None:
    x = random_images(24, h=8, w=8, seed=1)
    out = augment_batch(x, torch.Generator().manual_seed(11)).numpy()
    for img, aug in zip(x.numpy(), out):
        assert any(np.array_equal(aug, c) for c in all_candidates(img))


def test_augment_draws_cover_all_offsets_and_both_flips() -> None:
    # A distinct value per (row, col) of a 1-channel image reveals the offset and flip of each output.
    h = w = 12
    x = (
        (torch.arange(h * w, dtype=torch.int64).view(1, h, w, 1) % 250 + 1)
        .to(torch.uint8)
        .repeat(2000, 1, 1, 1)
    )
    out = augment_batch(x, torch.Generator().manual_seed(0)).numpy()
    seen: set[tuple[int, int, bool]] = set()
    candidates = all_candidates(x[0].numpy())
    for aug in out:
        k = next(i for i, c in enumerate(candidates) if np.array_equal(aug, c))
        flipped, pos = divmod(k, 81)
        seen.add((pos // 9, pos % 9, bool(flipped)))
    assert len(seen) == 2 * 81


def test_augment_is_reproducible_and_depends_on_the_generator() -> None:
    x = random_images(16)
    a = augment_batch(x, torch.Generator().manual_seed(3))
    b = augment_batch(x, torch.Generator().manual_seed(3))
    c = augment_batch(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_to_float_is_nchw_in_unit_range() -> None:
    x = random_images(4, h=5, w=7, c=3)
    out = to_float(x)
    assert out.shape == (4, 3, 5, 7) and out.dtype == torch.float32
    np.testing.assert_allclose(
        out.numpy(), x.numpy().transpose(0, 3, 1, 2) / 255.0, rtol=0, atol=1e-7
    )


def test_iterate_in_order_without_shuffle() -> None:
    images = random_images(50, h=6, w=5)
    labels = torch.arange(50) % 2
    indices = torch.tensor([7, 3, 49, 0, 12, 12 + 1, 30, 8, 21, 44, 2])
    batches = list(iterate_batches(images, labels, indices, 4, device=CPU))
    assert [len(idx) for _, _, idx in batches] == [4, 4, 3]
    assert torch.equal(torch.cat([idx for _, _, idx in batches]), indices)
    for x, y, idx in batches:
        assert x.shape == (len(idx), 3, 6, 5) and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        expected = images[idx].permute(0, 3, 1, 2).double() / 255.0
        torch.testing.assert_close(x.double(), expected, rtol=0, atol=1e-7)
        assert y.dtype == torch.int64
        assert torch.equal(y, labels[idx])


def test_shuffle_covers_every_index_exactly_once() -> None:
    images = random_images(100, h=4, w=4)
    labels = torch.arange(100) % 2
    indices = torch.arange(3, 100, 2)
    got = list(
        iterate_batches(
            images,
            labels,
            indices,
            8,
            device=CPU,
            generator=torch.Generator().manual_seed(0),
            shuffle=True,
        )
    )
    order = torch.cat([idx for _, _, idx in got])
    assert not torch.equal(order, indices)  # shuffled
    assert torch.equal(torch.sort(order).values, indices)  # a permutation: each row exactly once
    for x, y, idx in got:
        torch.testing.assert_close(x, to_float(images[idx]), rtol=0, atol=0)
        assert torch.equal(y, labels[idx])


def test_shuffled_augmented_batches_are_crops_of_their_rows() -> None:
    images = random_images(20, h=8, w=8, seed=2)
    labels = torch.arange(20) % 2
    seen = []
    for x, _, idx in iterate_batches(
        images,
        labels,
        torch.arange(20),
        6,
        device=CPU,
        generator=torch.Generator().manual_seed(1),
        shuffle=True,
        augment=True,
    ):
        aug = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for row, img in zip(idx.tolist(), aug):
            assert any(np.array_equal(img, c) for c in all_candidates(images[row].numpy()))
        seen.append(idx)
    assert torch.equal(torch.sort(torch.cat(seen)).values, torch.arange(20))


@pytest.mark.parametrize(("shuffle", "augment"), [(True, False), (False, True), (True, True)])
def test_shuffle_or_augment_without_generator_is_an_error(shuffle: bool, augment: bool) -> None:
    images = random_images(4)
    with pytest.raises(ValueError, match="Generator"):
        next(
            iterate_batches(
                images,
                torch.zeros(4, dtype=torch.int64),
                torch.arange(4),
                2,
                device=CPU,
                shuffle=shuffle,
                augment=augment,
            )
        )
