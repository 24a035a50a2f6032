"""The bare PyTorch loop the engine is measured against (torch only: it also runs on a GPU image without flwr).

Same optimiser, loss and augmentation as :func:`fedunlearn.engine.train` with
one phase, written the plain way: float NCHW tensors already in memory (on
the device), a shuffled index per batch, crop + flip with plain torch ops.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from fedunlearn.engine import TrainConfig
from fedunlearn.engine.losses import class_weights

PAD = 4


def bench_config(batch_size: int = 256) -> TrainConfig:
    """One epoch, SGD lr 0.1 / momentum 0.9 / weight decay 5e-4, constant rate, crop + flip (bf16 on CUDA)."""
    return TrainConfig(
        epochs=1,
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        batch_size=batch_size,
        augment=True,
        lr_schedule="constant",
    )


def bare_augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Padded random crop + horizontal flip of a float NCHW batch, with plain torch ops.

    The draws come from the CPU ``generator`` in the engine's order, so for the
    same generator state the result equals the engine's augmentation.
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    dy = torch.randint(0, 2 * PAD + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * PAD + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = dx[:, None] + torch.arange(w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]  # (B, 1, 1, W)
    bi = torch.arange(b)[:, None, None, None]
    ci = torch.arange(c)[None, :, None, None]
    dev = x.device
    return padded[bi.to(dev), ci.to(dev), rows.to(dev), cols.to(dev)]


def bare_epoch(
    model: nn.Module,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    *,
    augment: bool,
    seed: int,
    batch_size: int = 256,
) -> int:
    """One epoch over float NCHW ``x_all`` (on the model's device); returns the images seen.

    On CUDA: bf16 autocast and channels_last batches, like the engine.
    """
    cfg = bench_config(batch_size)
    device = x_all.device
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    w = class_weights(y_all.cpu()).to(device)
    cuda = device.type == "cuda"
    model.train()
    order = torch.randperm(len(y_all), generator=g)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size].to(device)
        x = x_all[idx]
        if augment:
            x = bare_augment(x, g)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
        with ctx:
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y_all[idx], weight=w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(order)


def images_per_second(fn: Callable[[], int], device: torch.device) -> float:
    """Images/s of one call of ``fn`` (which returns the images it processed), synchronised on CUDA."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    n = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - t0)
