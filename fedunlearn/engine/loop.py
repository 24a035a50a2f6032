"""The single training loop.

Methods never copy it: each describes an epoch as a list of :class:`Phase`
(which rows, which loss), and may pass a gradient mask (SalUn) or a proximal
anchor (FedProx). The loop does batching, augmentation, the optimiser step,
masking, the learning-rate schedule, best-checkpoint selection and accounting.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from fedunlearn.engine.batches import iterate_batches
from fedunlearn.engine.device import autocast
from fedunlearn.engine.losses import Loss

#: Epoch-level learning-rate schedules of :class:`TrainConfig`.
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the defaults are the study's (METHOD.md section 2).

    ``lr_schedule`` is ``"cosine"`` (annealed to 0 over ``epochs``) or ``"constant"``;
    ``prox_mu`` > 0 adds FedProx's proximal term towards the starting weights.
    """

    epochs: int = 20
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    augment: bool = True
    lr_schedule: str = "cosine"
    prox_mu: float = 0.0
    amp: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}"
            )
        if self.prox_mu < 0:
            raise ValueError(f"prox_mu must be >= 0, got {self.prox_mu}")


@dataclass(frozen=True)
class Phase:
    """One pass of an epoch: the rows ``indices`` of (``images``, ``labels``) under ``loss``."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    loss: Loss
    #: Call ``loss(logits, labels, generator, rows)`` with the batch's row ids (a phase mixing forget and retain rows).
    pass_rows: bool = False


@dataclass
class TrainStats:
    """What a call of :func:`train` did: images processed, seconds, losses, and the rows used."""

    images: int = 0
    seconds: float = 0.0
    epoch_losses: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    trained_rows: dict[str, torch.Tensor] = field(default_factory=dict)


class GradientMask:
    """A 0/1 mask over parameters that freezes the masked-out weights exactly.

    Before each step gradients are multiplied by the mask; after it, masked-out
    weights are put back to their values at construction and their momentum is
    zeroed, since weight decay and momentum would otherwise still move them
    (METHOD.md section 4, SalUn). With ``restore=False`` only the gradients are
    masked, as the study's public code does (``mask_freeze: gradient``,
    METHOD.md section 4b): weight decay and momentum then still move them.
    """

    def __init__(
        self, model: nn.Module, mask: dict[str, torch.Tensor], restore: bool = True
    ) -> None:
        self.restores = restore
        params = dict(model.named_parameters())
        unknown = set(mask) - set(params)
        if unknown:
            raise ValueError(f"mask names parameters the model lacks: {sorted(unknown)[:3]}")
        self._entries = [
            (
                params[name],
                m.to(device=params[name].device, dtype=torch.bool),
                params[name].detach().clone(),
            )
            for name, m in mask.items()
        ]

    def mask_gradients(self) -> None:
        for p, m, _ in self._entries:
            if p.grad is not None:
                p.grad.mul_(m)

    @torch.no_grad()
    def restore(self, optimizer: torch.optim.Optimizer) -> None:
        if not self.restores:
            return
        for p, m, p0 in self._entries:
            p.copy_(torch.where(m, p, p0))
            buf = optimizer.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                buf.mul_(m)


def _proximal(model: nn.Module, anchor: list[torch.Tensor], mu: float) -> torch.Tensor:
    return 0.5 * mu * sum((p - a).pow(2).sum() for p, a in zip(model.parameters(), anchor))


def _optimiser(
    model: nn.Module, phases: Sequence[Phase], cfg: TrainConfig
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LRScheduler | None]:
    """SGD with ``cfg``'s settings, and the per-step cosine schedule over all epochs when asked for."""
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = sum(math.ceil(len(p.indices) / cfg.batch_size) for p in phases)
    sched = None
    if cfg.lr_schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    return opt, sched


def _step(
    loss: torch.Tensor,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler | None,
    mask: GradientMask | None,
) -> None:
    """One optimiser step on ``loss``: gradients masked before the step, masked-out weights restored after."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if mask is not None:
        mask.mask_gradients()
    opt.step()
    if mask is not None:
        mask.restore(opt)
    if sched is not None:
        sched.step()


def _unique_rows(seen: dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Each phase's distinct trained rows, from the batches' row indices."""
    return {
        k: torch.unique(torch.cat(v)) if v else torch.zeros(0, dtype=torch.long)
        for k, v in seen.items()
    }


def train(
    model: nn.Module,
    phases: Sequence[Phase],
    cfg: TrainConfig,
    *,
    device: torch.device,
    generator: torch.Generator,
    mask: GradientMask | None = None,
    select: Callable[[nn.Module], float] | None = None,
    track_rows: bool = False,
    after_phase: Callable[[int, str, nn.Module], None] | None = None,
) -> TrainStats:
    """Run ``cfg.epochs`` epochs; each epoch runs every phase in order.

    Parameters
    ----------
    model
        Trained in place (already on ``device``).
    phases
        The data schedule of one epoch.
    cfg
        Optimiser and schedule settings.
    generator
        CPU generator for shuffling, augmentation and random labels.
    mask
        SalUn gradient mask; masked-out weights end bit-identical.
    select
        Score of the model after each epoch (higher is better, e.g. validation
        balanced accuracy); the best epoch's weights are loaded at the end.
    track_rows
        Record the unique rows each phase actually trained on (site audits).
    after_phase
        Called as ``after_phase(epoch, phase_name, model)`` after every phase of
        every epoch (e.g. a trace of predictions); the model is put back in
        train mode afterwards. It must not draw from ``generator``.
    """
    stats = TrainStats()
    total = sum(len(p.indices) for p in phases)
    if total == 0:
        return stats
    opt, sched = _optimiser(model, phases, cfg)
    anchor = [p.detach().clone() for p in model.parameters()] if cfg.prox_mu > 0 else None
    best_state: dict[str, torch.Tensor] | None = None
    seen: dict[str, list[torch.Tensor]] = {p.name: [] for p in phases}
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        running = torch.zeros((), device=device)
        count = 0
        for phase in phases:
            for x, y, idx in iterate_batches(
                phase.images,
                phase.labels,
                phase.indices,
                cfg.batch_size,
                device=device,
                generator=generator,
                shuffle=True,
                augment=cfg.augment,
            ):
                with autocast(device, cfg.amp):
                    logits = model(x)
                loss = (
                    phase.loss(logits, y, generator, idx)
                    if phase.pass_rows
                    else phase.loss(logits, y, generator)
                )
                if anchor is not None:
                    loss = loss + _proximal(model, anchor, cfg.prox_mu)
                _step(loss, opt, sched, mask)
                running += loss.detach().float() * len(idx)
                count += len(idx)
                if track_rows:
                    seen[phase.name].append(idx)
            if after_phase is not None:
                after_phase(epoch, phase.name, model)
                model.train()
        stats.images += count
        stats.epoch_losses.append(float(running) / max(count, 1))
        if select is not None:
            score = select(model)
            if stats.best_score is None or score > stats.best_score or math.isnan(stats.best_score):
                stats.best_score, stats.best_epoch = score, epoch
                best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    if track_rows:
        stats.trained_rows = _unique_rows(seen)
    stats.seconds = time.perf_counter() - start
    return stats
