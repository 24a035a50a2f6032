"""A hospital's data and work, with no Flower in sight.

The ClientApp only translates messages into these calls. A site holds a shard
of the training split (its training pool) and a local test shard drawn from
the validation split with the same population (size share and malignancy
prevalence), so that per-site risk is measured on data like the site's own.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from fedunlearn.data import (
    BinaryDataset,
    ForgetSpec,
    SyntheticSpec,
    UnofficialDataWarning,
    get_partitioner,
    load_dataset,
    partition,
    select_forget,
)
from fedunlearn.engine import Phase, TrainConfig, TrainStats, train
from fedunlearn.engine.losses import WeightedCE, class_weights
from fedunlearn.evaluation import EvalSet, confusion_of, predict_sets
from fedunlearn.federated.scenario import ForgetRequest, Scenario
from fedunlearn.federated.schedule import round_lr
from fedunlearn.metrics import Confusion, fnr, mia_draw, mia_efficacy, unlearning_metrics
from fedunlearn.seeding import numpy_rng, stream_seed, torch_generator
from fedunlearn.unlearning import UnlearnResult, UnlearnTask, unlearn


@functools.lru_cache(maxsize=4)
def _dataset(
    dataset: str, size: int, root: str | None, synthetic: tuple[int, int, int, float], seed: int
) -> BinaryDataset:
    n_train, n_val, n_test, prevalence = synthetic
    spec = SyntheticSpec(
        n_train=n_train, n_val=n_val, n_test=n_test, size=size, prevalence=prevalence, seed=seed
    )
    return load_dataset(dataset, size, root, synthetic=spec)


def scenario_dataset(scenario: Scenario, *, quiet: bool = False) -> BinaryDataset:
    """The scenario's dataset, loaded once per process and shared by every site in it.

    ``quiet`` silences the unofficial-file warning (the sites set it: the driver
    has warned once already, and the manifest records the MD5).
    """
    d = scenario.data
    syn = d.synthetic
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", UnofficialDataWarning)
        return _dataset(
            d.dataset,
            d.size,
            d.root,
            (syn.n_train, syn.n_val, syn.n_test, syn.prevalence),
            scenario.seed,
        )


@dataclass(frozen=True)
class SiteShards:
    """Row indices of one site: its training shard and its local test shard."""

    site: int
    name: str
    train_rows: torch.Tensor
    test_rows: torch.Tensor


def _partition_params(scenario: Scenario) -> dict:
    """The sites-section settings the chosen partitioner takes: its keyword-only parameters that
    share a name with a ``sites`` field (``alpha``, ``sizes``, ``prevalence``, ...), so a newly
    registered partitioner gets its settings without a list of names here."""
    s = scenario.sites
    wants = inspect.signature(get_partitioner(s.partition)).parameters.values()
    out = {}
    for p in wants:
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name in type(s).model_fields:
            value = getattr(s, p.name)
            if value is not None:  # unset: the partitioner's own default, or its own error
                out[p.name] = list(value) if isinstance(value, tuple) else value
    return out


_SHARDS: dict[str, tuple[SiteShards, ...]] = {}


def _all_shards(scenario: Scenario) -> tuple[SiteShards, ...]:
    key = scenario.model_dump_json(include={"seed", "data", "sites"})
    if key not in _SHARDS:
        _SHARDS[key] = _compute_shards(scenario)
    return _SHARDS[key]


def _compute_shards(scenario: Scenario) -> tuple[SiteShards, ...]:
    data = scenario_dataset(scenario, quiet=True)
    s = scenario.sites
    train_parts = partition(
        data.train.labels,
        s.count,
        s.partition,
        seed=stream_seed(scenario.seed, "partition-train"),
        **_partition_params(scenario),
    )
    val = data.split("val")
    test_seed = stream_seed(scenario.seed, "partition-test")
    if s.partition == "iid":
        test_parts = partition(val.labels, s.count, "iid", seed=test_seed)
    else:
        # Mirror each site's population: same share of the split, same prevalence.
        n = len(data.train)
        sizes = [len(p) / n for p in train_parts]
        prev = [float(data.train.labels[p].float().mean()) if len(p) else 0.0 for p in train_parts]
        test_parts = partition(
            val.labels, s.count, "explicit", seed=test_seed, sizes=sizes, prevalence=prev
        )
    return tuple(
        SiteShards(k, s.site_name(k), train_parts[k], test_parts[k]) for k in range(s.count)
    )


def site_shards(scenario: Scenario, site: int) -> SiteShards:
    """Deterministic shards of ``site``: the same in every process for the same scenario."""
    return _all_shards(scenario)[site]


def forget_seed(scenario: Scenario, site: int, request: ForgetRequest) -> int:
    return stream_seed(scenario.seed, "forget", site, request.seed)


def select_request_rows(
    scenario: Scenario, site: int, request: ForgetRequest, pool: torch.Tensor
) -> torch.Tensor:
    """The training rows a request withdraws, chosen on site from its current pool (none from an empty pool)."""
    if len(pool) == 0:  # an earlier request took every row (the whole site left)
        return pool
    labels = scenario_dataset(scenario, quiet=True).train.labels[pool]
    spec = ForgetSpec(request.fraction, request.mode, seed=forget_seed(scenario, site, request))
    return pool[select_forget(labels, spec)]


def requests_of(scenario: Scenario, site: int) -> list[tuple[int, ForgetRequest]]:
    """This site's requests with their ids, in the order they are applied."""
    ordered = sorted(enumerate(scenario.effective_requests), key=lambda t: (t[1].round, t[0]))
    return [(i, r) for i, r in ordered if r.site == site]


