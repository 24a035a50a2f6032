"""(c) Cost of erasure: a SalUn-CRA deletion pass vs Federated Retrain of the same scenario.

The two runs differ only in ``deletion.method`` (``salun-cra`` vs ``retrain``);
the request comes at the last round, so SalUn-CRA's run trains normally until
then and its deletion round is the erasure, while Federated Retrain trains
every round with the forget set removed from round 1 (what the federation
would have to redo to honour the request exactly).

- wall: Retrain's training phases summed over its rounds (strategy timing
  rows, ``train_seconds``) over the wall of SalUn-CRA's deletion round's
  training phase (under ``adopt`` only the requesting site works, on as many
  threads as the machine has CPUs, ``ray.unlearn_threads``, as Retrain's sites
  use one actor per CPU; its handler also runs the forget-set reports before
  and after);
- images: images the engine trained on (every site, every round) under Retrain
  over those of the unlearning pass (forget + retain passes, every epoch); the
  saliency mask's one gradient pass over the forget set is not in either count
  and is reported apart (``saliency_images``).

Runs alternate (SalUn-CRA, Retrain, SalUn-CRA, ...); the ratios are medians of
the per-pair ratios.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from fedunlearn.bench.fedruns import RunFigures
from fedunlearn.bench.table import BenchTable, median
from fedunlearn.errors import FedunlearnError

FORGET_FRACTION = 0.2


@dataclass(frozen=True)
class ErasureSettings:
    """Shape of the erasure scenario (the quickstart's optimisation, deletion at the last round)."""

    sites: int
    rounds: int
    local_epochs: int
    unlearn_epochs: int
    batch_size: int = 64


def erasure_scenario(method: str, data: dict[str, Any], s: ErasureSettings) -> dict[str, Any]:
    return {
        "name": f"bench-erasure-{method}",
        "seed": 0,
        "model": "small-cnn",
        "data": data,
        "sites": {"count": s.sites, "partition": "iid"},
        "training": {
            "rounds": s.rounds,
            "local_epochs": s.local_epochs,
            "batch_size": s.batch_size,
            "lr": 0.05,
        },
        "deletion": {
            "method": method,
            "unlearn": {"epochs": s.unlearn_epochs, "batch_size": s.batch_size},
            "requests": [
                {"round": s.rounds, "site": 0, "fraction": FORGET_FRACTION, "mode": "random"}
            ],
        },
        "evaluation": {"server_val": False, "operating_points": [0.5]},
        # Both arms get the whole machine: Retrain through one actor per CPU, the erasure (one site working)
        # through that site's threads.
        "ray": {"unlearn_threads": machine_cpus()},
    }


def machine_cpus() -> int:
    """The CPUs the bench's Ray instance is given (``fedruns``: one per core)."""
    return os.cpu_count() or 1


@dataclass(frozen=True)
class ErasureCost:
    wall_s: float
    compute_s: float
    images: float


def unlearn_cost(run: RunFigures) -> tuple[ErasureCost, float]:
    """The SalUn-CRA run's deletion round: (its cost, the forget-set size)."""
    rounds = run.unlearn_rounds()
    if not rounds:
        raise FedunlearnError(
            f"bench: the salun-cra run recorded no unlearning pass; see {run.label}'s events.jsonl"
        )
    r = rounds[-1]  # the request comes at the last round
    m = run.metrics
    u = m[(m["round"] == r) & (m["phase"] == "unlearn")]
    value = lambda k: float(u.loc[u["metric"] == k, "value"].sum())  # noqa: E731
    return ErasureCost(run.timing(r, "train"), value("seconds"), value("images")), value(
        "forget_count"
    )


def retrain_cost(run: RunFigures) -> ErasureCost:
    rounds = range(1, run.rounds + 1)
    return ErasureCost(
        wall_s=sum(run.timing(r, "train") for r in rounds),
        compute_s=sum(sum(run.site_values(r, "train", "seconds")) for r in rounds),
        images=sum(sum(run.site_values(r, "train", "images")) for r in rounds),
    )


def erasure_rows(
    table: BenchTable,
    pairs: list[tuple[RunFigures, RunFigures]],
    settings: ErasureSettings,
    data_label: str,
) -> None:
    """``pairs`` of (SalUn-CRA run, Retrain run), measured alternately."""
    costs = [(unlearn_cost(s), retrain_cost(f)) for s, f in pairs]
    variant = f"{settings.sites} sites, {data_label}"
    u = [c[0][0] for c in costs]
    f = [c[1] for c in costs]
    forget = costs[0][0][1]
    add = lambda metric, value, unit: table.add("erasure", variant, metric, value, unit)  # noqa: E731
    add(
        "erasure_wall_ratio",
        median(b.wall_s / a.wall_s for a, b in zip(u, f)),
        "x (Federated Retrain / salun-cra, wall; target >= 10)",
    )
    add(
        "erasure_images_ratio",
        median(b.images / a.images for a, b in zip(u, f)),
        "x (Federated Retrain / salun-cra, images trained on; target >= 10)",
    )
    add(
        "erasure_compute_ratio",
        median(b.compute_s / a.compute_s for a, b in zip(u, f)),
        "x (sum of site compute seconds)",
    )
    add("salun_cra_wall_s", median(a.wall_s for a in u), "s (deletion round, training phase)")
    add(
        "salun_cra_compute_s",
        median(a.compute_s for a in u),
        "s (mask + unlearning loop at the site)",
    )
    add("salun_cra_images", median(a.images for a in u), "images")
    add(
        "saliency_images",
        forget,
        "images (one gradient pass over the forget set, not in salun_cra_images)",
    )
    add("retrain_wall_s", median(b.wall_s for b in f), f"s ({settings.rounds} training phases)")
    add("retrain_compute_s", median(b.compute_s for b in f), "s (sum over sites and rounds)")
    add("retrain_images", median(b.images for b in f), "images")
    add("pairs", len(pairs), "salun-cra/retrain runs, alternated")
    add(
        "unlearn_threads",
        machine_cpus(),
        "threads (the requesting site's pass; Retrain: 1 per actor)",
    )
    table.note(
        f"erasure: {settings.sites} sites (iid), {settings.rounds} rounds of {settings.local_epochs} local epoch(s), "
        f"batch {settings.batch_size}, small-cnn, {data_label}; site-0 asks at round {settings.rounds} to forget "
        f"{FORGET_FRACTION:.0%} of its rows; salun-cra ({settings.unlearn_epochs} unlearning epochs, adopt, "
        f"{machine_cpus()} threads) vs "
        "Federated Retrain (same scenario, deletion.method retrain). Wall ratio = Retrain's training phases summed "
        "over its rounds / the training phase of salun-cra's deletion round; images ratio = images trained on."
    )
