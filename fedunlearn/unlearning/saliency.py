"""SalUn's weight-saliency mask.

References
----------
Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight
Saliency in Both Image Classification and Generation", ICLR 2024;
METHOD.md section 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fedunlearn.engine.batches import iterate_batches
from fedunlearn.engine.device import autocast


def saliency_mask(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    forget: torch.Tensor,
    ratio: float = 0.5,
    *,
    device: torch.device,
    batch_size: int = 256,
    amp: bool = True,
) -> dict[str, torch.Tensor]:
    """Mask of the most salient weights for forgetting the rows ``forget``.

    With the model in eval mode, accumulate over the whole forget set the
    gradient of the cross-entropy with the true labels, take its absolute
    value, rank all weights of the whole model together and keep the top
    ``ratio`` of them (exactly ``round(ratio * n_weights)``) as 1.

    Returns
    -------
    dict[str, torch.Tensor]
        Parameter name -> bool tensor of the parameter's shape.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"mask ratio must be in (0, 1], got {ratio}")
    if len(forget) == 0:
        raise ValueError("saliency needs a non-empty forget set")
    was_training = model.training
    model.eval()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for _, p in params]
    try:
        for x, y, _ in iterate_batches(images, labels, forget, batch_size, device=device):
            model.zero_grad(set_to_none=True)
            with autocast(device, amp):
                logits = model(x)
            # Sum, not mean, so the accumulated gradient is the same for any batch size.
            F.cross_entropy(logits.float(), y, reduction="sum").backward()
            for g, (_, p) in zip(grads, params):
                if p.grad is not None:
                    g.add_(p.grad)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    flat = torch.cat([g.abs().flatten() for g in grads])
    keep = round(ratio * flat.numel())
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if keep > 0:
        chosen[torch.topk(flat, keep, sorted=False).indices] = True
    mask: dict[str, torch.Tensor] = {}
    offset = 0
    for name, p in params:
        mask[name] = chosen[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    return mask


def mask_fraction(mask: dict[str, torch.Tensor]) -> float:
    """Share of weights the mask keeps trainable."""
    kept = sum(int(m.sum()) for m in mask.values())
    total = sum(m.numel() for m in mask.values())
    return kept / total if total else float("nan")