def remove(pool: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return pool[~torch.isin(pool, rows)]


def local_train_config(
    scenario: Scenario, prox_mu: float = 0.0, server_round: int | None = None
) -> TrainConfig:
    """The local optimiser of a training round; its rate follows the round schedule (``training.lr_schedule``).

    ``server_round`` None: the peak rate (Federated Retrain's local reference settings)."""
    t = scenario.training
    return t.train_config(
        lr=None if server_round is None else round_lr(t, server_round), prox_mu=prox_mu
    )


def round_generator(scenario: Scenario, site: int, server_round: int) -> torch.Generator:
    """The batch order and augmentation of ``site``'s local training in ``server_round``."""
    return torch_generator(scenario.seed, "local-train", site, server_round)


def local_train(
    model: nn.Module,
    scenario: Scenario,
    site: int,
    pool: torch.Tensor,
    server_round: int,
    *,
    device: torch.device,
    prox_mu: float = 0.0,
) -> TrainStats:
    """One round of local training on the site's current pool (retain data only)."""
    train_split = scenario_dataset(scenario, quiet=True).train
    phase = Phase(
        "train",
        train_split.images,
        train_split.labels,
        pool,
        WeightedCE(class_weights(train_split.labels[pool])),
    )
    return train(
        model,
        [phase],
        local_train_config(scenario, prox_mu, server_round),
        device=device,
        generator=round_generator(scenario, site, server_round),
        track_rows=True,
    )


def local_recover(
    model: nn.Module,
    scenario: Scenario,
    site: int,
    pool: torch.Tensor,
    server_round: int,
    step: int,
    *,
    device: torch.device,
) -> TrainStats:
    """One recovery round of the risk guard (``deletion.guard.recover``) on the site's retain pool only:
    class-balanced loss with the malignant weight multiplied by ``malignant_weight``."""
    rec = scenario.deletion.guard.recover
    train_split = scenario_dataset(scenario, quiet=True).train
    weights = class_weights(train_split.labels[pool])
    weights[1] = weights[1] * rec.malignant_weight
    phase = Phase("train", train_split.images, train_split.labels, pool, WeightedCE(weights))
    config = replace(
        local_train_config(scenario, server_round=server_round),
        **({"lr": rec.lr} if rec.lr is not None else {}),
        **({"epochs": rec.local_epochs} if rec.local_epochs is not None else {}),
    )
    return train(
        model,
        [phase],
        config,
        device=device,
        generator=torch_generator(scenario.seed, "recover", site, server_round, step),
        track_rows=True,
    )


def local_unlearn(
    model: nn.Module,
    scenario: Scenario,
    site: int,
    forget: torch.Tensor,
    retain: torch.Tensor,
    server_round: int,
    *,
    device: torch.device,
    fresh_model,
    retry: int | None = None,
) -> UnlearnResult:
    """The site's unlearning pass, from the current global model, on its own forget and retain rows.

    ``retry``: the risk guard's retried pass with ``deletion.guard.retry[retry]`` (its own random stream)."""
    train_split = scenario_dataset(scenario, quiet=True).train
    method, settings, seed = (
        scenario.deletion.method,
        scenario.deletion.unlearn,
        stream_seed(scenario.seed, "unlearn", site, server_round),
    )
    if retry is not None:
        setting = scenario.deletion.guard.retry[retry]
        method, settings = setting.method or method, setting.unlearn
        seed = stream_seed(scenario.seed, "unlearn-retry", site, server_round, retry)
    task = UnlearnTask(train_split.images, train_split.labels, forget, retain)
    return unlearn(
        method,
        model,
        task,
        device=device,
        seed=seed,
        config=settings.unlearn_config(method),
        fresh_model=fresh_model,
        retrain_config=local_train_config(scenario),
        track_rows=True,
    )


def local_test_confusion(
    model: nn.Module, scenario: Scenario, site: int, *, device: torch.device
) -> Confusion:
    val = scenario_dataset(scenario, quiet=True).split("val")
    shards = site_shards(scenario, site)
    preds = predict_sets(
        model, {"t": EvalSet(val.images, val.labels, shards.test_rows)}, device=device
    )
    return confusion_of(preds["t"])


def forget_reports(
    model: nn.Module,
    scenario: Scenario,
    site: int,
    forgets: Mapping[int, torch.Tensor],
    retain: torch.Tensor,
    *,
    device: torch.device,
) -> dict[int, dict[str, float]]:
    """Forget-set metrics computed on site (UBAC, UA, MIA efficacy, forget FNR), aggregates only, for
    several forget sets on one model.

    The local test shard is predicted once, and of the retain set only the ``min(|retain|, |test|)`` rows
    the MIA attack draws (:func:`~fedunlearn.metrics.mia.mia_draw`): no other retain row enters a forget-set
    metric. A row's prediction does not depend on the rows batched with it, so this equals predicting the
    whole retain set (``tests/federated/test_site.py``) at a fraction of the cost.
    """
    data = scenario_dataset(scenario, quiet=True)
    val = data.split("val")
    test_rows = site_shards(scenario, site).test_rows
    mia_seed = stream_seed(scenario.seed, "mia", site)
    members, _ = mia_draw(len(retain), len(test_rows), mia_seed)
    sets = {
        "retain": EvalSet(
            data.train.images, data.train.labels, retain[torch.as_tensor(members, dtype=torch.long)]
        ),
        "test": EvalSet(val.images, val.labels, test_rows),
    }
    sets |= {
        f"forget-{key}": EvalSet(data.train.images, data.train.labels, rows)
        for key, rows in forgets.items()
    }
    preds = predict_sets(model, sets, device=device)
    e = scenario.evaluation
    r, t = preds["retain"], preds["test"]
    retain_counts, test_counts = confusion_of(r), confusion_of(t)
    out = {}
    for key, rows in forgets.items():
        f = preds[f"forget-{key}"]
        counts = confusion_of(f)  # so that forget metrics can be pooled over sites by counts
        scores = unlearning_metrics(counts, retain_counts, test_counts)
        mia = mia_efficacy(
            r.probs,
            r.labels,
            t.probs,
            t.labels,
            f.probs,
            f.labels,
            variant=e.mia,
            seed=mia_seed,
            retain_size=len(retain),
        )
        out[key] = {
            "ubac": scores["ubac"],
            "ua": scores["ua"],
            "mia_efficacy": mia,
            "forget_fnr": fnr(counts),
            "forget_count": float(len(rows)),
            "forget_tp": float(counts.tp),
            "forget_fp": float(counts.fp),
            "forget_tn": float(counts.tn),
            "forget_fn": float(counts.fn),
        }
    return out


def forget_report(
    model: nn.Module,
    scenario: Scenario,
    site: int,
    forget: torch.Tensor,
    retain: torch.Tensor,
    *,
    device: torch.device,
) -> dict[str, float]:
    """:func:`forget_reports` of one forget set."""
    return forget_reports(model, scenario, site, {0: forget}, retain, device=device)[0]


def _rows_in_order(
    scenario: Scenario, site: int, up_to_round: int | None
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """The site's requests (arrived by ``up_to_round``; all when None) taken from its shard in the order
    they are applied; returns the pool left and each request's rows."""
    pool = site_shards(scenario, site).train_rows
    removed: dict[int, torch.Tensor] = {}
    for rid, req in requests_of(scenario, site):
        if up_to_round is None or req.round <= up_to_round:
            rows = select_request_rows(scenario, site, req, pool)
            removed[rid] = rows
            pool = remove(pool, rows)
    return pool, removed


def initial_pool(scenario: Scenario, site: int) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """The site's starting pool; under Federated Retrain every forget set is removed up front."""
    if scenario.retrain:
        return _rows_in_order(scenario, site, None)
    return site_shards(scenario, site).train_rows, {}


def tracked_forget_sets(
    scenario: Scenario, site: int, server_round: int
) -> dict[int, torch.Tensor]:
    """Control arm (``deletion.method: none``): the rows each request arrived by ``server_round`` would
    withdraw, chosen exactly as an erasing run chooses them. They stay in the training pool; the site only
    measures the model on them, so a method's forget metrics have a counterfactual to be compared with."""
    return _rows_in_order(scenario, site, server_round)[1] if scenario.control else {}


def as_int_list(rows: torch.Tensor) -> list[int]:
    return [int(v) for v in rows.tolist()]


def pool_after(scenario: Scenario, site: int, forgotten: Sequence[torch.Tensor]) -> torch.Tensor:
    pool = site_shards(scenario, site).train_rows
    for rows in forgotten:
        pool = remove(pool, rows)
    return pool


class SimulatedSiteFailure(RuntimeError):
    """A failure the scenario's ``failures`` section asked for (the site raises instead of answering)."""


def scheduled_failure(scenario: Scenario, site: int, server_round: int, phase: str) -> str | None:
    """Why the site fails its ``phase`` message (train, unlearn or evaluate) in ``server_round``, or None.

    Scheduled crashes first, then the seeded dropout draw for (round, site), one
    draw for the whole round, so a dropped site misses all its messages of it.
    """
    f, name = scenario.failures, scenario.sites.site_name(site)
    for crash in f.crashes:
        if crash.site == site and crash.round == server_round and crash.phase in ("round", phase):
            return f"scheduled crash of {name} in round {server_round} ({phase})"
    if f.dropout > 0:
        draw = numpy_rng(scenario.seed, "dropout", server_round, site).random()
        if draw < f.dropout:
            return f"{name} dropped out of round {server_round} (failures.dropout = {f.dropout:g})"
    return None


def fail_if_scheduled(scenario: Scenario, site: int, server_round: int, phase: str) -> None:
    """Raise :class:`SimulatedSiteFailure` when the scenario schedules a failure of this message."""
    if reason := scheduled_failure(scenario, site, server_round, phase):
        raise SimulatedSiteFailure(reason)
