"""Mini-batches straight from uint8 tensors: no PIL, no per-item Python work.

Images stay in the official NHWC uint8 layout (possibly memory-mapped) and
are gathered by index one batch at a time; augmentation (4-pixel padded random
crop and horizontal flip, METHOD.md section 2) is a single vectorised gather.
On CUDA small images are copied to the device once and then stay there.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import torch

_PAD = 4
#: Images at most this wide are kept resident on an accelerator.
RESIDENT_MAX_SIZE = 64
_resident: dict[tuple[int, str], tuple[weakref.ref, torch.Tensor]] = {}


def _source(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The tensor to gather batches from: on CUDA a resident copy for small images."""
    if device.type == "cpu" or images.device == device or images.shape[1] > RESIDENT_MAX_SIZE:
        return images
    key = (id(images), str(device))
    hit = _resident.get(key)
    if hit is not None and hit[0]() is images:
        return hit[1]
    copy = images.to(device, non_blocking=True)
    _resident[key] = (weakref.ref(images, lambda _: _resident.pop(key, None)), copy)
    return copy


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop with 4-pixel zero padding and random horizontal flip.

    Parameters
    ----------
    x
        uint8 batch, shape (B, H, W, C).
    generator
        CPU generator: the draw is reproducible whatever the device.

    Returns
    -------
    torch.Tensor
        Augmented uint8 batch of the same shape, on ``x``'s device.
    """
    b, h, w, c = x.shape
    padded = x.new_zeros((b, h + 2 * _PAD, w + 2 * _PAD, c))
    padded[:, _PAD : _PAD + h, _PAD : _PAD + w] = x
    dy = torch.randint(0, 2 * _PAD + 1, (b, 1), generator=generator)
    dx = torch.randint(0, 2 * _PAD + 1, (b, 1), generator=generator)
    flip = torch.rand((b, 1), generator=generator) < 0.5
    ar_h, ar_w = torch.arange(h), torch.arange(w)
    rows = dy + ar_h
    cols = dx + torch.where(flip, (w - 1 - ar_w).expand(b, w), ar_w.expand(b, w))
    batch = torch.arange(b)[:, None, None]
    dev = x.device
    return padded[batch.to(dev), rows[:, :, None].to(dev), cols[:, None, :].to(dev)]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1] (channels-last in memory, free on CUDA)."""
    out = x.permute(0, 3, 1, 2).float().div_(255.0)
    return out if x.is_cuda else out.contiguous()


def iterate_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    indices: torch.Tensor,
    batch_size: int,
    *,
    device: torch.device,
    generator: torch.Generator | None = None,
    shuffle: bool = False,
    augment: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y, idx)``: float images on ``device``, int64 labels, and the row ids used.

    ``indices`` selects rows of ``images``/``labels``; nothing is copied beyond
    one batch at a time. ``shuffle`` and ``augment`` need ``generator``.
    """
    if (shuffle or augment) and generator is None:
        raise ValueError("shuffle/augment need a torch.Generator for reproducibility")
    order = indices[torch.randperm(len(indices), generator=generator)] if shuffle else indices
    src = _source(images, device)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        xb = src[idx.to(src.device)]
        if augment:
            xb = augment_batch(xb, generator)
        yield (
            to_float(xb.to(device, non_blocking=True)),
            labels[idx].to(device, non_blocking=True),
            idx,
        )
