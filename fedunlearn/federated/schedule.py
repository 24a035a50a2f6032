"""Round-level learning-rate schedules of federated training.

The local optimiser of every site restarts each round; what changes across
rounds is its learning rate, set by the server's schedule (``training.lr_schedule``):

- ``constant``: ``lr`` every round (plain FedAvg);
- ``cosine``: after the warm-up, ``lr`` annealed along a half cosine towards
  ``lr * lr_min_factor``, one step short of it in the last round (every
  round trains at a rate above the floor);
- ``step``: after the warm-up, ``lr`` multiplied by ``step_gamma`` every
  ``step_every`` rounds.

A linear warm-up over the first ``warmup_rounds`` rounds (``lr * r / (w + 1)``
in round ``r``) precedes ``cosine`` and ``step``. A pure function of the
round: a resumed or branched run gets the same rates.

References
----------
Loshchilov & Hutter, "SGDR", ICLR 2017 (cosine annealing); Goyal et al.,
"Accurate, Large Minibatch SGD", 2017 (linear warm-up); Li et al., "On the
Convergence of FedAvg on Non-IID Data", ICLR 2020 (decaying the learning rate
is needed for FedAvg to converge).
"""

from __future__ import annotations

import math
from typing import Protocol

LR_SCHEDULES = ("constant", "cosine", "step")


class RoundSchedule(Protocol):
    """The fields of ``TrainingSection`` a schedule reads."""

    rounds: int
    lr: float
    lr_schedule: str
    warmup_rounds: int
    lr_min_factor: float
    step_every: int
    step_gamma: float


def round_lr(t: RoundSchedule, server_round: int) -> float:
    """Local learning rate of round ``server_round`` (1-based) under the schedule of ``t``.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> t = NS(rounds=10, lr=0.1, lr_schedule="cosine", warmup_rounds=0, lr_min_factor=0.0,
    ...        step_every=1, step_gamma=1.0)
    >>> round(round_lr(t, 1), 6), round(round_lr(t, 10), 6)
    (0.1, 0.002447)
    """
    if server_round < 1:
        raise ValueError(f"rounds are counted from 1, got {server_round}")
    if t.lr_schedule == "constant":
        return t.lr
    w = t.warmup_rounds
    if server_round <= w:
        return t.lr * server_round / (w + 1)
    k = server_round - w - 1  # rounds since the warm-up ended, from 0
    if t.lr_schedule == "cosine":
        span = max(
            t.rounds - w, 1
        )  # k runs over 0 .. span - 1: even the last round keeps a rate > floor
        floor = t.lr * t.lr_min_factor
        return floor + 0.5 * (t.lr - floor) * (1.0 + math.cos(math.pi * min(k, span - 1) / span))
    if t.lr_schedule == "step":
        return t.lr * t.step_gamma ** (k // t.step_every)
    raise ValueError(
        f"unknown lr_schedule {t.lr_schedule!r}; choose one of: {', '.join(LR_SCHEDULES)}"
    )
